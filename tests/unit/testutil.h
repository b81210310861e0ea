/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * testutil.h: small helpers shared by the unit tests: a private temporary
 * directory per test, a controllable clock, hex formatting of digests.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "memdb.h"

/* A fresh directory for one test; removed (with its files) by tu_dir_free. */
static inline char *tu_dir_new(void)
{
	GError *err = NULL;
	char *d = g_dir_make_tmp("pmxcfs-test-XXXXXX", &err);
	g_assert_no_error(err);
	return d;
}

static inline void tu_dir_free(char *d)
{
	GDir *dir = g_dir_open(d, 0, NULL);
	if (dir) {
		const char *n;
		while ((n = g_dir_read_name(dir))) {
			g_autofree char *p = g_build_filename(d, n, NULL);
			g_unlink(p);
		}
		g_dir_close(dir);
	}
	g_rmdir(d);
	g_free(d);
}

static uint64_t tu_now = 1000;
static inline uint64_t tu_clock(void)
{
	return tu_now;
}

/* Open a memdb at <dir>/config.db with the test clock; asserts success. */
static inline memdb_t *tu_open(const char *dir)
{
	g_autofree char *path = g_build_filename(dir, "config.db", NULL);
	memdb_options_t o = {.clock = tu_clock};
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	int r = memdb_open(path, &o, &m, &err);
	if (r < 0)
		g_error("memdb_open(%s): %s", path, err);
	return m;
}

static inline char *tu_hex(const uint8_t *p, size_t n)
{
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%02x", p[i]);
	return g_string_free(s, FALSE);
}

static inline char *tu_sha256(const uint8_t *p, size_t n)
{
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, p, n);
}

/* Content of a file as a string (asserts it exists). */
static inline char *tu_read(memdb_t *m, const char *path)
{
	GBytes *b = NULL;
	int r = memdb_read(m, path, &b);
	g_assert_cmpint(r, >=, 0);
	char *s = g_malloc0((gsize)r + 1);
	if (b) {
		memcpy(s, g_bytes_get_data(b, NULL), (size_t)r);
		g_bytes_unref(b);
	}
	return s;
}

/* Let g_warning/g_critical be logged without aborting (fault tests). */
static inline void tu_allow_warnings(void)
{
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_ERROR);
	g_log_set_fatal_mask("memdb", G_LOG_LEVEL_ERROR);
	g_log_set_fatal_mask("database", G_LOG_LEVEL_ERROR);
}
