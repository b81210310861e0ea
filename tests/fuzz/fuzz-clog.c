/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-clog.c: libFuzzer target for the cluster log decoders (pmxcfs/clog.h):
 * clog_state_decode() on a peer's ring, clog_entry_decode() on a LOG payload,
 * and what the daemon then does with what they accept (walk, JSON, sort,
 * merge).
 *
 * The first byte chooses how the rest is used:
 *
 *   0  the rest is a whole state, as received (its size field must match);
 *   1  the rest is a LOG payload;
 *   2  the rest is laid into a ring of CLOG_MIN_SIZE bytes twice, at its
 *      start and at its end, and the size field is set, so that short
 *      inputs reach the entry checks and the wrap rules at both ends.
 *
 * Beyond "no crash, no read outside the buffer" (the sanitizers' part):
 *
 * - results are 0, -EINVAL or -EPROTO, the input is unchanged, and a
 *   second decode gives the same answer;
 * - a ring that decodes walks to its end without an error, every entry
 *   inside the buffer with its strings terminated inside its own bytes;
 * - its JSON is valid UTF-8 that json-glib parses, with at most max
 *   entries;
 * - sorting it (the state we would send) and merging it into a log of ours
 *   give rings that decode again, and a merge keeps every entry it reports.
 *
 * A failed check aborts with a message.
 */
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clog.h"
#include "fuzz.h"

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* an exact-size heap copy of @p[0..n), so a read past its end is caught */
static uint8_t *copy_of(const uint8_t *p, size_t n)
{
	uint8_t *b = g_malloc(n ? n : 1);
	if (n)
		memcpy(b, p, n);
	return b;
}

/* walk @cl to its end; returns the number of entries */
static unsigned walk(const clog_t *cl)
{
	clog_iter_t it;
	clog_entry_t e;
	unsigned n = 0;
	int r;
	clog_iter_init(&it, cl);
	while ((r = clog_iter_next(&it, &e)) > 0) {
		CHECK(e.pos >= CLOG_HEADER_SIZE && e.pos % CLOG_ALIGN == 0);
		CHECK(e.size >= CLOG_ENTRY_BASE && e.size <= CLOG_MAX_ENTRY_SIZE);
		CHECK((uint64_t)e.pos + e.size <= clog_size(cl));
		CHECK(e.raw == it.ring + e.pos);
		const char *end = (const char *)e.raw + e.size;
		CHECK(e.node == (const char *)e.raw + CLOG_ENTRY_TEXT_OFFS);
		CHECK(memchr(e.node, 0, (size_t)(end - e.node)) != NULL);
		CHECK(memchr(e.msg, 0, (size_t)(end - e.msg)) != NULL);
		n++;
		CHECK(n <= clog_size(cl) / CLOG_ENTRY_BASE);
	}
	CHECK(r == 0);
	return n;
}

static void check_json(const clog_t *cl, const char *user, unsigned max)
{
	char *j = clog_dump_json(cl, user, max);
	CHECK(g_utf8_validate(j, -1, NULL));
	JsonParser *p = json_parser_new();
	CHECK(json_parser_load_from_data(p, j, -1, NULL));
	JsonObject *o = json_node_get_object(json_parser_get_root(p));
	CHECK(o != NULL);
	JsonArray *a = json_object_get_array_member(o, "data");
	CHECK(a != NULL && json_array_get_length(a) <= max);
	g_object_unref(p);
	g_free(j);
}

/* a ring of ours with a few entries, one of them from the fuzzed node name */
static clog_t *local_log(const char *node)
{
	clog_t *cl = clog_new(0);
	CHECK(cl != NULL);
	CHECK(clog_add(cl, "local", "root@pam", "cluster", 1, 6, 1000, "starting", NULL) == 1);
	CHECK(clog_add(cl, node, "root@pam", "task", 2, 5, 2000, "a \"task\"\n", NULL) >= 0);
	return cl;
}

static void use_ring(clog_t *cl, const uint8_t *data, size_t size)
{
	unsigned n = walk(cl);
	/* the user filter from the input's first bytes */
	char user[9] = {0};
	memcpy(user, data, size < 8 ? size : 8);
	check_json(cl, NULL, 50);
	check_json(cl, user, n + 1);
	/* merge it with a log of ours, in both slot orders */
	for (size_t local = 0; local < 2; local++) {
		clog_t *mine = local_log(user);
		clog_t *logs[2] = {NULL, NULL};
		logs[1 - local] = cl;
		int taken = clog_merge(mine, logs, 2, local);
		CHECK(taken >= 0);
		CHECK(walk(mine) == (unsigned)taken);
		GBytes *st = clog_state_encode(mine);
		gsize len;
		const uint8_t *p = g_bytes_get_data(st, &len);
		clog_t *back = NULL;
		CHECK(clog_state_decode(p, len, &back) == 0);
		CHECK(walk(back) == (unsigned)taken);
		clog_free(back);
		g_bytes_unref(st);
		clog_free(mine);
	}
	/* the state we would send: sorted, compacted, and still valid */
	GBytes *st = clog_state_encode(cl);
	gsize len;
	const uint8_t *p = g_bytes_get_data(st, &len);
	CHECK(len == clog_size(cl));
	clog_t *back = NULL;
	CHECK(clog_state_decode(p, len, &back) == 0);
	CHECK(walk(back) <= n);
	clog_free(back);
	g_bytes_unref(st);
}

static void check_state(const uint8_t *buf, size_t len, const uint8_t *data, size_t size)
{
	uint8_t *saved = copy_of(buf, len);
	clog_t *cl = NULL, *again = NULL;
	int r = clog_state_decode(buf, len, &cl);
	CHECK(r == 0 || r == -EINVAL || r == -EPROTO);
	CHECK(len == 0 || memcmp(saved, buf, len) == 0);
	CHECK(clog_state_decode(buf, len, &again) == r);
	g_free(saved);
	if (r < 0) {
		CHECK(cl == NULL && again == NULL);
		return;
	}
	CHECK(walk(cl) == walk(again));
	clog_free(again);
	use_ring(cl, data, size);
	clog_free(cl);
}

static void check_entry(const uint8_t *buf, size_t len)
{
	clog_entry_t e;
	int r = clog_entry_decode(buf, len, &e);
	CHECK(r == 0 || r == -EINVAL || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(e.raw == buf && e.size == len && e.size <= CLOG_MAX_ENTRY_SIZE);
	CHECK(e.node == (const char *)buf + CLOG_ENTRY_TEXT_OFFS);
	CHECK(buf[len - 5] == 0); /* msg's NUL, before the 4 trailing bytes */
	clog_t *cl = clog_new(0);
	/* the first insert of a node's entry always passes the filter */
	CHECK(clog_insert(cl, &e) == 1);
	CHECK(clog_insert(cl, &e) == 0);
	CHECK(walk(cl) == 1);
	check_json(cl, e.ident, 1);
	GBytes *st = clog_state_encode(cl);
	gsize n;
	const uint8_t *p = g_bytes_get_data(st, &n);
	clog_t *back = NULL;
	CHECK(clog_state_decode(p, n, &back) == 0);
	CHECK(walk(back) == 1);
	clog_free(back);
	g_bytes_unref(st);
	clog_free(cl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > CLOG_MAX_SIZE)
		return 0;
	const uint8_t *rest = data + 1;
	size_t n = size - 1;
	switch (data[0] % 3) {
	case 0: {
		uint8_t *b = copy_of(rest, n);
		check_state(b, n, rest, n);
		g_free(b);
		break;
	}
	case 1: {
		uint8_t *b = copy_of(rest, n);
		check_entry(b, n);
		g_free(b);
		break;
	}
	default: {
		const uint32_t ring = CLOG_MIN_SIZE;
		uint8_t *b = g_malloc0(ring);
		size_t k = n < ring ? n : ring;
		memcpy(b + ring - k, rest, k);
		memcpy(b, rest, k);
		put_u32(b, ring);
		check_state(b, ring, rest, n);
		g_free(b);
		break;
	}
	}
	return 0;
}
