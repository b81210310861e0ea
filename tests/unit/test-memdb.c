/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-memdb.c: every memdb operation with its errno and check order
 * (core.md §2.6), the numbering rules (§2.3), limits (§2.4), VM list
 * (§2.7), change counters (§2.8), locks (§2.9), statfs (§2.11), batches,
 * fault injection and the full-tree replace (§3.7).  The original's own
 * unit tests (dirtest1, filetest1, loaddb1, loaddb2) are reproduced.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "testutil.h"

typedef struct {
	char *dir;
	memdb_t *m;
} fx_t;

static void fx_setup(fx_t *f, gconstpointer data)
{
	f->dir = tu_dir_new();
	f->m = tu_open(f->dir);
	tu_now = 1000;
}

static void fx_teardown(fx_t *f, gconstpointer data)
{
	memdb_close(f->m);
	tu_dir_free(f->dir);
}

static void fx_reopen(fx_t *f)
{
	memdb_close(f->m);
	f->m = tu_open(f->dir);
}

/* index of the tree in memory equals the index after a reload from disk */
static void assert_disk_equals_memory(fx_t *f)
{
	size_t l1, l2;
	g_autofree uint8_t *a = memdb_encode_index(f->m, &l1);
	fx_reopen(f);
	g_autofree uint8_t *b = memdb_encode_index(f->m, &l2);
	g_assert_cmpmem(a, l1, b, l2);
}

#define AOK(expr)     g_assert_cmpint((expr), ==, 0)
#define AERR(expr, e) g_assert_cmpint((expr), ==, -(e))

static void test_fresh(fx_t *f, gconstpointer d)
{
	g_assert_cmpuint(memdb_version(f->m), ==, 1);
	g_assert_cmpuint(memdb_count(f->m), ==, 1);
	const memdb_entry_t *root = memdb_root(f->m);
	g_assert_cmpuint(root->inode, ==, 0);
	g_assert_cmpuint(root->type, ==, MEMDB_TYPE_DIR);
	/* the mtime of the version row it wrote (the original keeps 0 in
	 * memory until the first change, so its index differs after a
	 * restart; ours is the same before and after) */
	g_assert_cmpuint(root->mtime, >, 0);
	g_assert_cmpuint(root->mtime, <=, (guint64)time(NULL));
	struct statvfs st;
	memdb_statfs(f->m, &st);
	g_assert_cmpuint(st.f_bsize, ==, 4096);
	g_assert_cmpuint(st.f_blocks, ==, 32768);
	g_assert_cmpuint(st.f_bfree, ==, 32768);
	g_assert_cmpuint(st.f_files, ==, 262144);
	g_assert_cmpuint(st.f_ffree, ==, 262143);
	g_assert_cmpuint(st.f_namemax, ==, 256);
	/* counters read 1 after a load */
	g_assert_cmpuint(memdb_path_counter_count(), ==, 43);
	g_assert_cmpstr(memdb_path_counter_name(0), ==, "corosync.conf");
	g_assert_cmpstr(memdb_path_counter_name(42), ==, "mapping/usb.cfg");
	for (size_t i = 0; i < 43; i++)
		g_assert_cmpuint(memdb_path_counter(f->m, i), ==, 1);
	/* the version row exists on disk: version survives a reopen */
	fx_reopen(f);
	g_assert_cmpuint(memdb_version(f->m), ==, 1);
}

/* the original's dirtest1 */
static void test_dirtest1(fx_t *f, gconstpointer d)
{
	AERR(memdb_mkdir(f->m, "/dir1/sdir1", 0, 1), ENOENT);
	AERR(memdb_delete(f->m, "/dir1/sdir1", 0, 1), ENOENT);
	AOK(memdb_mkdir(f->m, "/dir1", 0, 1));
	AERR(memdb_mkdir(f->m, "/dir1", 0, 1), EEXIST);
	AOK(memdb_mkdir(f->m, "/dir1/sdir1", 0, 1));
	AERR(memdb_mkdir(f->m, "/dir1/sdir1", 0, 1), EEXIST);
	AERR(memdb_delete(f->m, "/dir1", 0, 1), ENOTEMPTY);
	AOK(memdb_delete(f->m, "/dir1/sdir1", 0, 1));
	AOK(memdb_delete(f->m, "/dir1", 0, 1));
	g_assert_cmpuint(memdb_count(f->m), ==, 1);
}

/* the original's filetest1 */
static void test_filetest1(fx_t *f, gconstpointer d)
{
	GBytes *b = NULL;
	AERR(memdb_read(f->m, "/file1", &b), ENOENT);
	char buf[1024];
	memset(buf, 'x', sizeof(buf));
	AERR(memdb_write(f->m, "/file1", 0, 1, buf, sizeof(buf), 0, false), ENOENT);
	AOK(memdb_create(f->m, "/file1", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "/file1", 0, 1, buf, sizeof(buf), 0, false), ==, 1024);
	g_assert_cmpint(memdb_read(f->m, "/file1", &b), ==, 1024);
	g_assert_cmpmem(g_bytes_get_data(b, NULL), 1024, buf, 1024);
	g_bytes_unref(b);
	g_assert_cmpint(memdb_write(f->m, "/file1", 0, 1, "0123456789", 10, 0, true), ==, 10);
	g_assert_cmpint(memdb_write(f->m, "/file1", 0, 1, "X", 1, 3, false), ==, 1);
	g_assert_cmpint(memdb_write(f->m, "/file1", 0, 1, "X", 1, 6, false), ==, 1);
	g_autofree char *s = tu_read(f->m, "/file1");
	g_assert_cmpstr(s, ==, "012X45X789");
	AOK(memdb_delete(f->m, "/file1", 0, 1));
	AERR(memdb_delete(f->m, "/file1", 0, 1), ENOENT);
	AOK(memdb_mkdir(f->m, "/dir1", 0, 1));
	AOK(memdb_delete(f->m, "/dir1", 0, 1));
}

/* core.md §2.3 example: 100 x (create, write 32 KiB) */
static void test_numbering(fx_t *f, gconstpointer d)
{
	static uint8_t data[32768];
	for (int i = 0; i < 100; i++) {
		g_autofree char *n = g_strdup_printf("testfile%d", i);
		AOK(memdb_create(f->m, n, 0, 1234));
		g_assert_cmpint(memdb_write(f->m, n, 0, 1234, data, sizeof(data), 0, false), ==,
				32768);
		const memdb_entry_t *e = memdb_lookup(f->m, n);
		g_assert_cmpuint(e->inode, ==, 2 + 2 * (uint64_t)i);
		g_assert_cmpuint(e->version, ==, 3 + 2 * (uint64_t)i);
	}
	g_assert_cmpuint(memdb_version(f->m), ==, 201);

	/* every kind of change moves the version by exactly one */
	AOK(memdb_mkdir(f->m, "d", 7, 2000));
	g_assert_cmpuint(memdb_version(f->m), ==, 202);
	const memdb_entry_t *dir = memdb_lookup(f->m, "d");
	g_assert_cmpuint(dir->inode, ==, 202);
	g_assert_cmpuint(memdb_root(f->m)->writer, ==, 7);
	g_assert_cmpuint(memdb_root(f->m)->mtime, ==, 2000);
	AOK(memdb_rename(f->m, "testfile0", "d/t0", 8, 2001));
	g_assert_cmpuint(memdb_version(f->m), ==, 203);
	const memdb_entry_t *e = memdb_lookup(f->m, "d/t0");
	g_assert_cmpuint(e->inode, ==, 2); /* keeps its inode */
	g_assert_cmpuint(e->version, ==, 203);
	g_assert_cmpuint(e->writer, ==, 8);
	g_assert_cmpuint(e->parent, ==, 202);
	/* the parent directory is not touched by changes of its children */
	dir = memdb_lookup(f->m, "d");
	g_assert_cmpuint(dir->version, ==, 202);
	g_assert_cmpuint(dir->mtime, ==, 2000);
	AOK(memdb_mtime(f->m, "d/t0", 8, 5));
	g_assert_cmpuint(memdb_version(f->m), ==, 204);
	AOK(memdb_truncate(f->m, "d/t0", 8, 6, 10));
	g_assert_cmpuint(memdb_version(f->m), ==, 205);
	AOK(memdb_delete(f->m, "d/t0", 8, 7));
	g_assert_cmpuint(memdb_version(f->m), ==, 206);
	/* failures change nothing */
	AERR(memdb_delete(f->m, "d/t0", 8, 7), ENOENT);
	AERR(memdb_mkdir(f->m, "d", 8, 7), EEXIST);
	g_assert_cmpuint(memdb_version(f->m), ==, 206);
	/* inodes are never reused */
	AOK(memdb_create(f->m, "d/t0", 0, 1));
	g_assert_cmpuint(memdb_lookup(f->m, "d/t0")->inode, ==, 207);
	assert_disk_equals_memory(f);
}

static void test_create_errors(fx_t *f, gconstpointer d)
{
	AOK(memdb_create(f->m, "file", 0, 1));
	AOK(memdb_mkdir(f->m, "dir", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/a", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/a/qemu-server", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/b", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/b/qemu-server", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/qemu-server/100.conf", 0, 1));
	uint64_t v = memdb_version(f->m);

	AERR(memdb_create(f->m, "missing/x", 0, 1), ENOENT);
	AERR(memdb_create(f->m, "file/x", 0, 1), ENOTDIR);
	AERR(memdb_create(f->m, "dir/..", 0, 1), EACCES);
	AERR(memdb_create(f->m, "dir/.", 0, 1), EACCES);
	AERR(memdb_create(f->m, "", 0, 1), EACCES);
	AERR(memdb_create(f->m, "nodes/b/qemu-server/100.conf", 0, 1), EEXIST);
	AERR(memdb_create(f->m, "dir", 0, 1), ENOTDIR);
	AERR(memdb_create(f->m, "file", 0, 1), EEXIST);
	/* write: EFBIG before anything else, then the same order, then ENOENT */
	AERR(memdb_write(f->m, "missing/x", 0, 1, "a", 1, MEMDB_MAX_FILE_SIZE, false), EFBIG);
	AERR(memdb_write(f->m, "missing/x", 0, 1, "a", 1, 0, false), ENOENT);
	AERR(memdb_write(f->m, "file/x", 0, 1, "a", 1, 0, false), ENOTDIR);
	AERR(memdb_write(f->m, "..", 0, 1, "a", 1, 0, false), EACCES);
	AERR(memdb_write(f->m, "nodes/b/qemu-server/100.conf", 0, 1, "a", 1, 0, false), EEXIST);
	AERR(memdb_write(f->m, "dir", 0, 1, "a", 1, 0, false), ENOTDIR);
	AERR(memdb_write(f->m, "dir/nofile", 0, 1, "a", 1, 0, false), ENOENT);
	/* mkdir */
	AERR(memdb_mkdir(f->m, "missing/x", 0, 1), ENOENT);
	AERR(memdb_mkdir(f->m, "file/x", 0, 1), ENOTDIR);
	AERR(memdb_mkdir(f->m, "dir/..", 0, 1), EACCES);
	AERR(memdb_mkdir(f->m, "file", 0, 1), EEXIST);
	/* odd inputs */
	AERR(memdb_write(f->m, "file", 0, 1, NULL, 1, 0, false), EINVAL);
	g_autofree char *longp = g_strnfill(MEMDB_MAX_PATH + 10, 'a');
	AERR(memdb_create(f->m, longp, 0, 1), ENAMETOOLONG);
	g_assert_cmpuint(memdb_version(f->m), ==, v);
}

static void test_write_semantics(fx_t *f, gconstpointer d)
{
	AOK(memdb_create(f->m, "f", 0, 1));
	/* empty file, write at an offset: gap is zero-filled */
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "ab", 2, 3, false), ==, 2);
	GBytes *b = NULL;
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 5);
	g_assert_cmpmem(g_bytes_get_data(b, NULL), 5, "\0\0\0ab", 5);
	g_bytes_unref(b);
	/* growing keeps old bytes and zero-fills the gap */
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "Z", 1, 7, false), ==, 1);
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 8);
	g_assert_cmpmem(g_bytes_get_data(b, NULL), 8, "\0\0\0ab\0\0Z", 8);
	g_bytes_unref(b);
	/* a write inside without truncate keeps the size; with truncate shrinks */
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "Q", 1, 0, false), ==, 1);
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 8);
	g_bytes_unref(b);
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "Q", 1, 1, true), ==, 1);
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 2);
	g_assert_cmpmem(g_bytes_get_data(b, NULL), 2, "QQ", 2);
	g_bytes_unref(b);
	/* truncate shrinks and extends with zeros */
	AOK(memdb_truncate(f->m, "f", 0, 1, 1));
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 1);
	g_bytes_unref(b);
	AOK(memdb_truncate(f->m, "f", 0, 1, 4));
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 4);
	g_assert_cmpmem(g_bytes_get_data(b, NULL), 4, "Q\0\0\0", 4);
	g_bytes_unref(b);
	AOK(memdb_truncate(f->m, "f", 0, 1, 0));
	g_assert_cmpint(memdb_read(f->m, "f", &b), ==, 0);
	g_assert_null(b);
	/* the original's crash: truncate of an empty file to N, then read */
	AOK(memdb_create(f->m, "g", 0, 1));
	AOK(memdb_truncate(f->m, "g", 0, 1, 100));
	g_assert_cmpint(memdb_read(f->m, "g", &b), ==, 100);
	const uint8_t *p = g_bytes_get_data(b, NULL);
	for (int i = 0; i < 100; i++)
		g_assert_cmpuint(p[i], ==, 0);
	g_bytes_unref(b);
	/* a reference taken before a change keeps the old content */
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "old", 3, 0, true), ==, 3);
	GBytes *old = NULL;
	memdb_read(f->m, "f", &old);
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, "new", 3, 0, true), ==, 3);
	g_assert_cmpmem(g_bytes_get_data(old, NULL), 3, "old", 3);
	g_bytes_unref(old);
	/* reading a directory is ENOENT */
	AOK(memdb_mkdir(f->m, "d", 0, 1));
	AERR(memdb_read(f->m, "d", &b), ENOENT);
	assert_disk_equals_memory(f);
}

static void test_limits(fx_t *f, gconstpointer d)
{
	const size_t max = MEMDB_MAX_FILE_SIZE;
	g_autofree uint8_t *big = g_malloc0(max + 1);
	AOK(memdb_create(f->m, "f", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "f", 0, 1, big, max, 0, false), ==, (int)max);
	AERR(memdb_write(f->m, "f", 0, 1, big, max + 1, 0, false), EFBIG);
	AERR(memdb_write(f->m, "f", 0, 1, big, 1, max, false), EFBIG);
	AERR(memdb_truncate(f->m, "f", 0, 1, max + 1), EFBIG);
	AOK(memdb_truncate(f->m, "f", 0, 1, max));
	AERR(memdb_write(f->m, "f", 0, 1, big, 1, UINT64_MAX, false), EFBIG);
	/* checked before existence */
	AERR(memdb_write(f->m, "nofile", 0, 1, big, max + 1, 0, false), EFBIG);
	struct statvfs st;
	memdb_statfs(f->m, &st);
	g_assert_cmpuint(st.f_bfree, ==, 32768 - 256);
	g_assert_cmpuint(st.f_ffree, ==, 262144 - 2);
	/* total-size and entry limits for local changes */
	AOK(memdb_check_space(f->m, 1000, 1));
	AERR(memdb_check_space(f->m, (int64_t)MEMDB_MAX_FSSIZE, 0), ENOSPC);
	AERR(memdb_check_space(f->m, 0, MEMDB_MAX_INODES), ENOSPC);
	AOK(memdb_check_space(f->m, 0, MEMDB_MAX_INODES - 2));
	AOK(memdb_check_space(f->m, -5, -5));
}

static void test_delete(fx_t *f, gconstpointer d)
{
	AERR(memdb_delete(f->m, "x", 0, 1), ENOENT);
	AERR(memdb_delete(f->m, "", 0, 1), EACCES);
	AERR(memdb_delete(f->m, "/", 0, 1), EACCES);
	AOK(memdb_mkdir(f->m, "d", 0, 1));
	AOK(memdb_create(f->m, "d/f", 0, 1));
	AERR(memdb_delete(f->m, "d", 0, 1), ENOTEMPTY);
	g_assert_cmpint(memdb_write(f->m, "d/f", 0, 1, "abc", 3, 0, false), ==, 3);
	g_assert_cmpuint(memdb_total_size(f->m), ==, 3);
	AOK(memdb_delete(f->m, "d/f", 0, 1));
	g_assert_cmpuint(memdb_total_size(f->m), ==, 0);
	AOK(memdb_delete(f->m, "d", 0, 1));
	assert_disk_equals_memory(f);
}

static void test_rename(fx_t *f, gconstpointer d)
{
	AOK(memdb_mkdir(f->m, "a", 0, 1));
	AOK(memdb_mkdir(f->m, "b", 0, 1));
	AOK(memdb_create(f->m, "a/f", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "a/f", 0, 1, "data", 4, 0, false), ==, 4);
	AOK(memdb_create(f->m, "b/g", 0, 1));
	AOK(memdb_create(f->m, "a/keep", 0, 1));
	uint64_t v = memdb_version(f->m);

	AERR(memdb_rename(f->m, "a/nope", "b/x", 0, 1), ENOENT);
	AERR(memdb_rename(f->m, "", "b/x", 0, 1), EACCES);
	AERR(memdb_rename(f->m, "a/f", "nope/x", 0, 1), ENOENT);
	AERR(memdb_rename(f->m, "a/f", "b/g/x", 0, 1), ENOTDIR);
	AERR(memdb_rename(f->m, "a/f", "", 0, 1), EACCES);
	AERR(memdb_rename(f->m, "a/f", "b/..", 0, 1), EACCES);
	/* only empty directories move; the target is untouched (original bug) */
	AOK(memdb_mkdir(f->m, "empty", 0, 1));
	v = memdb_version(f->m);
	AERR(memdb_rename(f->m, "a", "empty", 0, 1), ENOTEMPTY);
	g_assert_nonnull(memdb_lookup(f->m, "empty"));
	AERR(memdb_rename(f->m, "empty", "a", 0, 1), ENOTEMPTY);
	/* a directory below itself */
	AERR(memdb_rename(f->m, "empty", "empty/sub", 0, 1), EINVAL);
	g_assert_cmpuint(memdb_version(f->m), ==, v);

	/* replace an existing file: the target's inode goes, the source's stays */
	uint64_t ino = memdb_lookup(f->m, "a/f")->inode;
	uint64_t gino = memdb_lookup(f->m, "b/g")->inode;
	AOK(memdb_rename(f->m, "a/f", "b/g", 3, 77));
	g_assert_null(memdb_lookup(f->m, "a/f"));
	const memdb_entry_t *e = memdb_lookup(f->m, "b/g");
	g_assert_cmpuint(e->inode, ==, ino);
	g_assert_null(memdb_get(f->m, gino));
	g_assert_cmpuint(e->version, ==, v + 1);
	g_assert_cmpuint(e->mtime, ==, 77);
	g_autofree char *s = tu_read(f->m, "b/g");
	g_assert_cmpstr(s, ==, "data");
	g_assert_cmpuint(memdb_version(f->m), ==, v + 1);
	/* an empty directory moves */
	AOK(memdb_rename(f->m, "empty", "b/empty2", 0, 1));
	g_assert_nonnull(memdb_lookup(f->m, "b/empty2"));
	/* onto itself: one version, entry unchanged otherwise */
	v = memdb_version(f->m);
	AOK(memdb_rename(f->m, "b/g", "b/g", 0, 1));
	g_assert_cmpuint(memdb_version(f->m), ==, v + 1);
	g_assert_cmpuint(memdb_lookup(f->m, "b/g")->inode, ==, ino);
	/* lock directories cannot be renamed */
	AOK(memdb_mkdir(f->m, "priv", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock/l1", 0, 1));
	AERR(memdb_rename(f->m, "priv/lock/l1", "priv/lock/l2", 0, 1), EACCES);
	/* paths are found in memdb_entry_path */
	g_autofree char *p = memdb_entry_path(memdb_lookup(f->m, "b/empty2"));
	g_assert_cmpstr(p, ==, "b/empty2");
	assert_disk_equals_memory(f);
	/* the rows survive a reload with out-of-order parents (loaddb1) */
	AERR(memdb_create(f->m, "b/g", 0, 1), EEXIST);
}

/* the original's loaddb1 / loaddb2: entries moved into newer directories */
static void test_loaddb(fx_t *f, gconstpointer d)
{
	AOK(memdb_create(f->m, "f1", 0, 1));
	AOK(memdb_create(f->m, "f2", 0, 1));
	AOK(memdb_mkdir(f->m, "dir", 0, 1));
	AOK(memdb_rename(f->m, "f1", "dir/f1", 0, 1));
	AOK(memdb_rename(f->m, "f2", "dir/f2", 0, 1));
	AOK(memdb_mkdir(f->m, "newer", 0, 1));
	AOK(memdb_mkdir(f->m, "moved", 0, 1));
	AOK(memdb_mkdir(f->m, "newer2", 0, 1));
	AOK(memdb_rename(f->m, "moved", "newer2/moved", 0, 1));
	fx_reopen(f);
	AERR(memdb_create(f->m, "dir/f1", 0, 1), EEXIST);
	AERR(memdb_create(f->m, "dir/f2", 0, 1), EEXIST);
	AERR(memdb_mkdir(f->m, "newer2/moved", 0, 1), EEXIST);
}

static void test_mtime(fx_t *f, gconstpointer d)
{
	AOK(memdb_create(f->m, "f", 0, 1));
	AOK(memdb_mtime(f->m, "f", 0, 1000));
	g_assert_cmpuint(memdb_lookup(f->m, "f")->mtime, ==, 1000);
	AOK(memdb_mtime(f->m, "f", 5, 3)); /* older and another writer: fine */
	g_assert_cmpuint(memdb_lookup(f->m, "f")->mtime, ==, 3);
	g_assert_cmpuint(memdb_lookup(f->m, "f")->writer, ==, 5);
	AERR(memdb_mtime(f->m, "nope", 0, 1), ENOENT);
	AERR(memdb_mtime(f->m, "nope/x", 0, 1), ENOENT);
	AERR(memdb_mtime(f->m, "f/x", 0, 1), ENOTDIR);
	AERR(memdb_mtime(f->m, "", 0, 1), EACCES);
	/* locks: newer mtime from the same writer only */
	AOK(memdb_mkdir(f->m, "priv", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock/l", 1, 500));
	AERR(memdb_mtime(f->m, "priv/lock/l", 1, 499), EACCES);
	AERR(memdb_mtime(f->m, "priv/lock/l", 0, 0), EACCES);
	AERR(memdb_mtime(f->m, "priv/lock/l", 2, 600), EACCES);
	AOK(memdb_mtime(f->m, "priv/lock/l", 1, 500));
	AOK(memdb_mtime(f->m, "priv/lock/l", 1, 600));
	/* a regular file in priv/lock is no lock */
	AOK(memdb_create(f->m, "priv/lock/file", 1, 500));
	AOK(memdb_mtime(f->m, "priv/lock/file", 2, 0));
	/* nor is a deeper directory */
	AOK(memdb_mkdir(f->m, "priv/lock/l/sub", 1, 500));
	AOK(memdb_mtime(f->m, "priv/lock/l/sub", 2, 0));
	assert_disk_equals_memory(f);
}

static void test_vmlist(fx_t *f, gconstpointer d)
{
	AOK(memdb_mkdir(f->m, "nodes", 0, 1));
	const char *dirs[] = {"nodes/a",        "nodes/a/qemu-server",       "nodes/a/lxc",
			      "nodes/b",        "nodes/b/qemu-server",       "nodes/b/lxc",
			      "nodes/bad_name", "nodes/bad_name/qemu-server"};
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
		AOK(memdb_mkdir(f->m, dirs[i], 0, 1));
	g_assert_cmpuint(memdb_vmlist_version(f->m), ==, 0);
	AOK(memdb_create(f->m, "nodes/a/qemu-server/100.conf", 0, 1));
	uint32_t lv = memdb_vmlist_version(f->m);
	g_assert_cmpuint(lv, ==, 1);
	const memdb_vm_t *vm = memdb_vm_get(f->m, 100);
	g_assert_nonnull(vm);
	g_assert_cmpstr(vm->node, ==, "a");
	g_assert_cmpint(vm->type, ==, VMTYPE_QEMU);
	uint32_t vv = vm->version;
	/* every write re-registers */
	g_assert_cmpint(memdb_write(f->m, "nodes/a/qemu-server/100.conf", 0, 1, "x", 1, 0, false),
			==, 1);
	g_assert_cmpuint(memdb_vmlist_version(f->m), ==, lv + 1);
	g_assert_cmpuint(memdb_vm_get(f->m, 100)->version, >, vv);
	/* another node or type: EEXIST */
	AERR(memdb_create(f->m, "nodes/b/qemu-server/100.conf", 0, 1), EEXIST);
	AERR(memdb_create(f->m, "nodes/a/lxc/100.conf", 0, 1), EEXIST);
	/* invalid node names are no VM configs */
	AOK(memdb_create(f->m, "nodes/bad_name/qemu-server/100.conf", 0, 1));
	/* migrate by rename; the old owner no longer blocks */
	AOK(memdb_rename(f->m, "nodes/a/qemu-server/100.conf", "nodes/b/qemu-server/100.conf", 0,
			 1));
	g_assert_cmpstr(memdb_vm_get(f->m, 100)->node, ==, "b");
	AERR(memdb_create(f->m, "nodes/a/qemu-server/100.conf", 0, 1), EEXIST);
	/* renaming another file onto a taken VMID */
	AOK(memdb_create(f->m, "nodes/a/qemu-server/101.conf", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/tmp", 0, 1));
	AERR(memdb_rename(f->m, "nodes/a/tmp", "nodes/a/lxc/101.conf", 0, 1), EEXIST);
	AERR(memdb_rename(f->m, "nodes/a/qemu-server/101.conf", "nodes/a/lxc/100.conf", 0, 1),
	     EEXIST);
	AOK(memdb_rename(f->m, "nodes/a/tmp", "nodes/a/qemu-server/101.conf", 0, 1));
	g_assert_cmpuint(memdb_vm_get(f->m, 101)->type, ==, VMTYPE_QEMU);
	/* delete frees the VMID */
	AOK(memdb_delete(f->m, "nodes/b/qemu-server/100.conf", 0, 1));
	g_assert_null(memdb_vm_get(f->m, 100));
	AOK(memdb_create(f->m, "nodes/a/lxc/100.conf", 0, 1));
	g_autoptr(GPtrArray) l = memdb_vm_list(f->m);
	g_assert_cmpuint(l->len, ==, 2);
	g_assert_cmpuint(((memdb_vm_t *)l->pdata[0])->vmid, ==, 100);
	g_assert_cmpuint(((memdb_vm_t *)l->pdata[1])->vmid, ==, 101);
	/* the list is rebuilt on load */
	fx_reopen(f);
	g_assert_cmpuint(memdb_vm_get(f->m, 100)->type, ==, VMTYPE_LXC);
	g_assert_cmpstr(memdb_vm_get(f->m, 101)->node, ==, "a");
	g_assert_cmpuint(memdb_vmlist_version(f->m), ==, 1);
}

/* memdb_vm_list() hands out the same array until the list changes, and
 * every change of a guest config changes the list (the guest property
 * cache relies on it); other changes leave it alone */
static void test_vmlist_array(fx_t *f, gconstpointer d)
{
	AOK(memdb_mkdir(f->m, "nodes", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/a", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes/a/qemu-server", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/qemu-server/100.conf", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/qemu-server/101.conf", 0, 1));
	GPtrArray *l = memdb_vm_list(f->m);
	g_assert_cmpuint(memdb_vm_count(f->m), ==, 2);
#define SAME()                                                                                     \
	do {                                                                                       \
		GPtrArray *n = memdb_vm_list(f->m);                                                \
		g_assert_true(n == l);                                                             \
		g_ptr_array_unref(n);                                                              \
	} while (0)
#define NEW()                                                                                      \
	do {                                                                                       \
		GPtrArray *n = memdb_vm_list(f->m);                                                \
		g_assert_true(n != l);                                                             \
		g_ptr_array_unref(l);                                                              \
		l = n;                                                                             \
	} while (0)
	SAME();
	AOK(memdb_create(f->m, "other.cfg", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "other.cfg", 0, 2, "x", 1, 0, true), ==, 1);
	AOK(memdb_mtime(f->m, "nodes/a/qemu-server/100.conf", 0, 5));
	SAME();
	g_assert_cmpint(memdb_write(f->m, "nodes/a/qemu-server/100.conf", 0, 2, "x", 1, 0, true),
			==, 1);
	NEW();
	AOK(memdb_truncate(f->m, "nodes/a/qemu-server/100.conf", 0, 3, 0));
	NEW();
	AOK(memdb_rename(f->m, "nodes/a/qemu-server/100.conf", "nodes/a/qemu-server/102.conf", 0,
			 4));
	NEW();
	AOK(memdb_delete(f->m, "nodes/a/qemu-server/101.conf", 0, 4));
	NEW();
	g_assert_cmpuint(memdb_vm_count(f->m), ==, 1);
	fx_reopen(f);
	NEW();
	g_ptr_array_unref(l);
#undef SAME
#undef NEW
}

static void test_counters(fx_t *f, gconstpointer d)
{
	size_t storage = 2, user = 3, datacenter = 12;
	g_assert_cmpstr(memdb_path_counter_name(storage), ==, "storage.cfg");
	g_assert_cmpstr(memdb_path_counter_name(datacenter), ==, "datacenter.cfg");
	AOK(memdb_create(f->m, "storage.cfg", 0, 1));
	g_assert_cmpuint(memdb_path_counter(f->m, storage), ==, 2);
	g_assert_cmpint(memdb_write(f->m, "/storage.cfg", 0, 1, "x", 1, 0, false), ==, 1);
	g_assert_cmpuint(memdb_path_counter(f->m, storage), ==, 3);
	AOK(memdb_mtime(f->m, "storage.cfg", 0, 5));
	g_assert_cmpuint(memdb_path_counter(f->m, storage), ==, 4);
	AOK(memdb_rename(f->m, "storage.cfg", "user.cfg", 0, 1));
	g_assert_cmpuint(memdb_path_counter(f->m, storage), ==, 5);
	g_assert_cmpuint(memdb_path_counter(f->m, user), ==, 2);
	AOK(memdb_delete(f->m, "user.cfg", 0, 1));
	g_assert_cmpuint(memdb_path_counter(f->m, user), ==, 3);
	AOK(memdb_mkdir(f->m, "datacenter.cfg", 0, 1)); /* mkdir never counts */
	g_assert_cmpuint(memdb_path_counter(f->m, datacenter), ==, 1);
	AERR(memdb_delete(f->m, "user.cfg", 0, 1), ENOENT); /* failures never count */
	g_assert_cmpuint(memdb_path_counter(f->m, user), ==, 3);
	g_assert_cmpuint(memdb_path_counter(f->m, 999), ==, 0);
	g_assert_null(memdb_path_counter_name(999));
}

static void lock_csum(fx_t *f, const char *path, uint8_t c[MEMDB_CSUM_LEN])
{
	memdb_record_checksum(memdb_lookup(f->m, path), c);
}

static void test_locks(fx_t *f, gconstpointer d)
{
	uint8_t c[MEMDB_CSUM_LEN];
	AOK(memdb_mkdir(f->m, "priv", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock", 0, 1));
	g_assert_cmpuint(memdb_lock_count(f->m), ==, 0);
	AOK(memdb_mkdir(f->m, "priv/lock/l", 1, 500));
	g_assert_cmpuint(memdb_lock_count(f->m), ==, 1);
	lock_csum(f, "priv/lock/l", c);
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/l", c));
	tu_now += 120;
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/l", c));
	tu_now += 1;
	g_assert_true(memdb_lock_expired(f->m, "priv/lock/l", c));
	/* a refresh restarts the timer */
	AOK(memdb_mtime(f->m, "priv/lock/l", 1, 501));
	lock_csum(f, "priv/lock/l", c);
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/l", c));
	tu_now += 121;
	g_assert_true(memdb_lock_expired(f->m, "priv/lock/l", c));
	/* a checksum that differs from the table restarts the timer */
	uint8_t other[MEMDB_CSUM_LEN] = {1};
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/l", other));
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/l", c));
	tu_now += 121;
	g_assert_true(memdb_lock_expired(f->m, "priv/lock/l", c));
	/* unknown lock: starts now */
	g_assert_false(memdb_lock_expired(f->m, "priv/lock/unknown", c));
	/* delete removes it from the table */
	AOK(memdb_delete(f->m, "priv/lock/l", 1, 1));
	g_assert_cmpuint(memdb_lock_count(f->m), ==, 1); /* "unknown" remains */
	/* deeper directories are not locks */
	AOK(memdb_mkdir(f->m, "priv/lock/m", 1, 500));
	AOK(memdb_mkdir(f->m, "priv/lock/m/sub", 1, 500));
	g_assert_cmpuint(memdb_lock_count(f->m), ==, 2);
	/* a load rebuilds the table from the directories */
	fx_reopen(f);
	g_assert_cmpuint(memdb_lock_count(f->m), ==, 1);
}

/* the original restarts every lock timer when the tree is reloaded; we keep
 * the age of a lock whose record did not change */
static void test_lock_age_survives_replace(fx_t *f, gconstpointer d)
{
	uint8_t c[MEMDB_CSUM_LEN];
	AOK(memdb_mkdir(f->m, "priv", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock", 0, 1));
	AOK(memdb_mkdir(f->m, "priv/lock/l", 1, 500));
	lock_csum(f, "priv/lock/l", c);
	tu_now += 100;
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(f->m, &len);
	g_autofree char *err = NULL;
	AOK(memdb_replace_tree(f->m, idx, len, NULL, 0, &err));
	tu_now += 21;
	g_assert_true(memdb_lock_expired(f->m, "priv/lock/l", c));
}

static void test_statfs(fx_t *f, gconstpointer d)
{
	AOK(memdb_create(f->m, "a", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "a", 0, 1, "x", 1, 4096, false), ==, 1);
	AOK(memdb_create(f->m, "b", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "b", 0, 1, "x", 1, 0, false), ==, 1);
	struct statvfs st;
	memdb_statfs(f->m, &st);
	/* 4098 bytes in all: two blocks */
	g_assert_cmpuint(st.f_bfree, ==, 32768 - 2);
	g_assert_cmpuint(st.f_ffree, ==, 262144 - 3);
}

typedef struct {
	GString *log;
} evlog_t;

static void ev_cb(const memdb_event_t *ev, void *userdata)
{
	evlog_t *l = userdata;
	static const char *kinds[] = {"add", "remove", "change", "reload", "reloading"};
	g_string_append_printf(l->log, "%s:%s:%" G_GUINT64_FORMAT ";", kinds[ev->kind], ev->path,
			       ev->inode);
}

static void test_events(fx_t *f, gconstpointer d)
{
	evlog_t l = {g_string_new(NULL)};
	g_assert_cmpint(memdb_add_event_cb(f->m, ev_cb, &l), ==, 0);
	AOK(memdb_mkdir(f->m, "d", 0, 1));    /* inode 2 */
	AOK(memdb_create(f->m, "d/f", 0, 1)); /* inode 3 */
	g_assert_cmpint(memdb_write(f->m, "d/f", 0, 1, "x", 1, 0, false), ==, 1);
	AOK(memdb_create(f->m, "g", 0, 1)); /* inode 5 */
	AOK(memdb_rename(f->m, "d/f", "g", 0, 1));
	AOK(memdb_mtime(f->m, "g", 0, 9));
	AOK(memdb_delete(f->m, "g", 0, 1));
	AERR(memdb_delete(f->m, "g", 0, 1), ENOENT);
	g_assert_cmpstr(l.log->str, ==,
			"add:d:2;add:d/f:3;change:d/f:3;add:g:5;remove:g:5;remove:d/f:3;add:g:3;"
			"change:g:3;change:g:3;remove:g:3;");
	memdb_remove_event_cb(f->m, ev_cb, &l);
	g_string_free(l.log, TRUE);
}

/* 100,000 names in one directory: lookups by name and one listing */
static void test_big_directory(fx_t *f, gconstpointer d)
{
	const int n = 100000;
	AOK(memdb_mkdir(f->m, "big", 0, 1));
	AOK(memdb_batch_begin(f->m));
	for (int i = 0; i < n; i++) {
		char name[32];
		g_snprintf(name, sizeof(name), "big/f%06d", i);
		AOK(memdb_create(f->m, name, 0, 1));
	}
	AOK(memdb_batch_commit(f->m));
	GPtrArray *a = NULL;
	gint64 t0 = g_get_monotonic_time();
	AOK(memdb_readdir(f->m, "big", &a));
	gint64 t1 = g_get_monotonic_time();
	g_assert_cmpuint(a->len, ==, (guint)n);
	g_ptr_array_unref(a);
	g_test_message("listing %d entries took %" G_GINT64_FORMAT " us", n, t1 - t0);
	g_assert_nonnull(memdb_lookup(f->m, "big/f099999"));
	AERR(memdb_readdir(f->m, "big/f000001", &a), ENOTDIR);
	AERR(memdb_readdir(f->m, "nope", &a), ENOENT);
	fx_reopen(f);
	g_assert_cmpuint(memdb_count(f->m), ==, (size_t)n + 2);
}

static void test_batch(fx_t *f, gconstpointer d)
{
	tu_allow_warnings();
	AOK(memdb_batch_begin(f->m));
	AOK(memdb_create(f->m, "a", 0, 1));
	AOK(memdb_batch_begin(f->m)); /* nests */
	g_assert_cmpint(memdb_write(f->m, "a", 0, 1, "one", 3, 0, false), ==, 3);
	AOK(memdb_batch_commit(f->m));
	/* one change inside the batch fails alone */
	db_test_fail_after(memdb_database(f->m), 0, 1);
	AERR(memdb_create(f->m, "b", 0, 1), EIO);
	g_assert_null(memdb_lookup(f->m, "b"));
	g_assert_true(memdb_db_error(f->m));
	memdb_clear_db_error(f->m);
	AOK(memdb_create(f->m, "c", 0, 1));
	AOK(memdb_batch_commit(f->m));
	assert_disk_equals_memory(f);
	g_assert_nonnull(memdb_lookup(f->m, "a"));
	g_assert_nonnull(memdb_lookup(f->m, "c"));
	g_assert_null(memdb_lookup(f->m, "b"));

	/* a failed commit reloads: memory equals disk again */
	uint64_t v = memdb_version(f->m);
	AOK(memdb_batch_begin(f->m));
	AOK(memdb_create(f->m, "d", 0, 1));
	g_assert_cmpint(memdb_write(f->m, "a", 0, 1, "two", 3, 0, false), ==, 3);
	/* write calls so far in the batch: create (2), write (2); next is commit */
	db_test_fail_after(memdb_database(f->m), 0, 1);
	AERR(memdb_batch_commit(f->m), EIO);
	g_assert_cmpuint(memdb_version(f->m), ==, v);
	g_assert_null(memdb_lookup(f->m, "d"));
	g_autofree char *s = tu_read(f->m, "a");
	g_assert_cmpstr(s, ==, "one");
	AOK(memdb_create(f->m, "e", 0, 1));
	assert_disk_equals_memory(f);
}

/* sqlite-style fault loop: fail the Nth database write of a sequence of
 * changes, for N = 0, 1, 2 ... until no fault fires.  A change hit by the
 * fault must fail with EIO and change nothing (same index); done again it
 * succeeds; and memory must equal disk at the end of every run. */
static int step(memdb_t *m, int r_first, int (*redo)(memdb_t *), const uint8_t *before, size_t blen)
{
	if (r_first >= 0)
		return 0;
	g_assert_cmpint(r_first, ==, -EIO);
	size_t len;
	g_autofree uint8_t *now = memdb_encode_index(m, &len);
	g_assert_cmpmem(now, len, before, blen);
	g_assert_cmpint(redo(m), >=, 0);
	return 1;
}

static int op_mkdir(memdb_t *m)
{
	return memdb_mkdir(m, "d", 0, 1);
}
static int op_create(memdb_t *m)
{
	return memdb_create(m, "d/f", 0, 1);
}
static int op_write(memdb_t *m)
{
	return memdb_write(m, "d/f", 0, 1, "hello", 5, 0, false);
}
static int op_create2(memdb_t *m)
{
	return memdb_create(m, "g", 0, 1);
}
static int op_rename(memdb_t *m)
{
	return memdb_rename(m, "d/f", "g", 0, 1);
}
static int op_mtime(memdb_t *m)
{
	return memdb_mtime(m, "g", 0, 7);
}
static int op_truncate(memdb_t *m)
{
	return memdb_truncate(m, "g", 0, 1, 2);
}
static int op_delete(memdb_t *m)
{
	return memdb_delete(m, "g", 0, 1);
}

static int run_sequence(memdb_t *m)
{
	int (*ops[])(memdb_t *) = {op_mkdir,  op_create, op_write,    op_create2,
				   op_rename, op_mtime,  op_truncate, op_delete};
	int failed = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
		size_t len;
		g_autofree uint8_t *before = memdb_encode_index(m, &len);
		failed += step(m, ops[i](m), ops[i], before, len);
	}
	g_assert_null(memdb_lookup(m, "g"));
	g_assert_nonnull(memdb_lookup(m, "d"));
	g_assert_cmpuint(memdb_version(m), ==, 9);
	return failed;
}

static void test_fault_loop(void)
{
	tu_allow_warnings();
	for (int n = 0;; n++) {
		char *dir = tu_dir_new();
		fx_t f = {dir, tu_open(dir)};
		db_test_fail_after(memdb_database(f.m), n, 1);
		int failed = run_sequence(f.m);
		db_test_fail_after(memdb_database(f.m), 0, 0);
		assert_disk_equals_memory(&f);
		/* the database is healthy afterwards */
		AOK(memdb_create(f.m, "after", 0, 1));
		assert_disk_equals_memory(&f);
		fx_teardown(&f, NULL);
		if (failed == 0) {
			g_test_message("fault loop ended after %d runs", n);
			g_assert_cmpint(n, >, 10);
			break;
		}
		g_assert_cmpint(failed, ==, 1);
	}
}

/* build a state, and the rows a leader would send for it */
static void replace_source(memdb_t *m)
{
	AOK(memdb_mkdir(m, "nodes", 1, 10));
	AOK(memdb_create(m, "nodes/a.cfg", 1, 11));
	g_assert_cmpint(memdb_write(m, "nodes/a.cfg", 1, 12, "leader\n", 7, 0, false), ==, 7);
	AOK(memdb_mkdir(m, "x", 1, 13));
	AOK(memdb_create(m, "x/y", 2, 14));
	AOK(memdb_delete(m, "x/y", 2, 15));
}

static GArray *rows_of(memdb_t *m)
{
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(db_row_t));
	GPtrArray *stack = g_ptr_array_new();
	g_ptr_array_add(stack, (gpointer)memdb_root(m));
	while (stack->len) {
		const memdb_entry_t *e = g_ptr_array_steal_index(stack, stack->len - 1);
		db_row_t r = {e->inode,   e->parent,
			      e->version, e->writer,
			      e->mtime,   e->type,
			      e->name,    e->data ? g_bytes_get_data(e->data, NULL) : NULL,
			      e->size};
		g_array_append_val(rows, r);
		GPtrArray *kids = NULL;
		if (e->type == MEMDB_TYPE_DIR) {
			g_autofree char *p = memdb_entry_path(e);
			memdb_readdir(m, p, &kids);
			for (guint i = 0; i < kids->len; i++)
				g_ptr_array_add(stack, kids->pdata[i]);
			g_ptr_array_unref(kids);
		}
	}
	g_ptr_array_unref(stack);
	return rows;
}

static void test_replace_tree(fx_t *f, gconstpointer d)
{
	tu_allow_warnings();
	char *ldir = tu_dir_new();
	memdb_t *leader = tu_open(ldir);
	replace_source(leader);
	size_t llen;
	g_autofree uint8_t *lidx = memdb_encode_index(leader, &llen);
	GArray *rows = rows_of(leader);

	/* the local node has other, older content */
	AOK(memdb_mkdir(f->m, "local-only", 0, 1));
	AOK(memdb_create(f->m, "local-only/f", 0, 1));
	AOK(memdb_mkdir(f->m, "nodes", 0, 1));
	size_t olen;
	g_autofree uint8_t *oidx = memdb_encode_index(f->m, &olen);

	/* a wrong update set: the index does not match, the old tree stays */
	g_autofree char *err = NULL;
	int r = memdb_replace_tree(f->m, lidx, llen, (db_row_t *)rows->data, rows->len - 1, &err);
	g_assert_cmpint(r, <, 0);
	g_assert_nonnull(err);
	g_test_message("refused: %s", err);
	g_clear_pointer(&err, g_free);
	size_t len;
	g_autofree uint8_t *now_idx = memdb_encode_index(f->m, &len);
	g_assert_cmpmem(now_idx, len, oidx, olen);
	assert_disk_equals_memory(f);
	g_clear_pointer(&now_idx, g_free);

	/* malformed leader index */
	AERR(memdb_replace_tree(f->m, lidx, llen - 1, NULL, 0, &err), EBADMSG);
	g_clear_pointer(&err, g_free);

	/* a crash in the middle of the replace leaves the old tree */
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		db_test_crash_after(memdb_database(f->m), 3);
		(void)memdb_replace_tree(f->m, lidx, llen, (db_row_t *)rows->data, rows->len, &err);
		_exit(0); /* not reached */
	}
	int status;
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
	memdb_close(f->m);
	f->m = tu_open(f->dir);
	now_idx = memdb_encode_index(f->m, &len);
	g_assert_cmpmem(now_idx, len, oidx, olen);
	g_clear_pointer(&now_idx, g_free);

	/* the real thing */
	evlog_t l = {g_string_new(NULL)};
	g_assert_cmpint(memdb_add_event_cb(f->m, ev_cb, &l), ==, 0);
	AOK(memdb_replace_tree(f->m, lidx, llen, (db_row_t *)rows->data, rows->len, &err));
	g_assert_cmpstr(l.log->str, ==, "reloading::0;reload::0;");
	g_string_free(l.log, TRUE);
	memdb_remove_event_cb(f->m, ev_cb, &l);
	now_idx = memdb_encode_index(f->m, &len);
	g_assert_cmpmem(now_idx, len, lidx, llen);
	g_assert_null(memdb_lookup(f->m, "local-only"));
	g_autofree char *s = tu_read(f->m, "nodes/a.cfg");
	g_assert_cmpstr(s, ==, "leader\n");
	g_assert_cmpuint(memdb_version(f->m), ==, memdb_version(leader));
	assert_disk_equals_memory(f);
	/* inside a batch: refused */
	AOK(memdb_batch_begin(f->m));
	AERR(memdb_replace_tree(f->m, lidx, llen, NULL, 0, &err), EBUSY);
	g_clear_pointer(&err, g_free);
	AOK(memdb_batch_commit(f->m));

	g_array_unref(rows);
	memdb_close(leader);
	tu_dir_free(ldir);
}

/* the entry-based private test agrees with the path rule everywhere */
static void test_entry_is_private(fx_t *f, gconstpointer d)
{
	const char *dirs[] = {"priv",
			      "priv/lock",
			      "priv/lock/x",
			      "private",
			      "nodes",
			      "nodes/a",
			      "nodes/a/priv",
			      "nodes/a/priv/sub",
			      "nodes/a/private",
			      "nodes/priv",
			      "nodes/priv/priv",
			      "x",
			      "x/priv",
			      "x/priv/y",
			      "nodes/a/qemu-server",
			      "nodes/a/b",
			      "nodes/a/b/priv",
			      "nodes/a/priv/sub/deep"};
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
		AOK(memdb_mkdir(f->m, dirs[i], 0, 1));
	AOK(memdb_create(f->m, "priv/file", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/priv/file", 0, 1));
	AOK(memdb_create(f->m, "nodes/a/file", 0, 1));
	g_autoptr(GPtrArray) all = g_ptr_array_new();
	g_ptr_array_add(all, (gpointer)memdb_root(f->m));
	unsigned private = 0;
	for (guint i = 0; i < all->len; i++) {
		const memdb_entry_t *e = all->pdata[i];
		g_autofree char *path = memdb_entry_path(e);
		if (memdb_entry_is_private(e) != path_is_private(path))
			g_error("'%s': entry rule %d, path rule %d", path,
				memdb_entry_is_private(e), path_is_private(path));
		private += memdb_entry_is_private(e);
		GPtrArray *kids = NULL;
		if (e->type == MEMDB_TYPE_DIR && memdb_readdir(f->m, path, &kids) == 0) {
			for (guint k = 0; k < kids->len; k++)
				g_ptr_array_add(all, kids->pdata[k]);
			g_ptr_array_unref(kids);
		}
	}
	g_assert_cmpuint(all->len, ==, G_N_ELEMENTS(dirs) + 4);
	/* priv, priv/lock, priv/lock/x, priv/file, nodes/a/priv, .../sub,
	 * .../sub/deep, .../file, nodes/priv/priv */
	g_assert_cmpuint(private, ==, 9);
}

/* a deferred create has no row until its content, memdb_persist() or close */
static void test_deferred_create(fx_t *f, gconstpointer d)
{
	/* crash (SIGKILL) right after: the empty entry is gone, nothing else */
	AOK(memdb_create(f->m, "kept", 0, 1));
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		if (memdb_create_deferred(f->m, "lost", 0, 1) == 0 &&
		    memdb_create_deferred(f->m, "written", 0, 1) == 0 &&
		    memdb_write(f->m, "written", 0, 2, "data", 4, 0, true) == 4)
			kill(getpid(), SIGKILL);
		_exit(1);
	}
	int status;
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	fx_reopen(f);
	g_assert_nonnull(memdb_lookup(f->m, "kept"));
	g_assert_null(memdb_lookup(f->m, "lost"));
	g_autofree char *s = tu_read(f->m, "written");
	g_assert_cmpstr(s, ==, "data");

	/* numbering is that of a normal create */
	uint64_t v = memdb_version(f->m);
	AOK(memdb_create_deferred(f->m, "a", 0, 1));
	const memdb_entry_t *e = memdb_lookup(f->m, "a");
	g_assert_cmpuint(e->inode, ==, v + 1);
	g_assert_true(e->unpersisted);
	AERR(memdb_create_deferred(f->m, "a", 0, 1), EEXIST);
	AOK(memdb_persist(f->m, e->inode));
	g_assert_false(memdb_lookup(f->m, "a")->unpersisted);
	AOK(memdb_persist(f->m, e->inode)); /* nothing to do */
	/* deleted or renamed before its row was written */
	AOK(memdb_create_deferred(f->m, "b", 0, 1));
	AOK(memdb_delete(f->m, "b", 0, 1));
	AOK(memdb_create_deferred(f->m, "c", 0, 1));
	AOK(memdb_rename(f->m, "c", "c2", 0, 1));
	/* close writes what is left */
	AOK(memdb_create_deferred(f->m, "d", 0, 1));
	assert_disk_equals_memory(f);
	g_assert_nonnull(memdb_lookup(f->m, "a"));
	g_assert_nonnull(memdb_lookup(f->m, "c2"));
	g_assert_nonnull(memdb_lookup(f->m, "d"));
	g_assert_null(memdb_lookup(f->m, "b"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/memdb/" name, fx_t, NULL, fx_setup, fn, fx_teardown)
	T("fresh", test_fresh);
	T("dirtest1", test_dirtest1);
	T("filetest1", test_filetest1);
	T("numbering", test_numbering);
	T("create-write-mkdir-errors", test_create_errors);
	T("write-semantics", test_write_semantics);
	T("limits", test_limits);
	T("delete", test_delete);
	T("rename", test_rename);
	T("loaddb", test_loaddb);
	T("mtime", test_mtime);
	T("vmlist", test_vmlist);
	T("vmlist-array", test_vmlist_array);
	T("counters", test_counters);
	T("locks", test_locks);
	T("lock-age-survives-replace", test_lock_age_survives_replace);
	T("statfs", test_statfs);
	T("events", test_events);
	T("big-directory", test_big_directory);
	T("batch", test_batch);
	T("replace-tree", test_replace_tree);
	T("deferred-create", test_deferred_create);
	T("entry-is-private", test_entry_is_private);
#undef T
	g_test_add_func("/memdb/fault-loop", test_fault_loop);
	return g_test_run();
}
