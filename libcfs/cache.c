/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cache.c: cfs_update, the file registry and the version cache of parsed
 * files (client.md §3-§4), and the error texts.
 *
 * DESIGN
 * - cfs_update keeps what PVE::Cluster keeps: the start time, the per-path
 *   counters, the cluster info and the guest list (fetched again only when
 *   their versions move).  A new start time drops every cached file.
 * - A cached file holds the version it was parsed at and a refcounted
 *   parsed object; a read re-fetches and re-parses only by the rule of
 *   client.md §4.4.  Readers share the object (immutable) instead of the
 *   deep copy Perl makes on every read.
 * - Writes go through the mount as PVE::Tools does: a temporary file with
 *   O_EXCL, then rename.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfs.h"
#include "internal.h"

const char *const cfs_observed_files[] = {"corosync.conf",
					  "corosync.conf.new",
					  "storage.cfg",
					  "user.cfg",
					  "domains.cfg",
					  "notifications.cfg",
					  "priv/notifications.cfg",
					  "priv/shadow.cfg",
					  "priv/acme/plugins.cfg",
					  "priv/tfa.cfg",
					  "priv/token.cfg",
					  "priv/wg-keys.cfg",
					  "datacenter.cfg",
					  "vzdump.cron",
					  "vzdump.conf",
					  "jobs.cfg",
					  "ha/crm_commands",
					  "ha/manager_status",
					  "ha/resources.cfg",
					  "ha/rules.cfg",
					  "ha/groups.cfg",
					  "ha/fence.cfg",
					  "status.cfg",
					  "replication.cfg",
					  "ceph.conf",
					  "sdn/vnets.cfg",
					  "sdn/zones.cfg",
					  "sdn/controllers.cfg",
					  "sdn/subnets.cfg",
					  "sdn/ipams.cfg",
					  "sdn/mac-cache.json",
					  "sdn/pve-ipam-state.json",
					  "sdn/dns.cfg",
					  "sdn/fabrics.cfg",
					  "sdn/route-maps.cfg",
					  "sdn/prefix-lists.cfg",
					  "sdn/.running-config",
					  "virtual-guest/cpu-models.conf",
					  "virtual-guest/profiles.cfg",
					  "firewall/cluster.fw",
					  "mapping/directory.cfg",
					  "mapping/pci.cfg",
					  "mapping/usb.cfg",
					  "/qemu-server/",
					  "/lxc/",
					  "/openvz/",
					  NULL};

struct cfs_obj {
	gint refs;
	void *obj;
	void (*free)(void *obj, void *ud);
	void *ud;
};

typedef struct registration {
	cfs_file_ops_t ops;
} registration_t;

typedef struct cache_entry {
	bool have_version;
	uint64_t version;
	cfs_obj_t *obj;
} cache_entry_t;

typedef struct guest {
	uint64_t version;
} guest_t;

/* --- errors ----------------------------------------------------------------- */

const char *cfs_strerror(int err)
{
	switch (err) {
	case CFS_E_NOQUORUM:
		return "no quorum!";
	case CFS_E_LOCK_TIMEOUT:
		return "got lock request timeout";
	case CFS_E_CMD_TIMEOUT:
		return "locked command timed out";
	case CFS_E_NOT_MOUNTED:
		return "pve cluster filesystem not online.";
	case CFS_E_UNKNOWN_FILE:
		return "unknown file";
	case CFS_E_ALREADY_REGISTERED:
		return "already registered";
	case CFS_E_NO_WRITER:
		return "no writer defined";
	case CFS_E_PROTO:
		return "malformed reply from the daemon";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

void cfs_set_error(cfs_client_t *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_free(h->last_error);
	h->last_error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
}

const char *cfs_last_error(cfs_client_t *h)
{
	return h && h->last_error ? h->last_error : "";
}

uint64_t cfs_request_count(cfs_client_t *h)
{
	return h ? h->requests : 0;
}

/* --- parsed objects ----------------------------------------------------------- */

const void *cfs_obj_get(const cfs_obj_t *o)
{
	return o ? o->obj : NULL;
}

void cfs_obj_unref(cfs_obj_t *o)
{
	if (!o || !g_atomic_int_dec_and_test(&o->refs))
		return;
	if (o->free && o->obj)
		o->free(o->obj, o->ud);
	g_free(o);
}

static cfs_obj_t *obj_ref(cfs_obj_t *o)
{
	g_atomic_int_inc(&o->refs);
	return o;
}

static void cache_entry_free(gpointer p)
{
	cache_entry_t *e = p;
	cfs_obj_unref(e->obj);
	g_free(e);
}

void cfs_cache_init(cfs_client_t *h)
{
	h->path_versions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	h->guests = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	h->registry = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	h->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cache_entry_free);
}

void cfs_cache_fini(cfs_client_t *h)
{
	g_clear_pointer(&h->path_versions, g_hash_table_unref);
	g_clear_pointer(&h->guests, g_hash_table_unref);
	g_clear_pointer(&h->registry, g_hash_table_unref);
	g_clear_pointer(&h->cache, g_hash_table_unref);
	g_clear_pointer(&h->clinfo_json, g_free);
	g_clear_pointer(&h->vmlist_json, g_free);
	g_clear_pointer(&h->last_error, g_free);
}

/* --- cfs_update ----------------------------------------------------------- */

static void forget_all(cfs_client_t *h)
{
	h->have_versions = false;
	h->starttime = 0;
	h->have_clinfo = h->have_vmlist = false;
	g_hash_table_remove_all(h->path_versions);
	g_hash_table_remove_all(h->guests);
	g_clear_pointer(&h->clinfo_json, g_free);
	g_clear_pointer(&h->vmlist_json, g_free);
	g_hash_table_remove_all(h->cache);
}

static JsonObject *parse_object(const char *text, size_t len, JsonParser **ret_parser)
{
	JsonParser *p = json_parser_new();
	if (!text || !json_parser_load_from_data(p, text, (gssize)len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
		g_object_unref(p);
		return NULL;
	}
	*ret_parser = p;
	return json_node_get_object(json_parser_get_root(p));
}

static bool member_uint(JsonObject *o, const char *name, uint64_t *v)
{
	JsonNode *n = json_object_get_member(o, name);
	if (!n || json_node_get_value_type(n) != G_TYPE_INT64 || json_node_get_int(n) < 0)
		return false;
	*v = (uint64_t)json_node_get_int(n);
	return true;
}

/* a request whose reply is a JSON object; *ret_text gets the text */
static int fetch_object(cfs_client_t *h, int32_t op, const char *what, char **ret_text,
			JsonParser **ret_parser, JsonObject **ret_obj)
{
	cfs_buf_t b = {0};
	int r = cfs_ipc_call(h, op, NULL, 0, &b);
	if (r < 0) {
		cfs_set_error(h, "cannot get %s: %s", what, cfs_strerror(r));
		return r;
	}
	*ret_obj = parse_object(b.data, b.len, ret_parser);
	if (!*ret_obj) {
		cfs_set_error(h, "cannot get %s: the reply is not a JSON object", what);
		cfs_buf_free(&b);
		return CFS_E_PROTO;
	}
	*ret_text = b.data; /* NUL-terminated by cfs_ipc_call */
	return 0;
}

static int update_versions(cfs_client_t *h)
{
	char *text = NULL;
	JsonParser *p = NULL;
	JsonObject *o = NULL;
	int r = fetch_object(h, OP_GET_FS_VERSION, "the versions", &text, &p, &o);
	if (r < 0)
		return r;
	uint64_t start;
	if (!member_uint(o, "starttime", &start)) {
		cfs_set_error(h, "no starttime");
		r = CFS_E_PROTO;
		goto out;
	}
	if (!h->have_versions || h->starttime != (uint32_t)start) {
		/* a new daemon: nothing cached stays */
		forget_all(h);
		h->starttime = (uint32_t)start;
	}
	h->have_versions = true;
	/* the same names on every call: the values change in place */
	JsonObjectIter it;
	const char *name;
	JsonNode *node;
	json_object_iter_init(&it, o);
	while (json_object_iter_next(&it, &name, &node)) {
		if (json_node_get_value_type(node) != G_TYPE_INT64)
			continue;
		uint64_t *v = g_hash_table_lookup(h->path_versions, name);
		if (!v) {
			v = g_new(uint64_t, 1);
			g_hash_table_insert(h->path_versions, g_strdup(name), v);
		}
		*v = (uint64_t)json_node_get_int(node);
	}
out:
	g_object_unref(p);
	g_free(text);
	return r;
}

static int update_guests(cfs_client_t *h, uint64_t want)
{
	char *text = NULL;
	JsonParser *p = NULL;
	JsonObject *o = NULL;
	int r = fetch_object(h, OP_GET_GUEST_LIST, "the guest list", &text, &p, &o);
	if (r < 0)
		return r;
	g_hash_table_remove_all(h->guests);
	JsonNode *ids = json_object_get_member(o, "ids");
	if (ids && JSON_NODE_HOLDS_OBJECT(ids)) {
		JsonObjectIter it;
		const char *name;
		JsonNode *node;
		json_object_iter_init(&it, json_node_get_object(ids));
		while (json_object_iter_next(&it, &name, &node)) {
			char *end;
			unsigned long vmid = strtoul(name, &end, 10);
			uint64_t v;
			if (*end || !JSON_NODE_HOLDS_OBJECT(node) ||
			    !member_uint(json_node_get_object(node), "version", &v))
				continue;
			guest_t *g = g_new0(guest_t, 1);
			g->version = v;
			g_hash_table_replace(h->guests, GUINT_TO_POINTER(vmid), g);
		}
	}
	uint64_t v = want;
	(void)member_uint(o, "version", &v);
	h->vmlist_version = v;
	h->have_vmlist = true;
	g_free(h->vmlist_json);
	h->vmlist_json = text;
	g_object_unref(p);
	return 0;
}

static int update_clinfo(cfs_client_t *h, uint64_t want)
{
	char *text = NULL;
	JsonParser *p = NULL;
	JsonObject *o = NULL;
	int r = fetch_object(h, OP_GET_CLUSTER_INFO, "the cluster info", &text, &p, &o);
	if (r < 0)
		return r;
	uint64_t v = want;
	(void)member_uint(o, "version", &v);
	h->clinfo_version = v;
	h->have_clinfo = true;
	g_free(h->clinfo_json);
	h->clinfo_json = text;
	g_object_unref(p);
	return 0;
}

static const uint64_t *path_version(cfs_client_t *h, const char *name)
{
	return h->have_versions ? g_hash_table_lookup(h->path_versions, name) : NULL;
}

int cfs_update(cfs_client_t *h)
{
	if (!h)
		return -EINVAL;
	int r = update_versions(h);
	if (r < 0) {
		forget_all(h);
		return r;
	}
	const uint64_t *cv = path_version(h, "clinfo");
	if (cv && (!h->have_clinfo || h->clinfo_version != *cv))
		r = update_clinfo(h, *cv);
	const uint64_t *vv = path_version(h, "vmlist");
	if (r == 0 && vv && (!h->have_vmlist || h->vmlist_version != *vv))
		r = update_guests(h, *vv);
	if (r < 0)
		forget_all(h);
	return r;
}

uint32_t cfs_starttime(cfs_client_t *h)
{
	return h && h->have_versions ? h->starttime : 0;
}

const char *cfs_cluster_info_json(cfs_client_t *h)
{
	return h ? h->clinfo_json : NULL;
}

const char *cfs_guest_list_json(cfs_client_t *h)
{
	return h ? h->vmlist_json : NULL;
}

/* --- the registry --------------------------------------------------------- */

bool cfs_observed(const char *name)
{
	for (const char *const *n = cfs_observed_files; *n; n++) {
		if (strcmp(*n, name) == 0)
			return true;
	}
	return false;
}

int cfs_register_file(cfs_client_t *h, const char *name, const cfs_file_ops_t *ops, int flags)
{
	if (!h || !name || !name[0] || !ops || !ops->parse)
		return -EINVAL;
	if (!(flags & CFS_REGISTER_ANY_NAME) && !cfs_observed(name)) {
		cfs_set_error(h, "unknown file '%s'", name);
		return CFS_E_UNKNOWN_FILE;
	}
	if (g_hash_table_contains(h->registry, name)) {
		cfs_set_error(h, "file '%s' already registered", name);
		return CFS_E_ALREADY_REGISTERED;
	}
	registration_t *reg = g_new0(registration_t, 1);
	reg->ops = *ops;
	g_hash_table_insert(h->registry, g_strdup(name), reg);
	return 0;
}

/* nodes/<node>/(qemu-server|lxc|openvz)/<digits>.conf: the guest tag and
 * VMID, as PVE::Cluster matches it (the node part is not compared) */
static const char *guest_tag(const char *name, unsigned long *vmid)
{
	static const char *const tags[] = {"/qemu-server/", "/lxc/", "/openvz/"};
	if (strncmp(name, "nodes/", 6) != 0)
		return NULL;
	const char *node_end = strchr(name + 6, '/');
	if (!node_end || node_end == name + 6)
		return NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(tags); i++) {
		size_t tl = strlen(tags[i]);
		if (strncmp(node_end, tags[i], tl) != 0)
			continue;
		const char *d = node_end + tl, *e = d;
		while (*e >= '0' && *e <= '9')
			e++;
		if (e == d || strcmp(e, ".conf") != 0)
			return NULL;
		*vmid = strtoul(d, NULL, 10);
		return tags[i];
	}
	return NULL;
}

/* the registration for @name and its version (1 known, 0 unknown) */
static int lookup(cfs_client_t *h, const char *name, registration_t **reg, uint64_t *version)
{
	unsigned long vmid = 0;
	const char *tag = guest_tag(name, &vmid);
	*reg = g_hash_table_lookup(h->registry, tag ? tag : name);
	if (!*reg) {
		cfs_set_error(h, "unknown file type '%s'", name);
		return CFS_E_UNKNOWN_FILE;
	}
	if (tag) {
		guest_t *g = h->have_vmlist ? g_hash_table_lookup(h->guests, GUINT_TO_POINTER(vmid))
					    : NULL;
		if (!g)
			return 0;
		*version = g->version;
		return 1;
	}
	const uint64_t *v = path_version(h, name);
	if (!v)
		return 0;
	*version = *v;
	return 1;
}

int cfs_file_version(cfs_client_t *h, const char *name, uint64_t *version)
{
	if (!h || !name || !version)
		return -EINVAL;
	registration_t *reg;
	return lookup(h, name, &reg, version);
}

int cfs_read_file(cfs_client_t *h, const char *name, cfs_obj_t **ret)
{
	if (!h || !name || !ret)
		return -EINVAL;
	*ret = NULL;
	registration_t *reg;
	uint64_t version = 0;
	int known = lookup(h, name, &reg, &version);
	if (known < 0)
		return known;
	cache_entry_t *e = g_hash_table_lookup(h->cache, name);
	if (e && e->obj && e->have_version && known && version != 0 && e->version == version) {
		*ret = obj_ref(e->obj);
		return 0;
	}

	cfs_buf_t raw = {0};
	int r = cfs_get_config(h, name, &raw);
	if (r < 0 && r != -ENOENT) {
		cfs_set_error(h, "cannot read '%s': %s", name, cfs_strerror(r));
		return r;
	}
	bool exists = r == 0;
	g_autofree char *full = g_build_filename(h->base_dir, name, NULL);
	void *obj = NULL;
	r = reg->ops.parse(full, exists ? (raw.data ? raw.data : "") : NULL, raw.len, exists, &obj,
			   reg->ops.ud);
	cfs_buf_free(&raw);
	if (r < 0) {
		if (obj && reg->ops.free)
			reg->ops.free(obj, reg->ops.ud);
		cfs_set_error(h, "cannot parse '%s': %s", name, cfs_strerror(r));
		return r;
	}
	cfs_obj_t *o = g_new0(cfs_obj_t, 1);
	o->refs = 1;
	o->obj = obj;
	o->free = reg->ops.free;
	o->ud = reg->ops.ud;
	if (!e) {
		e = g_new0(cache_entry_t, 1);
		g_hash_table_insert(h->cache, g_strdup(name), e);
	}
	cfs_obj_unref(e->obj);
	e->obj = o;
	e->have_version = known > 0;
	e->version = version;
	*ret = obj_ref(o);
	return 0;
}

/* --- writing ----------------------------------------------------------------- */

static int write_all(int fd, const char *d, size_t n)
{
	while (n) {
		ssize_t w = write(fd, d, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		d += w;
		n -= (size_t)w;
	}
	return 0;
}

/* PVE::Tools::file_set_contents: a temporary file, then rename */
int cfs_write_config(cfs_client_t *h, const char *name, const void *data, size_t len)
{
	if (!h || !name || !name[0] || (len && !data))
		return -EINVAL;
	g_autofree char *full = g_build_filename(h->base_dir, name, NULL);
	/* pid and a counter: handles of several threads never share one */
	static gint serial;
	g_autofree char *tmp = g_strdup_printf("%s.tmp.%ld.%d", full, (long)getpid(),
					       g_atomic_int_add(&serial, 1));
	int fd = -1;
	for (int tries = 0; tries < 3 && fd < 0; tries++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno == EEXIST)
			(void)unlink(tmp); /* a stale one of an earlier process */
		else if (fd < 0)
			break;
	}
	if (fd < 0) {
		int r = -errno;
		cfs_set_error(h, "cannot create '%s': %s", tmp, strerror(errno));
		return r;
	}
	int r = write_all(fd, data, len);
	/* close() reports a failed commit on pmxcfs: it counts */
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, full) < 0)
		r = -errno;
	if (r < 0) {
		cfs_set_error(h, "cannot write '%s': %s", full, strerror(-r));
		(void)unlink(tmp);
	}
	return r;
}

int cfs_write_file(cfs_client_t *h, const char *name, const void *obj)
{
	if (!h || !name)
		return -EINVAL;
	registration_t *reg;
	uint64_t version;
	int known = lookup(h, name, &reg, &version);
	if (known < 0)
		return known;
	if (!reg->ops.write) {
		cfs_set_error(h, "no writer defined for '%s'", name);
		return CFS_E_NO_WRITER;
	}
	g_autofree char *full = g_build_filename(h->base_dir, name, NULL);
	cfs_buf_t raw = {0};
	int r = reg->ops.write(full, obj, &raw, reg->ops.ud);
	if (r < 0) {
		cfs_buf_free(&raw);
		cfs_set_error(h, "cannot write '%s': the writer failed: %s", name, cfs_strerror(r));
		return r;
	}
	/* the next read in this process parses again */
	cache_entry_t *e = g_hash_table_lookup(h->cache, name);
	if (e)
		e->have_version = false;
	r = cfs_write_config(h, name, raw.data, raw.len);
	cfs_buf_free(&raw);
	return r;
}
