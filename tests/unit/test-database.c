/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-database.c: config.db compatibility and validation (core.md §3).
 *
 * Databases are built with the sqlite3 command-line tool from the
 * original's schema (tests/unit/schema.sql), never with our own code, so
 * that these tests check the file format and not our reading of it.
 * Damaged databases must be refused with a message naming the bad row and
 * must be left byte for byte unchanged.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define DDL_TEXT                                                                                   \
	"CREATE TABLE tree (  inode INTEGER PRIMARY KEY NOT NULL,  parent INTEGER NOT NULL "       \
	"CHECK(typeof(parent)=='integer'),  version INTEGER NOT NULL "                             \
	"CHECK(typeof(version)=='integer'),  writer INTEGER NOT NULL "                             \
	"CHECK(typeof(writer)=='integer'),  mtime INTEGER NOT NULL "                               \
	"CHECK(typeof(mtime)=='integer'),  type INTEGER NOT NULL "                                 \
	"CHECK(typeof(type)=='integer'),  name TEXT NOT NULL,  data BLOB)"

/* Run the sqlite3 CLI on @db with @sql; returns its stdout (g_free). */
static char *cli(const char *db, const char *sql)
{
	g_autofree char *dir = g_path_get_dirname(db);
	g_autofree char *sqlfile = g_build_filename(dir, "input.sql", NULL);
	g_assert_true(g_file_set_contents(sqlfile, sql, -1, NULL));
	g_autofree char *readcmd = g_strdup_printf(".read %s", sqlfile);
	const char *argv[] = {SQLITE3_CLI, "-batch", db, readcmd, NULL};
	char *out = NULL, *errout = NULL;
	int status;
	GError *err = NULL;
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
				   &errout, &status, &err));
	g_assert_no_error(err);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("sqlite3 failed on '%s': %s", sql, errout);
	g_free(errout);
	g_unlink(sqlfile);
	return out;
}

static char *schema_sql(void)
{
	char *s = NULL;
	g_assert_true(g_file_get_contents(SCHEMA_SQL, &s, NULL, NULL));
	return s;
}

/* A database built by the sqlite3 tool: schema + @rows (SQL inserts). */
static char *make_db(const char *dir, const char *rows)
{
	char *db = g_build_filename(dir, "config.db", NULL);
	g_autofree char *schema = schema_sql();
	g_autofree char *sql = g_strconcat(schema, rows, NULL);
	g_free(cli(db, sql));
	return db;
}

static char *file_sha(const char *path)
{
	char *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	char *s = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
	g_free(data);
	return s;
}

static void test_original_db_opens(void)
{
	char *dir = tu_dir_new();
	/* a WAL database as the original leaves it, rows in an order with
	 * children before their parents */
	g_autofree char *db = make_db(
		dir,
		"PRAGMA journal_mode=WAL;\n"
		"INSERT INTO tree VALUES (5, 4, 5, 3, 1700000003, 8, 'qemu-server.conf', "
		"X'6F6E650A');\n"
		"INSERT INTO tree VALUES (0, 0, 9, 3, 1700000009, 8, '__version__', NULL);\n"
		"INSERT INTO tree VALUES (4, 2, 4, 3, 1700000002, 4, 'sub', NULL);\n"
		"INSERT INTO tree VALUES (2, 0, 2, 1, 1700000001, 4, 'nodes', NULL);\n"
		"INSERT INTO tree VALUES (6, 0, 8, 2, 1700000008, 8, 'empty.cfg', NULL);\n"
		"INSERT INTO tree VALUES (7, 0, 7, 2, 1700000007, 4, 'renamed-dir', X'');\n"
		"INSERT INTO tree VALUES (3, 0, 3, 1, 1700000003, 8, 'text.cfg', 'as text');\n");
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(memdb_open(db, NULL, &m, &err), ==, 0);
	g_assert_cmpuint(memdb_version(m), ==, 9);
	g_assert_cmpuint(memdb_root(m)->writer, ==, 3);
	g_assert_cmpuint(memdb_root(m)->mtime, ==, 1700000009);
	g_assert_cmpuint(memdb_count(m), ==, 7);
	g_autofree char *s = tu_read(m, "nodes/sub/qemu-server.conf");
	g_assert_cmpstr(s, ==, "one\n");
	g_autofree char *t = tu_read(m, "text.cfg");
	g_assert_cmpstr(t, ==, "as text");
	const memdb_entry_t *e = memdb_lookup(m, "empty.cfg");
	g_assert_cmpuint(e->size, ==, 0);
	g_assert_cmpuint(e->version, ==, 8);
	g_assert_cmpuint(e->writer, ==, 2);
	g_assert_cmpuint(memdb_lookup(m, "renamed-dir")->type, ==, MEMDB_TYPE_DIR);
	/* the next change continues the numbering */
	g_assert_cmpint(memdb_create(m, "new", 0, 1), ==, 0);
	g_assert_cmpuint(memdb_lookup(m, "new")->inode, ==, 10);
	memdb_close(m);
	tu_dir_free(dir);
}

/* a database we write has the original's schema text and row semantics */
static void test_written_db_is_original_format(void)
{
	char *dir = tu_dir_new();
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(memdb_open(db, NULL, &m, &err), ==, 0);
	g_assert_cmpint(memdb_mkdir(m, "nodes", 0, 100), ==, 0);
	g_assert_cmpint(memdb_create(m, "nodes/empty", 0, 101), ==, 0);
	g_assert_cmpint(memdb_create(m, "f", 0, 102), ==, 0);
	g_assert_cmpint(memdb_write(m, "f", 0, 103, "abc", 3, 0, false), ==, 3);
	memdb_close(m);

	struct stat st;
	g_assert_cmpint(stat(db, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, 0600);

	g_autofree char *schema = cli(db, ".schema\n");
	g_assert_cmpstr(g_strstrip(schema), ==, DDL_TEXT ";");
	g_autofree char *mode = cli(db, "PRAGMA journal_mode;\n");
	g_assert_cmpstr(g_strstrip(mode), ==, "wal");
	g_autofree char *rows = cli(db, "SELECT inode, parent, version, writer, mtime, type, name, "
					"typeof(data), hex(data) FROM tree ORDER BY inode;\n");
	g_assert_cmpstr(rows, ==,
			"0|0|5|0|103|8|__version__|null|\n"
			"2|0|2|0|100|4|nodes|null|\n"
			"3|2|3|0|101|8|empty|null|\n"
			"4|0|5|0|103|8|f|blob|616263\n");
	g_autofree char *ic = cli(db, "PRAGMA integrity_check;\n");
	g_assert_cmpstr(g_strstrip(ic), ==, "ok");
	tu_dir_free(dir);
}

/* a zero-length file is a new database */
static void test_empty_file(void)
{
	char *dir = tu_dir_new();
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	g_assert_true(g_file_set_contents(db, "", 0, NULL));
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(memdb_open(db, NULL, &m, &err), ==, 0);
	g_assert_cmpuint(memdb_version(m), ==, 1);
	memdb_close(m);
	g_autofree char *rows =
		cli(db, "SELECT inode, parent, version, writer, type, name FROM tree;\n");
	g_assert_cmpstr(rows, ==, "0|0|1|0|8|__version__\n");
	tu_dir_free(dir);
}

typedef struct {
	const char *name;
	const char *rows;   /* SQL after the schema (or a whole file if no_schema) */
	const char *expect; /* substring of the error */
	bool no_schema;
} damage_t;

static const damage_t damages[] = {
	{"missing-parent",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (3,7,3,0,1,8,'orphan',NULL);",
	 "missing directory inode (inode = 0000000000000007, parent of inode 0000000000000003 "
	 "'orphan')",
	 false},
	{"duplicate-name",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'same',NULL);"
	 "INSERT INTO tree VALUES (3,0,3,0,1,8,'same',NULL);",
	 "found entry with duplicate name 'same'", false},
	{"unknown-type",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,6,'odd',NULL);",
	 "inode has unknown type (inode = 0000000000000002, type = 6)", false},
	{"directory-with-data",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,4,'dir',X'00');",
	 "directory inode contains data (inode = 0000000000000002", false},
	{"parent-is-file",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'file',NULL);"
	 "INSERT INTO tree VALUES (3,2,3,0,1,8,'child',NULL);",
	 "parent is not a directory (inode = 0000000000000003, parent = 0000000000000002, name = "
	 "'child')",
	 false},
	{"no-name",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'',NULL);",
	 "inode has no name (inode = 0000000000000002)", false},
	{"slash-in-name",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'a/b',NULL);",
	 "invalid name 'a/b'", false},
	{"root-name", "INSERT INTO tree VALUES (0,0,9,0,1,8,'root',NULL);",
	 "root inode has unexpected name 'root'", false},
	{"missing-version-row", "INSERT INTO tree VALUES (2,0,2,0,1,8,'f',NULL);",
	 "'__version__' row (inode 0) is missing", false},
	{"version-lower-than-inode",
	 "INSERT INTO tree VALUES (0,0,3,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (5,0,2,0,1,8,'f',NULL);",
	 "global version 3 is lower than the inode or version of a row (inode = 0000000000000005",
	 false},
	{"parent-cycle",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,3,2,0,1,4,'a',NULL);"
	 "INSERT INTO tree VALUES (3,2,3,0,1,4,'b',NULL);",
	 "not reachable from the root", false},
	{"own-parent",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,2,2,0,1,4,'a',NULL);",
	 "inode is its own parent (inode = 0000000000000002", false},
	{"duplicate-vmid",
	 "INSERT INTO tree VALUES (0,0,20,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,4,'nodes',NULL);"
	 "INSERT INTO tree VALUES (3,2,3,0,1,4,'a',NULL);"
	 "INSERT INTO tree VALUES (4,3,4,0,1,4,'qemu-server',NULL);"
	 "INSERT INTO tree VALUES (5,4,5,0,1,8,'100.conf',NULL);"
	 "INSERT INTO tree VALUES (6,3,6,0,1,4,'lxc',NULL);"
	 "INSERT INTO tree VALUES (7,6,7,0,1,8,'100.conf',NULL);",
	 "detected duplicate VMID 100: 'nodes/a/qemu-server/100.conf' and 'nodes/a/lxc/100.conf'",
	 false},
	{"data-too-large",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'big',zeroblob(1048577));",
	 "row inode 2 ('big'): content of 1048577 bytes exceeds the 1048576-byte file limit",
	 false},
	{"writer-out-of-range",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,4294967296,1,8,'f',NULL);",
	 "row inode 2: column 'writer' = 4294967296 is out of range", false},
	{"negative-version",
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,-2,0,1,8,'f',NULL);",
	 "row inode 2: column 'version' = -2 is out of range", false},
	/* without the CHECK constraints a hand-made table can hold anything */
	{"garbage-data-type",
	 "CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, version "
	 "INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL, type INTEGER NOT "
	 "NULL, "
	 "name TEXT NOT NULL, data BLOB);"
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,1,8,'f',3.25);",
	 "row inode 2 ('f'): column 'data' is real, not a blob", true},
	{"garbage-mtime-type",
	 "CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, version "
	 "INTEGER NOT NULL, writer INTEGER NOT NULL, mtime, type INTEGER NOT NULL, "
	 "name TEXT NOT NULL, data BLOB);"
	 "INSERT INTO tree VALUES (0,0,9,0,1,8,'__version__',NULL);"
	 "INSERT INTO tree VALUES (2,0,2,0,X'0102',8,'f',NULL);",
	 "row inode 2: column 'mtime' is blob, not an integer", true},
	{"wrong-layout",
	 "CREATE TABLE tree (inode INTEGER PRIMARY KEY, name TEXT);"
	 "INSERT INTO tree VALUES (0,'__version__');",
	 "table 'tree' has an unexpected layout", true},
};

static void test_damaged(gconstpointer data)
{
	const damage_t *d = data;
	char *dir = tu_dir_new();
	g_autofree char *db = NULL;
	if (d->no_schema) {
		db = g_build_filename(dir, "config.db", NULL);
		g_free(cli(db, d->rows));
	} else {
		db = make_db(dir, d->rows);
	}
	g_autofree char *before = file_sha(db);
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	int r = memdb_open(db, NULL, &m, &err);
	g_assert_cmpint(r, <, 0);
	g_assert_null(m);
	g_assert_nonnull(err);
	g_test_message("%s: %s", d->name, err);
	if (!strstr(err, d->expect))
		g_error("error '%s' does not contain '%s'", err, d->expect);
	g_assert_nonnull(strstr(err, db)); /* names the file */
	g_autofree char *after = file_sha(db);
	g_assert_cmpstr(before, ==, after);
	g_autofree char *wal = g_strconcat(db, "-wal", NULL);
	g_assert_false(g_file_test(wal, G_FILE_TEST_EXISTS));
	tu_dir_free(dir);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	g_assert_true(g_file_set_contents(path, p, (gssize)n, NULL));
}

static void test_not_a_database(void)
{
	char *dir = tu_dir_new();
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 3);
	write_bytes(db, junk, sizeof(junk));
	g_autofree char *before = file_sha(db);
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(memdb_open(db, NULL, &m, &err), <, 0);
	g_test_message("%s", err);
	g_assert_nonnull(strstr(err, "not a database"));
	g_autofree char *after = file_sha(db);
	g_assert_cmpstr(before, ==, after);
	tu_dir_free(dir);
}

static void test_truncated(void)
{
	char *dir = tu_dir_new();
	/* enough rows for many pages, then cut the file in half */
	GString *rows = g_string_new("INSERT INTO tree VALUES (0,0,500,0,1,8,'__version__',NULL);");
	for (int i = 2; i < 400; i++)
		g_string_append_printf(
			rows, "INSERT INTO tree VALUES (%d,0,%d,0,1,8,'f%d',zeroblob(3000));", i, i,
			i);
	g_autofree char *db = make_db(dir, rows->str);
	g_string_free(rows, TRUE);
	char *data;
	gsize len;
	g_assert_true(g_file_get_contents(db, &data, &len, NULL));
	g_assert_cmpuint(len, >, 100000);
	write_bytes(db, data, len / 2);
	g_free(data);
	g_autofree char *before = file_sha(db);
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(memdb_open(db, NULL, &m, &err), <, 0);
	g_test_message("%s", err);
	g_assert_nonnull(strstr(err, db));
	g_autofree char *after = file_sha(db);
	g_assert_cmpstr(before, ==, after);
	tu_dir_free(dir);
}

/* random byte damage anywhere in a valid file: refused or loaded, never a
 * crash (ASan/valgrind runs make this meaningful) */
static void test_random_damage(void)
{
	char *dir = tu_dir_new();
	GString *rows = g_string_new("INSERT INTO tree VALUES (0,0,100,0,1,8,'__version__',NULL);"
				     "INSERT INTO tree VALUES (2,0,2,0,1,4,'d',NULL);");
	for (int i = 3; i < 60; i++)
		g_string_append_printf(
			rows, "INSERT INTO tree VALUES (%d,2,%d,0,1,8,'f%d',randomblob(%d));", i, i,
			i, 50 * i);
	g_autofree char *db = make_db(dir, rows->str);
	g_string_free(rows, TRUE);
	char *orig;
	gsize len;
	g_assert_true(g_file_get_contents(db, &orig, &len, NULL));
	GRand *rnd = g_rand_new_with_seed(7);
	int refused = 0;
	for (int run = 0; run < 60; run++) {
		g_autofree char *copy = g_memdup2(orig, len);
		for (int k = 0; k < 8; k++)
			copy[g_rand_int_range(rnd, 100, (gint32)len)] = (char)g_rand_int(rnd);
		write_bytes(db, copy, len);
		memdb_t *m = NULL;
		g_autofree char *err = NULL;
		if (memdb_open(db, NULL, &m, &err) < 0)
			refused++;
		memdb_close(m);
		g_autofree char *wal = g_strconcat(db, "-wal", NULL);
		g_autofree char *shm = g_strconcat(db, "-shm", NULL);
		g_unlink(wal);
		g_unlink(shm);
	}
	g_test_message("%d of 60 damaged copies refused", refused);
	g_rand_free(rnd);
	g_free(orig);
	tu_dir_free(dir);
}

/* memdb -> database -> memdb: identical index; and the file is readable by
 * the sqlite3 tool with the same content */
static void test_round_trip(void)
{
	char *dir = tu_dir_new();
	memdb_t *m = tu_open(dir);
	g_assert_cmpint(memdb_mkdir(m, "nodes", 1, 10), ==, 0);
	g_assert_cmpint(memdb_mkdir(m, "nodes/n1", 1, 11), ==, 0);
	g_assert_cmpint(memdb_mkdir(m, "nodes/n1/qemu-server", 1, 12), ==, 0);
	for (int i = 0; i < 50; i++) {
		g_autofree char *p = g_strdup_printf("nodes/n1/qemu-server/%d.conf", 100 + i);
		g_autofree char *c = g_strdup_printf("memory: %d\n", 512 * i);
		g_assert_cmpint(memdb_create(m, p, 2, 20 + (uint32_t)i), ==, 0);
		g_assert_cmpint(memdb_write(m, p, 2, 20, c, strlen(c), 0, true), ==,
				(int)strlen(c));
	}
	g_assert_cmpint(memdb_rename(m, "nodes/n1/qemu-server/100.conf", "moved.conf", 3, 99), ==,
			0);
	g_assert_cmpint(memdb_delete(m, "nodes/n1/qemu-server/101.conf", 3, 100), ==, 0);
	size_t l1, l2;
	g_autofree uint8_t *a = memdb_encode_index(m, &l1);
	uint8_t c1[32], c2[32];
	memdb_tree_checksum(m, c1);
	memdb_close(m);
	m = tu_open(dir);
	g_autofree uint8_t *b = memdb_encode_index(m, &l2);
	g_assert_cmpmem(a, l1, b, l2);
	memdb_tree_checksum(m, c2);
	g_assert_cmpmem(c1, 32, c2, 32);
	memdb_close(m);
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	g_autofree char *n = cli(db, "SELECT count(*), sum(length(data)) FROM tree;\n");
	g_assert_cmpstr(n, ==, "53|664\n");
	tu_dir_free(dir);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Changes written back to back must not grow the WAL without bound,
 * whether checkpoints run in the commit (sqlite's way, before the daemon
 * starts the thread) or in the checkpoint thread, which must also see the
 * file as WAL (a connection that has not read it yet checkpoints nothing:
 * the WAL then only grew).  32 MiB go through a WAL that stays far
 * smaller, and all of it is in the file after a reopen. */
static void test_wal_bounded(gconstpointer threaded)
{
	char *dir = tu_dir_new();
	g_autofree char *wal = g_build_filename(dir, "config.db-wal", NULL);
	memdb_t *m = tu_open(dir);
	if (threaded) {
		g_autofree char *err = NULL;
		g_assert_cmpint(memdb_start_checkpointer(m, &err), ==, 0);
		g_assert_null(err);
	}
	enum { FILES = 64, SIZE = 512 * 1024 };
	g_autofree char *data = g_malloc(SIZE);
	off_t most = 0;
	for (int i = 0; i < FILES; i++) {
		g_autofree char *p = g_strdup_printf("f%02d", i);
		memset(data, 'a' + i % 26, SIZE);
		g_assert_cmpint(memdb_create(m, p, 1, 10), ==, 0);
		g_assert_cmpint(memdb_write(m, p, 1, 10, data, SIZE, 0, true), ==, SIZE);
		most = MAX(most, file_size(wal));
	}
	/* inline: 1,000 pages and one change of 128 (4 KiB pages and frame
	 * headers: 4.6 MB); the thread: at most 4,000 before it makes the
	 * writer wait, and what came while it copied (17 MB) */
	g_test_message("largest WAL: %jd bytes", (intmax_t)most);
	g_assert_cmpint(most, >, 0);
	g_assert_cmpint(most, <=, (threaded ? 20 : 6) * 1024 * 1024);
	memdb_close(m);
	g_assert_false(g_file_test(wal, G_FILE_TEST_EXISTS)); /* checkpointed at close */
	m = tu_open(dir);
	for (int i = 0; i < FILES; i++) {
		g_autofree char *p = g_strdup_printf("f%02d", i);
		g_autoptr(GBytes) b = NULL;
		g_assert_cmpint(memdb_read(m, p, &b), ==, SIZE);
		gsize len = 0;
		const char *got = g_bytes_get_data(b, &len);
		g_assert_cmpuint(len, ==, SIZE);
		g_assert_cmpint(got[SIZE - 1], ==, 'a' + i % 26);
	}
	memdb_close(m);
	tu_dir_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/database/original-db-opens", test_original_db_opens);
	g_test_add_func("/database/written-db-is-original-format",
			test_written_db_is_original_format);
	g_test_add_func("/database/empty-file", test_empty_file);
	g_test_add_func("/database/round-trip", test_round_trip);
	g_test_add_data_func("/database/wal-bounded/in-commit", NULL, test_wal_bounded);
	g_test_add_data_func("/database/wal-bounded/checkpoint-thread", "", test_wal_bounded);
	for (size_t i = 0; i < G_N_ELEMENTS(damages); i++) {
		g_autofree char *name = g_strdup_printf("/database/damaged/%s", damages[i].name);
		g_test_add_data_func(name, &damages[i], test_damaged);
	}
	g_test_add_func("/database/damaged/not-a-database", test_not_a_database);
	g_test_add_func("/database/damaged/truncated", test_truncated);
	g_test_add_func("/database/damaged/random-bytes", test_random_damage);
	return g_test_run();
}
