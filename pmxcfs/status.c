/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * status.c: start time, node name, quorum, the cluster log, and the JSON
 * texts of the generated files (see status.h).
 *
 * Every text is built with json-glib from current data, so names with
 * quotes or control characters come out as valid JSON (the original prints
 * them unescaped).  Key order follows the original's.  The one exception to
 * "current" is the RRD dump, which the original rebuilds at most every
 * RRD_DUMP_CACHE_SECONDS (cluster.md §3.9), and so do we.
 *
 * The cluster log is clog.c's ring; this file adds the daemon's side: the
 * startup entry, the log lines, and the accessors for replication.
 */
#define G_LOG_DOMAIN "status"
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clog.h"
#include "constants.h"
#include "status.h"

struct status {
	char *nodename;
	memdb_t *mdb;
	uint32_t starttime;
	bool quorate;
	bool group_quorate;
	clog_t *clog;
	status_clog_hook_t clog_hook;
	void *clog_hook_data;
	GHashTable *kv;      /* key -> kv_value_t (this node's) */
	GHashTable *peer_kv; /* node name -> (key -> kv_value_t), from UPDATEs */
	status_kv_hook_t kv_hook;
	void *kv_hook_data;
	GHashTable *rrd;        /* key without "rrd/" -> rrd_value_t */
	char *rrd_dump;         /* the last dump built, served until it is too old */
	int64_t rrd_dump_at;    /* clock() when it was built */
	int64_t (*clock)(void); /* monotonic microseconds */
	/* cluster info */
	char *cluster_name; /* NULL: none (local mode, cmap not read) */
	uint64_t config_version;
	GArray *nodes;        /* node_info_t, sorted by nodeid */
	GHashTable *node_ips; /* name -> address */
	uint32_t clinfo_version;
};

typedef struct node_info {
	char *name;
	uint32_t nodeid;
	uint32_t votes;
	bool online;
} node_info_t;

static node_info_t *find_node(status_t *st, uint32_t nodeid);

typedef struct kv_value {
	GBytes *data;
	uint32_t version;
} kv_value_t;

typedef struct rrd_value {
	char *data;
	gint64 time; /* monotonic seconds of the update */
} rrd_value_t;

#define RRD_MAX_VALUE  4096
#define NODEIP_MAX_LEN 256

static void kv_value_free(gpointer p)
{
	kv_value_t *v = p;
	g_bytes_unref(v->data);
	g_free(v);
}

static void rrd_value_free(gpointer p)
{
	rrd_value_t *v = p;
	g_free(v->data);
	g_free(v);
}

static int64_t real_clock(void)
{
	return g_get_monotonic_time();
}

status_t *status_new(const char *nodename, memdb_t *mdb)
{
	status_t *st = g_new0(status_t, 1);
	st->nodename = g_strdup(nodename);
	st->mdb = mdb;
	st->starttime = (uint32_t)time(NULL);
	st->quorate = true;
	st->group_quorate = true;
	st->clock = real_clock;
	st->clog = clog_new(0);
	st->kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, kv_value_free);
	st->peer_kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)g_hash_table_unref);
	st->rrd = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, rrd_value_free);
	st->nodes = g_array_new(FALSE, TRUE, sizeof(node_info_t));
	st->node_ips = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	/* local only: this entry reaches peers with the next state exchange */
	(void)clog_add(st->clog, nodename, "root", "cluster", (uint32_t)getpid(), LOG_INFO,
		       st->starttime, "starting cluster log", NULL);
	return st;
}

status_t *status_free(status_t *st)
{
	if (!st)
		return NULL;
	clog_free(st->clog);
	g_free(st->rrd_dump);
	g_hash_table_unref(st->kv);
	g_hash_table_unref(st->peer_kv);
	g_hash_table_unref(st->rrd);
	g_free(st->nodename);
	g_free(st->cluster_name);
	for (guint i = 0; i < st->nodes->len; i++)
		g_free(g_array_index(st->nodes, node_info_t, i).name);
	g_array_unref(st->nodes);
	g_hash_table_unref(st->node_ips);
	g_free(st);
	return NULL;
}

const char *status_nodename(status_t *st)
{
	return st->nodename;
}

void status_set_quorate(status_t *st, bool quorate)
{
	st->quorate = quorate;
}

bool status_quorate(status_t *st)
{
	return st->quorate;
}

void status_set_group_quorate(status_t *st, bool quorate)
{
	st->group_quorate = quorate;
}

bool status_group_quorate(status_t *st)
{
	return st->group_quorate;
}

bool status_writable(status_t *st)
{
	return st->quorate && st->group_quorate;
}

void status_set_clock(status_t *st, int64_t (*now_us)(void))
{
	st->clock = now_us ? now_us : real_clock;
}

int status_clog_add(status_t *st, const char *node, const char *user, const char *tag, uint32_t pid,
		    uint8_t priority, uint32_t time, const char *msg)
{
	g_autoptr(GBytes) entry = NULL;
	int r = clog_add(st->clog, node, user, tag, pid, priority, time, msg, &entry);
	if (r < 0)
		return r;
	if (r == 0)
		g_message("ignore insert of duplicate cluster log");
	/* sent even when our own filter dropped it, as the original does */
	if (st->clog_hook)
		st->clog_hook(st->clog_hook_data, entry);
	return 0;
}

void status_set_clog_hook(status_t *st, status_clog_hook_t fn, void *data)
{
	st->clog_hook = fn;
	st->clog_hook_data = data;
}

int status_clog_receive(status_t *st, const void *data, size_t len)
{
	clog_entry_t e;
	int r = clog_entry_decode(data, len, &e);
	if (r < 0) {
		g_warning("cannot parse a cluster log message of %zu bytes: %s, ignoring", len,
			  g_strerror(-r));
		return r;
	}
	r = clog_insert(st->clog, &e);
	if (r == 0)
		g_message("ignore insert of duplicate cluster log");
	return r;
}

GBytes *status_clog_state(status_t *st)
{
	return clog_state_encode(st->clog);
}

int status_clog_merge(status_t *st, GBytes *const *states, size_t count, size_t local_index)
{
	if (!states || local_index >= count)
		return -EINVAL;
	clog_t **logs = g_new0(clog_t *, count);
	for (size_t i = 0; i < count; i++) {
		if (i == local_index || !states[i])
			continue;
		gsize len;
		const uint8_t *p = g_bytes_get_data(states[i], &len);
		int r = clog_state_decode(p, len, &logs[i]);
		if (r < 0)
			g_warning("cluster log state %zu of %zu (%zu bytes) is malformed: %s, "
				  "treating it as missing",
				  i + 1, count, (size_t)len, g_strerror(-r));
	}
	int r = clog_merge(st->clog, logs, count, local_index);
	for (size_t i = 0; i < count; i++)
		clog_free(logs[i]);
	g_free(logs);
	return r;
}

/* a string value: NUL-terminated, the NUL its last byte */
static bool c_string(const void *value, size_t len, size_t max)
{
	return len >= 1 && len < max && ((const char *)value)[len - 1] == '\0' &&
	       memchr(value, '\0', len) == (const char *)value + len - 1;
}

/* an address: a string of UTF-8 (in practice ASCII) */
static bool ip_string(const void *value, size_t len)
{
	return c_string(value, len, NODEIP_MAX_LEN) && g_utf8_validate(value, -1, NULL);
}

/* One value into @kv: len 0 deletes, a replaced key's version moves on
 * (versions count per observer, cluster.md §3.2). */
static void kv_put(GHashTable *kv, const char *key, const void *value, size_t len)
{
	if (len == 0) {
		g_hash_table_remove(kv, key);
		return;
	}
	kv_value_t *old = g_hash_table_lookup(kv, key);
	kv_value_t *v = g_new0(kv_value_t, 1);
	v->data = g_bytes_new(value, len);
	v->version = old ? old->version + 1 : 0;
	g_hash_table_replace(kv, g_strdup(key), v);
}

/* "rrd/<key>" into the shared RRD data (any node's) */
static int rrd_put(status_t *st, const char *key, const void *value, size_t len)
{
	if (!c_string(value, len, RRD_MAX_VALUE) || !key[4])
		return -EINVAL;
	rrd_value_t *v = g_new0(rrd_value_t, 1);
	v->data = g_strdup(value);
	v->time = st->clock() / G_USEC_PER_SEC;
	g_hash_table_replace(st->rrd, g_strdup(key + 4), v);
	return 0;
}

int status_kv_set(status_t *st, const char *key, const void *value, size_t len)
{
	if (len > KVSTORE_MAX_VALUE)
		return -EFBIG;
	if (strlen(key) >= KVSTORE_KEY_LEN)
		return -EINVAL; /* it would not fit the UPDATE message */
	if (g_str_has_prefix(key, "rrd/")) {
		int r = rrd_put(st, key, value, len);
		if (r < 0)
			return r;
	} else if (strcmp(key, "nodeip") == 0) {
		if (!ip_string(value, len))
			return -EINVAL;
		status_set_node_ip(st, st->nodename, value);
	} else {
		kv_put(st->kv, key, value, len);
	}
	/* the original broadcasts even what its own store refused; we only
	 * send what we accepted, which its receivers would take too */
	if (st->kv_hook)
		st->kv_hook(st->kv_hook_data, key, value, len);
	return 0;
}

void status_set_kv_hook(status_t *st, status_kv_hook_t fn, void *data)
{
	st->kv_hook = fn;
	st->kv_hook_data = data;
}

void status_kv_local_each(status_t *st, status_kv_hook_t fn, void *data)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, st->kv);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		gsize len;
		const void *p = g_bytes_get_data(((kv_value_t *)v)->data, &len);
		fn(data, k, p, len);
	}
}

int status_kv_receive(status_t *st, uint32_t nodeid, const char *key, const void *value, size_t len)
{
	const node_info_t *ni = find_node(st, nodeid);
	if (!ni)
		return -ENOENT; /* not in the nodelist: ignored, as by the original */
	if (len > KVSTORE_MAX_VALUE)
		return -EFBIG;
	if (g_str_has_prefix(key, "rrd/"))
		return rrd_put(st, key, value, len);
	if (strcmp(key, "nodeip") == 0) {
		if (!ip_string(value, len))
			return -EINVAL;
		status_set_node_ip(st, ni->name, value);
		return 0;
	}
	GHashTable *kv = g_hash_table_lookup(st->peer_kv, ni->name);
	if (!kv) {
		if (len == 0)
			return 0;
		kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, kv_value_free);
		g_hash_table_insert(st->peer_kv, g_strdup(ni->name), kv);
	}
	kv_put(kv, key, value, len);
	return 0;
}

int status_kv_get(status_t *st, const char *node, const char *key, GBytes **ret)
{
	GHashTable *kv = st->kv;
	if (node && node[0] && strcmp(node, st->nodename) != 0)
		kv = g_hash_table_lookup(st->peer_kv, node);
	const kv_value_t *v = kv ? g_hash_table_lookup(kv, key) : NULL;
	if (!v)
		return -ENOENT;
	*ret = g_bytes_ref(v->data);
	return 0;
}

const char *status_node_ip(status_t *st, const char *name)
{
	return g_hash_table_lookup(st->node_ips, name);
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void member_int(JsonBuilder *b, const char *name, gint64 v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static void member_str(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_string_value(b, v);
}

static char *render(JsonBuilder *b)
{
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autoptr(JsonGenerator) gen = json_generator_new();
	json_generator_set_pretty(gen, TRUE);
	json_generator_set_indent(gen, 0);
	json_generator_set_root(gen, root);
	char *s = json_generator_to_data(gen, NULL);
	/* names and addresses come from cmap, the tree and peers: bytes that
	 * are not UTF-8 (json-glib passes them through) become U+FFFD, so
	 * the text stays valid JSON */
	if (!g_utf8_validate(s, -1, NULL)) {
		char *valid = g_utf8_make_valid(s, -1);
		g_free(s);
		s = valid;
	}
	char *out = g_strconcat(s, "\n", NULL);
	g_free(s);
	return out;
}

char *status_version_json(status_t *st)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	json_builder_begin_object(b);
	member_int(b, "starttime", st->starttime);
	member_int(b, "clinfo", st->clinfo_version);
	member_int(b, "vmlist", memdb_vmlist_version(st->mdb));
	for (size_t i = 0; i < memdb_path_counter_count(); i++) {
		member_int(b, memdb_path_counter_name(i), memdb_path_counter(st->mdb, i));
	}
	json_builder_set_member_name(b, "kvstore");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, st->nodename);
	json_builder_begin_object(b);
	g_autoptr(GPtrArray) keys = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, st->kv);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(keys, k);
	g_ptr_array_sort(keys, cmp_str);
	for (guint i = 0; i < keys->len; i++) {
		const kv_value_t *v = g_hash_table_lookup(st->kv, keys->pdata[i]);
		member_int(b, keys->pdata[i], v->version);
	}
	json_builder_end_object(b);
	json_builder_end_object(b);
	json_builder_end_object(b);
	return render(b);
}

/* --- cluster info ------------------------------------------------------------ */

static int cmp_node(const void *a, const void *b)
{
	uint32_t x = ((const node_info_t *)a)->nodeid, y = ((const node_info_t *)b)->nodeid;
	return x < y ? -1 : x > y;
}

static node_info_t *find_node(status_t *st, uint32_t nodeid)
{
	node_info_t key = {.nodeid = nodeid};
	if (st->nodes->len == 0)
		return NULL; /* no array yet: bsearch must not see its NULL data */
	return bsearch(&key, st->nodes->data, st->nodes->len, sizeof(node_info_t), cmp_node);
}

void status_set_cluster_info(status_t *st, const char *cluster_name, uint64_t config_version,
			     const status_node_t *nodes, size_t n)
{
	GArray *a = g_array_new(FALSE, TRUE, sizeof(node_info_t));
	for (size_t i = 0; i < n; i++) {
		if (!nodes[i].nodeid || !nodes[i].name || !nodes[i].name[0])
			continue;
		node_info_t *old = find_node(st, nodes[i].nodeid);
		node_info_t ni = {g_strdup(nodes[i].name), nodes[i].nodeid, nodes[i].votes,
				  old && old->online};
		g_array_append_val(a, ni);
	}
	g_array_sort(a, cmp_node);
	for (guint i = 0; i < st->nodes->len; i++)
		g_free(g_array_index(st->nodes, node_info_t, i).name);
	g_array_unref(st->nodes);
	st->nodes = a;
	/* the data of a node that left the nodelist goes with it (§3.4) */
	GHashTableIter it;
	gpointer name;
	g_hash_table_iter_init(&it, st->peer_kv);
	while (g_hash_table_iter_next(&it, &name, NULL)) {
		bool kept = false;
		for (guint i = 0; i < a->len && !kept; i++)
			kept = strcmp(g_array_index(a, node_info_t, i).name, name) == 0;
		if (!kept)
			g_hash_table_iter_remove(&it);
	}
	g_free(st->cluster_name);
	st->cluster_name = g_strdup(cluster_name);
	st->config_version = config_version;
	st->clinfo_version++;
}

void status_set_online(status_t *st, const uint32_t *nodeids, size_t n)
{
	for (guint i = 0; i < st->nodes->len; i++) {
		node_info_t *ni = &g_array_index(st->nodes, node_info_t, i);
		ni->online = false;
		for (size_t j = 0; j < n; j++)
			if (nodeids[j] == ni->nodeid)
				ni->online = true;
	}
	if (st->nodes->len > 0)
		st->clinfo_version++;
}

void status_set_node_ip(status_t *st, const char *name, const char *ip)
{
	const char *old = g_hash_table_lookup(st->node_ips, name);
	if (g_strcmp0(old, ip) == 0)
		return;
	if (ip)
		g_hash_table_replace(st->node_ips, g_strdup(name), g_strdup(ip));
	else
		g_hash_table_remove(st->node_ips, name);
	st->clinfo_version++;
}

bool status_node_known(status_t *st, uint32_t nodeid)
{
	return st->nodes->len == 0 || find_node(st, nodeid) != NULL;
}

uint32_t status_clinfo_version(status_t *st)
{
	return st->clinfo_version;
}

/* cluster.md §3.6, with the nodes in nodeid order (the original's follow
 * its hash table) */
char *status_members_json(status_t *st)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "nodename", st->nodename);
	member_int(b, "version", st->clinfo_version);
	if (st->cluster_name && st->nodes->len > 0) {
		json_builder_set_member_name(b, "cluster");
		json_builder_begin_object(b);
		member_str(b, "name", st->cluster_name);
		member_int(b, "version", (gint64)st->config_version);
		member_int(b, "nodes", st->nodes->len);
		member_int(b, "quorate", st->quorate ? 1 : 0);
		json_builder_end_object(b);
		json_builder_set_member_name(b, "nodelist");
		json_builder_begin_object(b);
		for (guint i = 0; i < st->nodes->len; i++) {
			const node_info_t *ni = &g_array_index(st->nodes, node_info_t, i);
			json_builder_set_member_name(b, ni->name);
			json_builder_begin_object(b);
			member_int(b, "id", ni->nodeid);
			member_int(b, "online", ni->online ? 1 : 0);
			const char *ip = g_hash_table_lookup(st->node_ips, ni->name);
			if (ip)
				member_str(b, "ip", ip);
			json_builder_end_object(b);
		}
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	return render(b);
}

static const char *vm_type_name(int type)
{
	switch (type) {
	case VMTYPE_QEMU:
		return "qemu";
	case VMTYPE_LXC:
		return "lxc";
	case VMTYPE_OPENVZ:
		return "openvz";
	default:
		return "unknown";
	}
}

char *status_vmlist_json(status_t *st)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GPtrArray) vms = memdb_vm_list(st->mdb);
	json_builder_begin_object(b);
	member_int(b, "version", memdb_vmlist_version(st->mdb));
	if (vms->len > 0) {
		json_builder_set_member_name(b, "ids");
		json_builder_begin_object(b);
		for (guint i = 0; i < vms->len; i++) {
			const memdb_vm_t *vm = g_ptr_array_index(vms, i);
			char id[16];
			g_snprintf(id, sizeof(id), "%u", vm->vmid);
			json_builder_set_member_name(b, id);
			json_builder_begin_object(b);
			member_str(b, "node", vm->node);
			member_str(b, "type", vm_type_name(vm->type));
			member_int(b, "version", vm->version);
			json_builder_end_object(b);
		}
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	return render(b);
}

char *status_clusterlog_json(status_t *st, unsigned max, const char *user)
{
	return clog_dump_json(st->clog, user, max ? max : CLOG_JSON_DEFAULT_MAX);
}

/*
 * The original keeps the dump it built for 2 s (whole seconds of time(),
 * `now - built < 2`).  We serve it while less than 2 s have passed, counted
 * in microseconds: never rebuilt sooner than 2 s after the last build, and
 * an update is in the dump at most 2 s after it arrived, as there.
 */
char *status_rrd_text(status_t *st)
{
	int64_t now_us = st->clock();
	if (st->rrd_dump && now_us - st->rrd_dump_at < RRD_DUMP_CACHE_SECONDS * G_USEC_PER_SEC)
		return g_strdup(st->rrd_dump);
	gint64 now = now_us / G_USEC_PER_SEC;
	GString *out = g_string_new(NULL);
	GHashTableIter it;
	gpointer k, val;
	g_hash_table_iter_init(&it, st->rrd);
	while (g_hash_table_iter_next(&it, &k, &val)) {
		rrd_value_t *v = val;
		if (now - v->time > RRD_MAX_AGE) {
			g_hash_table_iter_remove(&it);
			continue;
		}
		g_string_append_printf(out, "%s:%s\n", (const char *)k, v->data);
	}
	g_free(st->rrd_dump);
	st->rrd_dump = g_string_free(out, FALSE);
	st->rrd_dump_at = now_us;
	return g_strdup(st->rrd_dump);
}
