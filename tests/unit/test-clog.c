/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-clog.c: the cluster log ring (cluster.md §3.10, §3.3, §3.4).
 *
 * Entries and rings are also written here by hand, field by field from the
 * spec's tables (spec_entry/spec_ring), so the layout is checked against an
 * independent writer, and malformed rings can be built one defect at a
 * time.  Every decoder input is an exact-size heap copy, so ASan and
 * valgrind see any read past its end.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "clog.h"

/* --- the spec's layout, written independently -------------------------- */

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* FNV-1a 64 with the multiplication written as the original's shifts */
static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h += (h << 1) + (h << 4) + (h << 5) + (h << 7) + (h << 8) + (h << 40);
	}
	return h;
}

/* Write one entry at @p (fields of the §3.10 table); returns its size. */
static uint32_t spec_entry(uint8_t *p, uint32_t uid, uint32_t time, const char *node,
			   const char *ident, const char *tag, const char *msg)
{
	uint32_t nl = strlen(node) + 1, il = strlen(ident) + 1, tl = strlen(tag) + 1;
	uint32_t ml = strlen(msg) + 1;
	uint32_t size = 48 + nl + il + tl + ml;
	memset(p, 0, size);
	wr32(p + 8, uid);
	wr32(p + 12, time);
	wr64(p + 16, fnv(node, nl));
	wr64(p + 24, fnv(ident, il));
	wr32(p + 32, 4242);
	p[36] = 6;
	p[37] = nl;
	p[38] = il;
	p[39] = tl;
	wr32(p + 40, ml);
	memcpy(p + 44, node, nl);
	memcpy(p + 44 + nl, ident, il);
	memcpy(p + 44 + nl + il, tag, tl);
	memcpy(p + 44 + nl + il + tl, msg, ml);
	return size;
}

static uint32_t align8(uint32_t n)
{
	return (n + 7) & ~7u;
}

/* Write an entry into a ring at @pos linked to @prev; returns its next. */
static uint32_t spec_put(uint8_t *ring, uint32_t pos, uint32_t prev, uint32_t uid, uint32_t time,
			 const char *node, const char *msg)
{
	uint32_t size = spec_entry(ring + pos, uid, time, node, "root@pam", "tag", msg);
	wr32(ring + pos, prev);
	wr32(ring + pos + 4, pos + align8(size));
	return pos + align8(size);
}

static uint8_t *spec_ring(uint32_t size)
{
	uint8_t *b = g_malloc0(size);
	wr32(b, size);
	return b;
}

/* A ring of @size with @n entries from offset 8 on, newest last; their
 * offsets in pos[] if not NULL. */
static uint8_t *spec_chain(uint32_t size, int n, uint32_t *pos)
{
	uint8_t *b = spec_ring(size);
	uint32_t at = 8, prev = 0;
	for (int i = 0; i < n; i++) {
		if (pos)
			pos[i] = at;
		uint32_t next = spec_put(b, at, prev, i + 1, 1000 + i, "node1", "message");
		prev = at;
		at = next;
	}
	wr32(b + 4, prev);
	return b;
}

/* decode an exact-size copy; frees the result */
static int decode(const uint8_t *b, size_t len)
{
	uint8_t *copy = g_memdup2(b, len ? len : 1);
	clog_t *cl = (clog_t *)0x1;
	int r = clog_state_decode(copy, len, &cl);
	if (r == 0) {
		g_assert_true(cl != (clog_t *)0x1);
		clog_free(cl);
	} else {
		g_assert_true(cl == (clog_t *)0x1); /* untouched on failure */
	}
	g_free(copy);
	return r;
}

static int decode_entry(const uint8_t *b, size_t len)
{
	uint8_t *copy = g_memdup2(b, len ? len : 1);
	clog_entry_t e;
	int r = clog_entry_decode(copy, len, &e);
	g_free(copy);
	return r;
}

/* the ring bytes of @cl as they are (no sort) */
static const uint8_t *raw_ring(const clog_t *cl)
{
	clog_iter_t it;
	clog_iter_init(&it, cl);
	return it.ring;
}

static int count_entries(const clog_t *cl)
{
	clog_iter_t it;
	clog_entry_t e;
	int n = 0, r;
	clog_iter_init(&it, cl);
	while ((r = clog_iter_next(&it, &e)) > 0)
		n++;
	g_assert_cmpint(r, ==, 0);
	return n;
}

static int add(clog_t *cl, const char *node, const char *user, uint32_t time, const char *msg)
{
	return clog_add(cl, node, user, "tag", 77, 5, time, msg, NULL);
}

/* --- layout -------------------------------------------------------------- */

static void test_digest(void)
{
	/* published FNV-1a 64 vectors */
	g_assert_cmphex(clog_digest("", 0), ==, 0xcbf29ce484222325ull);
	g_assert_cmphex(clog_digest("a", 1), ==, 0xaf63dc4c8601ec8cull);
	g_assert_cmphex(clog_digest("foobar", 6), ==, 0x85944171f73967e8ull);
	g_assert_cmphex(clog_digest("node1", 6), ==, fnv("node1", 6));
}

static void test_layout(void)
{
	g_assert_cmpuint(CLOG_DEFAULT_SIZE, ==, 131072);
	g_assert_cmpuint(CLOG_MAX_ENTRY_SIZE, ==, 4096);
	g_assert_cmpuint(CLOG_ENTRY_BASE, ==, 48);
	g_assert_cmpuint(CLOG_ENTRY_TEXT_OFFS, ==, 44);

	uint8_t buf[CLOG_MAX_ENTRY_SIZE];
	int size = clog_entry_pack(buf, sizeof(buf), "node1", "root@pam", "task", 7, 1234, 3,
				   1700000000, "hello");
	/* 48 + "node1\0" + "root@pam\0" + "task\0" + "hello\0" */
	g_assert_cmpint(size, ==, 48 + 6 + 9 + 5 + 6);
	g_assert_cmpuint(rd32(buf + 0), ==, 0);
	g_assert_cmpuint(rd32(buf + 4), ==, 0);
	g_assert_cmpuint(rd32(buf + 8), ==, 7);
	g_assert_cmpuint(rd32(buf + 12), ==, 1700000000);
	g_assert_cmphex(rd64(buf + 16), ==, fnv("node1", 6));
	g_assert_cmphex(rd64(buf + 24), ==, fnv("root@pam", 9));
	g_assert_cmpuint(rd32(buf + 32), ==, 1234);
	g_assert_cmpuint(buf[36], ==, 3);
	g_assert_cmpuint(buf[37], ==, 6);
	g_assert_cmpuint(buf[38], ==, 9);
	g_assert_cmpuint(buf[39], ==, 5);
	g_assert_cmpuint(rd32(buf + 40), ==, 6);
	g_assert_cmpmem(buf + 44, 26, "node1\0root@pam\0task\0hello\0", 26);
	/* the same bytes as the independent writer */
	uint8_t ref[CLOG_MAX_ENTRY_SIZE];
	g_assert_cmpuint(spec_entry(ref, 7, 1700000000, "node1", "root@pam", "task", "hello"), ==,
			 size);
	wr32(ref + 32, 1234);
	ref[36] = 3;
	g_assert_cmpmem(buf, size, ref, size);

	/* in a ring: header, first entry at 8, next at the aligned end */
	clog_t *cl = clog_new(0);
	g_assert_cmpuint(clog_size(cl), ==, 131072);
	const uint8_t *r = raw_ring(cl);
	g_assert_cmpuint(rd32(r), ==, 131072);
	g_assert_cmpuint(rd32(r + 4), ==, 0);
	clog_entry_t e;
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpint(clog_insert(cl, &e), ==, 1);
	r = raw_ring(cl);
	g_assert_cmpuint(rd32(r + 4), ==, 8);
	g_assert_cmpuint(rd32(r + 8), ==, 0);                 /* prev */
	g_assert_cmpuint(rd32(r + 12), ==, 8 + align8(size)); /* next */
	g_assert_cmpmem(r + 16, size - 8, buf + 8, size - 8);
	g_assert_cmpint(add(cl, "node1", "root@pam", 1700000001, "second"), ==, 1);
	r = raw_ring(cl);
	g_assert_cmpuint(rd32(r + 4), ==, 8 + align8(size));
	g_assert_cmpuint(rd32(r + 8 + align8(size)), ==, 8);
	clog_free(cl);

	g_assert_null(clog_new(CLOG_MIN_SIZE - 8));
	g_assert_null(clog_new(CLOG_MAX_SIZE + 8));
	g_assert_null(clog_new(CLOG_MIN_SIZE + 1));
	cl = clog_new(CLOG_MIN_SIZE);
	g_assert_nonnull(cl);
	g_assert_null(clog_free(cl));
	g_assert_null(clog_free(NULL));
}

static void test_pack(void)
{
	uint8_t buf[CLOG_MAX_ENTRY_SIZE];
	g_assert_cmpint(clog_entry_pack(buf, sizeof(buf), "n", "u", "t", 1, 1, 8, 1, "m"), ==,
			-EINVAL);
	g_assert_cmpint(clog_entry_pack(buf, sizeof(buf) - 1, "n", "u", "t", 1, 1, 7, 1, "m"), ==,
			-EINVAL);
	g_assert_cmpint(clog_entry_pack(buf, sizeof(buf), NULL, "u", "t", 1, 1, 7, 1, "m"), ==,
			-EINVAL);
	/* names cut to 254 characters; the digest covers 255 bytes of the
	 * caller's string, as in the original */
	char *longname = g_strnfill(300, 'x');
	int size = clog_entry_pack(buf, sizeof(buf), longname, longname, longname, 1, 1, 0, 1, "m");
	g_assert_cmpint(size, ==, 48 + 3 * 255 + 2);
	clog_entry_t e;
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpuint(strlen(e.node), ==, 254);
	g_assert_cmpuint(strlen(e.ident), ==, 254);
	g_assert_cmpuint(strlen(e.tag), ==, 254);
	g_assert_cmphex(e.node_digest, ==, fnv(longname, 255));
	g_free(longname);
	/* an overlong msg is cut so the entry keeps 4096 bytes and its NUL */
	char *big = g_strnfill(10000, 'y');
	size = clog_entry_pack(buf, sizeof(buf), "n", "u", "t", 1, 1, 0, 1, big);
	g_assert_cmpint(size, ==, 4096);
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpuint(strlen(e.msg), ==, 4096 - 48 - 6 - 1);
	g_free(big);
	/* a cut never splits an escape: all "\u00e9" or nothing */
	GString *s = g_string_new(NULL);
	for (int i = 0; i < 2000; i++)
		g_string_append(s, "\xc3\xa9");
	size = clog_entry_pack(buf, sizeof(buf), "n", "u", "t", 1, 1, 0, 1, s->str);
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpuint(strlen(e.msg) % 6, ==, 0);
	g_assert_cmpint(size, <=, 4096);
	g_string_free(s, TRUE);

	/* the sanitiser: " escaped, controls and DEL as #NNN, BMP as \u,
	 * beyond dropped, backslash left alone */
	size = clog_entry_pack(buf, sizeof(buf), "n", "u", "t", 1, 1, 0, 1,
			       "a\"b\\c\nd\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!");
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpstr(e.msg, ==, "a\\\"b\\c#010d#127\\u00e9\\u20ac!");
	/* not UTF-8: bytes over 126 become ?, controls #0NN */
	size = clog_entry_pack(buf, sizeof(buf), "n", "u", "t", 1, 1, 0, 1, "x\xff\"\t\x7fy");
	g_assert_cmpint(clog_entry_decode(buf, size, &e), ==, 0);
	g_assert_cmpstr(e.msg, ==, "x?\\\"#009?y");
}

/* --- add, iterate, wrap, dedup -------------------------------------------- */

static void test_add_iterate(void)
{
	clog_t *cl = clog_new(0);
	g_assert_cmpint(count_entries(cl), ==, 0);
	g_assert_cmpint(add(cl, "n1", "alice", 10, "one"), ==, 1);
	g_assert_cmpint(add(cl, "n1", "bob", 11, "two"), ==, 1);
	g_assert_cmpint(add(cl, "n2", "carol", 5, "three"), ==, 1);
	g_assert_cmpint(clog_add(cl, "n1", "x", "t", 1, 8, 12, "bad priority", NULL), ==, -EINVAL);
	GBytes *payload = NULL;
	g_assert_cmpint(clog_add(cl, "n1", "dave", "t", 1, 0, 12, "four", &payload), ==, 1);
	clog_iter_t it;
	clog_entry_t e;
	const char *want[] = {"four", "three", "two", "one"};
	clog_iter_init(&it, cl);
	for (int i = 0; i < 4; i++) {
		g_assert_cmpint(clog_iter_next(&it, &e), ==, 1);
		g_assert_cmpstr(e.msg, ==, want[i]);
		g_assert_cmpuint(e.uid, ==, 4 - i); /* the failed add used no uid */
	}
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 0);
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 0);
	/* the payload is a LOG message of the entry */
	gsize len;
	const uint8_t *p = g_bytes_get_data(payload, &len);
	g_assert_cmpint(clog_entry_decode(p, len, &e), ==, 0);
	g_assert_cmpstr(e.ident, ==, "dave");
	g_assert_cmpuint(e.uid, ==, 4);
	g_bytes_unref(payload);
	clog_free(cl);
}

static void test_wrap(void)
{
	clog_t *cl = clog_new(0);
	char *msg = g_strnfill(900, 'm');
	const int total = 400; /* ~960 bytes each: the ring laps about three times */
	for (int i = 0; i < total; i++)
		g_assert_cmpint(add(cl, "n1", "root", 1000 + i, msg), ==, 1);
	g_free(msg);
	clog_iter_t it;
	clog_entry_t e;
	uint32_t expect = total, bytes = 0;
	int n = 0, r;
	bool wrapped = false;
	uint32_t last_pos = 0;
	clog_iter_init(&it, cl);
	while ((r = clog_iter_next(&it, &e)) > 0) {
		g_assert_cmpuint(e.uid, ==, expect); /* newest first, none missing */
		g_assert_cmpuint(e.time, ==, 1000 + expect - 1);
		if (last_pos && e.pos > last_pos)
			wrapped = true;
		last_pos = e.pos;
		bytes += align8(e.size);
		expect--;
		n++;
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_true(wrapped);
	/* the oldest are gone; what is left fits the ring */
	g_assert_cmpint(n, <, total);
	g_assert_cmpint(n, >, 120);
	g_assert_cmpuint(bytes, <=, CLOG_DEFAULT_SIZE - 8);
	/* the walked ring is what a peer would accept */
	g_assert_cmpint(decode(raw_ring(cl), clog_size(cl)), ==, 0);
	clog_free(cl);
}

/* A ring lapped by hand: the walk shows the new lap, then the old lap down
 * to one maximal entry past the newest, and no further. */
static void test_wrap_walk_rule(void)
{
	const uint32_t size = CLOG_MIN_SIZE;
	uint8_t *b = spec_ring(size);
	char *msg = g_strnfill(400, 'o');
	uint32_t at = 8, prev = 0, uid = 1;
	GArray *old = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	for (;;) {
		uint32_t next = at + align8(48 + 6 + 9 + 4 + 401);
		if (next >= size)
			break;
		g_array_append_val(old, at);
		spec_put(b, at, prev, uid, 100 + uid, "node1", msg);
		uid++;
		prev = at;
		at = next;
	}
	/* the new lap: two entries from 8, the first linked to the old last */
	uint32_t p1 = 8;
	uint32_t p2 = spec_put(b, p1, prev, uid++, 500, "node1", "new one");
	spec_put(b, p2, p1, uid++, 501, "node1", "new two");
	wr32(b + 4, p2);
	uint32_t visible_old = 0;
	for (guint i = 0; i < old->len; i++)
		if (g_array_index(old, uint32_t, i) > p2 + 4096)
			visible_old++;
	g_assert_cmpuint(visible_old, >, 0);

	clog_t *cl = NULL;
	g_assert_cmpint(clog_state_decode(b, size, &cl), ==, 0);
	g_assert_cmpint(count_entries(cl), ==, 2 + (int)visible_old);
	clog_iter_t it;
	clog_entry_t e;
	clog_iter_init(&it, cl);
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 1);
	g_assert_cmpstr(e.msg, ==, "new two");
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 1);
	g_assert_cmpstr(e.msg, ==, "new one");
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 1);
	g_assert_cmpuint(e.pos, ==, prev); /* the old lap's newest */
	clog_free(cl);

	/* the old lap's oldest visible entry jumps up a second time: refused */
	uint32_t oldest = 0;
	for (guint i = 0; i < old->len; i++) {
		uint32_t p = g_array_index(old, uint32_t, i);
		if (p > p2 + 4096) {
			oldest = p;
			break;
		}
	}
	uint8_t *c = g_memdup2(b, size);
	wr32(c + oldest, prev);
	g_assert_cmpint(decode(c, size), ==, -EPROTO);
	/* pointing at itself: refused, where the original loops for ever */
	wr32(c + oldest, oldest);
	g_assert_cmpint(decode(c, size), ==, -EPROTO);
	/* or down into the new lap: a cycle through 8 (the original would
	 * walk it for ever) */
	wr32(c + oldest, p1);
	g_assert_cmpint(decode(c, size), ==, -EPROTO);
	/* its prev 0: the walk just ends there */
	wr32(c + oldest, 0);
	g_assert_cmpint(decode(c, size), ==, 0);
	/* a wrap that does not come from offset 8: refused */
	memcpy(c, b, size);
	wr32(c + p2, prev);
	g_assert_cmpint(decode(c, size), ==, -EPROTO);
	/* the new lap's first entry linked to an old entry that the new lap
	 * passed: that ends the walk there */
	memcpy(c, b, size);
	g_assert_cmpuint(g_array_index(old, uint32_t, 0), ==, 8); /* the first entry */
	wr32(c + p1, 8);
	g_assert_cmpint(decode(c, size), ==, -EPROTO); /* 8 -> 8 is a loop */
	wr32(c + p1, p2);
	g_assert_cmpint(decode(c, size), ==, 0); /* prev in (8, head]: stop */
	g_free(c);
	g_array_free(old, TRUE);
	g_free(msg);
	g_free(b);
}

static void test_dedup(void)
{
	clog_t *cl = clog_new(0);
	uint8_t buf[CLOG_MAX_ENTRY_SIZE];
	clog_entry_t e;
	int s;
#define PUT(node, uid, time, want)                                                                 \
	do {                                                                                       \
		s = clog_entry_pack(buf, sizeof(buf), node, "u", "t", uid, 1, 1, time, "m");       \
		g_assert_cmpint(clog_entry_decode(buf, s, &e), ==, 0);                             \
		g_assert_cmpint(clog_insert(cl, &e), ==, want);                                    \
	} while (0)
	PUT("a", 5, 100, 1);
	PUT("a", 5, 100, 0); /* the same entry again */
	PUT("a", 4, 100, 0); /* same time, lower uid */
	PUT("a", 9, 99, 0);  /* earlier time, whatever the uid */
	PUT("a", 6, 100, 1); /* same time, higher uid */
	PUT("a", 1, 101, 1); /* later time, any uid */
	PUT("b", 1, 50, 1);  /* another node has its own memory */
	PUT("b", 1, 50, 0);
#undef PUT
	g_assert_cmpint(count_entries(cl), ==, 4);
	/* a clog_entry_t whose bytes disagree with it is refused */
	s = clog_entry_pack(buf, sizeof(buf), "c", "u", "t", 1, 1, 1, 1, "m");
	g_assert_cmpint(clog_entry_decode(buf, s, &e), ==, 0);
	e.size += 8;
	g_assert_cmpint(clog_insert(cl, &e), ==, -EINVAL);
	e.size -= 8;
	buf[37] = 0;
	g_assert_cmpint(clog_insert(cl, &e), ==, -EINVAL);
	g_assert_cmpint(clog_insert(cl, NULL), ==, -EINVAL);
	clog_free(cl);
}

/* --- JSON ---------------------------------------------------------------- */

static JsonArray *parse_data(const char *json, JsonParser **parser)
{
	GError *err = NULL;
	*parser = json_parser_new();
	g_assert_true(json_parser_load_from_data(*parser, json, -1, &err));
	g_assert_no_error(err);
	JsonObject *o = json_node_get_object(json_parser_get_root(*parser));
	g_assert_cmpuint(json_object_get_size(o), ==, 1);
	return json_object_get_array_member(o, "data");
}

static void test_json_structure(void)
{
	clog_t *cl = clog_new(0);
	char *j = clog_dump_json(cl, NULL, 50);
	g_assert_cmpstr(j, ==, "{\n\"data\": [\n]\n}\n");
	g_free(j);
	g_assert_cmpint(clog_add(cl, "node1", "root@pam", "task", 321, 6, 1700000000, "hi", NULL),
			==, 1);
	g_assert_cmpint(add(cl, "node1", "root@pam", 1700000001, "there"), ==, 1);
	j = clog_dump_json(cl, NULL, 50);
	g_assert_cmpstr(j, ==,
			"{\n\"data\": [\n"
			"{\"uid\":2,\"time\":1700000001,\"pri\":5,\"tag\":\"tag\",\"pid\":77,"
			"\"node\":\"node1\",\"user\":\"root@pam\",\"msg\":\"there\"},\n"
			"{\"uid\":1,\"time\":1700000000,\"pri\":6,\"tag\":\"task\",\"pid\":321,"
			"\"node\":\"node1\",\"user\":\"root@pam\",\"msg\":\"hi\"}\n"
			"]\n}\n");
	g_free(j);
	j = clog_dump_json(cl, NULL, 0);
	g_assert_cmpstr(j, ==, "{\n\"data\": [\n]\n}\n");
	g_free(j);
	clog_free(cl);
}

static void test_json_escaping(void)
{
	clog_t *cl = clog_new(0);
	/* names travel unescaped: quotes, backslashes and controls in them */
	g_assert_cmpint(clog_add(cl, "no\"de", "us\\er\n", "t\tag\x01", 1, 6, 10,
				 "q\"b\\s\nt\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \\u0041 \\x",
				 NULL),
			==, 1);
	/* not UTF-8 anywhere */
	g_assert_cmpint(clog_add(cl, "n\xff", "u\xc3", "t", 1, 6, 11, "m\xfe\"", NULL), ==, 1);
	char *j = clog_dump_json(cl, NULL, 50);
	g_assert_true(g_utf8_validate(j, -1, NULL));
	JsonParser *p;
	JsonArray *a = parse_data(j, &p);
	g_assert_cmpuint(json_array_get_length(a), ==, 2);
	JsonObject *o = json_array_get_object_element(a, 1);
	g_assert_cmpstr(json_object_get_string_member(o, "node"), ==, "no\"de");
	g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "us\\er\n");
	g_assert_cmpstr(json_object_get_string_member(o, "tag"), ==, "t\tag\x01");
	/* msg as a reader of the original's JSON sees it: \" and \uXXXX read
	 * back, controls as #NNN, characters beyond the BMP dropped, other
	 * backslashes kept (the original's output is invalid JSON there) */
	g_assert_cmpstr(json_object_get_string_member(o, "msg"), ==,
			"q\"b\\s#010t#127\xc3\xa9\xe2\x82\xac A \\x");
	o = json_array_get_object_element(a, 0);
	g_assert_cmpstr(json_object_get_string_member(o, "node"), ==, "n\xef\xbf\xbd");
	g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "u\xef\xbf\xbd");
	g_assert_cmpstr(json_object_get_string_member(o, "msg"), ==, "m?\"");
	g_object_unref(p);
	g_free(j);
	clog_free(cl);

	/* a peer's msg with raw controls, a bad escape and \u0000 */
	const uint32_t size = CLOG_MIN_SIZE;
	uint8_t *b = spec_ring(size);
	spec_put(b, 8, 0, 1, 1, "node1", "a\x02\\u0000\\ud800\\u12");
	wr32(b + 4, 8);
	g_assert_cmpint(clog_state_decode(b, size, &cl), ==, 0);
	j = clog_dump_json(cl, NULL, 50);
	a = parse_data(j, &p);
	o = json_array_get_object_element(a, 0);
	g_assert_cmpstr(json_object_get_string_member(o, "msg"), ==,
			"a\x02\xef\xbf\xbd\xef\xbf\xbd\\u12");
	g_object_unref(p);
	g_free(j);
	clog_free(cl);
	g_free(b);
}

static void test_json_filter_max(void)
{
	clog_t *cl = clog_new(0);
	for (int i = 0; i < 10; i++)
		g_assert_cmpint(add(cl, "n1", i % 2 ? "bob@pam" : "alice@pam", 100 + i, "m"), ==,
				1);
	JsonParser *p;
	char *j = clog_dump_json(cl, "alice@pam", 3);
	JsonArray *a = parse_data(j, &p);
	g_assert_cmpuint(json_array_get_length(a), ==, 3);
	for (guint i = 0; i < 3; i++) {
		JsonObject *o = json_array_get_object_element(a, i);
		g_assert_cmpstr(json_object_get_string_member(o, "user"), ==, "alice@pam");
		g_assert_cmpint(json_object_get_int_member(o, "time"), ==, 108 - 2 * i);
	}
	g_object_unref(p);
	g_free(j);
	/* max counts entries written, not entries looked at */
	j = clog_dump_json(cl, "alice@pam", 50);
	a = parse_data(j, &p);
	g_assert_cmpuint(json_array_get_length(a), ==, 5);
	g_object_unref(p);
	g_free(j);
	j = clog_dump_json(cl, "", 4);
	a = parse_data(j, &p);
	g_assert_cmpuint(json_array_get_length(a), ==, 4);
	g_object_unref(p);
	g_free(j);
	j = clog_dump_json(cl, "nobody", 50);
	g_assert_cmpstr(j, ==, "{\n\"data\": [\n]\n}\n");
	g_free(j);
	/* the filter compares digests of the whole name with its NUL */
	j = clog_dump_json(cl, "alice", 50);
	g_assert_cmpstr(j, ==, "{\n\"data\": [\n]\n}\n");
	g_free(j);
	clog_free(cl);
}

/* --- state and merge ---------------------------------------------------- */

static GPtrArray *walk(const clog_t *cl)
{
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	clog_iter_t it;
	clog_entry_t e;
	clog_iter_init(&it, cl);
	while (clog_iter_next(&it, &e) > 0)
		g_ptr_array_add(a, g_strdup_printf("%u/%s/%u/%s", e.time, e.node, e.uid, e.msg));
	return a;
}

static void assert_same_walk(const clog_t *x, const clog_t *y)
{
	g_autoptr(GPtrArray) a = walk(x);
	g_autoptr(GPtrArray) b = walk(y);
	g_assert_cmpuint(a->len, ==, b->len);
	for (guint i = 0; i < a->len; i++)
		g_assert_cmpstr(a->pdata[i], ==, b->pdata[i]);
}

static void test_state_roundtrip(void)
{
	clog_t *cl = clog_new(0);
	/* times out of ring order across nodes: the state comes out sorted */
	g_assert_cmpint(add(cl, "n1", "u", 30, "c"), ==, 1);
	g_assert_cmpint(add(cl, "n2", "u", 10, "a"), ==, 1);
	g_assert_cmpint(add(cl, "n3", "u", 20, "b"), ==, 1);
	g_autoptr(GBytes) st = clog_state_encode(cl);
	g_assert_cmpuint(g_bytes_get_size(st), ==, CLOG_DEFAULT_SIZE);
	g_autoptr(GPtrArray) w = walk(cl);
	g_assert_cmpuint(w->len, ==, 3);
	g_assert_true(g_str_has_prefix(w->pdata[0], "30/"));
	g_assert_true(g_str_has_prefix(w->pdata[1], "20/"));
	g_assert_true(g_str_has_prefix(w->pdata[2], "10/"));
	/* the filter survives the sort */
	g_assert_cmpint(add(cl, "n1", "u", 29, "old"), ==, 0);
	clog_t *back = NULL;
	gsize len;
	const uint8_t *p = g_bytes_get_data(st, &len);
	g_assert_cmpint(clog_state_decode(p, len, &back), ==, 0);
	assert_same_walk(cl, back);
	g_autoptr(GBytes) again = clog_state_encode(back);
	g_assert_true(g_bytes_equal(st, again));
	clog_free(back);
	/* a full, wrapped ring too */
	char *msg = g_strnfill(700, 'z');
	for (int i = 0; i < 500; i++)
		g_assert_cmpint(add(cl, "n4", "u", 100 + i, msg), ==, 1);
	g_free(msg);
	g_assert_cmpint(clog_state_decode(raw_ring(cl), clog_size(cl), &back), ==, 0);
	assert_same_walk(cl, back);
	clog_free(back);
	g_autoptr(GBytes) full = clog_state_encode(cl);
	p = g_bytes_get_data(full, &len);
	g_assert_cmpint(clog_state_decode(p, len, &back), ==, 0);
	assert_same_walk(cl, back);
	clog_free(back);
	/* an empty ring */
	clog_t *empty = clog_new(0);
	g_autoptr(GBytes) none = clog_state_encode(empty);
	p = g_bytes_get_data(none, &len);
	g_assert_cmpint(clog_state_decode(p, len, &back), ==, 0);
	g_assert_cmpint(count_entries(back), ==, 0);
	clog_free(back);
	clog_free(empty);
	clog_free(cl);
}

static void test_sort_collapses(void)
{
	const uint32_t size = CLOG_MIN_SIZE;
	uint8_t *b = spec_ring(size);
	uint32_t p2 = spec_put(b, 8, 0, 1, 50, "node1", "same");
	uint32_t p3 = spec_put(b, p2, 8, 1, 50, "node1", "same");
	spec_put(b, p3, p2, 2, 40, "node1", "older but newer in the ring");
	wr32(b + 4, p3);
	clog_t *cl = NULL;
	g_assert_cmpint(clog_state_decode(b, size, &cl), ==, 0);
	g_assert_cmpint(count_entries(cl), ==, 3);
	g_autoptr(GBytes) st = clog_state_encode(cl);
	g_assert_nonnull(st);
	g_autoptr(GPtrArray) w = walk(cl);
	g_assert_cmpuint(w->len, ==, 2);
	g_assert_cmpstr(w->pdata[0], ==, "50/node1/1/same");
	g_assert_cmpstr(w->pdata[1], ==, "40/node1/2/older but newer in the ring");
	clog_free(cl);
	g_free(b);
}

static clog_t *log_of(const char *node, const uint32_t *times, int n)
{
	clog_t *cl = clog_new(0);
	for (int i = 0; i < n; i++) {
		char m[32];
		g_snprintf(m, sizeof(m), "%s@%u", node, times[i]);
		g_assert_cmpint(add(cl, node, "root@pam", times[i], m), ==, 1);
	}
	return cl;
}

static void test_merge_order(void)
{
	clog_t *a = log_of("a", (uint32_t[]){10, 30, 50}, 3);
	clog_t *b = log_of("b", (uint32_t[]){20, 40, 60}, 3);
	/* a peer's copy of a: its entries collapse with ours */
	g_autoptr(GBytes) sa = clog_state_encode(a);
	clog_t *a2 = NULL;
	gsize len;
	const uint8_t *p = g_bytes_get_data(sa, &len);
	g_assert_cmpint(clog_state_decode(p, len, &a2), ==, 0);
	clog_t *logs[] = {NULL, b, a2, NULL};
	g_assert_cmpint(clog_merge(a, logs, 4, 0), ==, 6);
	g_autoptr(GPtrArray) w = walk(a);
	g_assert_cmpuint(w->len, ==, 6);
	const char *want[] = {"60/b/3/b@60", "50/a/3/a@50", "40/b/2/b@40",
			      "30/a/2/a@30", "20/b/1/b@20", "10/a/1/a@10"};
	for (int i = 0; i < 6; i++)
		g_assert_cmpstr(w->pdata[i], ==, want[i]);
	g_assert_cmpuint(clog_size(a), ==, CLOG_DEFAULT_SIZE);
	/* the filter now knows b's entries */
	uint8_t buf[CLOG_MAX_ENTRY_SIZE];
	clog_entry_t e;
	int s = clog_entry_pack(buf, sizeof(buf), "b", "u", "t", 3, 1, 1, 60, "dup");
	g_assert_cmpint(clog_entry_decode(buf, s, &e), ==, 0);
	g_assert_cmpint(clog_insert(a, &e), ==, 0);
	s = clog_entry_pack(buf, sizeof(buf), "b", "u", "t", 4, 1, 1, 60, "new");
	g_assert_cmpint(clog_entry_decode(buf, s, &e), ==, 0);
	g_assert_cmpint(clog_insert(a, &e), ==, 1);
	/* the uid counter goes on */
	g_assert_cmpint(add(a, "a", "u", 70, "after"), ==, 1);
	w = (g_ptr_array_unref(w), walk(a));
	g_assert_cmpstr(w->pdata[0], ==, "70/a/4/after");

	g_assert_cmpint(clog_merge(a, logs, 4, 4), ==, -EINVAL);
	g_assert_cmpint(clog_merge(a, NULL, 1, 0), ==, -EINVAL);
	/* alone: just the local log again */
	g_assert_cmpint(clog_merge(a, (clog_t *[]){NULL}, 1, 0), ==, 8);
	clog_free(a);
	clog_free(a2);
	clog_free(b);
}

static void test_merge_limit_ties(void)
{
	/* big: 66 entries of 1960 bytes (aligned) at time 100, filling the
	 * ring without wrapping: more than CLOG_MERGE_LIMIT */
	clog_t *big = clog_new(0);
	char *msg = g_strnfill(1900, 'b');
	for (int i = 0; i < 66; i++)
		g_assert_cmpint(add(big, "big", "u", 100, msg), ==, 1);
	g_free(msg);
	g_assert_cmpint(count_entries(big), ==, 66);
	clog_t *small = log_of("small", (uint32_t[]){100, 100, 100}, 3);
	/* at equal times the lowest slot goes first: big fills the limit */
	clog_t *l1 = clog_new(0);
	int n1 = clog_merge(l1, (clog_t *[]){NULL, big, small}, 3, 0);
	g_autoptr(GPtrArray) w1 = walk(l1);
	for (guint i = 0; i < w1->len; i++)
		g_assert_null(strstr(w1->pdata[i], "small"));
	g_assert_cmpint(n1, ==, (int)w1->len);
	/* the other order: small's three first, then big up to the limit */
	clog_t *l2 = clog_new(0);
	int n2 = clog_merge(l2, (clog_t *[]){NULL, small, big}, 3, 0);
	g_autoptr(GPtrArray) w2 = walk(l2);
	g_assert_cmpint(n2, ==, (int)w2->len);
	int smalls = 0;
	for (guint i = 0; i < w2->len; i++)
		smalls += strstr(w2->pdata[i], "small") != NULL;
	g_assert_cmpint(smalls, ==, 3);
	/* the limit: taken bytes reach CLOG_MERGE_LIMIT, nothing wraps */
	uint32_t bytes = 0;
	clog_iter_t it;
	clog_entry_t e;
	clog_iter_init(&it, l2);
	while (clog_iter_next(&it, &e) > 0)
		bytes += align8(e.size);
	g_assert_cmpuint(bytes, >=, CLOG_MERGE_LIMIT);
	g_assert_cmpuint(bytes, <, CLOG_MERGE_LIMIT + CLOG_MAX_ENTRY_SIZE);
	g_assert_cmpint(count_entries(big), >, n2 - 3); /* some of big were left out */
	clog_free(l1);
	clog_free(l2);
	clog_free(big);
	clog_free(small);
}

static void test_merge_time_zero(void)
{
	/* the original never picks a log whose next entry has time 0 */
	clog_t *a = log_of("a", (uint32_t[]){0}, 1);
	clog_t *b = log_of("b", (uint32_t[]){5}, 1);
	g_assert_cmpint(clog_merge(a, (clog_t *[]){NULL, b}, 2, 0), ==, 2);
	g_assert_cmpint(count_entries(a), ==, 2);
	clog_free(a);
	clog_free(b);
}

/* --- malformed input ------------------------------------------------------ */

static void test_bad_entries(void)
{
	uint8_t buf[CLOG_MAX_ENTRY_SIZE + 64];
	uint32_t size = spec_entry(buf, 1, 2, "node1", "root", "tag", "msg");
	g_assert_cmpint(decode_entry(buf, size), ==, 0);
	/* every truncation, and extra bytes */
	for (uint32_t n = 0; n < size; n++)
		g_assert_cmpint(decode_entry(buf, n), ==, -EINVAL);
	g_assert_cmpint(decode_entry(buf, size + 1), ==, -EINVAL);
	/* the 48 base is part of the contract: 44 + strings is short */
	g_assert_cmpint(decode_entry(buf, size - 4), ==, -EINVAL);
	g_assert_cmpint(clog_entry_decode(NULL, size, &(clog_entry_t){0}), ==, -EINVAL);
	g_assert_cmpint(clog_entry_decode(buf, size, NULL), ==, -EINVAL);

	uint8_t c[sizeof(buf)];
	/* a string without its NUL at its last byte */
	for (uint32_t off = 44; off < size - 4; off++) {
		memcpy(c, buf, size);
		if (c[off] != 0)
			continue;
		c[off] = 'x';
		g_assert_cmpint(decode_entry(c, size), ==, -EPROTO);
	}
	/* zero lengths: shift one string's length onto its neighbour */
	memcpy(c, buf, size);
	c[37] = 0;
	c[38] += 6;
	g_assert_cmpint(decode_entry(c, size), ==, -EPROTO);
	memcpy(c, buf, size);
	c[39] = 0;
	wr32(c + 40, rd32(c + 40) + 4);
	g_assert_cmpint(decode_entry(c, size), ==, -EPROTO);
	memcpy(c, buf, size);
	c[39] += 4;
	wr32(c + 40, 0);
	g_assert_cmpint(decode_entry(c, size), ==, -EPROTO);
	/* lengths that overflow or exceed an entry */
	memcpy(c, buf, size);
	wr32(c + 40, 0xffffffffu);
	g_assert_cmpint(decode_entry(c, size), ==, -EINVAL);
	wr32(c + 40, 0xffffffffu - 48 - 6 - 5 - 4 + 1); /* the sum wraps to 0 in 32 bits */
	g_assert_cmpint(decode_entry(c, size), ==, -EINVAL);
	wr32(c + 40, 0x80000000u);
	g_assert_cmpint(decode_entry(c, size), ==, -EINVAL);
	/* more than 4096 bytes, consistent otherwise */
	uint8_t *huge = g_malloc0(4200);
	char *m = g_strnfill(4200 - 48 - 6 - 5 - 4 - 1, 'h');
	uint32_t hs = spec_entry(huge, 1, 2, "node1", "root", "tag", m);
	g_assert_cmpuint(hs, ==, 4200);
	g_assert_cmpint(decode_entry(huge, hs), ==, -EPROTO);
	g_free(m);
	g_free(huge);
}

/* a valid two-entry ring, then each defect on its own */
static void test_bad_states(void)
{
	const uint32_t size = CLOG_MIN_SIZE;
	uint32_t pos[3];
	uint8_t *good = spec_chain(size, 3, pos);
	g_assert_cmpint(decode(good, size), ==, 0);
	uint8_t *b = g_malloc(size);
#define FRESH() memcpy(b, good, size)

	/* framing */
	g_assert_cmpint(clog_state_decode(NULL, size, &(clog_t *){NULL}), ==, -EINVAL);
	g_assert_cmpint(clog_state_decode(good, size, NULL), ==, -EINVAL);
	for (uint32_t n = 0; n < 64; n++)
		g_assert_cmpint(decode(good, n), ==, -EINVAL);
	g_assert_cmpint(decode(good, size - 1), ==, -EINVAL);
	g_assert_cmpint(decode(good, size - 8), ==, -EINVAL);
	FRESH();
	wr32(b, size + 8);
	g_assert_cmpint(decode(b, size), ==, -EINVAL);
	uint8_t *longer = g_malloc0(size + 8);
	memcpy(longer, good, size);
	g_assert_cmpint(decode(longer, size + 8), ==, -EINVAL); /* size says less */
	g_free(longer);
	/* sizes the original never makes */
	uint8_t *tiny = spec_chain(4096, 1, NULL);
	g_assert_cmpint(decode(tiny, 4096), ==, -EINVAL);
	g_free(tiny);
	uint8_t *odd = spec_chain(size + 4, 1, NULL);
	g_assert_cmpint(decode(odd, size + 4), ==, -EINVAL);
	g_free(odd);
	uint8_t *hdr = spec_ring(16);
	wr32(hdr, 0xfffffff8u); /* a size field far over the limit */
	g_assert_cmpint(decode(hdr, 16), ==, -EINVAL);
	g_free(hdr);

	/* cpos outside, in the header, unaligned, too close to the end */
	uint32_t bad_cpos[] = {4,           7,        12,        pos[2] + 1, size,
			       size + 4096, size - 8, size - 48, 0xffffffffu};
	for (size_t i = 0; i < G_N_ELEMENTS(bad_cpos); i++) {
		FRESH();
		wr32(b + 4, bad_cpos[i]);
		g_assert_cmpint(decode(b, size), ==, -EPROTO);
	}
	/* an entry whose strings run past the end of the buffer */
	FRESH();
	uint32_t last = size - 8 - align8(48 + 6 + 9 + 4 + 2);
	spec_put(b, last, 0, 9, 9, "node1", "m");
	wr32(b + 4, last);
	wr32(b + last + 40, 200);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* ... exactly to the end: next would be the buffer's end */
	FRESH();
	last = size - 64;
	uint32_t es = spec_entry(b + last, 9, 9, "n", "u", "t", "");
	wr32(b + last + 40, 64 - es + 1);
	b[size - 1] = 0;
	wr32(b + last + 4, size);
	wr32(b + 4, last);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* a wrong next */
	FRESH();
	wr32(b + pos[2] + 4, rd32(b + pos[2] + 4) + 8);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* an older entry that does not end where the newer starts (overlap) */
	FRESH();
	wr32(b + pos[2], pos[1] + 8);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	FRESH();
	wr32(b + pos[1] + 40, rd32(b + pos[1] + 40) + 8); /* longer msg */
	wr32(b + pos[1] + 4, rd32(b + pos[1] + 4) + 8);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* prev into the header or unaligned */
	FRESH();
	wr32(b + pos[0], 4);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* unterminated strings, zero and huge lengths in a ring entry */
	FRESH();
	b[pos[2] + 44 + 5] = 'x'; /* node1's NUL */
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	FRESH();
	b[pos[1] + 37] = 0;
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	FRESH();
	wr32(b + pos[0] + 40, 0x80000000u);
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	FRESH();
	memset(b + pos[2] + 44 + 6 + 9 + 4, 'x', 12); /* msg and trailing bytes */
	g_assert_cmpint(decode(b, size), ==, -EPROTO);
	/* after all that, the good one still decodes */
	g_assert_cmpint(decode(good, size), ==, 0);
#undef FRESH
	g_free(b);
	g_free(good);
}

/* The original cuts an overlong msg_len by up to 3 and keeps the NUL in
 * the 4 trailing bytes: a ring may carry it, a LOG message may not. */
static void test_trailing_bytes_quirk(void)
{
	const uint32_t size = CLOG_MIN_SIZE;
	uint8_t *b = spec_ring(size);
	char *m = g_strnfill(4096 - 48 - 6 - 9 - 4 - 1 + 2, 'q');
	uint32_t es = spec_entry(b + 8, 1, 1, "node1", "root@pam", "tag", m);
	g_assert_cmpuint(es, ==, 4098);
	/* cut as the original does: msg_len - 2, size 4096, NUL outside */
	wr32(b + 8 + 40, rd32(b + 8 + 40) - 2);
	wr32(b + 8 + 4, 8 + 4096);
	wr32(b + 4, 8);
	clog_t *cl = NULL;
	g_assert_cmpint(clog_state_decode(b, size, &cl), ==, 0);
	clog_iter_t it;
	clog_entry_t e;
	clog_iter_init(&it, cl);
	g_assert_cmpint(clog_iter_next(&it, &e), ==, 1);
	g_assert_cmpuint(e.size, ==, 4096);
	g_assert_cmpuint(strlen(e.msg), ==, strlen(m)); /* up to the NUL past msg_len */
	/* it survives a sort and a merge, NUL and all */
	g_autoptr(GBytes) st = clog_state_encode(cl);
	gsize len;
	const uint8_t *p = g_bytes_get_data(st, &len);
	g_assert_cmpint(decode(p, len), ==, 0);
	clog_t *other = clog_new(0);
	g_assert_cmpint(clog_merge(other, (clog_t *[]){NULL, cl}, 2, 0), ==, 1);
	g_autofree char *j = clog_dump_json(other, NULL, 1);
	g_assert_nonnull(strstr(j, "qqqq\"}"));
	/* as a LOG message it is refused */
	g_assert_cmpint(decode_entry(b + 8, 4096), ==, -EPROTO);
	clog_free(other);
	clog_free(cl);
	g_free(m);
	g_free(b);
}

/* Random damage to a valid state: decoded or refused, never a crash, and
 * whatever decodes can be walked, dumped, sorted and merged. */
static void test_random_damage(void)
{
	clog_t *src = clog_new(CLOG_MIN_SIZE);
	char *msg = g_strnfill(200, 'r');
	for (int i = 0; i < 300; i++)
		g_assert_cmpint(add(src, i % 3 ? "n1" : "n2", "u", 1000 + i, msg), ==, 1);
	g_free(msg);
	const uint32_t size = clog_size(src);
	const uint8_t *good = raw_ring(src);
	g_assert_cmpint(decode(good, size), ==, 0);
	uint8_t *b = g_malloc(size);
	int accepted = 0;
	int rounds = g_test_slow() ? 20000 : 200;
	for (int round = 0; round < rounds; round++) {
		memcpy(b, good, size);
		int flips = g_test_rand_int_range(1, 4);
		for (int k = 0; k < flips; k++) {
			uint32_t at = g_test_rand_int_range(4, (gint32)size);
			b[at] = (uint8_t)g_test_rand_int_range(0, 256);
		}
		clog_t *cl = NULL;
		int r = clog_state_decode(b, size, &cl);
		g_assert_true(r == 0 || r == -EPROTO || r == -EINVAL);
		if (r < 0)
			continue;
		accepted++;
		count_entries(cl);
		g_free(clog_dump_json(cl, "u", 1000));
		clog_t *mine = clog_new(0);
		g_assert_cmpint(clog_merge(mine, (clog_t *[]){NULL, cl}, 2, 0), >=, 0);
		g_bytes_unref(clog_state_encode(cl));
		clog_free(mine);
		clog_free(cl);
	}
	g_assert_cmpint(accepted, >, 0);
	g_free(b);
	clog_free(src);
}

/* A LOG payload written byte by byte from cluster.md §3.3 (layout checked
 * against the original's source): uid 1, time 0x65000000, two digests,
 * pid 1234, priority 6, "pve1", "root", "cluster", "hi"; size 48 + 5 + 5 +
 * 8 + 3 = 69 */
static const uint8_t golden_log[] = {
	0x00, 0x00, 0x00, 0x00,                         /* prev */
	0x00, 0x00, 0x00, 0x00,                         /* next */
	0x01, 0x00, 0x00, 0x00,                         /* uid */
	0x00, 0x00, 0x00, 0x65,                         /* time */
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* node_digest */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* ident_digest */
	0xd2, 0x04, 0x00, 0x00,                         /* pid 1234 */
	0x06,                                           /* priority */
	0x05,                                           /* node_len */
	0x05,                                           /* ident_len */
	0x08,                                           /* tag_len */
	0x03, 0x00, 0x00, 0x00,                         /* msg_len */
	'p',  'v',  'e',  '1',  0,                      /* node */
	'r',  'o',  'o',  't',  0,                      /* ident */
	'c',  'l',  'u',  's',  't',  'e',  'r',  0,    /* tag */
	'h',  'i',  0,                                  /* msg */
	0x00, 0x00, 0x00, 0x00,                         /* 4 bytes counted by the size */
};

static void test_golden_log_payload(void)
{
	g_assert_cmpuint(sizeof(golden_log), ==, 69);
	uint8_t *b = g_memdup2(golden_log, sizeof(golden_log));
	clog_entry_t e;
	g_assert_cmpint(clog_entry_decode(b, sizeof(golden_log), &e), ==, 0);
	g_assert_cmpuint(e.uid, ==, 1);
	g_assert_cmpuint(e.time, ==, 0x65000000u);
	g_assert_cmpuint(e.node_digest, ==, 0x8877665544332211ull);
	g_assert_cmpuint(e.ident_digest, ==, 0x0807060504030201ull);
	g_assert_cmpuint(e.pid, ==, 1234);
	g_assert_cmpuint(e.priority, ==, 6);
	g_assert_cmpstr(e.node, ==, "pve1");
	g_assert_cmpstr(e.ident, ==, "root");
	g_assert_cmpstr(e.tag, ==, "cluster");
	g_assert_cmpstr(e.msg, ==, "hi");
	g_assert_cmpuint(e.size, ==, 69);
	/* one byte short: refused */
	g_assert_cmpint(clog_entry_decode(b, sizeof(golden_log) - 1, &e), <, 0);
	g_free(b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/clog/golden-log-payload", test_golden_log_payload);
	g_test_add_func("/clog/digest", test_digest);
	g_test_add_func("/clog/layout", test_layout);
	g_test_add_func("/clog/pack", test_pack);
	g_test_add_func("/clog/add-iterate", test_add_iterate);
	g_test_add_func("/clog/wrap", test_wrap);
	g_test_add_func("/clog/wrap-walk-rule", test_wrap_walk_rule);
	g_test_add_func("/clog/dedup", test_dedup);
	g_test_add_func("/clog/json-structure", test_json_structure);
	g_test_add_func("/clog/json-escaping", test_json_escaping);
	g_test_add_func("/clog/json-filter-max", test_json_filter_max);
	g_test_add_func("/clog/state-roundtrip", test_state_roundtrip);
	g_test_add_func("/clog/sort-collapses", test_sort_collapses);
	g_test_add_func("/clog/merge-order", test_merge_order);
	g_test_add_func("/clog/merge-limit-ties", test_merge_limit_ties);
	g_test_add_func("/clog/merge-time-zero", test_merge_time_zero);
	g_test_add_func("/clog/bad-entries", test_bad_entries);
	g_test_add_func("/clog/bad-states", test_bad_states);
	g_test_add_func("/clog/trailing-bytes-quirk", test_trailing_bytes_quirk);
	g_test_add_func("/clog/random-damage", test_random_damage);
	return g_test_run();
}
