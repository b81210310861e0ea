/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * database.c: the sqlite backend (config.db), compatible with the original.
 *
 * DESIGN
 * - One table `tree` with the original's exact DDL (core.md §3.2); one row
 *   per entry plus the `__version__` row (inode 0) for the root.
 * - Opening never changes the file: db_open() opens it with query_only set,
 *   db_load() reads and checks every row, and only db_prepare() (called once
 *   the tree is known to be good) switches to WAL, sets the mode and creates
 *   the table.  A damaged database is left exactly as it was.
 * - Writes are REPLACE/DELETE statements prepared once.  memdb groups them:
 *   one transaction per logical change (or per batch of changes, with one
 *   savepoint per change inside it), always together with the version row.
 * - sqlite result codes become negative errno in one place (db_errno): a
 *   full disk is -ENOSPC, everything else -EIO, as in the original.
 * - Checkpoints (copying the WAL back into the file, and its fsyncs) are
 *   sqlite's automatic ones, run by the commit that crosses DB_CKPT_PAGES,
 *   until db_start_checkpointer(): from then on a thread of this module
 *   runs them on its own connection, so that no commit waits for one.  That
 *   thread is the one place here that logs: nobody waits for its result.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "constants.h"
#include "database.h"

#define DB_TABLE_DDL                                                                               \
	"CREATE TABLE IF NOT EXISTS tree (  inode INTEGER PRIMARY KEY NOT NULL,  "                 \
	"parent INTEGER NOT NULL CHECK(typeof(parent)=='integer'),  "                              \
	"version INTEGER NOT NULL CHECK(typeof(version)=='integer'),  "                            \
	"writer INTEGER NOT NULL CHECK(typeof(writer)=='integer'),  "                              \
	"mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer'),  "                                \
	"type INTEGER NOT NULL CHECK(typeof(type)=='integer'),  "                                  \
	"name TEXT NOT NULL,  data BLOB);"

enum {
	ST_REPLACE,
	ST_DELETE,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_COUNT,
};

static const char *const statement_sql[ST_COUNT] = {
	/* one string in two lines (the parentheses tell clang so) */
	[ST_REPLACE] =
		("REPLACE INTO tree (inode, parent, version, writer, mtime, type, name, data) "
		 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);"),
	[ST_DELETE] = "DELETE FROM tree WHERE inode = ?1;",
	[ST_BEGIN] = "BEGIN TRANSACTION;",
	[ST_COMMIT] = "COMMIT TRANSACTION;",
	[ST_ROLLBACK] = "ROLLBACK TRANSACTION;",
	[ST_SAVEPOINT] = "SAVEPOINT memdb_op;",
	[ST_RELEASE] = "RELEASE SAVEPOINT memdb_op;",
	[ST_ROLLBACK_TO] = "ROLLBACK TRANSACTION TO SAVEPOINT memdb_op;",
};

/* WAL pages after which a checkpoint starts: sqlite's own default */
#define DB_CKPT_PAGES 1000
/* The WAL starts over only at a commit that finds it wholly copied.  While
 * changes come back to back, the thread's checkpoints, which never wait
 * for the writer, may always be a little behind, and the WAL would only
 * grow: a commit that leaves this many pages in it waits (at most
 * DB_CKPT_WAIT_MS) while the thread copies everything, so that the next
 * commit starts the WAL over. */
#define DB_CKPT_FORCE_PAGES (4 * DB_CKPT_PAGES)
#define DB_CKPT_WAIT_MS     10000
/* how long that checkpoint waits for other processes' readers */
#define DB_CKPT_BUSY_MS 1000

typedef struct ckpt {
	GThread *thread;
	sqlite3 *conn; /* the thread's own connection */
	GMutex lock;
	GCond cond;               /* wakes the thread */
	GCond done;               /* a round ended */
	int want;                 /* pages a commit saw in the WAL, if DB_CKPT_PAGES or more */
	uint64_t asked, answered; /* rounds asked for, and the last one ended */
	int next;                 /* WAL pages at which to ask for the next round (the hook's) */
	bool stop;
	int failing; /* the last checkpoint's sqlite error, 0 if it worked */
} ckpt_t;

struct db {
	sqlite3 *conn;
	ckpt_t *ckpt; /* NULL: checkpoints run in the committing thread */
	char *path;
	sqlite3_stmt *st[ST_COUNT];
	char *errmsg;
	int fail_skip; /* test fault injection, see db_test_fail_after() */
	int fail_count;
	bool crash; /* fault injection ends the process instead */
};

static int db_wal_hook(void *arg, sqlite3 *conn, const char *name, int pages);

static int db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* On the load path: a file sqlite finds damaged is -EUCLEAN, as a row that
 * fails our checks; the daemon tells damage from other errors by it. */
static int db_load_errno(int rc)
{
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
		return -EUCLEAN;
	return db_errno(rc) ? db_errno(rc) : -EIO;
}

static void db_set_error(db_t *db, const char *what, int rc)
{
	g_free(db->errmsg);
	db->errmsg = g_strdup_printf("%s: %s (sqlite code %d)", what, sqlite3_errmsg(db->conn), rc);
}

static int db_exec(db_t *db, const char *sql, char **ret_err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->conn, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		if (ret_err)
			*ret_err = g_strdup_printf("'%s': %s failed: %s", db->path, sql,
						   msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return db_errno(rc) ? db_errno(rc) : -EIO;
	}
	return 0;
}

int db_open(const char *path, db_t **ret, char **ret_err)
{
	db_t *db = g_new0(db_t, 1);
	db->path = g_strdup(path);

	int rc = sqlite3_open_v2(path, &db->conn,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		*ret_err =
			g_strdup_printf("unable to open database '%s': %s", path,
					db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
		db_close(db);
		return db_errno(rc) ? db_errno(rc) : -EIO;
	}
	sqlite3_extended_result_codes(db->conn, 1);
	sqlite3_busy_timeout(db->conn, DB_BUSY_TIMEOUT_MS);
	/* Closing the last connection would checkpoint the WAL into the file
	 * and delete it: a database that fails to load must keep both as they
	 * are (db_prepare turns this back on). */
	sqlite3_db_config(db->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);

	/* Until db_prepare(), nothing may be written. */
	int r = db_exec(db, "PRAGMA query_only = 1;", ret_err);
	if (r < 0) {
		db_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

/* The table exists?  1 yes, 0 no, <0 error (e.g. not a database). */
static int db_has_table(db_t *db, char **ret_err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		db->conn,
		"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tree';", -1,
		&st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		*ret_err = g_strdup_printf("'%s' cannot be read: %s", db->path,
					   sqlite3_errmsg(db->conn));
		sqlite3_finalize(st);
		return db_load_errno(rc);
	}
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n > 0;
}

static const char *column_type_name(int t)
{
	switch (t) {
	case SQLITE_INTEGER:
		return "integer";
	case SQLITE_FLOAT:
		return "real";
	case SQLITE_TEXT:
		return "text";
	case SQLITE_BLOB:
		return "blob";
	default:
		return "null";
	}
}

/* Check one integer column.  Returns 0 or sets *ret_err. */
static int row_int(sqlite3_stmt *st, int col, const char *colname, int64_t max, uint64_t inode,
		   uint64_t *ret, char **ret_err)
{
	int t = sqlite3_column_type(st, col);
	if (t != SQLITE_INTEGER) {
		*ret_err =
			g_strdup_printf("row inode %" PRIu64 ": column '%s' is %s, not an integer",
					inode, colname, column_type_name(t));
		return -EUCLEAN;
	}
	int64_t v = sqlite3_column_int64(st, col);
	if (v < 0 || v > max) {
		*ret_err = g_strdup_printf("row inode %" PRIu64 ": column '%s' = %" PRId64
					   " is out of range (0..%" PRId64 ")",
					   inode, colname, v, max);
		return -EUCLEAN;
	}
	*ret = (uint64_t)v;
	return 0;
}

int db_load(db_t *db, db_row_cb cb, void *userdata, char **ret_err)
{
	int has = db_has_table(db, ret_err);
	if (has <= 0)
		return has;

	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		db->conn,
		"SELECT inode, parent, version, writer, mtime, type, name, data FROM tree;", -1,
		&st, NULL);
	if (rc != SQLITE_OK) {
		*ret_err = g_strdup_printf("'%s': table 'tree' has an unexpected layout: %s",
					   db->path, sqlite3_errmsg(db->conn));
		return -EUCLEAN;
	}

	int r = 0;
	char *err = NULL;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_row_t row = {0};
		uint64_t v;
		if (sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
		    sqlite3_column_int64(st, 0) < 0) {
			err = g_strdup_printf("row with rowid %" PRId64 ": negative inode",
					      (int64_t)sqlite3_column_int64(st, 0));
			r = -EUCLEAN;
			break;
		}
		row.inode = (uint64_t)sqlite3_column_int64(st, 0);
		if ((r = row_int(st, 1, "parent", INT64_MAX, row.inode, &row.parent, &err)) < 0 ||
		    (r = row_int(st, 2, "version", INT64_MAX, row.inode, &row.version, &err)) < 0)
			break;
		if ((r = row_int(st, 3, "writer", UINT32_MAX, row.inode, &v, &err)) < 0)
			break;
		row.writer = (uint32_t)v;
		if ((r = row_int(st, 4, "mtime", UINT32_MAX, row.inode, &v, &err)) < 0)
			break;
		row.mtime = (uint32_t)v;
		if ((r = row_int(st, 5, "type", UINT8_MAX, row.inode, &v, &err)) < 0)
			break;
		row.type = (uint8_t)v;

		int nt = sqlite3_column_type(st, 6);
		if (nt != SQLITE_TEXT) {
			err = g_strdup_printf("row inode %" PRIu64
					      ": column 'name' is %s, not text",
					      row.inode, column_type_name(nt));
			r = -EUCLEAN;
			break;
		}
		row.name = (const char *)sqlite3_column_text(st, 6);
		if ((size_t)sqlite3_column_bytes(st, 6) != strlen(row.name)) {
			err = g_strdup_printf("row inode %" PRIu64 ": name contains a NUL byte",
					      row.inode);
			r = -EUCLEAN;
			break;
		}

		int dt = sqlite3_column_type(st, 7);
		if (dt == SQLITE_BLOB || dt == SQLITE_TEXT) {
			/* text is accepted as bytes, as the original reads any value
			 * through sqlite3_column_blob (a row edited by hand) */
			row.data = sqlite3_column_blob(st, 7);
			row.size = (size_t)sqlite3_column_bytes(st, 7);
			if (row.size == 0)
				row.data = NULL;
		} else if (dt != SQLITE_NULL) {
			err = g_strdup_printf("row inode %" PRIu64
					      " ('%s'): column 'data' is %s, not a blob",
					      row.inode, row.name, column_type_name(dt));
			r = -EUCLEAN;
			break;
		}
		if (row.size > MEMDB_MAX_FILE_SIZE) {
			err = g_strdup_printf("row inode %" PRIu64
					      " ('%s'): content of %zu bytes exceeds "
					      "the %u-byte file limit",
					      row.inode, row.name, row.size, MEMDB_MAX_FILE_SIZE);
			r = -EUCLEAN;
			break;
		}

		r = cb(&row, userdata, &err);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		err = g_strdup_printf("reading table 'tree' failed: %s", sqlite3_errmsg(db->conn));
		r = db_load_errno(rc);
	}
	sqlite3_finalize(st);
	if (r < 0) {
		*ret_err = g_strdup_printf("'%s': %s", db->path, err ? err : "load failed");
		g_free(err);
	}
	return r;
}

int db_prepare(db_t *db, db_sync_t sync, char **ret_err)
{
	int r;
	if (chmod(db->path, DB_FILE_MODE) < 0) {
		*ret_err = g_strdup_printf("chmod '%s' failed: %s", db->path, g_strerror(errno));
		return -errno;
	}
	if ((r = db_exec(db, "PRAGMA query_only = 0;", ret_err)) < 0)
		return r;
	sqlite3_db_config(db->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);

	/* journal_mode answers with a row: check that it says "wal" */
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->conn, "PRAGMA journal_mode = WAL;", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW ||
	    g_ascii_strcasecmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		*ret_err = g_strdup_printf("unable to set WAL mode on '%s': %s", db->path,
					   sqlite3_errmsg(db->conn));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);

	if ((r = db_exec(db,
			 sync == DB_SYNC_FULL ? "PRAGMA synchronous = FULL;"
					      : "PRAGMA synchronous = NORMAL;",
			 ret_err)) < 0)
		return r;
	if ((r = db_exec(db, DB_TABLE_DDL, ret_err)) < 0)
		return r;
	/* replaces sqlite's automatic checkpoint, which is a WAL hook too */
	sqlite3_wal_hook(db->conn, db_wal_hook, db);

	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(db->conn, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&db->st[i], NULL);
		if (rc != SQLITE_OK) {
			*ret_err = g_strdup_printf("unable to prepare '%s': %s", statement_sql[i],
						   sqlite3_errmsg(db->conn));
			return -EIO;
		}
	}
	return 0;
}

/* --- checkpoints ---------------------------------------------------------- */

/* sqlite's WAL hook, called after every commit with the WAL's size */
static int db_wal_hook(void *arg, sqlite3 *conn, const char *name, int pages)
{
	db_t *db = arg;
	ckpt_t *c = db->ckpt;
	if (pages < DB_CKPT_PAGES) {
		if (c)
			c->next = DB_CKPT_PAGES; /* the WAL started over */
		return SQLITE_OK;
	}
	if (!c) {
		/* as sqlite's automatic checkpoint would (it ignores failures
		 * too: the WAL keeps everything, the next commit tries again) */
		(void)sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	/* a round per DB_CKPT_PAGES / 2 of changes: asking at every commit
	 * would keep the thread checkpointing (and syncing) without pause,
	 * and rounds twice as often as sqlite's leave less for the commit
	 * that waits at DB_CKPT_FORCE_PAGES (measured: the longest stall of
	 * 6,000 creates 9.6-10.4 ms instead of 13.8-14.2 ms at every 1,000
	 * pages, 9.1 ms with sqlite's own checkpoints, which stall a commit
	 * every 1,000 pages: 24-25 commits over 2 ms instead of 7-11) */
	if (pages < c->next && pages < DB_CKPT_FORCE_PAGES)
		return SQLITE_OK;
	c->next = pages + DB_CKPT_PAGES / 2;
	g_mutex_lock(&c->lock);
	c->want = pages;
	uint64_t mine = ++c->asked;
	g_cond_signal(&c->cond);
	if (pages >= DB_CKPT_FORCE_PAGES) {
		gint64 until = g_get_monotonic_time() + DB_CKPT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
		while (c->answered < mine && !c->stop)
			if (!g_cond_wait_until(&c->done, &c->lock, until))
				break;
	}
	g_mutex_unlock(&c->lock);
	return SQLITE_OK;
}

static gpointer ckpt_main(gpointer arg)
{
	db_t *db = arg;
	ckpt_t *c = db->ckpt;
	g_mutex_lock(&c->lock);
	for (;;) {
		while (c->want == 0 && !c->stop)
			g_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		int pages = c->want;
		uint64_t round = c->asked;
		c->want = 0;
		g_mutex_unlock(&c->lock);
		/* PASSIVE never waits for the daemon's connection, which goes on
		 * committing meanwhile; RESTART, while the committer waits for
		 * it, copies everything and waits for readers of the WAL */
		int mode = pages >= DB_CKPT_FORCE_PAGES ? SQLITE_CHECKPOINT_RESTART
							: SQLITE_CHECKPOINT_PASSIVE;
		int rc = sqlite3_wal_checkpoint_v2(c->conn, "main", mode, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != c->failing)
			g_warning("checkpoint of '%s' failed: %s; its WAL keeps every change and "
				  "grows until a checkpoint works",
				  db->path, sqlite3_errmsg(c->conn));
		else if (rc == SQLITE_OK && c->failing)
			g_message("checkpoint of '%s' works again", db->path);
		if (rc != SQLITE_BUSY)
			c->failing = rc;
		g_mutex_lock(&c->lock);
		c->answered = round;
		g_cond_broadcast(&c->done);
	}
	g_mutex_unlock(&c->lock);
	return NULL;
}

/* Frees what db_start_checkpointer() made, the thread ended or never run. */
static void ckpt_free(ckpt_t *c)
{
	sqlite3_close(c->conn);
	g_mutex_clear(&c->lock);
	g_cond_clear(&c->cond);
	g_cond_clear(&c->done);
	g_free(c);
}

int db_start_checkpointer(db_t *db, char **ret_err)
{
	g_return_val_if_fail(db->st[0] != NULL, -EINVAL); /* db_prepare() was called */
	if (db->ckpt)
		return 0;
	ckpt_t *c = g_new0(ckpt_t, 1);
	g_mutex_init(&c->lock);
	g_cond_init(&c->cond);
	g_cond_init(&c->done);
	c->next = DB_CKPT_PAGES;
	int rc = sqlite3_open_v2(db->path, &c->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	sqlite3_stmt *st = NULL;
	if (rc == SQLITE_OK) {
		/* the daemon's connection is the last to close and checkpoints
		 * then */
		sqlite3_db_config(c->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		sqlite3_busy_timeout(c->conn, DB_CKPT_BUSY_MS);
		/* a connection learns that the file is in WAL mode when it first
		 * reads it; until then a checkpoint on it does nothing */
		rc = sqlite3_prepare_v2(c->conn, "PRAGMA journal_mode;", -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
	}
	bool wal = rc == SQLITE_ROW &&
		   g_ascii_strcasecmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		*ret_err = g_strdup_printf("cannot open '%s' a second time for checkpoints: %s",
					   db->path,
					   rc == SQLITE_ROW ? "it is not in WAL mode there"
					   : c->conn        ? sqlite3_errmsg(c->conn)
							    : sqlite3_errstr(rc));
		ckpt_free(c);
		return -EIO;
	}
	db->ckpt = c;
	g_autoptr(GError) err = NULL;
	c->thread = g_thread_try_new("checkpoint", ckpt_main, db, &err);
	if (!c->thread) {
		*ret_err = g_strdup_printf("cannot start the checkpoint thread: %s", err->message);
		db->ckpt = NULL;
		ckpt_free(c);
		return -EAGAIN;
	}
	return 0;
}

/* End the thread (after the checkpoint it may be running) and close its
 * connection; checkpoints run in the committing thread again. */
static void ckpt_stop(db_t *db)
{
	ckpt_t *c = db->ckpt;
	if (!c)
		return;
	g_mutex_lock(&c->lock);
	c->stop = true;
	g_cond_signal(&c->cond);
	g_mutex_unlock(&c->lock);
	g_thread_join(c->thread);
	db->ckpt = NULL;
	ckpt_free(c);
}

db_t *db_close(db_t *db)
{
	if (!db)
		return NULL;
	ckpt_stop(db);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	if (db->conn)
		sqlite3_close(db->conn);
	g_free(db->errmsg);
	g_free(db->path);
	g_free(db);
	return NULL;
}

/* fault injection: true if this write call must fail */
static bool db_fault(db_t *db, const char *what)
{
	if (db->fail_count <= 0)
		return false;
	if (db->fail_skip > 0) {
		db->fail_skip--;
		return false;
	}
	db->fail_count--;
	if (db->crash)
		kill(getpid(), SIGKILL); /* as kill -9 would, mid-transaction */
	g_free(db->errmsg);
	db->errmsg = g_strdup_printf("%s: injected I/O error", what);
	return true;
}

/* step a prepared statement to completion and reset it */
static int db_step(db_t *db, int idx, const char *what)
{
	sqlite3_stmt *st = db->st[idx];
	g_assert(st); /* db_prepare() was called */
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc != SQLITE_DONE) {
		db_set_error(db, what, rc);
		r = db_errno(rc) ? db_errno(rc) : -EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int db_begin(db_t *db)
{
	return db_step(db, ST_BEGIN, "begin");
}

int db_commit(db_t *db)
{
	if (db_fault(db, "commit"))
		return -EIO;
	return db_step(db, ST_COMMIT, "commit");
}

int db_rollback(db_t *db)
{
	if (sqlite3_get_autocommit(db->conn))
		return 0; /* sqlite already rolled back (e.g. after SQLITE_FULL) */
	return db_step(db, ST_ROLLBACK, "rollback");
}

int db_savepoint(db_t *db)
{
	return db_step(db, ST_SAVEPOINT, "savepoint");
}

int db_release(db_t *db)
{
	return db_step(db, ST_RELEASE, "release savepoint");
}

int db_rollback_to(db_t *db)
{
	int r = db_step(db, ST_ROLLBACK_TO, "rollback to savepoint");
	if (r == 0)
		r = db_release(db);
	return r;
}

bool db_in_transaction(db_t *db)
{
	return !sqlite3_get_autocommit(db->conn);
}

static int db_replace(db_t *db, uint64_t inode, uint64_t parent, uint64_t version, uint32_t writer,
		      uint32_t mtime, uint8_t type, const char *name, const void *data, size_t size)
{
	sqlite3_stmt *st = db->st[ST_REPLACE];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)inode);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)parent);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)version);
	sqlite3_bind_int64(st, 4, writer);
	sqlite3_bind_int64(st, 5, mtime);
	sqlite3_bind_int64(st, 6, type);
	sqlite3_bind_text(st, 7, name, -1, SQLITE_STATIC);
	if (data && size > 0)
		sqlite3_bind_blob64(st, 8, data, size, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	int r = db_step(db, ST_REPLACE, "replace");
	if (r == 0 && sqlite3_changes(db->conn) != 1) {
		g_free(db->errmsg);
		db->errmsg = g_strdup_printf("replace of inode %" PRIu64 " changed %d rows", inode,
					     sqlite3_changes(db->conn));
		r = -EIO;
	}
	return r;
}

int db_put(db_t *db, const db_row_t *row)
{
	if (db_fault(db, "replace"))
		return -EIO;
	return db_replace(db, row->inode, row->parent, row->version, row->writer, row->mtime,
			  row->type, row->name, row->data, row->size);
}

int db_delete(db_t *db, uint64_t inode)
{
	if (db_fault(db, "delete"))
		return -EIO;
	sqlite3_bind_int64(db->st[ST_DELETE], 1, (sqlite3_int64)inode);
	return db_step(db, ST_DELETE, "delete");
}

int db_put_version(db_t *db, uint64_t version, uint32_t writer, uint32_t mtime)
{
	if (db_fault(db, "replace version"))
		return -EIO;
	return db_replace(db, 0, 0, version, writer, mtime, MEMDB_TYPE_REG, MEMDB_VERSION_ROW_NAME,
			  NULL, 0);
}

const char *db_errmsg(db_t *db)
{
	return db->errmsg ? db->errmsg : "no error";
}

void db_test_fail_after(db_t *db, int skip, int n)
{
	db->fail_skip = skip;
	db->fail_count = n;
	db->crash = false;
}

void db_test_crash_after(db_t *db, int skip)
{
	db->fail_skip = skip;
	db->fail_count = 1;
	db->crash = true;
}

const char *db_path(db_t *db)
{
	return db->path;
}
