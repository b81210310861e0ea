/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * memdb.h: the in-memory tree of /etc/pve and its operations.
 *
 * The tree holds every file and directory with the fields of core.md §2.1.
 * Every operation follows the original's numbering rules (§2.3), checks
 * (in the original's order) and errno (§2.6), so that all nodes of a
 * cluster, ours and original ones, apply a change identically.
 *
 * Ownership: memdb_t is single-threaded (the daemon's loop owns it).  Entry
 * pointers returned by lookups are borrowed and valid until the next change
 * (operation, batch commit, tree replace or close).  File content is a
 * GBytes: take a reference (g_bytes_ref) to keep it past a change.
 *
 * Errors are negative errno.  The sqlite write of a change happens before
 * the change is applied in memory, so a failed write leaves memory and disk
 * as they were.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "constants.h"
#include "database.h"

typedef struct memdb memdb_t;
typedef struct memdb_entry memdb_entry_t;

/* One file or directory.  Read-only for everything but memdb. */
struct memdb_entry {
	uint64_t inode;
	uint64_t parent;  /* inode of the parent directory (root: 0) */
	uint64_t version; /* global version of the last change */
	uint32_t writer;  /* node id of the last writer */
	uint32_t mtime;
	uint32_t size;        /* content length; 0 for directories */
	uint8_t type;         /* MEMDB_TYPE_DIR or MEMDB_TYPE_REG */
	char *name;           /* "" for the root */
	GBytes *data;         /* regular file content, NULL when size is 0 */
	GHashTable *children; /* directory: name -> memdb_entry_t*, else NULL */
	memdb_entry_t *up;    /* parent entry; NULL for the root */
	bool unpersisted;     /* created by memdb_create_deferred, no row yet */
	bool digest_valid;    /* digest caches the index digest (core.md §2.10 B) */
	uint8_t digest[MEMDB_CSUM_LEN];
};

typedef struct memdb_options {
	db_sync_t sync;          /* DB_SYNC_NORMAL (default) or DB_SYNC_FULL */
	uint32_t lock_timeout;   /* seconds, 0 = MEMDB_LOCK_TIMEOUT */
	uint64_t (*clock)(void); /* monotonic seconds for lock ages; NULL = real */
} memdb_options_t;

/* --- change events ------------------------------------------------------- */

typedef enum {
	MEMDB_EV_ADD,    /* a name appeared in a directory */
	MEMDB_EV_REMOVE, /* a name went away from a directory */
	MEMDB_EV_CHANGE, /* content or attributes of an inode changed */
	MEMDB_EV_RELOAD, /* the whole tree was replaced (inode = 0) */
	/* the whole tree is about to be replaced (inode = 0): the old one is
	 * still what the reading functions see, for the last time */
	MEMDB_EV_RELOADING,
} memdb_event_kind_t;

typedef struct memdb_event {
	memdb_event_kind_t kind;
	uint64_t inode;
	uint64_t parent;  /* ADD/REMOVE: the directory */
	const char *name; /* ADD/REMOVE: the name in it */
	const char *path; /* canonical path of the entry (CHANGE/ADD/REMOVE) */
	uint64_t version; /* global version after the change */
} memdb_event_t;

/* Called synchronously after each applied change; must not call back into
 * memdb operations that change the tree. */
typedef void (*memdb_event_cb)(const memdb_event_t *ev, void *userdata);

/* --- open / close ------------------------------------------------------- */

/* Open (or create) the database at @dbpath, load and check the whole tree.
 * A damaged database is refused with -EUCLEAN (sqlite finds the file
 * corrupt or not a database, or a row or the tree fails a check) and a
 * message naming the bad row in *ret_err (g_free), and is not modified.
 * Other errors (I/O, permissions, memory) are their negative errno. */
int memdb_open(const char *dbpath, const memdb_options_t *opts, memdb_t **ret, char **ret_err);
memdb_t *memdb_close(memdb_t *mdb); /* NULL-safe, returns NULL */
/* Checkpoints of the database's WAL in a thread of their own from now on
 * (db_start_checkpointer in database.h): no change waits for one. */
int memdb_start_checkpointer(memdb_t *mdb, char **ret_err);

/* Listeners (the filesystem, the IPC watches, later the cluster layer) are
 * called in the order they were added.  -ENOSPC past MEMDB_MAX_LISTENERS. */
#define MEMDB_MAX_LISTENERS 4
int memdb_add_event_cb(memdb_t *mdb, memdb_event_cb cb, void *userdata);
void memdb_remove_event_cb(memdb_t *mdb, memdb_event_cb cb, void *userdata);

/* --- operations (core.md §2.6) ----------------------------------------- */

int memdb_create(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);
/* create, with the row written later: by the next change of the entry
 * (typically the content written through the handle that created it), by
 * memdb_persist(), or at close.  So open(O_CREAT)+write+close is one
 * transaction.  Until then a crash loses the empty entry (never its content,
 * which is written together with the row).  Local changes only. */
int memdb_create_deferred(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);
/* Write the row of a deferred create now (0 if it has one already). */
int memdb_persist(memdb_t *mdb, uint64_t inode);
/* Write the rows of every deferred create; the first error is returned. */
int memdb_persist_all(memdb_t *mdb);
int memdb_mkdir(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);
/* Returns @count on success.  truncate: the size becomes offset + count. */
int memdb_write(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime, const void *data,
		size_t count, uint64_t offset, bool truncate);
/* truncate(path, size) as the original: write(count 0, offset size, truncate) */
int memdb_truncate(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime, uint64_t size);
int memdb_delete(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);
int memdb_rename(memdb_t *mdb, const char *from, const char *to, uint32_t writer, uint32_t mtime);
int memdb_mtime(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);

/* Batching: changes between begin and commit share one sqlite transaction
 * (each change still succeeds or fails alone, through a savepoint).  Nests.
 * If the commit fails, the tree is reloaded from the database (the changes
 * of the batch are gone from memory too) and the error is returned. */
int memdb_batch_begin(memdb_t *mdb);
int memdb_batch_commit(memdb_t *mdb);

/* -ENOSPC if adding @bytes of content and @entries entries would pass the
 * 128 MiB / 262,144-entry limits (core.md §2.4).  For changes that start on
 * this node only; see constants.h. */
int memdb_check_space(memdb_t *mdb, int64_t bytes, int64_t entries);

/* --- reading ----------------------------------------------------------- */

const memdb_entry_t *memdb_root(memdb_t *mdb);
const memdb_entry_t *memdb_lookup(memdb_t *mdb, const char *path);
const memdb_entry_t *memdb_get(memdb_t *mdb, uint64_t inode);
const memdb_entry_t *memdb_child(const memdb_entry_t *dir, const char *name);
/* The same answer as path_is_private(memdb_entry_path(e)), without
 * building the path: O(depth), no allocation (the attributes of every
 * entry the kernel looks at depend on it). */
bool memdb_entry_is_private(const memdb_entry_t *e);
/* Canonical path of @e (new string, g_free). */
char *memdb_entry_path(const memdb_entry_t *e);
/* Content of a regular file: *ret gets a new reference (NULL when empty);
 * returns the size, -ENOENT for a missing path or a directory. */
int memdb_read(memdb_t *mdb, const char *path, GBytes **ret);
/* Children of a directory, in no particular order (borrowed pointers);
 * O(entries).  -ENOENT / -ENOTDIR. */
int memdb_readdir(memdb_t *mdb, const char *path, GPtrArray **ret);

uint64_t memdb_version(memdb_t *mdb);
size_t memdb_count(memdb_t *mdb);        /* entries, root included */
uint64_t memdb_total_size(memdb_t *mdb); /* bytes of content */
void memdb_statfs(memdb_t *mdb, struct statvfs *st);
/* true once a database write failed since the last memdb_clear_db_error();
 * the cluster layer uses it to leave and resync. */
bool memdb_db_error(memdb_t *mdb);
void memdb_clear_db_error(memdb_t *mdb);
db_t *memdb_database(memdb_t *mdb);

/* --- checksums and index (core.md §2.10) ------------------------------- */

/* A: the record checksum of one entry (inode and content included). */
void memdb_record_checksum(const memdb_entry_t *e, uint8_t out[MEMDB_CSUM_LEN]);
/* B: the index blob (g_free); *ret_len its length. */
uint8_t *memdb_encode_index(memdb_t *mdb, size_t *ret_len);
/* C: the full-tree checksum. */
void memdb_tree_checksum(memdb_t *mdb, uint8_t out[MEMDB_CSUM_LEN]);

/* A decoded index (pointing into the caller's buffer). */
typedef struct memdb_index_view {
	uint64_t version;
	uint64_t last_inode;
	uint32_t writer;
	uint32_t mtime;
	uint32_t size;          /* number of entries */
	const uint8_t *entries; /* size * 40 bytes */
} memdb_index_view_t;

/* Pure decoder for an index received from a peer: checks the header, the
 * length and that inodes ascend strictly.  0 or -EBADMSG. */
int memdb_index_parse(const uint8_t *buf, size_t len, memdb_index_view_t *ret);
uint64_t memdb_index_inode(const memdb_index_view_t *v, uint32_t i);
const uint8_t *memdb_index_digest(const memdb_index_view_t *v, uint32_t i);

/* --- cluster sync: full-tree replace (core.md §3.7) -------------------- */

/* Replace the tree by the leader's: delete every inode not in @leader_index,
 * write every row of @updates (inode 0 = the root's version row), reload,
 * and require the new index to equal @leader_index byte for byte.  All in
 * one transaction: on any failure (or a crash) the old tree stays.  Not
 * allowed inside a batch (-EBUSY). */
int memdb_replace_tree(memdb_t *mdb, const uint8_t *leader_index, size_t leader_len,
		       const db_row_t *updates, size_t n_updates, char **ret_err);

/* --- per-path change counters (core.md §2.8) --------------------------- */

size_t memdb_path_counter_count(void);
const char *memdb_path_counter_name(size_t i);
uint32_t memdb_path_counter(memdb_t *mdb, size_t i);

/* --- VM list (core.md §2.7) -------------------------------------------- */

typedef struct memdb_vm {
	uint32_t vmid;
	int type; /* VMTYPE_* */
	char *node;
	uint32_t version; /* per-VM version (global VM counter at its last write) */
} memdb_vm_t;

uint32_t memdb_vmlist_version(memdb_t *mdb);
const memdb_vm_t *memdb_vm_get(memdb_t *mdb, uint32_t vmid);
/* Borrowed memdb_vm_t pointers sorted by vmid (g_ptr_array_unref; the
 * array is shared and must not be modified).  Sorted once per change of the
 * list: the same array comes back until the list changes, and every write,
 * truncate, rename or removal of a guest config changes it (the guest is
 * registered again with a new per-guest version). */
GPtrArray *memdb_vm_list(memdb_t *mdb);
size_t memdb_vm_count(memdb_t *mdb);

/* --- locks under priv/lock (core.md §2.9) ------------------------------ */

/* Is the lock at @path (canonical "priv/lock/<name>") expired, given the
 * checksum @csum of its current record?  Updates the lock table as the
 * original does (unknown path or changed checksum: starts the timer). */
bool memdb_lock_expired(memdb_t *mdb, const char *path, const uint8_t csum[MEMDB_CSUM_LEN]);
size_t memdb_lock_count(memdb_t *mdb);
