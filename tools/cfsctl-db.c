/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cfsctl-db.c: the database commands of cfsctl: backup, verify, restore.
 *
 * - backup copies config.db with sqlite's online backup API from a
 *   read-only connection: one consistent snapshot, taken while the daemon
 *   runs (the database is in WAL mode, so the daemon's writes go on).  The
 *   copy is checked like a database the daemon opens before it is renamed
 *   into place.
 * - verify takes such a snapshot into a temporary file and checks it:
 *   sqlite's integrity check, then the daemon's own load and validation of
 *   every row, then the tree checksums are printed.  The live file is only
 *   read.
 * - restore needs the daemon stopped (it takes the daemon's instance lock),
 *   checks the backup first, keeps the replaced database next to it as
 *   config.db.before-restore, and renames the new one into place.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cfsctl.h"
#include "memdb.h"

/* @src (read-only) into @dst with the online backup API */
static int snapshot(const char *src, const char *dst, char **err)
{
	sqlite3 *s = NULL, *d = NULL;
	int rc = sqlite3_open_v2(src, &s, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(s, 10000);
		sqlite3_backup *b = sqlite3_backup_init(d, "main", s, "main");
		if (!b) {
			rc = sqlite3_errcode(d);
		} else {
			/* all pages in one step: one read transaction, one
			 * snapshot */
			rc = sqlite3_backup_step(b, -1);
			int fin = sqlite3_backup_finish(b);
			if (rc == SQLITE_DONE)
				rc = fin;
		}
	}
	if (rc != SQLITE_OK) {
		*err = g_strdup_printf("cannot copy '%s': %s", src,
				       d   ? sqlite3_errmsg(d)
				       : s ? sqlite3_errmsg(s)
					   : sqlite3_errstr(rc));
	}
	sqlite3_close(d);
	sqlite3_close(s);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int integrity(const char *path, char **err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check;", -1, &st, NULL);
	int r = 0;
	if (rc != SQLITE_OK) {
		*err = g_strdup_printf("'%s': %s", path, sqlite3_errmsg(db));
		r = -EIO;
	} else if (sqlite3_step(st) != SQLITE_ROW ||
		   strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		*err = g_strdup_printf("'%s': integrity check: %s", path,
				       (const char *)sqlite3_column_text(st, 0));
		r = -EUCLEAN;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

typedef struct db_summary {
	uint64_t version;
	size_t entries;
	uint64_t bytes;
	char checksum[2 * MEMDB_CSUM_LEN + 1];
} db_summary_t;

/* check @path (a file of ours: loading may add the version row) */
static int check(const char *path, db_summary_t *sum, char **err)
{
	int r = integrity(path, err);
	if (r < 0)
		return r;
	memdb_t *m = NULL;
	r = memdb_open(path, NULL, &m, err);
	if (r < 0)
		return r;
	sum->version = memdb_version(m);
	sum->entries = memdb_count(m);
	sum->bytes = memdb_total_size(m);
	uint8_t csum[MEMDB_CSUM_LEN];
	memdb_tree_checksum(m, csum);
	for (size_t i = 0; i < MEMDB_CSUM_LEN; i++)
		g_snprintf(sum->checksum + 2 * i, 3, "%02x", csum[i]);
	memdb_close(m);
	return 0;
}

/* the copy in rollback-journal mode: one file, no WAL beside it */
static int self_contained(const char *path, char **err)
{
	sqlite3 *db = NULL;
	char *e = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode = DELETE;", NULL, NULL, &e);
	if (rc != SQLITE_OK)
		*err = g_strdup_printf("cannot finish '%s': %s", path, e ? e : sqlite3_errstr(rc));
	sqlite3_free(e);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static void print_summary(const char *what, const db_summary_t *s)
{
	if (cfsctl_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "file");
		json_builder_add_string_value(b, what);
		json_builder_set_member_name(b, "version");
		json_builder_add_int_value(b, (gint64)s->version);
		json_builder_set_member_name(b, "entries");
		json_builder_add_int_value(b, (gint64)s->entries);
		json_builder_set_member_name(b, "bytes");
		json_builder_add_int_value(b, (gint64)s->bytes);
		json_builder_set_member_name(b, "checksum");
		json_builder_add_string_value(b, s->checksum);
		json_builder_end_object(b);
		cfsctl_print_builder(b);
	} else {
		printf("%s: ok\nversion:   %" G_GUINT64_FORMAT "\nentries:   %zu\n"
		       "bytes:     %" G_GUINT64_FORMAT "\nchecksum:  %s\n",
		       what, s->version, s->entries, s->bytes, s->checksum);
	}
}

static char *dbpath(void)
{
	return g_build_filename(cfsctl_data_dir, "config.db", NULL);
}

static int bad(const char *msg)
{
	fprintf(stderr, "cfsctl: %s\n", msg);
	return EXIT_DAMAGED;
}

int cfsctl_backup(const char *file)
{
	g_autofree char *src = dbpath();
	g_autofree char *tmp = g_strdup_printf("%s.tmp.%d", file, (int)getpid());
	g_autofree char *err = NULL;
	if (access(src, R_OK) < 0) {
		int e = errno;
		fprintf(stderr, "cfsctl: backup: '%s': %s\n", src, g_strerror(e));
		return e == ENOENT ? EXIT_NOTFOUND : EXIT_PERM;
	}
	(void)unlink(tmp);
	db_summary_t sum;
	int r = snapshot(src, tmp, &err);
	if (r == 0)
		r = check(tmp, &sum, &err);
	if (r == 0)
		r = self_contained(tmp, &err);
	if (r == 0 && rename(tmp, file) < 0) {
		r = -errno;
		err = g_strdup_printf("cannot rename to '%s': %s", file, g_strerror(errno));
	}
	if (r < 0) {
		(void)unlink(tmp);
		fprintf(stderr, "cfsctl: backup: %s\n", err);
		return EXIT_DAEMON;
	}
	print_summary(file, &sum);
	return 0;
}

int cfsctl_verify(const char *file)
{
	g_autofree char *live = dbpath();
	const char *src = file ? file : live;
	g_autofree char *dir = g_dir_make_tmp("cfsctl-verify-XXXXXX", NULL);
	if (!dir)
		return bad("cannot make a temporary directory");
	g_autofree char *tmp = g_build_filename(dir, "config.db", NULL);
	g_autofree char *err = NULL;
	db_summary_t sum;
	int r = access(src, R_OK) < 0 ? -errno : 0;
	if (r < 0)
		err = g_strdup_printf("'%s': %s", src, g_strerror(-r));
	if (r == 0)
		r = snapshot(src, tmp, &err);
	if (r == 0)
		r = check(tmp, &sum, &err);
	(void)unlink(tmp);
	(void)g_rmdir(dir);
	if (r < 0) {
		fprintf(stderr, "cfsctl: verify: %s\n", err);
		return r == -ENOENT ? EXIT_NOTFOUND : r == -EACCES ? EXIT_PERM : EXIT_DAMAGED;
	}
	print_summary(src, &sum);
	return 0;
}

int cfsctl_restore(const char *file)
{
	g_autofree char *dst = dbpath();
	g_autofree char *lockpath = g_build_filename(cfsctl_data_dir, ".pmxcfs.lockfile", NULL);
	int lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0) {
		fprintf(stderr, "cfsctl: restore: '%s': %s\n", lockpath, g_strerror(errno));
		return EXIT_PERM;
	}
	/* the daemon's instance lock: it cannot start while we hold it */
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "cfsctl: restore: pmxcfs is running; stop it first\n");
		close(lfd);
		return EXIT_DAEMON;
	}
	g_autofree char *tmp = g_strdup_printf("%s.restore.%d", dst, (int)getpid());
	g_autofree char *err = NULL;
	db_summary_t sum;
	int rc = 0;
	int r = snapshot(file, tmp, &err);
	if (r == 0)
		r = check(tmp, &sum, &err);
	if (r < 0) {
		fprintf(stderr, "cfsctl: restore: '%s' is not a usable database: %s\n", file, err);
		rc = EXIT_DAMAGED;
		goto out;
	}
	/* the database replaced: its WAL merged (or nothing happens), then
	 * kept beside it */
	if (access(dst, F_OK) == 0) {
		sqlite3 *db = NULL;
		char *e = NULL;
		int rc_open = sqlite3_open_v2(dst, &db, SQLITE_OPEN_READWRITE, NULL);
		int rc_ck = rc_open == SQLITE_OK
				    ? sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL,
						   NULL, &e)
				    : rc_open;
		if (rc_ck != SQLITE_OK)
			fprintf(stderr,
				"cfsctl: restore: cannot merge the write-ahead log of '%s' (%s); "
				"nothing changed\n",
				dst, e ? e : sqlite3_errstr(rc_ck));
		sqlite3_free(e);
		sqlite3_close(db);
		if (rc_ck != SQLITE_OK) {
			rc = EXIT_DAEMON;
			goto out;
		}
		g_autofree char *keep = g_strdup_printf("%s.before-restore", dst);
		if (rename(dst, keep) < 0) {
			fprintf(stderr, "cfsctl: restore: cannot keep '%s': %s\n", dst,
				g_strerror(errno));
			rc = EXIT_DAEMON;
			goto out;
		}
		g_autofree char *wal = g_strdup_printf("%s-wal", dst);
		g_autofree char *shm = g_strdup_printf("%s-shm", dst);
		(void)unlink(wal);
		(void)unlink(shm);
		fprintf(stderr, "cfsctl: the replaced database is kept as '%s'\n", keep);
	}
	if (rename(tmp, dst) < 0) {
		fprintf(stderr, "cfsctl: restore: cannot rename into '%s': %s\n", dst,
			g_strerror(errno));
		rc = EXIT_DAEMON;
		goto out;
	}
	print_summary(dst, &sum);
out:
	(void)unlink(tmp);
	close(lfd);
	return rc;
}
