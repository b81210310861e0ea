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

/* --- DFSM over corosync CPG (cluster.md §1) ------------------------------ */

/* CPG groups (§1.1, §3.1).  The length handed to corosync counts the NUL:
 * corosync matches length plus bytes, so strlen() would be another group. */
#define DCDB_GROUP_NAME          "pve_dcdb_v1"
#define DCDB_GROUP_NAME_LEN      12u /* 11 characters + NUL */
#define DCDB_PROTOCOL_VERSION    1u
#define KVSTORE_GROUP_NAME       "pve_kvstore_v1"
#define KVSTORE_GROUP_NAME_LEN   15u /* 14 characters + NUL */
#define KVSTORE_PROTOCOL_VERSION 0u
/* struct cpg_name's value[] (CPG_MAX_NAME_LENGTH in <corosync/cpg.h>) */
#define DFSM_GROUP_NAME_MAX 128u

/* Headers (§1.2), little-endian, no padding on the wire. */
#define DFSM_BASE_HEADER_LEN   16u /* type u16, subtype u16, version, time, reserved */
#define DFSM_NORMAL_HEADER_LEN 24u /* base + count u64 */
#define DFSM_STATE_HEADER_LEN  32u /* base + epoch */
#define DFSM_EPOCH_LEN         16u /* epoch, time, nodeid, pid: compared as raw bytes */

/* Message types (§1.3): the base header's `type`. */
#define DFSM_MSG_NORMAL          0
#define DFSM_MSG_SYNC_START      1
#define DFSM_MSG_STATE           2
#define DFSM_MSG_UPDATE          3
#define DFSM_MSG_UPDATE_COMPLETE 4
#define DFSM_MSG_VERIFY_REQUEST  5
#define DFSM_MSG_VERIFY          6
#define DFSM_MSG_MAX             DFSM_MSG_VERIFY

/* VERIFY_REQUEST payload: csum_id u64; VERIFY: csum_id u64 + SHA-256 (§1.3). */
#define DFSM_VERIFY_REQUEST_LEN 8u
#define DFSM_VERIFY_LEN         (8u + MEMDB_CSUM_LEN)

/* --- dcdb NORMAL payloads (cluster.md §2.2) ------------------------------ */

/* Subtypes; anything outside 1..8 makes the original leave the group. */
#define DCDB_MSG_WRITE          1
#define DCDB_MSG_MKDIR          2
#define DCDB_MSG_DELETE         3 /* unlink and rmdir */
#define DCDB_MSG_RENAME         4
#define DCDB_MSG_CREATE         5
#define DCDB_MSG_MTIME          6 /* the new mtime travels in the offset field */
#define DCDB_MSG_UNLOCK_REQUEST 7
#define DCDB_MSG_UNLOCK         8

/* fuse-msg: size, offset, pathlen, tolen, flags (u32 each), then path, to, data */
#define DCDB_FUSE_HEADER_LEN 20u
/* WRITE flags: 0 = write, 1 = truncate (the original tests != 0; it sends 0/1) */
#define DCDB_FLAG_TRUNCATE 1u
/* unlock-msg: csum[32] then the path with its NUL, so at least 33 bytes */
#define DCDB_UNLOCK_MIN_LEN (MEMDB_CSUM_LEN + 1u)

/* UPDATE payload (§2.7): parent, inode, version (u64), writer, mtime, size,
 * namelen (u32), type (u8), then name with NUL and the data of a file. */
#define DCDB_UPDATE_HEADER_LEN 41u

/* --- kvstore NORMAL payloads (cluster.md §3.1-§3.3, §3.10) --------------- */

#define KVSTORE_MSG_UPDATE          1
#define KVSTORE_MSG_UPDATE_COMPLETE 2 /* defined by the original, never sent */
#define KVSTORE_MSG_LOG             3

/* UPDATE: a 256-byte key field (NUL inside, garbage after it), then the value. */
#define KVSTORE_KEY_LEN 256u
/* CFS_MAX_STATUS_SIZE: the original refuses larger values before it
 * broadcasts them (§3.2), so no peer sends more. */
#define KVSTORE_MAX_VALUE 32768u

/* --- cluster log (cluster.md §3.10, §3.3, §3.4) ------------------------- */

/* One entry: at most this many bytes, counted with the size base below. */
#define CLOG_MAX_ENTRY_SIZE 4096u

/* The ring: an 8-byte header (size, cpos) and the entries.  Its default size
 * is also the size of the kvstore STATE payload (§3.4); the merge result is
 * always this size.  The original refuses rings under 10 maximal entries
 * (clog_new), so no peer can legitimately send a smaller one. */
#define CLOG_DEFAULT_SIZE (8192u * 16u) /* 131072 */
#define CLOG_MIN_SIZE     (10u * CLOG_MAX_ENTRY_SIZE)
#define CLOG_HEADER_SIZE  8u

/* Ours, not the original's: the largest ring accepted from a peer.  Every
 * original ring is CLOG_DEFAULT_SIZE; the ceiling bounds what a peer can make
 * us copy and keeps every offset sum far from uint32 overflow. */
#define CLOG_MAX_SIZE (16u * 1024u * 1024u)

/* The entry's size base (sizeof the original's struct, 48) and the offset of
 * its text (44): an entry's size counts 4 bytes past its strings (§7 #3). */
#define CLOG_ENTRY_BASE      48u
#define CLOG_ENTRY_TEXT_OFFS 44u

/* Entries start at multiples of this in the ring. */
#define CLOG_ALIGN 8u

/* node, ident and tag are cut to 254 characters: their length byte counts
 * the NUL and is at most 255. */
#define CLOG_MAX_NAME_LEN 255u

/* Syslog priorities 0..7; anything else is not logged. */
#define CLOG_MAX_PRIORITY 7u

/* A merge stops collecting once this many bytes (aligned entry sizes) are
 * taken, so the result never wraps. */
#define CLOG_MERGE_LIMIT (CLOG_DEFAULT_SIZE - CLOG_HEADER_SIZE - CLOG_MAX_ENTRY_SIZE)

/* `.clusterlog` and GET_CLUSTER_LOG with max 0 show this many entries. */
#define CLOG_JSON_DEFAULT_MAX 50u

/* FNV-1a 64 of node and ident names (the entry's digests, the user filter). */
#define CLOG_FNV_OFFSET 0xcbf29ce484222325ull
#define CLOG_FNV_PRIME  0x100000001b3ull

/* --- RRD dump (cluster.md §3.9, §6.2) ----------------------------------- */

/* An RRD update older than this many seconds is dropped from the dump. */
#define RRD_MAX_AGE 300
/* A built dump is served for this many seconds before it is rebuilt. */
#define RRD_DUMP_CACHE_SECONDS 2
