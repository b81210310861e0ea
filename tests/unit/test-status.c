/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-status.c: the parts of status.c that have rules of their own: the
 * RRD dump's 2 s cache and 300 s expiry (cluster.md §3.9), on a test clock,
 * and the cluster log's replication accessors (§3.3, §3.4, §3.10).
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "clog.h"
#include "status.h"
#include "testutil.h"

static int64_t fake_us = 1000 * G_USEC_PER_SEC;
static int64_t fake_clock(void)
{
	return fake_us;
}

typedef struct {
	char *dir;
	memdb_t *mdb;
	status_t *st;
} fixture_t;

static void setup(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	f->dir = tu_dir_new();
	f->mdb = tu_open(f->dir);
	f->st = status_new("node1", f->mdb);
	status_set_clock(f->st, fake_clock);
}

static void teardown(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	status_free(f->st);
	memdb_close(f->mdb);
	tu_dir_free(f->dir);
}

static void rrd_set(status_t *st, const char *key, const char *v)
{
	g_assert_cmpint(status_kv_set(st, key, v, strlen(v) + 1), ==, 0);
}

static void assert_rrd(status_t *st, const char *want)
{
	g_autofree char *t = status_rrd_text(st);
	g_assert_cmpstr(t, ==, want);
}

static void test_rrd_cache(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	status_t *st = f->st;
	assert_rrd(st, "");
	/* the empty dump is cached like any other */
	rrd_set(st, "rrd/pve2-node/node1", "1:2");
	fake_us += G_USEC_PER_SEC;
	assert_rrd(st, "");
	fake_us += G_USEC_PER_SEC;
	assert_rrd(st, "pve2-node/node1:1:2\n");
	/* an update within 2 s of the build is not shown yet ... */
	rrd_set(st, "rrd/pve2-node/node1", "3:4");
	fake_us += 2 * G_USEC_PER_SEC - 1;
	assert_rrd(st, "pve2-node/node1:1:2\n");
	/* ... and is at 2 s, no later than the original shows it */
	fake_us += 1;
	assert_rrd(st, "pve2-node/node1:3:4\n");
	/* negative control: with 2 s between reads every read is fresh */
	for (int i = 0; i < 3; i++) {
		char v[16];
		g_snprintf(v, sizeof(v), "%d", i);
		rrd_set(st, "rrd/pve2-node/node1", v);
		fake_us += 2 * G_USEC_PER_SEC;
		g_autofree char *want = g_strdup_printf("pve2-node/node1:%d\n", i);
		assert_rrd(st, want);
	}
}

static void test_rrd_expiry(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	status_t *st = f->st;
	rrd_set(st, "rrd/pve2-vm/100", "a");
	fake_us += 150 * G_USEC_PER_SEC;
	rrd_set(st, "rrd/pve2-vm/101", "b");
	fake_us += 150 * G_USEC_PER_SEC;
	/* 300 s old: still there (older than 300 goes) */
	g_autofree char *t = status_rrd_text(st);
	g_assert_nonnull(strstr(t, "pve2-vm/100:a\n"));
	g_assert_nonnull(strstr(t, "pve2-vm/101:b\n"));
	fake_us += 2 * G_USEC_PER_SEC;
	assert_rrd(st, "pve2-vm/101:b\n");
	fake_us += 150 * G_USEC_PER_SEC;
	assert_rrd(st, "");
}

static void hook(void *data, GBytes *entry)
{
	GPtrArray *sent = data;
	g_ptr_array_add(sent, g_bytes_ref(entry));
}

static void test_clog_replication(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	status_t *st = f->st;
	g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	status_set_clog_hook(st, hook, sent);
	g_assert_cmpint(status_clog_add(st, "node1", "alice", "task", 1, 9, 10, "bad"), ==,
			-EINVAL);
	g_assert_cmpint(sent->len, ==, 0);
	g_assert_cmpint(status_clog_add(st, "node1", "alice", "task", 1, 5, 4000000000u, "one"), ==,
			0);
	g_assert_cmpint(sent->len, ==, 1);

	/* a second node receives the LOG payload */
	status_t *other = status_new("node2", f->mdb);
	gsize len;
	const uint8_t *p = g_bytes_get_data(sent->pdata[0], &len);
	g_assert_cmpint(status_clog_receive(other, p, len), ==, 1);
	g_assert_cmpint(status_clog_receive(other, p, len), ==, 0); /* duplicate */
	g_assert_cmpint(status_clog_receive(other, p, len - 1), ==, -EINVAL);
	g_autofree char *j = status_clusterlog_json(other, 0, "alice");
	g_assert_nonnull(strstr(j, "\"msg\":\"one\""));
	g_assert_nonnull(strstr(j, "\"node\":\"node1\""));

	/* state exchange: both logs end up with both startup entries */
	g_autoptr(GBytes) s1 = status_clog_state(st);
	g_autoptr(GBytes) s2 = status_clog_state(other);
	g_assert_cmpuint(g_bytes_get_size(s1), ==, CLOG_DEFAULT_SIZE);
	g_autoptr(GBytes) junk = g_bytes_new_static("junk", 4);
	GBytes *states[] = {s1, s2, junk, NULL};
	g_assert_cmpint(status_clog_merge(st, states, 4, 0), ==, 3);
	g_assert_cmpint(status_clog_merge(other, states, 4, 1), ==, 3);
	g_autofree char *j1 = status_clusterlog_json(st, 0, NULL);
	g_autofree char *j2 = status_clusterlog_json(other, 0, NULL);
	g_assert_cmpstr(j1, ==, j2);
	g_assert_cmpint(status_clog_merge(st, states, 4, 4), ==, -EINVAL);

	/* removing the hook */
	status_set_clog_hook(st, NULL, NULL);
	g_assert_cmpint(status_clog_add(st, "node1", "alice", "task", 1, 5, 4000000001u, "two"), ==,
			0);
	g_assert_cmpint(sent->len, ==, 1);
	status_free(other);
}

/* names that are not UTF-8 (from cmap, the tree or a peer) still give
 * valid UTF-8; an address that is not UTF-8 is refused */
static void test_json_stays_utf8(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	status_node_t nodes[2] = {{"node1", 1, 1}, {"n\xff\xfe", 2, 1}};
	status_set_cluster_info(f->st, "c\xe2\xe2", 1, nodes, 2);
	g_assert_cmpint(status_kv_set(f->st, "nodeip", "10.0.\xe2\xe2", sizeof("10.0.\xe2\xe2")),
			==, -EINVAL);
	g_assert_cmpint(status_kv_receive(f->st, 2, "nodeip", "10.\xff", sizeof("10.\xff")), ==,
			-EINVAL);
	g_autofree char *m = status_members_json(f->st);
	g_assert_true(g_utf8_validate(m, -1, NULL));
	g_assert_nonnull(strstr(m, "\"n\xef\xbf\xbd\xef\xbf\xbd\""));
	g_assert_cmpint(memdb_mkdir(f->mdb, "nodes", 0, 1), ==, 0);
	g_assert_cmpint(memdb_mkdir(f->mdb, "nodes/x\xff", 0, 1), ==, 0);
	g_assert_cmpint(memdb_mkdir(f->mdb, "nodes/x\xff/qemu-server", 0, 1), ==, 0);
	g_assert_cmpint(memdb_create(f->mdb, "nodes/x\xff/qemu-server/100.conf", 0, 1), ==, 0);
	g_autofree char *v = status_vmlist_json(f->st);
	g_assert_true(g_utf8_validate(v, -1, NULL));
}

/* writable needs both quorums; status_quorate (corosync's) is apart */
static void test_writable(fixture_t *f, gconstpointer unused)
{
	(void)unused;
	g_assert_true(status_writable(f->st)); /* local mode */
	status_set_quorate(f->st, false);
	g_assert_false(status_writable(f->st));
	status_set_quorate(f->st, true);
	status_set_group_quorate(f->st, false);
	g_assert_true(status_quorate(f->st));
	g_assert_false(status_writable(f->st));
	status_set_group_quorate(f->st, true);
	g_assert_true(status_writable(f->st));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tu_allow_warnings();
	g_log_set_fatal_mask("status", G_LOG_LEVEL_ERROR);
	g_test_add("/status/writable", fixture_t, NULL, setup, test_writable, teardown);
	g_test_add("/status/rrd-cache", fixture_t, NULL, setup, test_rrd_cache, teardown);
	g_test_add("/status/rrd-expiry", fixture_t, NULL, setup, test_rrd_expiry, teardown);
	g_test_add("/status/json-stays-utf8", fixture_t, NULL, setup, test_json_stays_utf8,
		   teardown);
	g_test_add("/status/clog-replication", fixture_t, NULL, setup, test_clog_replication,
		   teardown);
	return g_test_run();
}
