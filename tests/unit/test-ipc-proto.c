/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-ipc-proto.c: the pve2 request decoder (cluster.md §4.3-§4.5) on
 * good, malformed and random input.  Each buffer is an exact-size heap
 * copy, so ASan and valgrind see any read past its end.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "ipc-proto.h"

/* a request: header with @id and the right size, then @payload */
static uint8_t *mk(int32_t id, const void *payload, size_t n, size_t *len)
{
	*len = 16 + n;
	uint8_t *b = g_malloc0(*len);
	uint32_t u = (uint32_t)id, sz = (uint32_t)*len;
	for (int i = 0; i < 4; i++) {
		b[i] = (uint8_t)(u >> (8 * i));
		b[8 + i] = (uint8_t)(sz >> (8 * i));
	}
	if (n)
		memcpy(b + 16, payload, n);
	return b;
}

/* the request of the last parse() stays alive: *q points into it */
static uint8_t *last_request;

static int parse(int32_t id, const void *payload, size_t n, ipc_request_t *q)
{
	size_t len;
	g_free(last_request);
	last_request = mk(id, payload, n, &len);
	const char *why;
	return ipc_request_parse(last_request, len, q, &why);
}

static void test_simple_codes(void)
{
	ipc_request_t q;
	for (int id = 1; id <= 3; id++) {
		g_assert_cmpint(parse(id, NULL, 0, &q), ==, 0);
		g_assert_cmpint(q.id, ==, id);
		g_assert_cmpint(parse(id, "x", 1, &q), ==, -EINVAL);
	}
	g_assert_cmpint(parse(10, NULL, 0, &q), ==, 0);
	g_assert_cmpint(parse(9, NULL, 0, &q), ==, -ECHRNG);
	g_assert_cmpint(parse(14, NULL, 0, &q), ==, -ECHRNG);
	g_assert_cmpint(parse(-3, NULL, 0, &q), ==, -ECHRNG);
}

static void test_header(void)
{
	ipc_request_t q;
	const char *why;
	uint8_t b[16] = {1, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0};
	g_assert_cmpint(ipc_request_parse(b, 16, &q, &why), ==, 0);
	for (size_t n = 0; n < 16; n++)
		g_assert_cmpint(ipc_request_parse(b, n, &q, &why), ==, -EINVAL);
	b[8] = 17; /* size says more than arrived */
	g_assert_cmpint(ipc_request_parse(b, 16, &q, &why), ==, -EINVAL);
	g_assert_nonnull(why);
	b[8] = 0xff;
	b[11] = 0xff; /* negative */
	g_assert_cmpint(ipc_request_parse(b, 16, &q, &why), ==, -EINVAL);
	g_assert_cmpint(ipc_request_parse(NULL, 0, &q, &why), ==, -EINVAL);
}

static void test_status(void)
{
	ipc_request_t q;
	uint8_t p[600] = {0};
	strcpy((char *)p, "kv/key");
	memcpy(p + 256, "value", 6);
	g_assert_cmpint(parse(4, p, 256 + 6, &q), ==, 0);
	g_assert_cmpstr(q.name, ==, "kv/key");
	g_assert_cmpuint(q.value_len, ==, 6);
	g_assert_cmpint(parse(4, p, 256, &q), ==, 0);
	g_assert_null(q.value);
	g_assert_cmpint(parse(4, p, 255, &q), ==, -EINVAL);
	memset(p, 'a', 256);
	g_assert_cmpint(parse(4, p, 300, &q), ==, -EINVAL); /* no NUL in the name */
	memset(p, 0, sizeof(p));
	strcpy((char *)p, "kv/key");
	strcpy((char *)p + 256, "node1");
	g_assert_cmpint(parse(5, p, 512, &q), ==, 0);
	g_assert_cmpstr(q.node, ==, "node1");
	g_assert_cmpint(parse(5, p, 600, &q), ==, 0); /* extra bytes ignored */
	g_assert_cmpint(parse(5, p, 511, &q), ==, -EINVAL);
	memset(p + 256, 'n', 256);
	g_assert_cmpint(parse(5, p, 512, &q), ==, -EINVAL);
}

static void test_config_and_token(void)
{
	ipc_request_t q;
	g_assert_cmpint(parse(6, "a.cfg", 6, &q), ==, 0);
	g_assert_cmpstr(q.path, ==, "a.cfg");
	g_assert_cmpint(parse(6, "a.cfg", 5, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "", 0, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "a\0b", 4, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "../x", 5, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "a/../x", 7, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "a/..", 5, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "..", 3, &q), ==, -EINVAL);
	g_assert_cmpint(parse(6, "a..b/..c", 9, &q), ==, 0);
	g_assert_cmpint(parse(6, "/a.cfg", 7, &q), ==, 0);
	g_assert_cmpint(parse(12, "tok", 4, &q), ==, 0);
	g_assert_cmpint(parse(12, "", 1, &q), ==, -EINVAL);
	g_assert_cmpint(parse(12, "t\nk", 4, &q), ==, -EINVAL);
	g_assert_cmpint(parse(12, "tok", 3, &q), ==, -EINVAL);
}

static void test_watch(void)
{
	ipc_request_t q;
	uint8_t b[8 + 6] = {0x02, 0x01, 0, 0, 0, 0, 0, 0x80, 'a', '.', 'c', 'f', 'g', 0};
	g_assert_cmpint(parse(CFS_IPC_WATCH, b, sizeof(b), &q), ==, 0);
	g_assert_cmpuint(q.known, ==, 0x8000000000000102ull);
	g_assert_cmpstr(q.path, ==, "a.cfg");
	uint8_t tree[9] = {0};
	g_assert_cmpint(parse(CFS_IPC_WATCH, tree, sizeof(tree), &q), ==, 0);
	g_assert_cmpstr(q.path, ==, "");
	/* every shorter request, and one whose path has no NUL at its end */
	for (size_t n = 0; n < sizeof(b); n++)
		g_assert_cmpint(parse(CFS_IPC_WATCH, b, n, &q), ==, -EINVAL);
	uint8_t up[8 + 5] = {0, 0, 0, 0, 0, 0, 0, 0, '.', '.', '/', 'a', 0};
	g_assert_cmpint(parse(CFS_IPC_WATCH, up, sizeof(up), &q), ==, -EINVAL);
	uint8_t two[8 + 4] = {0, 0, 0, 0, 0, 0, 0, 0, 'a', 0, 'b', 0};
	g_assert_cmpint(parse(CFS_IPC_WATCH, two, sizeof(two), &q), ==, -EINVAL);

	uint8_t id[4] = {7, 0, 0, 1};
	g_assert_cmpint(parse(CFS_IPC_UNWATCH, id, 4, &q), ==, 0);
	g_assert_cmpuint(q.watch_id, ==, 0x01000007u);
	g_assert_cmpint(parse(CFS_IPC_UNWATCH, id, 3, &q), ==, -EINVAL);
	g_assert_cmpint(parse(CFS_IPC_UNWATCH, b, 5, &q), ==, -EINVAL);
	/* neighbours of our codes are unknown */
	g_assert_cmpint(parse(0x10000, NULL, 0, &q), ==, -ECHRNG);
	g_assert_cmpint(parse(0x10003, NULL, 0, &q), ==, -ECHRNG);
}

static void test_log(void)
{
	ipc_request_t q;
	const char good[] = "\x06\x05\x04root\0tag\0hello";
	g_assert_cmpint(parse(7, good, sizeof(good), &q), ==, 0);
	g_assert_cmpuint(q.priority, ==, 6);
	g_assert_cmpstr(q.ident, ==, "root");
	g_assert_cmpstr(q.tag, ==, "tag");
	g_assert_cmpstr(q.msg, ==, "hello");
	/* every truncation is refused */
	for (size_t n = 0; n < sizeof(good); n++)
		g_assert_cmpint(parse(7, good, n, &q), ==, -EINVAL);
	const char badlen[] = "\x06\x09\x04root\0tag\0hello";
	g_assert_cmpint(parse(7, badlen, sizeof(badlen), &q), ==, -EINVAL);
	const char zero[] = "\x06\x00\x00\0";
	g_assert_cmpint(parse(7, zero, sizeof(zero), &q), ==, -EINVAL);

	uint8_t cl[32] = {5, 0, 0, 0};
	memcpy(cl + 16, "root@pam", 9);
	g_assert_cmpint(parse(8, cl, 25, &q), ==, 0);
	g_assert_cmpuint(q.max_entries, ==, 5);
	g_assert_cmpstr(q.user, ==, "root@pam");
	g_assert_cmpint(parse(8, cl, 16, &q), ==, -EINVAL);
	g_assert_cmpint(parse(8, cl, 24, &q), ==, -EINVAL);
}

static void test_props(void)
{
	ipc_request_t q;
	const char one[] = "\x64\x00\x00\x00name";
	g_assert_cmpint(parse(11, one, sizeof(one), &q), ==, 0);
	g_assert_cmpuint(q.vmid, ==, 100);
	g_assert_cmpstr(q.props[0], ==, "name");
	const char low[] = "\x32\x00\x00\x00name";
	g_assert_cmpint(parse(11, low, sizeof(low), &q), ==, -EINVAL);
	const char empty[] = "\x00\x00\x00\x00";
	g_assert_cmpint(parse(11, empty, sizeof(empty), &q), ==, -EINVAL);
	const char many[] = "\x00\x00\x00\x00\x02name\0cores";
	g_assert_cmpint(parse(13, many, sizeof(many), &q), ==, 0);
	g_assert_cmpuint(q.n_props, ==, 2);
	g_assert_cmpstr(q.props[1], ==, "cores");
	const char fewer[] = "\x00\x00\x00\x00\x03name\0cores";
	g_assert_cmpint(parse(13, fewer, sizeof(fewer), &q), ==, -EINVAL);
	const char extra[] = "\x00\x00\x00\x00\x01name\0x";
	g_assert_cmpint(parse(13, extra, sizeof(extra), &q), ==, -EINVAL);
	const char upper[] = "\x00\x00\x00\x00\x01Name";
	g_assert_cmpint(parse(13, upper, sizeof(upper), &q), ==, -EINVAL);
	const char none[] = "\x00\x00\x00\x00\x00";
	g_assert_cmpint(parse(13, none, 5, &q), ==, -EINVAL);
	/* 255 properties, the most a count byte holds */
	GByteArray *a = g_byte_array_new();
	g_byte_array_append(a, (const guint8 *)"\0\0\0\0\xff", 5);
	for (int i = 0; i < 255; i++)
		g_byte_array_append(a, (const guint8 *)"p\0", 2);
	g_assert_cmpint(parse(13, a->data, a->len, &q), ==, 0);
	g_assert_cmpuint(q.n_props, ==, 255);
	g_byte_array_unref(a);
}

/* random bytes for every code: never a crash or an out-of-bounds read */
static void test_random(void)
{
	GRand *rnd = g_rand_new_with_seed(99);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)g_rand_int_range(rnd, 0, 700);
		uint8_t *p = g_malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			p[k] = (uint8_t)(g_rand_int_range(rnd, 0, 4) == 0 ? 0 : g_rand_int(rnd));
		ipc_request_t q;
		int32_t id = g_rand_int_range(rnd, 0, 15);
		(void)parse(id, p, n, &q);
		/* and with a wrong size field, on the raw buffer */
		const char *why;
		(void)ipc_request_parse(p, n, &q, &why);
		g_free(p);
	}
	g_rand_free(rnd);
}

static void test_response_header(void)
{
	uint8_t h[IPC_RESP_HEADER_LEN];
	ipc_response_header(h, 6, -ENOENT, 10);
	g_assert_cmpuint(h[0], ==, 6);
	g_assert_cmpuint(h[8], ==, 34);
	int32_t e;
	memcpy(&e, h + 16, 4);
	g_assert_cmpint(e, ==, -ENOENT);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ipc-proto/simple-codes", test_simple_codes);
	g_test_add_func("/ipc-proto/header", test_header);
	g_test_add_func("/ipc-proto/status", test_status);
	g_test_add_func("/ipc-proto/config-and-token", test_config_and_token);
	g_test_add_func("/ipc-proto/log", test_log);
	g_test_add_func("/ipc-proto/watch", test_watch);
	g_test_add_func("/ipc-proto/properties", test_props);
	g_test_add_func("/ipc-proto/random", test_random);
	g_test_add_func("/ipc-proto/response-header", test_response_header);
	int r = g_test_run();
	g_free(last_request);
	return r;
}
