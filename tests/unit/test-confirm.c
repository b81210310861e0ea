/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-confirm.c: the bookkeeping of confirmed writes (pmxcfs/confirm.h):
 * what a node says it applied, what a sender makes of it, the votes that
 * hold a change, and the wire format's checks.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "confirm.h"
#include "wire.h"

static GBytes *message(const confirm_entry_t *e, size_t n)
{
	gsize len = CONFIRM_HEADER_LEN + n * CONFIRM_ENTRY_LEN;
	uint8_t *b = g_malloc0(len);
	wire_store32(b, CONFIRM_MAGIC);
	wire_store32(b + 4, CONFIRM_VERSION);
	wire_store32(b + 8, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = b + CONFIRM_HEADER_LEN + i * CONFIRM_ENTRY_LEN;
		wire_store32(p, e[i].nodeid);
		wire_store32(p + 4, e[i].pid);
		wire_store64(p + 8, e[i].count);
	}
	return g_bytes_new_take(b, len);
}

/* the count @b names for @nodeid/@pid, 0 if none */
static uint64_t count_in(GBytes *b, uint32_t nodeid, uint32_t pid)
{
	gsize len;
	const void *p = g_bytes_get_data(b, &len);
	g_autofree confirm_entry_t *e = NULL;
	size_t n = 0;
	g_assert_cmpint(confirm_decode(p, len, &e, &n), ==, 0);
	uint64_t c = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].nodeid == nodeid && e[i].pid == pid) {
			g_assert_cmpuint(c, ==, 0); /* each sender once */
			c = e[i].count;
		}
	}
	return c;
}

static size_t entries_in(GBytes *b)
{
	gsize len;
	const void *p = g_bytes_get_data(b, &len);
	size_t n = 0;
	g_assert_cmpint(confirm_decode(p, len, NULL, &n), ==, 0);
	return n;
}

static void test_applied(void)
{
	confirm_t *c = confirm_new(2, 200);
	g_assert_null(confirm_take(c, false));
	g_assert_null(confirm_take(c, true));
	confirm_applied(c, 1, 100, 5);
	confirm_applied(c, 1, 100, 3); /* older: changes nothing */
	confirm_applied(c, 3, 300, 9);
	GBytes *b = confirm_take(c, false);
	g_assert_cmpuint(entries_in(b), ==, 2);
	g_assert_cmpuint(count_in(b, 1, 100), ==, 5);
	g_assert_cmpuint(count_in(b, 3, 300), ==, 9);
	g_bytes_unref(b);
	/* nothing new: nothing to say */
	g_assert_null(confirm_take(c, false));
	confirm_applied(c, 3, 300, 9);
	g_assert_null(confirm_take(c, false));
	/* only what changed, unless all is asked for */
	confirm_applied(c, 1, 100, 6);
	b = confirm_take(c, false);
	g_assert_cmpuint(entries_in(b), ==, 1);
	g_assert_cmpuint(count_in(b, 1, 100), ==, 6);
	g_bytes_unref(b);
	b = confirm_take(c, true);
	g_assert_cmpuint(entries_in(b), ==, 2);
	g_assert_cmpuint(count_in(b, 3, 300), ==, 9);
	g_bytes_unref(b);
	confirm_free(c);
}

static void test_votes(void)
{
	/* node 1 sends; nodes 2..5 have 1 vote each, node 4 has 2 */
	g_autoptr(GHashTable) votes = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (guint i = 1; i <= 5; i++)
		g_hash_table_insert(votes, GUINT_TO_POINTER(i), GUINT_TO_POINTER(i == 4 ? 2 : 1));
	confirm_t *c = confirm_new(1, 100);
	g_assert_cmpuint(confirm_votes(c, 1, votes), ==, 1); /* we applied it */
	g_assert_cmpuint(confirm_confirmed(c, 2), ==, 0);

	confirm_entry_t e2[] = {{1, 100, 4}, {3, 300, 50}};
	g_autoptr(GBytes) b2 = message(e2, 2);
	g_assert_cmpint(confirm_receive(c, 2, g_bytes_get_data(b2, NULL), g_bytes_get_size(b2)), ==,
			0);
	g_assert_cmpuint(confirm_confirmed(c, 2), ==, 4);
	g_assert_cmpuint(confirm_votes(c, 4, votes), ==, 2);
	g_assert_cmpuint(confirm_votes(c, 5, votes), ==, 1);

	/* another process on node 1 (an earlier daemon) is not us */
	confirm_entry_t e3[] = {{1, 99, 40}};
	g_autoptr(GBytes) b3 = message(e3, 1);
	g_assert_cmpint(confirm_receive(c, 3, g_bytes_get_data(b3, NULL), g_bytes_get_size(b3)), ==,
			0);
	g_assert_cmpuint(confirm_confirmed(c, 3), ==, 0);

	/* node 4's two votes; a lower word later does not take back */
	confirm_entry_t e4[] = {{1, 100, 7}};
	g_autoptr(GBytes) b4 = message(e4, 1);
	g_assert_cmpint(confirm_receive(c, 4, g_bytes_get_data(b4, NULL), g_bytes_get_size(b4)), ==,
			0);
	g_assert_cmpuint(confirm_votes(c, 4, votes), ==, 4);
	g_assert_cmpuint(confirm_votes(c, 7, votes), ==, 3);
	g_assert_cmpuint(confirm_votes(c, 8, votes), ==, 1);
	confirm_entry_t e4b[] = {{1, 100, 2}};
	g_autoptr(GBytes) b4b = message(e4b, 1);
	g_assert_cmpint(confirm_receive(c, 4, g_bytes_get_data(b4b, NULL), g_bytes_get_size(b4b)),
			==, 0);
	g_assert_cmpuint(confirm_confirmed(c, 4), ==, 7);

	/* a node outside the nodelist has no votes; our own word adds none */
	g_assert_cmpint(confirm_receive(c, 9, g_bytes_get_data(b4, NULL), g_bytes_get_size(b4)), ==,
			0);
	g_assert_cmpint(confirm_receive(c, 1, g_bytes_get_data(b4, NULL), g_bytes_get_size(b4)), ==,
			0);
	g_assert_cmpuint(confirm_votes(c, 7, votes), ==, 3);
	confirm_free(c);
}

static void test_decode_errors(void)
{
	confirm_entry_t e[] = {{1, 100, 4}, {2, 200, 5}};
	g_autoptr(GBytes) good = message(e, 2);
	gsize len;
	const uint8_t *p = g_bytes_get_data(good, &len);
	g_autofree uint8_t *m = g_memdup2(p, len);
	size_t n = 0;
	confirm_entry_t *out = NULL;

	g_assert_cmpint(confirm_decode(m, len, &out, &n), ==, 0);
	g_assert_cmpuint(n, ==, 2);
	g_assert_cmpuint(out[1].count, ==, 5);
	g_free(out);

	out = g_new0(confirm_entry_t, 1); /* a failed decode resets both */
	confirm_entry_t *stale = out;
	n = 1;
	g_assert_cmpint(confirm_decode(NULL, 0, &out, &n), ==, -EINVAL);
	g_free(stale);
	g_assert_null(out);
	g_assert_cmpuint(n, ==, 0);
	g_assert_cmpint(confirm_decode(m, CONFIRM_HEADER_LEN - 1, NULL, NULL), ==, -EINVAL);
	g_assert_cmpint(confirm_decode(m, len - 1, NULL, NULL), ==, -EINVAL);
	g_assert_cmpint(confirm_decode(m, len - CONFIRM_ENTRY_LEN, NULL, NULL), ==, -EINVAL);
	m[0] ^= 1;
	g_assert_cmpint(confirm_decode(m, len, NULL, NULL), ==, -EINVAL);
	m[0] ^= 1;
	wire_store32(m + 4, CONFIRM_VERSION + 1);
	g_assert_cmpint(confirm_decode(m, len, NULL, NULL), ==, -EPROTONOSUPPORT);
	wire_store32(m + 4, CONFIRM_VERSION);
	wire_store32(m + 8, CONFIRM_MAX_ENTRIES + 1);
	g_assert_cmpint(confirm_decode(m, len, NULL, NULL), ==, -EINVAL);
	wire_store32(m + 8, 0xffffffffu); /* n * 16 must not wrap into a match */
	g_assert_cmpint(confirm_decode(m, len, NULL, NULL), ==, -EINVAL);

	/* a bad message changes nothing */
	confirm_t *c = confirm_new(1, 100);
	g_assert_cmpint(confirm_receive(c, 2, m, len), ==, -EINVAL);
	g_assert_cmpuint(confirm_confirmed(c, 2), ==, 0);
	confirm_free(c);
}

static void test_many_senders(void)
{
	/* restarted senders leave old pids behind; the table stays bounded */
	confirm_t *c = confirm_new(2, 200);
	for (uint32_t pid = 1; pid <= CONFIRM_MAX_ENTRIES + 5; pid++)
		confirm_applied(c, 1, pid, pid);
	GBytes *b = confirm_take(c, true);
	g_assert_nonnull(b);
	size_t n = entries_in(b);
	g_assert_cmpuint(n, <=, CONFIRM_MAX_ENTRIES);
	g_assert_cmpuint(count_in(b, 1, CONFIRM_MAX_ENTRIES + 5), ==, CONFIRM_MAX_ENTRIES + 5);
	g_bytes_unref(b);
	confirm_free(c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/confirm/applied", test_applied);
	g_test_add_func("/confirm/votes", test_votes);
	g_test_add_func("/confirm/decode-errors", test_decode_errors);
	g_test_add_func("/confirm/many-senders", test_many_senders);
	return g_test_run();
}
