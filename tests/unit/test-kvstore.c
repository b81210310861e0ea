/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-kvstore.c: the status group (pmxcfs/kvstore.c) on the simulated CPG
 * bus, each node with its own status: key/value updates, RRD data and
 * addresses reach every node under the sender's name; the cluster logs
 * merge on a membership change; "online" follows the group; senders not in
 * the nodelist and malformed messages are ignored without leaving.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "constants.h"
#include "kvstore.h"
#include "simbus.h"

typedef struct node {
	size_t idx;
	simbus_t *sb;
	status_t *st;
	kvstore_t *kv;
	char name[16];
	unsigned warnings;
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

static void h_log(void *ud, int level, const char *msg)
{
	node_t *x = ud;
	if (level <= LOG_WARNING)
		x->warnings++;
	if (g_test_verbose())
		g_printerr("%s: %s\n", x->name, msg);
}

static const kvstore_hooks_t hooks = {.send = h_send, .log = h_log};

/* @n nodes on the bus, the first @known of them in the nodelist */
static cluster_t *cluster_new(size_t n, size_t known)
{
	cluster_t *c = g_new0(cluster_t, 1);
	c->count = n;
	c->sb = simbus_new(n);
	status_node_t list[SIMBUS_MAX_NODES];
	char names[SIMBUS_MAX_NODES][16];
	for (size_t i = 0; i < known; i++) {
		g_snprintf(names[i], sizeof(names[i]), "node%zu", i + 1);
		list[i] = (status_node_t){names[i], simbus_nodeid(i), 1};
	}
	for (size_t i = 0; i < n; i++) {
		node_t *x = &c->n[i];
		x->idx = i;
		x->sb = c->sb;
		g_snprintf(x->name, sizeof(x->name), "node%zu", i + 1);
		x->st = status_new(x->name, NULL);
		status_set_cluster_info(x->st, "test", 1, list, known);
		g_autofree char *ip = g_strdup_printf("10.0.0.%zu", i + 1);
		status_set_node_ip(x->st, x->name, ip);
		x->kv = kvstore_new(x->st, simbus_nodeid(i), simbus_pid(i), &hooks, x);
		simbus_attach(c->sb, i, kvstore_dfsm(x->kv));
	}
	return c;
}

static void cluster_free(cluster_t *c)
{
	for (size_t i = 0; i < c->count; i++) {
		simbus_attach(c->sb, i, NULL);
		c->n[i].kv = kvstore_free(c->n[i].kv);
		c->n[i].st = status_free(c->n[i].st);
	}
	simbus_free(c->sb);
	g_free(c);
}

static void set(cluster_t *c, size_t i, const char *key, const char *value)
{
	size_t len = value ? strlen(value) + 1 : 0;
	g_assert_cmpint(status_kv_set(c->n[i].st, key, value, len), ==, 0);
}

/* the value of @key of node @of as node @at sees it, or NULL */
static char *get(cluster_t *c, size_t at, size_t of, const char *key)
{
	GBytes *b = NULL;
	if (status_kv_get(c->n[at].st, c->n[of].name, key, &b) < 0)
		return NULL;
	gsize len;
	const char *p = g_bytes_get_data(b, &len);
	char *s = g_strndup(p, len);
	g_bytes_unref(b);
	return s;
}

static void test_updates_reach_every_node(void)
{
	cluster_t *c = cluster_new(3, 3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		g_assert_cmpint(dfsm_mode(kvstore_dfsm(c->n[i].kv)), ==, DFSM_MODE_SYNCED);
	set(c, 0, "kv/test", "one");
	set(c, 1, "tasklist", "[]");
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *a = get(c, i, 0, "kv/test");
		g_autofree char *b = get(c, i, 1, "tasklist");
		g_assert_cmpstr(a, ==, "one");
		g_assert_cmpstr(b, ==, "[]");
	}
	/* a key lives under its sender's name only */
	g_assert_null(get(c, 2, 2, "kv/test"));
	/* replace, then delete */
	set(c, 0, "kv/test", "two");
	simbus_run(c->sb);
	g_autofree char *v2 = get(c, 2, 0, "kv/test");
	g_assert_cmpstr(v2, ==, "two");
	set(c, 0, "kv/test", NULL);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		g_assert_null(get(c, i, 0, "kv/test"));
	/* RRD data of every node in every node's dump */
	set(c, 2, "rrd/pve2-node/node3", "123:0.5:1");
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *rrd = status_rrd_text(c->n[i].st);
		g_assert_nonnull(strstr(rrd, "pve2-node/node3:123:0.5:1\n"));
	}
	for (size_t i = 0; i < 3; i++)
		g_assert_cmpuint(c->n[i].warnings, ==, 0);
	cluster_free(c);
}

/* node @name in node @at's .members as "online ip" ("1 10.0.0.1", "0 -") */
static char *member(cluster_t *c, size_t at, const char *name)
{
	g_autofree char *text = status_members_json(c->n[at].st);
	g_autoptr(JsonParser) p = json_parser_new();
	g_assert_true(json_parser_load_from_data(p, text, -1, NULL));
	JsonObject *list = json_object_get_object_member(
		json_node_get_object(json_parser_get_root(p)), "nodelist");
	JsonObject *n = json_object_get_object_member(list, name);
	const char *ip =
		json_object_has_member(n, "ip") ? json_object_get_string_member(n, "ip") : "-";
	return g_strdup_printf("%d %s", (int)json_object_get_int_member(n, "online"), ip);
}

static void test_online_and_addresses(void)
{
	cluster_t *c = cluster_new(3, 3);
	bool two[3] = {true, true, false};
	simbus_membership(c->sb, two);
	simbus_run(c->sb);
	const char *want2[3] = {"1 10.0.0.1", "1 10.0.0.2", "0 -"};
	for (size_t k = 0; k < 3; k++) {
		g_autofree char *m = member(c, 0, c->n[k].name);
		g_assert_cmpstr(m, ==, want2[k]);
	}
	/* node 3 joins: everyone sees it online with its address */
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++)
		for (size_t k = 0; k < 3; k++) {
			g_autofree char *m = member(c, i, c->n[k].name);
			g_autofree char *want = g_strdup_printf("1 10.0.0.%zu", k + 1);
			g_assert_cmpstr(m, ==, want);
		}
	/* node 1 leaves; its address stays known */
	bool last[3] = {false, true, true};
	simbus_membership(c->sb, last);
	simbus_run(c->sb);
	g_autofree char *m = member(c, 2, "node1");
	g_assert_cmpstr(m, ==, "0 10.0.0.1");
	cluster_free(c);
}

/* keys set while apart reach a node when it joins: every member sends its
 * keys again after a state exchange */
static void test_keys_resent_on_join(void)
{
	cluster_t *c = cluster_new(3, 3);
	bool two[3] = {true, true, false};
	simbus_membership(c->sb, two);
	simbus_run(c->sb);
	set(c, 0, "kv/a", "from 1");
	set(c, 2, "kv/c", "from 3, alone"); /* not joined: not sent */
	simbus_run(c->sb);
	g_assert_null(get(c, 2, 0, "kv/a"));
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *a = get(c, i, 0, "kv/a");
		g_autofree char *b = get(c, i, 2, "kv/c");
		g_assert_cmpstr(a, ==, "from 1");
		g_assert_cmpstr(b, ==, "from 3, alone");
	}
	cluster_free(c);
}

static void test_cluster_log_merges(void)
{
	cluster_t *c = cluster_new(3, 3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	/* after each node's "starting cluster log": the duplicate filter
	 * takes only newer entries per node */
	uint32_t now = (uint32_t)time(NULL) + 10;
	g_assert_cmpint(status_clog_add(c->n[0].st, "node1", "root@pam", "test", 42, LOG_INFO, now,
					"everyone sees this"),
			==, 0);
	simbus_run(c->sb);
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *j = status_clusterlog_json(c->n[i].st, 0, NULL);
		g_assert_nonnull(strstr(j, "everyone sees this"));
	}
	/* node 3 apart logs something; it arrives with the state exchange */
	bool two[3] = {true, true, false};
	simbus_membership(c->sb, two);
	simbus_run(c->sb);
	g_assert_cmpint(status_clog_add(c->n[2].st, "node3", "root@pam", "test", 43, LOG_INFO,
					now + 1, "logged while apart"),
			==, 0);
	simbus_run(c->sb);
	g_autofree char *before = status_clusterlog_json(c->n[0].st, 0, NULL);
	g_assert_null(strstr(before, "logged while apart"));
	/* the glue restarts an engine that left before it joins again */
	g_assert_cmpint(dfsm_restart(kvstore_dfsm(c->n[2].kv)), ==, 0);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	g_autofree char *j0 = status_clusterlog_json(c->n[0].st, 0, NULL);
	g_assert_nonnull(strstr(j0, "logged while apart"));
	/* every node ends with the same log, newest first */
	for (size_t i = 1; i < 3; i++) {
		g_autofree char *j = status_clusterlog_json(c->n[i].st, 0, NULL);
		g_assert_cmpstr(j, ==, j0);
	}
	g_assert_true(strstr(j0, "logged while apart") < strstr(j0, "everyone sees this"));
	cluster_free(c);
}

/* node 4 is on the bus but not in the nodelist; malformed and unknown
 * messages are dropped and nobody leaves */
static void test_strangers_and_bad_messages(void)
{
	cluster_t *c = cluster_new(4, 3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	set(c, 3, "kv/x", "stranger");
	simbus_run(c->sb);
	g_assert_null(get(c, 0, 3, "kv/x"));
	dfsm_t *d = kvstore_dfsm(c->n[1].kv);
	/* UPDATE_COMPLETE is never sent by the original; an unknown type; an
	 * UPDATE too short for its key; a key without NUL; a bad LOG */
	uint8_t nokey[KVSTORE_KEY_LEN];
	memset(nokey, 'k', sizeof(nokey));
	g_assert_cmpint(dfsm_send_normal(d, KVSTORE_MSG_UPDATE_COMPLETE, NULL, 0, false, NULL), ==,
			0);
	g_assert_cmpint(dfsm_send_normal(d, 77, "x", 1, false, NULL), ==, 0);
	g_assert_cmpint(dfsm_send_normal(d, KVSTORE_MSG_UPDATE, "short", 5, false, NULL), ==, 0);
	g_assert_cmpint(dfsm_send_normal(d, KVSTORE_MSG_UPDATE, nokey, sizeof(nokey), false, NULL),
			==, 0);
	g_assert_cmpint(dfsm_send_normal(d, KVSTORE_MSG_LOG, nokey, 60, false, NULL), ==, 0);
	for (int i = 0; i < 3; i++) /* the other three nodes say so */
		g_test_expect_message("status", G_LOG_LEVEL_WARNING,
				      "cannot parse a cluster log message of 60 bytes*");
	simbus_run(c->sb);
	g_test_assert_expected_messages();
	for (size_t i = 0; i < 4; i++) {
		g_assert_cmpint(dfsm_mode(kvstore_dfsm(c->n[i].kv)), ==, DFSM_MODE_SYNCED);
		if (i != 1)
			g_assert_cmpuint(c->n[i].warnings, >=, 4);
	}
	/* and the group still works */
	set(c, 1, "kv/after", "fine");
	simbus_run(c->sb);
	g_autofree char *v = get(c, 0, 1, "kv/after");
	g_assert_cmpstr(v, ==, "fine");
	cluster_free(c);
}

/* a node removed from the nodelist takes its data with it */
static void test_removed_node_forgotten(void)
{
	cluster_t *c = cluster_new(3, 3);
	simbus_all(c->sb, true);
	simbus_run(c->sb);
	set(c, 2, "kv/z", "3's");
	simbus_run(c->sb);
	g_autofree char *v = get(c, 0, 2, "kv/z");
	g_assert_cmpstr(v, ==, "3's");
	status_node_t two[2] = {{"node1", 1, 1}, {"node2", 2, 1}};
	status_set_cluster_info(c->n[0].st, "test", 2, two, 2);
	g_assert_null(get(c, 0, 2, "kv/z"));
	cluster_free(c);
}

static void test_local_checks(void)
{
	status_t *st = status_new("solo", NULL);
	char big[KVSTORE_MAX_VALUE + 1];
	memset(big, 'a', sizeof(big));
	g_assert_cmpint(status_kv_set(st, "kv/big", big, sizeof(big)), ==, -EFBIG);
	char longkey[KVSTORE_KEY_LEN + 1];
	memset(longkey, 'k', sizeof(longkey));
	longkey[KVSTORE_KEY_LEN] = '\0';
	g_assert_cmpint(status_kv_set(st, longkey, "v", 2), ==, -EINVAL);
	g_assert_cmpint(status_kv_set(st, "nodeip", "no nul", 6), ==, -EINVAL);
	g_assert_cmpint(status_kv_set(st, "nodeip", "192.0.2.1", 10), ==, 0);
	g_assert_cmpstr(status_node_ip(st, "solo"), ==, "192.0.2.1");
	/* not in any nodelist: remote updates are ignored */
	g_assert_cmpint(status_kv_receive(st, 9, "kv/a", "b", 2), ==, -ENOENT);
	status_free(st);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/kvstore/updates-reach-every-node", test_updates_reach_every_node);
	g_test_add_func("/kvstore/online-and-addresses", test_online_and_addresses);
	g_test_add_func("/kvstore/keys-resent-on-join", test_keys_resent_on_join);
	g_test_add_func("/kvstore/cluster-log-merges", test_cluster_log_merges);
	g_test_add_func("/kvstore/strangers-and-bad-messages", test_strangers_and_bad_messages);
	g_test_add_func("/kvstore/removed-node-forgotten", test_removed_node_forgotten);
	g_test_add_func("/kvstore/local-checks", test_local_checks);
	return g_test_run();
}
