/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * database.h: config.db, the sqlite file that persists the memdb tree.
 *
 * Schema and row meaning are the original's (core.md §3), so databases are
 * interchangeable.  This module knows rows, not trees: memdb builds and checks
 * the tree from the rows db_load() hands it, and decides what to write.
 * Non-logging: every failure returns a negative errno and leaves a message in
 * db_errmsg() (or *ret_err for open/load).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct db db_t;

/* One row of table `tree`, as handed to a load callback.  Pointers are valid
 * only during the callback. */
typedef struct db_row {
	uint64_t inode;
	uint64_t parent;
	uint64_t version;
	uint32_t writer;
	uint32_t mtime;
	uint8_t type;
	const char *name;
	const void *data; /* NULL when size is 0 */
	size_t size;
} db_row_t;

/* Called for each row during db_load(); a negative return stops the load
 * and is returned by db_load().  The callback may set *ret_err. */
typedef int (*db_row_cb)(const db_row_t *row, void *userdata, char **ret_err);

typedef enum {
	DB_SYNC_NORMAL = 0, /* the original's setting: no fsync per commit */
	DB_SYNC_FULL = 1,   /* fsync the WAL at every commit */
} db_sync_t;

/* Open @path (created if missing) without changing it.  Nothing is written
 * until db_prepare() succeeds, so a database that db_load() rejects is left
 * exactly as it was.  On failure *ret_err gets a message (g_free). */
int db_open(const char *path, db_t **ret, char **ret_err);

/* Read and check every row (types and ranges of the columns), calling @cb
 * for each.  Read-only.  Usable inside a transaction (sees its changes).
 * A damaged file (sqlite: corrupt, not a database) or row is -EUCLEAN; an
 * error that says nothing about the content (I/O, permissions) is another
 * negative errno. */
int db_load(db_t *db, db_row_cb cb, void *userdata, char **ret_err);

/* Make the opened database writable: mode 0600, WAL, synchronous mode, the
 * table if missing, prepared statements.  Call after a successful load. */
int db_prepare(db_t *db, db_sync_t sync, char **ret_err);

/* From now on, checkpoints (the WAL copied back into the file once it
 * holds 1,000 pages, with its fsyncs) run in a thread of their own on a
 * second connection instead of inside the commit that crosses the mark.
 * Call after db_prepare(), once the caller may have threads (the daemon:
 * after its mount guard is forked).  A failed checkpoint is logged there
 * (once, and once when it works again); the WAL keeps every change.  On
 * failure to start, *ret_err says why and checkpoints stay in the commit. */
int db_start_checkpointer(db_t *db, char **ret_err);
/* Closes and frees (the checkpoint thread first); NULL is a no-op.
 * Returns NULL. */
db_t *db_close(db_t *db);

/* Transactions.  A savepoint nests inside a transaction (one per memdb
 * operation in a batch). */
int db_begin(db_t *db);
int db_commit(db_t *db);
int db_rollback(db_t *db);
int db_savepoint(db_t *db);
int db_release(db_t *db);
int db_rollback_to(db_t *db);
bool db_in_transaction(db_t *db);

/* Write one tree row (REPLACE by inode); exactly one row must change. */
int db_put(db_t *db, const db_row_t *row);
/* Delete the row of @inode (no error if absent). */
int db_delete(db_t *db, uint64_t inode);
/* Write the `__version__` row (inode 0) for the root. */
int db_put_version(db_t *db, uint64_t version, uint32_t writer, uint32_t mtime);

/* Message of the last failure of a write call (valid until the next call). */
const char *db_errmsg(db_t *db);

/* Fault injection for tests: the next @skip write calls (db_put, db_delete,
 * db_put_version, db_commit) succeed, the @n after them fail with -EIO as an
 * I/O error would; db_test_fail_after(db, 0, 0) turns it off. */
void db_test_fail_after(db_t *db, int skip, int n);

/* Crash injection for tests: after @skip more write calls succeed, the next
 * one kills the process with SIGKILL in the middle of its transaction. */
void db_test_crash_after(db_t *db, int skip);

/* The sqlite file name of an open database. */
const char *db_path(db_t *db);
