/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-dfsm.c: the DFSM engine (pmxcfs/dfsm.c) on a simulated CPG bus.
 *
 * The bus keeps one FIFO of events, membership changes and multicasts, and
 * hands each to every member of the configuration it was sent in, in the
 * same order everywhere: the agreed order and virtual synchrony that
 * corosync gives.  Each node runs a small application: a key/value table
 * with a version, changed by NORMAL messages "key=value", exchanged as a
 * state, and brought up to date by the leader (the highest version) with
 * UPDATE messages.  The tests check that every node ends with the same
 * table, whatever joins, leaves and writes happen meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "dfsm.h"
#include "simbus.h"

#define MAX_NODES SIMBUS_MAX_NODES

typedef struct node node_t;

typedef struct bus {
	simbus_t *sb;
	node_t *nodes[SIMBUS_MAX_NODES];
	size_t n;
} bus_t;

struct node {
	bus_t *bus;
	size_t idx;
	uint32_t nodeid, pid;
	dfsm_t *d;
	GTree *table; /* key -> value */
	uint64_t version;
	GPtrArray *updates; /* collected "key=value" during UPDATE */
	uint64_t update_version;
	unsigned applied; /* NORMAL messages applied */
	GArray *results;  /* int: msg_result of our messages, -1000 = aborted */
	bool corrupt_checksum;
	bool fail_send;
	GString *order;     /* what was applied, "kv;" each */
	GPtrArray *capture; /* if set: what it sends goes here, not on the bus */
};

/* --- the application ---------------------------------------------------------- */

static gint keycmp(gconstpointer a, gconstpointer b, gpointer ud)
{
	return strcmp(a, b);
}

static gboolean ser_one(gpointer k, gpointer v, gpointer data)
{
	g_string_append_printf(data, "%s=%s\n", (char *)k, (char *)v);
	return FALSE;
}

static char *serialize(node_t *n)
{
	GString *s = g_string_new(NULL);
	g_string_append_printf(s, "%" G_GUINT64_FORMAT "\n", n->version);
	g_tree_foreach(n->table, ser_one, s);
	return g_string_free(s, FALSE);
}

static void apply_kv(GTree *t, const char *kv, size_t len)
{
	g_autofree char *s = g_strndup(kv, len);
	char *eq = strchr(s, '=');
	if (!eq)
		return;
	*eq = '\0';
	g_tree_replace(t, g_strdup(s), g_strdup(eq + 1));
}

static int app_send(void *ud, const struct iovec *iov, unsigned n_iov)
{
	node_t *n = ud;
	if (n->fail_send)
		return -EAGAIN;
	if (n->capture) {
		GByteArray *a = g_byte_array_new();
		for (unsigned i = 0; i < n_iov; i++)
			g_byte_array_append(a, iov[i].iov_base, (guint)iov[i].iov_len);
		g_ptr_array_add(n->capture, g_byte_array_free_to_bytes(a));
		return 0;
	}
	return simbus_send(n->bus->sb, n->idx, iov, n_iov);
}

static int app_deliver(void *ud, uint32_t nodeid, uint32_t pid, uint16_t subtype, uint32_t time,
		       const uint8_t *payload, size_t len, int *msg_result)
{
	node_t *n = ud;
	if (subtype != 1)
		return -EPROTO; /* fatal: the node leaves */
	apply_kv(n->table, (const char *)payload, len);
	g_string_append_len(n->order, (const char *)payload, (gssize)len);
	g_string_append_c(n->order, ';');
	n->version++;
	n->applied++;
	*msg_result = 0;
	return 1;
}

static GBytes *app_get_state(void *ud)
{
	node_t *n = ud;
	char *s = serialize(n);
	return g_bytes_new_take(s, strlen(s));
}

static uint64_t state_version(const dfsm_node_t *dn)
{
	return g_ascii_strtoull((const char *)dn->state, NULL, 10);
}

static gboolean send_update(gpointer k, gpointer v, gpointer data)
{
	node_t *n = data;
	g_autofree char *kv = g_strdup_printf("%s=%s", (char *)k, (char *)v);
	g_assert_cmpint(dfsm_send_state_msg(n->d, DFSM_MSG_UPDATE, kv, strlen(kv)), ==, 0);
	return FALSE;
}

/* the leader: the highest version, the lowest (nodeid, pid) among equals */
static int app_process_state_update(void *ud, dfsm_sync_info_t *si)
{
	node_t *n = ud;
	dfsm_node_t *leader = &si->nodes[0];
	for (size_t i = 1; i < si->n_nodes; i++) {
		if (state_version(&si->nodes[i]) > state_version(leader))
			leader = &si->nodes[i];
	}
	bool all = true;
	for (size_t i = 0; i < si->n_nodes; i++) {
		dfsm_node_t *x = &si->nodes[i];
		x->synced = x->state_len == leader->state_len &&
			    memcmp(x->state, leader->state, x->state_len) == 0;
		all = all && x->synced;
	}
	if (!all && leader == si->local) {
		/* the version first, then every key */
		g_autofree char *v = g_strdup_printf("#%" G_GUINT64_FORMAT, n->version);
		g_assert_cmpint(dfsm_send_state_msg(n->d, DFSM_MSG_UPDATE, v, strlen(v)), ==, 0);
		g_tree_foreach(n->table, send_update, n);
		g_assert_cmpint(dfsm_send_state_msg(n->d, DFSM_MSG_UPDATE_COMPLETE, NULL, 0), ==,
				0);
	}
	return 0;
}

static int app_process_update(void *ud, dfsm_sync_info_t *si, uint32_t nodeid, uint32_t pid,
			      const uint8_t *payload, size_t len)
{
	node_t *n = ud;
	if (len > 0 && payload[0] == '#') {
		g_autofree char *s = g_strndup((const char *)payload + 1, len - 1);
		n->update_version = g_ascii_strtoull(s, NULL, 10);
		return 0;
	}
	g_ptr_array_add(n->updates, g_strndup((const char *)payload, len));
	return 0;
}

static int app_commit(void *ud, dfsm_sync_info_t *si)
{
	node_t *n = ud;
	g_tree_remove_all(n->table);
	for (guint i = 0; i < n->updates->len; i++) {
		const char *kv = n->updates->pdata[i];
		apply_kv(n->table, kv, strlen(kv));
	}
	n->version = n->update_version;
	g_ptr_array_set_size(n->updates, 0);
	return 0;
}

static int app_checksum(void *ud, uint8_t csum[MEMDB_CSUM_LEN])
{
	node_t *n = ud;
	g_autofree char *s = serialize(n);
	if (n->corrupt_checksum)
		s[0] ^= 1;
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(c, (const guchar *)s, (gssize)strlen(s));
	gsize len = MEMDB_CSUM_LEN;
	g_checksum_get_digest(c, csum, &len);
	g_checksum_free(c);
	return 0;
}

static void app_cleanup(void *ud, dfsm_sync_info_t *si)
{
	node_t *n = ud;
	g_ptr_array_set_size(n->updates, 0);
}

static void app_result(void *ud, uint64_t count, bool processed, int msg_result)
{
	node_t *n = ud;
	int r = processed ? msg_result : -1000;
	g_array_append_val(n->results, r);
}

static const dfsm_callbacks_t app = {
	.send = app_send,
	.deliver = app_deliver,
	.get_state = app_get_state,
	.process_state_update = app_process_state_update,
	.process_update = app_process_update,
	.commit = app_commit,
	.checksum = app_checksum,
	.cleanup = app_cleanup,
	.result = app_result,
};

/* --- the bus -------------------------------------------------------------------- */

static bus_t *bus_new(size_t n)
{
	bus_t *b = g_new0(bus_t, 1);
	b->n = n;
	b->sb = simbus_new(n);
	for (size_t i = 0; i < n; i++) {
		node_t *x = g_new0(node_t, 1);
		x->bus = b;
		x->idx = i;
		x->nodeid = simbus_nodeid(i);
		x->pid = simbus_pid(i);
		x->table = g_tree_new_full(keycmp, NULL, g_free, g_free);
		x->updates = g_ptr_array_new_with_free_func(g_free);
		x->results = g_array_new(FALSE, FALSE, sizeof(int));
		x->order = g_string_new(NULL);
		x->d = dfsm_new(1, x->nodeid, x->pid, &app, x);
		simbus_attach(b->sb, i, x->d);
		b->nodes[i] = x;
	}
	return b;
}

static void bus_free(bus_t *b)
{
	simbus_free(b->sb);
	for (size_t i = 0; i < b->n; i++) {
		node_t *x = b->nodes[i];
		dfsm_free(x->d);
		g_tree_unref(x->table);
		g_ptr_array_unref(x->updates);
		g_array_unref(x->results);
		g_string_free(x->order, TRUE);
		if (x->capture)
			g_ptr_array_unref(x->capture);
		g_free(x);
	}
	g_free(b);
}

#define bus_membership(b, in) simbus_membership((b)->sb, (in))
#define bus_run(b)            simbus_run((b)->sb)
#define bus_all(b, on)        simbus_all((b)->sb, (on))

static void put(node_t *n, const char *kv)
{
	uint64_t count;
	g_assert_cmpint(dfsm_send_normal(n->d, 1, kv, strlen(kv), true, &count), ==, 0);
}

static void assert_converged(bus_t *b, const bool *in)
{
	g_autofree char *ref = NULL;
	for (size_t i = 0; i < b->n; i++) {
		if (in && !in[i])
			continue;
		node_t *x = b->nodes[i];
		g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_SYNCED);
		g_autofree char *s = serialize(x);
		if (!ref)
			ref = g_strdup(s);
		else
			g_assert_cmpstr(s, ==, ref);
	}
}

/* --- tests ---------------------------------------------------------------------- */

static void test_single(void)
{
	bus_t *b = bus_new(1);
	node_t *n = b->nodes[0];
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_START);
	bus_all(b, true);
	bus_run(b);
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_SYNCED);
	g_assert_true(dfsm_is_member(n->d));
	put(n, "a=1");
	put(n, "b=2");
	g_assert_cmpuint(n->results->len, ==, 0); /* not before delivery */
	bus_run(b);
	g_assert_cmpuint(n->results->len, ==, 2);
	g_assert_cmpint(g_array_index(n->results, int, 0), ==, 0);
	g_assert_cmpstr(g_tree_lookup(n->table, "b"), ==, "2");
	bus_free(b);
}

static void test_start_together(void)
{
	bus_t *b = bus_new(3);
	/* node 2 has the newest data: it leads */
	apply_kv(b->nodes[1]->table, "x=newest", 8);
	b->nodes[1]->version = 10;
	apply_kv(b->nodes[2]->table, "y=old", 5);
	b->nodes[2]->version = 3;
	bus_all(b, true);
	/* writes sent during the exchange are queued and applied later, in
	 * the same order everywhere */
	put(b->nodes[0], "q=from1");
	put(b->nodes[2], "q=from3");
	bus_run(b);
	assert_converged(b, NULL);
	node_t *n = b->nodes[0];
	g_assert_cmpstr(g_tree_lookup(n->table, "x"), ==, "newest");
	g_assert_null(g_tree_lookup(n->table, "y"));
	g_assert_nonnull(g_tree_lookup(n->table, "q"));
	g_assert_cmpuint(n->version, ==, 12);
	g_assert_cmpuint(b->nodes[0]->results->len, ==, 1);
	g_assert_cmpuint(b->nodes[2]->results->len, ==, 1);
	bus_free(b);
}

static void test_concurrent_writes(void)
{
	bus_t *b = bus_new(5);
	bus_all(b, true);
	bus_run(b);
	assert_converged(b, NULL);
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < b->n; i++) {
			g_autofree char *kv = g_strdup_printf("k%d=%zu", round % 3, i);
			put(b->nodes[i], kv);
		}
	}
	bus_run(b);
	assert_converged(b, NULL);
	for (size_t i = 0; i < b->n; i++) {
		g_assert_cmpuint(b->nodes[i]->applied, ==, 100);
		g_assert_cmpuint(b->nodes[i]->results->len, ==, 20);
	}
	bus_free(b);
}

static void test_rejoin_stale(void)
{
	bus_t *b = bus_new(3);
	bus_all(b, true);
	bus_run(b);
	put(b->nodes[0], "a=1");
	bus_run(b);
	/* node 3 leaves; the others write on */
	bool two[MAX_NODES] = {true, true, false};
	bus_membership(b, two);
	bus_run(b);
	g_assert_cmpint(dfsm_mode(b->nodes[2]->d), ==, DFSM_MODE_LEAVE);
	assert_converged(b, two);
	for (int i = 0; i < 5; i++)
		put(b->nodes[1], "b=2");
	bus_run(b);
	/* it comes back (restarted) with its stale copy and writes at once */
	g_assert_cmpint(dfsm_restart(b->nodes[2]->d), ==, 0);
	bus_all(b, true);
	put(b->nodes[2], "c=from-the-stale-node");
	put(b->nodes[0], "d=4");
	bus_run(b);
	assert_converged(b, NULL);
	g_assert_cmpstr(g_tree_lookup(b->nodes[2]->table, "b"), ==, "2");
	g_assert_cmpstr(g_tree_lookup(b->nodes[0]->table, "c"), ==, "from-the-stale-node");
	g_assert_cmpuint(b->nodes[2]->results->len, ==, 1);
	g_assert_cmpint(g_array_index(b->nodes[2]->results, int, 0), ==, 0);
	bus_free(b);
}

static void test_churn(void)
{
	/* random joins, leaves and writes; after a final all-join everyone
	 * has the same table */
	bus_t *b = bus_new(5);
	GRand *r = g_rand_new_with_seed(42);
	bool in[MAX_NODES] = {0};
	for (int step = 0; step < 300; step++) {
		int what = g_rand_int_range(r, 0, 10);
		size_t i = (size_t)g_rand_int_range(r, 0, 5);
		if (what < 2) {
			in[i] = !in[i];
			if (in[i] && DFSM_MODE_IS_ERROR(dfsm_mode(b->nodes[i]->d)))
				g_assert_cmpint(dfsm_restart(b->nodes[i]->d), ==, 0);
			bus_membership(b, in);
		} else if (in[i] && !DFSM_MODE_IS_ERROR(dfsm_mode(b->nodes[i]->d))) {
			g_autofree char *kv = g_strdup_printf("k%d=%d", what, step);
			put(b->nodes[i], kv);
		}
		if (g_rand_int_range(r, 0, 4) == 0)
			bus_run(b);
	}
	for (size_t i = 0; i < b->n; i++) {
		if (DFSM_MODE_IS_ERROR(dfsm_mode(b->nodes[i]->d)))
			g_assert_cmpint(dfsm_restart(b->nodes[i]->d), ==, 0);
	}
	bus_all(b, false);
	bus_run(b);
	for (size_t i = 0; i < b->n; i++)
		g_assert_cmpint(dfsm_restart(b->nodes[i]->d), ==, 0);
	bus_all(b, true);
	bus_run(b);
	assert_converged(b, NULL);
	g_rand_free(r);
	bus_free(b);
}

static void test_epoch_and_version(void)
{
	bus_t *b = bus_new(2);
	bus_all(b, true);
	bus_run(b);
	assert_converged(b, NULL);
	node_t *n = b->nodes[0];
	/* a STATE of another configuration vanishes */
	dfsm_msg_t m = {
		.type = DFSM_MSG_UPDATE_COMPLETE, .protocol_version = 1, .epoch = {99, 1, 7, 7}};
	g_autoptr(GByteArray) a = g_byte_array_new();
	g_assert_cmpint(dfsm_msg_encode(a, &m), ==, 0);
	dfsm_deliver(n->d, 2, 1001, a->data, a->len);
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_SYNCED);
	/* an older protocol is ignored */
	g_byte_array_set_size(a, 0);
	dfsm_msg_t old = {.type = DFSM_MSG_NORMAL, .subtype = 1, .protocol_version = 0};
	g_assert_cmpint(dfsm_msg_encode(a, &old), ==, 0);
	dfsm_deliver(n->d, 2, 1001, a->data, a->len);
	g_assert_cmpuint(n->applied, ==, 0);
	/* a newer one stops the node for good */
	g_byte_array_set_size(a, 0);
	dfsm_msg_t newer = {.type = DFSM_MSG_NORMAL, .subtype = 1, .protocol_version = 2};
	g_assert_cmpint(dfsm_msg_encode(a, &newer), ==, 0);
	dfsm_deliver(n->d, 2, 1001, a->data, a->len);
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_VERSION_ERROR);
	g_assert_cmpint(dfsm_restart(n->d), ==, -EPERM);
	g_assert_cmpint(dfsm_send_normal(n->d, 1, "a=1", 3, false, NULL), ==, -ENOTCONN);
	bus_free(b);
}

static void test_bad_input(void)
{
	bus_t *b = bus_new(2);
	node_t *n = b->nodes[0];
	/* before any membership */
	uint8_t junk[40] = {0};
	dfsm_deliver(n->d, 2, 1001, junk, sizeof(junk));
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_LEAVE);
	g_assert_cmpint(dfsm_restart(n->d), ==, 0);
	bus_all(b, true);
	bus_run(b);
	assert_converged(b, NULL);
	/* short messages make the node leave, never crash */
	dfsm_deliver(n->d, 2, 1001, junk, 10);
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_LEAVE);
	/* random bytes at synced nodes of fresh buses */
	GRand *r = g_rand_new_with_seed(7);
	for (int i = 0; i < 2000; i++) {
		bus_t *c = bus_new(2);
		bus_all(c, true);
		bus_run(c);
		size_t len = (size_t)g_rand_int_range(r, 0, 64);
		uint8_t *buf = g_malloc(len ? len : 1);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)g_rand_int_range(r, 0, 256);
		if (len >= 8 && i % 2) {
			buf[0] = (uint8_t)g_rand_int_range(r, 0, 8); /* a plausible type */
			buf[1] = 0;
			buf[4] = 1; /* our protocol version */
			buf[5] = buf[6] = buf[7] = 0;
		}
		dfsm_deliver(c->nodes[0]->d, 2, 1001, buf, len);
		g_free(buf);
		bus_free(c);
	}
	g_rand_free(r);
	bus_free(b);
}

static void test_verify(void)
{
	bus_t *b = bus_new(3);
	bus_all(b, true);
	put(b->nodes[1], "a=1");
	bus_run(b);
	assert_converged(b, NULL);
	/* only the lowest node asks */
	unsigned before = simbus_sent(b->sb);
	dfsm_verify_tick(b->nodes[1]->d);
	g_assert_cmpuint(simbus_sent(b->sb), ==, before);
	dfsm_verify_tick(b->nodes[0]->d);
	bus_run(b);
	assert_converged(b, NULL);
	/* a node whose data differs leaves */
	b->nodes[2]->corrupt_checksum = true;
	dfsm_verify_tick(b->nodes[0]->d);
	bus_run(b);
	g_assert_cmpint(dfsm_mode(b->nodes[2]->d), ==, DFSM_MODE_LEAVE);
	g_assert_cmpint(dfsm_mode(b->nodes[1]->d), ==, DFSM_MODE_SYNCED);
	bus_free(b);
}

static void test_results_aborted(void)
{
	bus_t *b = bus_new(2);
	bus_all(b, true);
	bus_run(b);
	node_t *n = b->nodes[0];
	put(n, "a=1");
	put(n, "b=2");
	/* the engine restarts before they come back: both are reported lost */
	g_assert_cmpint(dfsm_restart(n->d), ==, 0);
	g_assert_cmpuint(n->results->len, ==, 2);
	g_assert_cmpint(g_array_index(n->results, int, 0), ==, -1000);
	/* the two messages still reach it before any new membership: as the
	 * original, it leaves; a second restart and a membership bring it back */
	bus_run(b);
	g_assert_cmpint(dfsm_mode(n->d), ==, DFSM_MODE_LEAVE);
	g_assert_cmpint(dfsm_restart(n->d), ==, 0);
	bus_all(b, true);
	bus_run(b);
	assert_converged(b, NULL);
	/* a failed send reports the error at once and no result later */
	n->fail_send = true;
	g_assert_cmpint(dfsm_send_normal(n->d, 1, "c=3", 3, true, NULL), ==, -EAGAIN);
	n->fail_send = false;
	bus_run(b);
	g_assert_cmpuint(n->results->len, ==, 2);
	bus_free(b);
}

/* --- one engine fed by hand: the order rules, one at a time ---------------- */

static const dfsm_epoch_t E = {7, 100, 1, 1000};

static void feed(node_t *x, uint32_t nodeid, uint32_t pid, const dfsm_msg_t *m)
{
	g_autoptr(GByteArray) a = g_byte_array_new();
	g_assert_cmpint(dfsm_msg_encode(a, m), ==, 0);
	dfsm_deliver(x->d, nodeid, pid, a->data, a->len);
}

static void feed_normal(node_t *x, uint32_t nodeid, uint32_t pid, uint64_t count, const char *kv)
{
	dfsm_msg_t m = {.type = DFSM_MSG_NORMAL,
			.subtype = 1,
			.protocol_version = 1,
			.count = count,
			.payload = (const uint8_t *)kv,
			.payload_len = strlen(kv)};
	feed(x, nodeid, pid, &m);
}

static void feed_state(node_t *x, uint32_t nodeid, uint32_t pid, uint16_t type, dfsm_epoch_t ep,
		       const char *payload)
{
	dfsm_msg_t m = {.type = type,
			.protocol_version = 1,
			.epoch = ep,
			.payload = (const uint8_t *)payload,
			.payload_len = payload ? strlen(payload) : 0};
	feed(x, nodeid, pid, &m);
}

/* node 1 (ours) joins node 2; the exchange starts (SYNC_START) */
static node_t *two_member_sync(bus_t *b)
{
	node_t *x = b->nodes[0];
	x->capture = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	dfsm_member_t both[2] = {{1, 1000}, {2, 1001}};
	dfsm_confchg(x->d, both, 2, 2);
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_START_SYNC);
	feed_state(x, 1, 1000, DFSM_MSG_SYNC_START, E, NULL);
	return x;
}

static void test_order_queued_by_count(void)
{
	bus_t *b = bus_new(2);
	node_t *x = two_member_sync(b);
	/* NORMAL messages during the exchange wait, and apply by their
	 * sender's count, not by arrival */
	feed_normal(x, 2, 1001, 3, "k=c3");
	feed_normal(x, 2, 1001, 1, "k=c1");
	feed_normal(x, 2, 1001, 2, "k=c2");
	g_assert_cmpuint(dfsm_queued(x->d), ==, 3);
	g_assert_cmpuint(x->applied, ==, 0);
	feed_state(x, 1, 1000, DFSM_MSG_STATE, E, "0\n");
	feed_state(x, 2, 1001, DFSM_MSG_STATE, E, "0\n");
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_SYNCED);
	g_assert_cmpstr(x->order->str, ==, "k=c1;k=c2;k=c3;");
	g_assert_cmpuint(dfsm_queued(x->d), ==, 0);

	/* a state message of another epoch vanishes: this one (a bad
	 * VERIFY_REQUEST length) would make the node leave otherwise */
	dfsm_epoch_t other = E;
	other.epoch++;
	feed_state(x, 1, 1000, DFSM_MSG_VERIFY_REQUEST, other, "abc");
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_SYNCED);
	feed_state(x, 1, 1000, DFSM_MSG_VERIFY_REQUEST, E, "abc");
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_LEAVE); /* the control */
	bus_free(b);
}

static void test_order_update_mode(void)
{
	bus_t *b = bus_new(2);
	node_t *x = two_member_sync(b);
	/* node 2 has newer data: we are not synced and wait for updates */
	feed_state(x, 1, 1000, DFSM_MSG_STATE, E, "0\n");
	feed_state(x, 2, 1001, DFSM_MSG_STATE, E, "5\n");
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_UPDATE);
	/* ours (unsynced) waits in the sorted queue, the synced node's in
	 * the sync queue; the sync queue applies first, after the commit */
	feed_normal(x, 1, 1000, 1, "m=mine");
	feed_normal(x, 2, 1001, 1, "s=theirs");
	g_assert_cmpuint(x->applied, ==, 0);
	feed_state(x, 2, 1001, DFSM_MSG_UPDATE, E, "#5");
	feed_state(x, 2, 1001, DFSM_MSG_UPDATE, E, "a=1");
	feed_state(x, 2, 1001, DFSM_MSG_UPDATE_COMPLETE, E, NULL);
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_SYNCED);
	g_assert_cmpstr(x->order->str, ==, "s=theirs;m=mine;");
	g_assert_cmpstr(g_tree_lookup(x->table, "a"), ==, "1");
	g_assert_cmpuint(x->version, ==, 7);
	bus_free(b);
}

static void test_order_unsynced_sender(void)
{
	bus_t *b = bus_new(2);
	node_t *x = two_member_sync(b);
	/* we have the newer data: synced at once; node 2 is behind and takes
	 * our tree.  What node 2 sends before it has our tree must not apply
	 * here at once: node 2 itself applies it only after the update
	 * (test_order_update_mode), after what the synced members sent
	 * meanwhile, and the order must be the same everywhere */
	feed_state(x, 1, 1000, DFSM_MSG_STATE, E, "5\n");
	feed_state(x, 2, 1001, DFSM_MSG_STATE, E, "0\n");
	g_assert_cmpint(dfsm_mode(x->d), ==, DFSM_MODE_SYNCED);
	feed_normal(x, 2, 1001, 1, "k=from-the-unsynced");
	feed_normal(x, 1, 1000, 1, "k=from-a-synced");
	g_assert_cmpstr(x->order->str, ==, "k=from-a-synced;");
	feed_state(x, 1, 1000, DFSM_MSG_UPDATE_COMPLETE, E, NULL);
	g_assert_cmpstr(x->order->str, ==, "k=from-a-synced;k=from-the-unsynced;");
	g_assert_cmpstr(g_tree_lookup(x->table, "k"), ==, "from-the-unsynced");
	g_assert_cmpuint(dfsm_queued(x->d), ==, 0);
	bus_free(b);
}

static void test_rejoiner_writes_during_its_update(void)
{
	/* the same on the bus: node 3 comes back behind and writes while it
	 * takes the tree, the others write too; every node ends equal */
	bus_t *b = bus_new(3);
	bus_all(b, true);
	bus_run(b);
	bool two[MAX_NODES] = {true, true, false};
	bus_membership(b, two);
	bus_run(b);
	put(b->nodes[0], "k=0");
	bus_run(b);
	g_assert_cmpint(dfsm_restart(b->nodes[2]->d), ==, 0);
	bus_all(b, true);
	/* step the bus by hand: the join, then SYNC_START (every member sends
	 * its state); writes from both sides go out now, behind the states
	 * and before the leader's update */
	g_assert_true(simbus_step(b->sb));
	g_assert_true(simbus_step(b->sb));
	for (size_t i = 0; i < 3; i++)
		g_assert_cmpint(dfsm_mode(b->nodes[i]->d), ==, DFSM_MODE_START_SYNC);
	put(b->nodes[2], "k=from-the-rejoiner");
	put(b->nodes[1], "k=from-a-synced");
	bus_run(b);
	assert_converged(b, NULL);
	g_assert_cmpstr(b->nodes[0]->order->str + strlen(b->nodes[0]->order->str) -
				strlen("k=from-a-synced;k=from-the-rejoiner;"),
			==, "k=from-a-synced;k=from-the-rejoiner;");
	bus_free(b);
}

static void test_resend_after_join(void)
{
	bus_t *b = bus_new(3);
	node_t *x = two_member_sync(b);
	/* our own message comes back during the exchange and waits */
	uint64_t count;
	g_assert_cmpint(dfsm_send_normal(x->d, 1, "q=1", 3, true, &count), ==, 0);
	GBytes *sent = g_ptr_array_index(x->capture, x->capture->len - 1);
	gsize len;
	const uint8_t *raw = g_bytes_get_data(sent, &len);
	dfsm_deliver(x->d, 1, 1000, raw, len);
	feed_normal(x, 2, 1001, 1, "p=2");
	g_assert_cmpuint(dfsm_queued(x->d), ==, 2);
	/* a node joins: ours goes out again byte for byte, the queue empties */
	guint before = x->capture->len;
	dfsm_member_t three[3] = {{1, 1000}, {2, 1001}, {3, 1002}};
	dfsm_confchg(x->d, three, 3, 1);
	g_assert_cmpuint(dfsm_queued(x->d), ==, 0);
	g_assert_cmpuint(x->capture->len, ==, before + 2); /* the resend, SYNC_START */
	g_assert_true(g_bytes_equal(g_ptr_array_index(x->capture, before), sent));
	bus_free(b);
}

static void test_lost_result(void)
{
	bus_t *b = bus_new(1);
	node_t *x = b->nodes[0];
	x->capture = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	dfsm_member_t one[1] = {{1, 1000}};
	dfsm_confchg(x->d, one, 1, 1);
	g_assert_cmpint(dfsm_send_normal(x->d, 1, "a=1", 3, true, NULL), ==, 0);
	g_assert_cmpint(dfsm_send_normal(x->d, 1, "b=2", 3, true, NULL), ==, 0);
	/* only the second comes back: the first is reported lost */
	gsize len;
	const uint8_t *raw = g_bytes_get_data(g_ptr_array_index(x->capture, 1), &len);
	dfsm_deliver(x->d, 1, 1000, raw, len);
	g_assert_cmpuint(x->results->len, ==, 2);
	g_assert_cmpint(g_array_index(x->results, int, 0), ==, -1000);
	g_assert_cmpint(g_array_index(x->results, int, 1), ==, 0);
	bus_free(b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dfsm/single", test_single);
	g_test_add_func("/dfsm/start-together", test_start_together);
	g_test_add_func("/dfsm/concurrent-writes", test_concurrent_writes);
	g_test_add_func("/dfsm/rejoin-stale", test_rejoin_stale);
	g_test_add_func("/dfsm/churn", test_churn);
	g_test_add_func("/dfsm/epoch-and-version", test_epoch_and_version);
	g_test_add_func("/dfsm/bad-input", test_bad_input);
	g_test_add_func("/dfsm/verify", test_verify);
	g_test_add_func("/dfsm/results-aborted", test_results_aborted);
	g_test_add_func("/dfsm/order/queued-by-count", test_order_queued_by_count);
	g_test_add_func("/dfsm/order/update-mode", test_order_update_mode);
	g_test_add_func("/dfsm/order/unsynced-sender", test_order_unsynced_sender);
	g_test_add_func("/dfsm/order/rejoiner-writes-during-its-update",
			test_rejoiner_writes_during_its_update);
	g_test_add_func("/dfsm/order/resend-after-join", test_resend_after_join);
	g_test_add_func("/dfsm/order/lost-result", test_lost_result);
	return g_test_run();
}
