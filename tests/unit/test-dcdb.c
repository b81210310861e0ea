/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-dcdb.c: the dcdb application (pmxcfs/dcdb.c) with real memdbs and
 * sqlite files, one per node, on the simulated CPG bus.  After every
 * scenario all nodes must hold the same index byte for byte (what the
 * original's verification compares), on disk too: each database is opened
 * again at the end and must give the same index.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "dcdb.h"
#include "simbus.h"
#include "testutil.h"

typedef struct node {
	size_t idx;
	simbus_t *sb;
	char *dir;
	memdb_t *mdb;
	dcdb_t *db;
	GHashTable *results; /* count -> result */
	bool quorate;
	unsigned verified; /* "data verification successful" lines */
} node_t;

typedef struct cluster {
	simbus_t *sb;
	node_t n[SIMBUS_MAX_NODES];
	size_t count;
} cluster_t;

static int h_send(void *ud, const struct iovec *iov, unsigned n)
{
	node_t *x = ud;
	return simbus_send(x->sb, x->idx, iov, n);
}

static bool h_quorate(void *ud)
{
	node_t *x = ud;
	return x->quorate;
}

static void h_result(void *ud, uint64_t count, int result)
{
	node_t *x = ud;
	g_hash_table_insert(x->results, g_memdup2(&count, sizeof(count)), GINT_TO_POINTER(result));
}

static void h_log(void *ud, int level, const char *msg)
{
	node_t *x = ud;
	if (strcmp(msg, "data verification successful") == 0)
		x->verified++;
}

static const dcdb_hooks_t hooks = {
	.send = h_send,
	.quorate = h_quorate,
	.result = h_result,
	.log = h_log,
};

static void node_start(cluster_t *c, size_t i)
{
	node_t *x = &c->n[i];
	x->mdb = tu_open(x->dir);
	x->db = dcdb_new(x->mdb, simbus_nodeid(i), simbus_pid(i), &hooks, x);
	simbus_attach(c->sb, i, dcdb_dfsm(x->db));
}

static void node_stop(cluster_t *c, size_t i)
{
	node_t *x = &c->n[i];
	simbus_attach(c->sb, i, NULL);
	x->db = dcdb_free(x->db);
	x->mdb = memdb_close(x->mdb);
}

static cluster_t *cluster_new(size_t n)
{
	cluster_t *c = g_new0(cluster_t, 1);
	c->count = n;
	c->sb = simbus_new(n);
	for (size_t i = 0; i < n; i++) {
		node_t *x = &c->n[i];
		x->idx = i;
		x->sb = c->sb;
		x->dir = tu_dir_new();
		x->quorate = true;
		x->results = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
		node_start(c, i);
	}
	return c;
}

static void cluster_free(cluster_t *c)
{
	for (size_t i = 0; i < c->count; i++) {
		if (c->n[i].db)
			node_stop(c, i);
		g_hash_table_unref(c->n[i].results);
		tu_dir_free(c->n[i].dir);
	}
	simbus_free(c->sb);
	g_free(c);
}

/* send a change from node @i; returns its count */
static uint64_t op(cluster_t *c, size_t i, uint16_t subtype, const char *path, const char *to,
		   const char *data)
{
	dcdb_msg_t m = {.subtype = subtype, .path = path, .to = to};
	if (data) {
		m.data = (const uint8_t *)data;
		m.size = (uint32_t)strlen(data);
	}
	uint64_t count = 0;
	g_assert_cmpint(dcdb_send(c->n[i].db, &m, &count), ==, 0);
	return count;
}

static int result(cluster_t *c, size_t i, uint64_t count)
{
	gpointer v;
	g_assert_true(g_hash_table_lookup_extended(c->n[i].results, &count, NULL, &v));
	return GPOINTER_TO_INT(v);
}

static char *index_hex(memdb_t *m)
{
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(m, &len);
	return tu_hex(idx, len);
}

/* every member: synced, the same index in memory and on disk */
static void assert_converged(cluster_t *c, const bool *in)
{
	g_autofree char *ref = NULL;
	for (size_t i = 0; i < c->count; i++) {
		if (in && !in[i])
			continue;
		node_t *x = &c->n[i];
		g_assert_cmpint(dfsm_mode(dcdb_dfsm(x->db)), ==, DFSM_MODE_SYNCED);
		g_autofree char *h = index_hex(x->mdb);
		if (!ref)
			ref = g_strdup(h);
		else
			g_assert_cmpstr(h, ==, ref);
		/* and the same after a reload from its database */
		memdb_t *again = tu_open(x->dir);
		g_autofree char *h2 = index_hex(again);
		memdb_close(again);
		g_assert_cmpstr(h2, ==, ref);
	}
}

static char *content(node_t *x, const char *path)
{
	GBytes *b = NULL;
	int n = memdb_read(x->mdb, path, &b);
	if (n < 0)
		return NULL;
	char *s = b ? g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b)) : g_strdup("");
	if (b)
		g_bytes_unref(b);
	return s;
}

static void test_writes_replicate(void)
{
	cluster_t *c = cluster_new(3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	uint64_t k1 = op(c, 0, DCDB_MSG_CREATE, "storage.cfg", NULL, NULL);
	uint64_t k2 = op(c, 0, DCDB_MSG_WRITE, "storage.cfg", NULL, "dir: local\n");
	uint64_t k3 = op(c, 1, DCDB_MSG_MKDIR, "nodes", NULL, NULL);
	uint64_t k4 = op(c, 2, DCDB_MSG_MKDIR, "nodes", NULL, NULL);
	simbus_run(c->sb);
	g_assert_cmpint(result(c, 0, k1), ==, 0);
	g_assert_cmpint(result(c, 0, k2), ==, 11); /* the byte count */
	/* the same mkdir from two nodes: the first in the order wins */
	g_assert_cmpint(result(c, 1, k3), ==, 0);
	g_assert_cmpint(result(c, 2, k4), ==, -EEXIST);
	assert_converged(c, NULL);
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *s = content(&c->n[i], "storage.cfg");
		g_assert_cmpstr(s, ==, "dir: local\n");
		/* the writer is the sender */
		g_assert_cmpuint(memdb_lookup(c->n[i].mdb, "storage.cfg")->writer, ==, 1);
	}
	op(c, 1, DCDB_MSG_RENAME, "storage.cfg", "storage.old", NULL);
	op(c, 2, DCDB_MSG_DELETE, "nodes", NULL, NULL);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_null(memdb_lookup(c->n[0].mdb, "storage.cfg"));
	cluster_free(c);
}

static void test_vmid_unique(void)
{
	cluster_t *c = cluster_new(2);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	for (size_t i = 0; i < 2; i++) {
		op(c, i, DCDB_MSG_MKDIR, "nodes", NULL, NULL);
		g_autofree char *n = g_strdup_printf("nodes/n%zu", i);
		g_autofree char *q = g_strdup_printf("nodes/n%zu/qemu-server", i);
		op(c, i, DCDB_MSG_MKDIR, n, NULL, NULL);
		op(c, i, DCDB_MSG_MKDIR, q, NULL, NULL);
	}
	simbus_run(c->sb);
	uint64_t a = op(c, 0, DCDB_MSG_CREATE, "nodes/n0/qemu-server/100.conf", NULL, NULL);
	uint64_t b = op(c, 1, DCDB_MSG_CREATE, "nodes/n1/qemu-server/100.conf", NULL, NULL);
	simbus_run(c->sb);
	g_assert_cmpint(result(c, 0, a), ==, 0);
	g_assert_cmpint(result(c, 1, b), ==, -EEXIST);
	assert_converged(c, NULL);
	cluster_free(c);
}

static void test_join_empty_and_stale(void)
{
	cluster_t *c = cluster_new(3);
	bool two[SIMBUS_MAX_NODES] = {true, true, false};
	simbus_membership(c->sb, two);
	simbus_run(c->sb);
	for (int i = 0; i < 30; i++) {
		g_autofree char *p = g_strdup_printf("f%02d.cfg", i);
		op(c, (size_t)i % 2, DCDB_MSG_CREATE, p, NULL, NULL);
		op(c, (size_t)i % 2, DCDB_MSG_WRITE, p, NULL, p);
	}
	simbus_run(c->sb);
	/* node 3 joins with an empty database, and writes at once */
	simbus_all(c->sb, true);
	uint64_t k = op(c, 2, DCDB_MSG_CREATE, "from-the-joiner", NULL, NULL);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_cmpint(result(c, 2, k), ==, 0);
	g_autofree char *s = content(&c->n[2], "f17.cfg");
	g_assert_cmpstr(s, ==, "f17.cfg");

	/* it leaves; the others change and delete things; it comes back with
	 * its stale copy and gets exactly the others' tree */
	simbus_membership(c->sb, two);
	simbus_run(c->sb);
	for (int i = 0; i < 10; i++) {
		g_autofree char *p = g_strdup_printf("f%02d.cfg", i);
		op(c, 0, DCDB_MSG_DELETE, p, NULL, NULL);
	}
	op(c, 1, DCDB_MSG_WRITE, "f20.cfg", NULL, "changed");
	simbus_run(c->sb);
	node_stop(c, 2);
	node_start(c, 2);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_null(memdb_lookup(c->n[2].mdb, "f03.cfg"));
	g_autofree char *s2 = content(&c->n[2], "f20.cfg");
	g_assert_cmpstr(s2, ==, "changed");
	cluster_free(c);
}

static void test_restart_all(void)
{
	cluster_t *c = cluster_new(3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	op(c, 0, DCDB_MSG_CREATE, "a", NULL, NULL);
	op(c, 1, DCDB_MSG_CREATE, "b", NULL, NULL);
	simbus_run(c->sb);
	simbus_all(c->sb, false);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++) {
		node_stop(c, i);
		node_start(c, i);
	}
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_nonnull(memdb_lookup(c->n[2].mdb, "b"));
	cluster_free(c);
}

static void test_not_quorate(void)
{
	cluster_t *c = cluster_new(2);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	c->n[1].quorate = false;
	dcdb_msg_t m = {.subtype = DCDB_MSG_CREATE, .path = "x"};
	g_assert_cmpint(dcdb_send(c->n[1].db, &m, NULL), ==, -EACCES);
	/* a change delivered while not quorate makes that node leave */
	op(c, 0, DCDB_MSG_CREATE, "x", NULL, NULL);
	simbus_run(c->sb);
	g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[1].db)), ==, DFSM_MODE_LEAVE);
	g_assert_null(memdb_lookup(c->n[1].mdb, "x"));
	/* quorate again and restarted: it resyncs */
	c->n[1].quorate = true;
	g_assert_cmpint(dfsm_restart(dcdb_dfsm(c->n[1].db)), ==, 0);
	bool one[SIMBUS_MAX_NODES] = {true, false};
	simbus_membership(c->sb, one);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_nonnull(memdb_lookup(c->n[1].mdb, "x"));
	cluster_free(c);
}

static void test_locks(void)
{
	cluster_t *c = cluster_new(3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	op(c, 0, DCDB_MSG_MKDIR, "priv", NULL, NULL);
	op(c, 0, DCDB_MSG_MKDIR, "priv/lock", NULL, NULL);
	simbus_run(c->sb);
	uint64_t a = op(c, 1, DCDB_MSG_MKDIR, "priv/lock/x", NULL, NULL);
	uint64_t b = op(c, 2, DCDB_MSG_MKDIR, "priv/lock/x", NULL, NULL);
	simbus_run(c->sb);
	g_assert_cmpint(result(c, 1, a), ==, 0);
	g_assert_cmpint(result(c, 2, b), ==, -EEXIST); /* mutual exclusion */
	const memdb_entry_t *e = memdb_lookup(c->n[2].mdb, "priv/lock/x");
	uint8_t csum[MEMDB_CSUM_LEN];
	memdb_record_checksum(e, csum);
	/* not expired yet: the request changes nothing */
	g_assert_cmpint(dcdb_send_unlock_request(c->n[2].db, "priv/lock/x", csum), ==, 0);
	simbus_run(c->sb);
	g_assert_nonnull(memdb_lookup(c->n[0].mdb, "priv/lock/x"));
	/* past the lifetime on the lowest node's clock: removed everywhere */
	tu_now += 121;
	g_assert_cmpint(dcdb_send_unlock_request(c->n[2].db, "priv/lock/x", csum), ==, 0);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		g_assert_null(memdb_lookup(c->n[i].mdb, "priv/lock/x"));
	assert_converged(c, NULL);
	cluster_free(c);
}

static void test_leader_is_newest(void)
{
	/* apart, node 1 makes three changes and node 2 one: together, node
	 * 1's tree wins (the higher version), node 2's change is gone */
	cluster_t *c = cluster_new(2);
	bool a[SIMBUS_MAX_NODES] = {true, false}, b[SIMBUS_MAX_NODES] = {false, true};
	simbus_membership(c->sb, a);
	simbus_run(c->sb);
	op(c, 0, DCDB_MSG_CREATE, "one", NULL, NULL);
	op(c, 0, DCDB_MSG_CREATE, "two", NULL, NULL);
	op(c, 0, DCDB_MSG_CREATE, "three", NULL, NULL);
	simbus_run(c->sb);
	simbus_membership(c->sb, b);
	simbus_run(c->sb);
	g_assert_cmpint(dfsm_restart(dcdb_dfsm(c->n[1].db)), ==, 0);
	simbus_membership(c->sb, b);
	simbus_run(c->sb);
	op(c, 1, DCDB_MSG_CREATE, "lost", NULL, NULL);
	simbus_run(c->sb);
	g_assert_nonnull(memdb_lookup(c->n[1].mdb, "lost"));
	g_assert_cmpint(dfsm_restart(dcdb_dfsm(c->n[0].db)), ==, 0);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	assert_converged(c, NULL);
	g_assert_null(memdb_lookup(c->n[1].mdb, "lost"));
	g_assert_nonnull(memdb_lookup(c->n[1].mdb, "three"));
	cluster_free(c);
}

static void test_db_error_leaves_and_resyncs(void)
{
	cluster_t *c = cluster_new(2);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	/* node 2's next database write fails (a full disk): it changes
	 * nothing, in memory or on disk, and leaves the group (the restartable
	 * mode); node 1 goes on */
	db_test_fail_after(memdb_database(c->n[1].mdb), 0, 1);
	uint64_t k = op(c, 0, DCDB_MSG_CREATE, "x", NULL, NULL);
	g_test_expect_message("memdb", G_LOG_LEVEL_WARNING, "*database write failed*");
	simbus_run(c->sb);
	g_test_assert_expected_messages();
	g_assert_cmpint(result(c, 0, k), ==, 0);
	g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[1].db)), ==, DFSM_MODE_LEAVE);
	g_assert_null(memdb_lookup(c->n[1].mdb, "x"));
	g_assert_false(memdb_db_error(c->n[1].mdb));
	g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[0].db)), ==, DFSM_MODE_SYNCED);
	bool one[SIMBUS_MAX_NODES] = {true, false};
	simbus_membership(c->sb, one);
	simbus_run(c->sb);
	op(c, 0, DCDB_MSG_CREATE, "y", NULL, NULL);
	simbus_run(c->sb);

	/* it joins again while the disk is still full: taking the leader's
	 * tree fails, it leaves again, its tree as it was */
	g_autofree char *before = index_hex(c->n[1].mdb);
	db_test_fail_after(memdb_database(c->n[1].mdb), 0, 1000);
	g_assert_cmpint(dfsm_restart(dcdb_dfsm(c->n[1].db)), ==, 0);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[1].db)), ==, DFSM_MODE_LEAVE);
	g_autofree char *after = index_hex(c->n[1].mdb);
	g_assert_cmpstr(after, ==, before);
	g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[0].db)), ==, DFSM_MODE_SYNCED);

	/* space again: the next join converges, without a restart */
	db_test_fail_after(memdb_database(c->n[1].mdb), 0, 0);
	simbus_membership(c->sb, one);
	simbus_run(c->sb);
	g_assert_cmpint(dfsm_restart(dcdb_dfsm(c->n[1].db)), ==, 0);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	g_assert_nonnull(memdb_lookup(c->n[1].mdb, "x"));
	g_assert_nonnull(memdb_lookup(c->n[1].mdb, "y"));
	bool both[SIMBUS_MAX_NODES] = {true, true};
	assert_converged(c, both);
	cluster_free(c);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_verify_and_bad_messages(void)
{
	cluster_t *c = cluster_new(3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	op(c, 0, DCDB_MSG_CREATE, "a", NULL, NULL);
	simbus_run(c->sb);
	/* the lowest node asks; every node compares with its checksum */
	dfsm_verify_tick(dcdb_dfsm(c->n[0].db));
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		g_assert_cmpuint(c->n[i].verified, ==, 1);
	assert_converged(c, NULL);

	/* a framed change no node can apply (a ".." component; our encoder
	 * refuses to make one, so the bytes are built here): refused with
	 * EACCES alike everywhere, nobody leaves, nothing changes */
	dcdb_msg_t m = {.subtype = DCDB_MSG_CREATE, .path = "a/../b"};
	g_autoptr(GByteArray) raw = g_byte_array_new();
	g_assert_cmpint(dcdb_msg_encode(raw, &m), <, 0);
	uint8_t up[DCDB_FUSE_HEADER_LEN + 7] = {0};
	put_u32(up + 8, 7); /* pathlen, with its NUL */
	memcpy(up + DCDB_FUSE_HEADER_LEN, "a/../b", 7);
	uint64_t k = 0;
	g_assert_cmpint(
		dfsm_send_normal(dcdb_dfsm(c->n[1].db), DCDB_MSG_CREATE, up, sizeof(up), true, &k),
		==, 0);
	simbus_run(c->sb);
	g_assert_cmpint(result(c, 1, k), ==, -EACCES);
	g_assert_null(memdb_lookup(c->n[0].mdb, "b"));
	assert_converged(c, NULL);

	/* a malformed payload (not framed): every node leaves, as the original */
	uint8_t junk[3] = {1, 2, 3};
	g_assert_cmpint(
		dfsm_send_normal(dcdb_dfsm(c->n[0].db), DCDB_MSG_WRITE, junk, 3, true, NULL), ==,
		0);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		g_assert_cmpint(dfsm_mode(dcdb_dfsm(c->n[i].db)), ==, DFSM_MODE_LEAVE);
	cluster_free(c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dcdb/writes-replicate", test_writes_replicate);
	g_test_add_func("/dcdb/vmid-unique", test_vmid_unique);
	g_test_add_func("/dcdb/join-empty-and-stale", test_join_empty_and_stale);
	g_test_add_func("/dcdb/restart-all", test_restart_all);
	g_test_add_func("/dcdb/not-quorate", test_not_quorate);
	g_test_add_func("/dcdb/locks", test_locks);
	g_test_add_func("/dcdb/verify-and-bad-messages", test_verify_and_bad_messages);
	g_test_add_func("/dcdb/leader-is-newest", test_leader_is_newest);
	g_test_add_func("/dcdb/db-error-leaves-and-resyncs", test_db_error_leaves_and_resyncs);
	return g_test_run();
}
