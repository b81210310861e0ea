/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * bench-memdb.c: memdb operations/s and database commits/s.
 *
 * Runs every memdb operation over 10,000 entries on a real config.db in a
 * temporary directory (or the directory given as the first argument, to
 * measure a particular disk) and prints one line per figure.  Figures only;
 * nothing is asserted.  Also prints what the process wrote to disk
 * (/proc/self/io write_bytes) for each phase.
 *
 *   make bench          or   tests/bench/bench-memdb [DIR] [N]
 */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memdb.h"

static uint64_t disk_written(void)
{
	g_autofree char *io = NULL;
	if (!g_file_get_contents("/proc/self/io", &io, NULL, NULL))
		return 0;
	const char *p = strstr(io, "\nwrite_bytes: ");
	return p ? g_ascii_strtoull(p + 14, NULL, 10) : 0;
}

static gint64 t_start;
static uint64_t w_start;

static void phase_begin(void)
{
	w_start = disk_written();
	t_start = g_get_monotonic_time();
}

static void phase_end(const char *what, int n, const char *unit)
{
	gint64 us = g_get_monotonic_time() - t_start;
	uint64_t w = disk_written() - w_start;
	printf("%-44s %8d %-8s %9.0f /s %9.3f ms  disk %7.2f MiB\n", what, n, unit, n / (us / 1e6),
	       us / 1e3, w / 1048576.0);
}

static void check(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s failed: %s\n", what, g_strerror(-r));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : g_get_tmp_dir();
	int n = argc > 2 ? atoi(argv[2]) : 10000;
	g_autofree char *tmpl = g_build_filename(base, "pmxcfs-bench-XXXXXX", NULL);
	char *dir = g_mkdtemp(tmpl);
	if (!dir) {
		perror("mkdtemp");
		return 1;
	}
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	if (memdb_open(db, NULL, &m, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("memdb benchmark: %d entries, database %s, sqlite synchronous=NORMAL, WAL\n", n, db);
	char data[1024];
	memset(data, 'x', sizeof(data));
	char path[64], path2[64];

	check(memdb_mkdir(m, "d", 0, 1), "mkdir");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		check(memdb_create(m, path, 0, 1), "create");
	}
	phase_end("create (1 commit each)", n, "files");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		check(memdb_write(m, path, 0, 1, data, sizeof(data), 0, true), "write");
	}
	phase_end("write 1 KiB (1 commit each)", n, "files");

	phase_begin();
	check(memdb_batch_begin(m), "batch");
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		check(memdb_write(m, path, 0, 1, data, sizeof(data), 0, true), "write");
	}
	check(memdb_batch_commit(m), "commit");
	phase_end("write 1 KiB (all in one batch commit)", n, "files");

	phase_begin();
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		GBytes *b = NULL;
		int r = memdb_read(m, path, &b);
		check(r, "read");
		total += (uint64_t)r;
		g_bytes_unref(b);
	}
	phase_end("read 1 KiB", n, "files");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		if (!memdb_lookup(m, path))
			check(-2, "lookup");
	}
	phase_end("lookup (stat)", n, "paths");

	phase_begin();
	for (int i = 0; i < 100; i++) {
		GPtrArray *a = NULL;
		check(memdb_readdir(m, "d", &a), "readdir");
		g_ptr_array_unref(a);
	}
	phase_end("readdir of the directory", 100, "listings");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		check(memdb_mtime(m, path, 0, 5), "mtime");
	}
	phase_end("mtime", n, "files");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/f%06d", i);
		g_snprintf(path2, sizeof(path2), "d/r%06d", i);
		check(memdb_rename(m, path, path2, 0, 1), "rename");
	}
	phase_end("rename", n, "files");

	phase_begin();
	size_t len = 0;
	for (int i = 0; i < 10; i++)
		g_free(memdb_encode_index(m, &len));
	phase_end("encode index (digests cached)", 10, "indexes");

	phase_begin();
	uint8_t c[32];
	for (int i = 0; i < 10; i++)
		memdb_tree_checksum(m, c);
	phase_end("full-tree checksum", 10, "sums");

	memdb_close(m);
	phase_begin();
	if (memdb_open(db, NULL, &m, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	phase_end("load and validate the database", 1, "loads");

	phase_begin();
	for (int i = 0; i < n; i++) {
		g_snprintf(path, sizeof(path), "d/r%06d", i);
		check(memdb_delete(m, path, 0, 1), "delete");
	}
	phase_end("delete", n, "files");

	/* one 1 MiB file written in 4 KiB chunks, each chunk its own change
	 * (how the original applies it) and as one write */
	static char chunk[4096];
	check(memdb_create(m, "big", 0, 1), "create");
	phase_begin();
	for (int off = 0; off < 1048576; off += 4096)
		check(memdb_write(m, "big", 0, 1, chunk, sizeof(chunk), (uint64_t)off, false),
		      "write");
	phase_end("1 MiB in 4 KiB chunks, 1 commit per chunk", 256, "chunks");
	g_autofree char *mib = g_malloc0(1048576);
	phase_begin();
	check(memdb_write(m, "big", 0, 1, mib, 1048576, 0, true), "write");
	phase_end("1 MiB in one write", 1, "writes");
	printf("(read %" PRIu64 " bytes)\n", total);

	/* listing cost per entry must stay flat as the directory grows */
	for (int size = 1000; size <= 100000; size *= 10) {
		char dname[32];
		g_snprintf(dname, sizeof(dname), "list%d", size);
		check(memdb_mkdir(m, dname, 0, 1), "mkdir");
		check(memdb_batch_begin(m), "batch");
		for (int i = 0; i < size; i++) {
			g_snprintf(path, sizeof(path), "%s/f%06d", dname, i);
			check(memdb_create(m, path, 0, 1), "create");
		}
		check(memdb_batch_commit(m), "commit");
		gint64 t0 = g_get_monotonic_time();
		GPtrArray *a = NULL;
		check(memdb_readdir(m, dname, &a), "readdir");
		gint64 us = g_get_monotonic_time() - t0;
		printf("list a directory of %6d entries: %8.3f ms, %6.1f ns per entry\n", size,
		       us / 1e3, us * 1e3 / a->len);
		g_ptr_array_unref(a);
	}

	memdb_close(m);
	const char *suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *p = g_strconcat(db, suffixes[i], NULL);
		g_unlink(p);
	}
	g_rmdir(dir);
	return 0;
}
