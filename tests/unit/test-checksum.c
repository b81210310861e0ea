/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-checksum.c: the record checksum, the index blob and the full-tree
 * checksum of core.md §2.10, against the original's test vectors TV1 and
 * TV2, and the index decoder on good and malformed input.
 */
#include "config.h"

#include <errno.h>

#include "testutil.h"

static void assert_hex(const uint8_t *p, const char *hex)
{
	g_autofree char *h = tu_hex(p, MEMDB_CSUM_LEN);
	g_assert_cmpstr(h, ==, hex);
}

static void test_tv1(void)
{
	char *d = tu_dir_new();
	memdb_t *m = tu_open(d);
	static uint8_t zeros[32768];
	for (int i = 0; i < 100; i++) {
		g_autofree char *name = g_strdup_printf("testfile%d", i);
		g_assert_cmpint(memdb_create(m, name, 0, 1234), ==, 0);
		g_assert_cmpint(memdb_write(m, name, 0, 1234, zeros, sizeof(zeros), 0, false), ==,
				sizeof(zeros));
	}
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(m, &len);
	g_assert_cmpuint(len, ==, 4072);
	memdb_index_view_t v;
	g_assert_cmpint(memdb_index_parse(idx, len, &v), ==, 0);
	g_assert_cmpuint(v.version, ==, 201);
	g_assert_cmpuint(v.last_inode, ==, 200);
	g_assert_cmpuint(v.writer, ==, 0);
	g_assert_cmpuint(v.size, ==, 101);
	g_autofree char *sha = tu_sha256(idx, len);
	g_assert_cmpstr(sha, ==,
			"913fd95015af9d93f10dd51ba2a7bb11351bcfe040be21e95fcba834adc3ec10");
	uint8_t tc[MEMDB_CSUM_LEN];
	memdb_tree_checksum(m, tc);
	assert_hex(tc, "6f4b756a5d212d894deba9c2485bf1e0a6a006d94883ff9bef1b941afa137d2b");

	/* the same after a reload from the database */
	memdb_close(m);
	m = tu_open(d);
	g_autofree uint8_t *idx2 = memdb_encode_index(m, &len);
	g_autofree char *sha2 = tu_sha256(idx2, len);
	g_assert_cmpstr(sha2, ==, sha);
	memdb_close(m);
	tu_dir_free(d);
}

static void tv2_build(memdb_t *m)
{
	g_assert_cmpint(memdb_mkdir(m, "nodes", 1, 1000), ==, 0);
	g_assert_cmpint(memdb_create(m, "nodes/a.cfg", 2, 1001), ==, 0);
	g_assert_cmpint(memdb_write(m, "nodes/a.cfg", 2, 1002, "hello\n", 6, 0, false), ==, 6);
}

static void test_tv2(void)
{
	char *d = tu_dir_new();
	memdb_t *m = tu_open(d);
	tv2_build(m);
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(m, &len);
	g_assert_cmpuint(len, ==, 152);
	g_autofree char *sha = tu_sha256(idx, len);
	g_assert_cmpstr(sha, ==,
			"fa830cb7d70fcfed4fcdc47e3238bc92d28875c25b870a77684c43ad3825c70b");
	memdb_index_view_t v;
	g_assert_cmpint(memdb_index_parse(idx, len, &v), ==, 0);
	g_assert_cmpuint(v.version, ==, 4);
	g_assert_cmpuint(v.writer, ==, 2);
	g_assert_cmpuint(v.mtime, ==, 1002);
	g_assert_cmpuint(memdb_index_inode(&v, 0), ==, 0);
	g_assert_cmpuint(memdb_index_inode(&v, 1), ==, 2);
	g_assert_cmpuint(memdb_index_inode(&v, 2), ==, 3);
	assert_hex(memdb_index_digest(&v, 0),
		   "4b98bb25bbac10cf8ca5c728d13ca21cc6f3266ffe191b16cb75f09095ea4149");
	assert_hex(memdb_index_digest(&v, 1),
		   "fd3bbe81ac7ccffd88b3099267cd84bfebc4b45d1efda6b35dc861b9114a3d36");
	assert_hex(memdb_index_digest(&v, 2),
		   "499f32f67f3434c815889b2de8edec6a0f98d6d316edbb085239a7a18688a229");
	uint8_t c[MEMDB_CSUM_LEN];
	memdb_tree_checksum(m, c);
	assert_hex(c, "47ebdc39e0f435d10cf4a17bfacb591e25a7277224c55e8110f10e53bc708008");

	/* record checksums A (values from the reference model of §2.10) */
	memdb_record_checksum(memdb_lookup(m, "nodes/a.cfg"), c);
	assert_hex(c, "0fe77c9b442c326a22308dd07197cd2186387727c14ce83d6843035143ce430d");
	memdb_record_checksum(memdb_lookup(m, "nodes"), c);
	assert_hex(c, "c2cad254923b52444fd756fc97ad449214b7c4ea139f60f41220fb856961b7b0");
	memdb_close(m);
	tu_dir_free(d);
}

/* the cached per-entry digest is dropped by every change */
static void test_digest_cache(void)
{
	char *d = tu_dir_new();
	memdb_t *m = tu_open(d);
	tv2_build(m);
	size_t len;
	g_autofree uint8_t *a = memdb_encode_index(m, &len);
	g_assert_cmpint(memdb_write(m, "nodes/a.cfg", 2, 1003, "x", 1, 0, false), ==, 1);
	g_assert_cmpint(memdb_mtime(m, "nodes", 1, 1000), ==, 0);
	g_assert_cmpint(memdb_rename(m, "nodes/a.cfg", "nodes/b.cfg", 2, 1004), ==, 0);
	g_autofree uint8_t *b = memdb_encode_index(m, &len);
	memdb_close(m);
	/* a fresh load computes every digest anew: must agree */
	m = tu_open(d);
	size_t len2;
	g_autofree uint8_t *c = memdb_encode_index(m, &len2);
	g_assert_cmpmem(b, len, c, len2);
	g_assert_cmpint(memcmp(a, b, MIN(len, len2)), !=, 0);
	memdb_close(m);
	tu_dir_free(d);
}

static void test_index_parse_bad(void)
{
	char *d = tu_dir_new();
	memdb_t *m = tu_open(d);
	tv2_build(m);
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(m, &len);
	memdb_index_view_t v;
	g_assert_cmpint(memdb_index_parse(NULL, 0, &v), ==, -EBADMSG);
	g_assert_cmpint(memdb_index_parse(idx, 31, &v), ==, -EBADMSG);
	g_assert_cmpint(memdb_index_parse(idx, len - 1, &v), ==, -EBADMSG);
	/* every truncation is refused */
	for (size_t n = 0; n < len; n++)
		g_assert_cmpint(memdb_index_parse(idx, n, &v), ==, -EBADMSG);
	g_autofree uint8_t *bad = g_memdup2(idx, len);
	bad[24] = 2; /* entry count disagrees with the length */
	g_assert_cmpint(memdb_index_parse(bad, len, &v), ==, -EBADMSG);
	memcpy(bad, idx, len);
	bad[32 + 40] = 5; /* second inode (2) becomes 5 > third (3): not ascending */
	g_assert_cmpint(memdb_index_parse(bad, len, &v), ==, -EBADMSG);
	memcpy(bad, idx, len);
	bad[8] = 9; /* last_inode disagrees */
	g_assert_cmpint(memdb_index_parse(bad, len, &v), ==, -EBADMSG);
	/* random bytes never crash the decoder */
	GRand *rnd = g_rand_new_with_seed(42);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)g_rand_int_range(rnd, 0, 300);
		g_autofree uint8_t *junk = g_malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)g_rand_int(rnd);
		if (n >= 32) { /* make the length field agree sometimes */
			junk[28] = (uint8_t)n;
			junk[29] = (uint8_t)(n >> 8);
			junk[30] = junk[31] = 0;
		}
		(void)memdb_index_parse(junk, n, &v);
	}
	g_rand_free(rnd);
	memdb_close(m);
	tu_dir_free(d);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/checksum/tv1", test_tv1);
	g_test_add_func("/checksum/tv2", test_tv2);
	g_test_add_func("/checksum/digest-cache", test_digest_cache);
	g_test_add_func("/checksum/index-parse-malformed", test_index_parse_bad);
	return g_test_run();
}
