/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * constants.h: every limit and wire/disk constant of pmxcfs, in one place.
 *
 * Each value says what it bounds, where it comes from (the section of
 * shared/spec that documents the original) and whether we enforce it.
 * Change a value here and nowhere else.
 */
#pragma once

#include <stdint.h>

/* --- entry types (spec core.md: DT_DIR / DT_REG from <dirent.h>) --------- */
#define MEMDB_TYPE_DIR 4 /* on disk and in memory */
#define MEMDB_TYPE_REG 8

/* --- memdb limits (core.md §2.4, §2.11) --------------------------------- */

/* Largest file content.  Enforced on every write/truncate/create:
 * offset + count > MEMDB_MAX_FILE_SIZE fails EFBIG, checked before anything
 * else (core.md §2.4).  Part of the cluster contract: every node must refuse
 * the same writes. */
#define MEMDB_MAX_FILE_SIZE (1024u * 1024u)

/* statfs block size and the "file system size" it reports (core.md §2.11). */
#define MEMDB_BLOCKSIZE  4096u
#define MEMDB_BLOCKS     32768u /* 128 MiB */
#define MEMDB_MAX_FSSIZE ((uint64_t)MEMDB_BLOCKS * MEMDB_BLOCKSIZE)

/* statfs "files" figure (core.md §2.11). */
#define MEMDB_MAX_INODES 262144u

/* statfs f_namemax (core.md §2.11); not a memdb limit: the kernel's FUSE
 * limit of 1024 bytes per component applies to names. */
#define MEMDB_NAMEMAX 256u

/* Longest path memdb accepts from any source (IPC, peer, FUSE-built path).
 * The kernel bounds FUSE paths at PATH_MAX; a peer could send more. */
#define MEMDB_MAX_PATH 4096u

/*
 * Total size and entry count: the original only reports MEMDB_MAX_FSSIZE and
 * MEMDB_MAX_INODES in statfs and never enforces them (core.md §2.13 #8).
 * We enforce them for changes that start on this node (memdb_check_space(),
 * called by the FUSE and IPC layers before a change is applied or sent), and
 * never for changes delivered by the cluster: every node must apply a
 * delivered change identically, including original nodes that do not know
 * the limit.  See docs/limits.md.
 */

/* --- versions and locks (core.md §2.3, §2.9) ---------------------------- */

/* Seconds after which a lock directory under priv/lock may be removed by an
 * unlock request (CFS_LOCK_TIMEOUT). */
#define MEMDB_LOCK_TIMEOUT 120u

#define MEMDB_LOCK_DIR "priv/lock"

/* Name of the row that carries the root's version/writer/mtime (core.md §3.3). */
#define MEMDB_VERSION_ROW_NAME "__version__"

/* --- checksums and index (core.md §2.10) -------------------------------- */
#define MEMDB_CSUM_LEN         32u /* SHA-256 */
#define MEMDB_INDEX_HEADER_LEN 32u /* version, last_inode, writer, mtime, size, bytes */
#define MEMDB_INDEX_ENTRY_LEN  40u /* inode u64 + digest */

/* --- VM configs (core.md §2.7) ------------------------------------------ */
#define VMTYPE_QEMU   1
#define VMTYPE_OPENVZ 2
#define VMTYPE_LXC    3

/* --- sqlite (core.md §3.1) ----------------------------------------------- */
#define DB_BUSY_TIMEOUT_MS 10000
#define DB_FILE_MODE       0600
