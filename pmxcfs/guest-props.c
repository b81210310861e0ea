/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * guest-props.c: guest config properties for the IPC requests 11 and 13
 * (see guest-props.h for the rules).
 *
 * DESIGN
 * - A request over all guests concerns every guest config (10,000 configs
 *   of 1 KiB are 10 MB of text), while clients (HA, the resource list) ask
 *   for the same one or two properties again and again, and configs change
 *   rarely.  So each config is read once: its property lines become an
 *   index, one block holding a small Bloom filter of the keys, their hashes
 *   and the (key, value) spans into the config (the cache keeps a reference
 *   to memdb's content, no copy), and a request only looks the asked names
 *   up in the indexes.
 * - An index belongs to one guest (by vmid) and is valid while the guest's
 *   per-guest version is the one it was built at: memdb gives a guest a new
 *   version at every write, truncate and rename of its config and at every
 *   rebuild of the guest list (core.md §2.7), so an unchanged version means
 *   unchanged content.  Indexes of guests that left the list are dropped by
 *   the next request over all guests, or when the cache outgrows the list.
 * - A request over all guests walks an array of slots, one per guest in
 *   list order, each with a copy of its index's filter: a guest none of
 *   whose keys can be an asked name costs a few instructions, and nothing
 *   outside that array is touched for it.  The slots are made again when
 *   memdb hands out a new sorted guest list, which it does at every change
 *   of the list, so at every change of a config.
 * - Strings reach the reply through json-glib's escaping: names and values
 *   that need none (printable ASCII without '"' and '\') are copied between
 *   quotes, which is what json-glib writes for them; any other string is
 *   written by json-glib.  The reply equals what json_generator_to_data()
 *   gives for the same object, byte for byte (tests/unit/test-guest-props.c
 *   compares the two).
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "guest-props.h"

/* --- one config ------------------------------------------------------------ */

/* one property line: key and value as offsets into the config */
typedef struct prop_span {
	uint32_t key, key_len;
	uint32_t val;
	uint32_t val_len : 31;
	uint32_t plain : 1; /* the value needs no JSON escaping */
} prop_span_t;

/* A Bloom filter of 256 bits with two bits per key: with the 30 to 40 keys
 * of a guest config, about one name in 15 that is no key passes it. */
#define BLOOM_WORDS 4
typedef struct bloom {
	uint64_t w[BLOOM_WORDS];
} bloom_t;

/* One block: this header, the keys' hashes, the spans; in line order. */
struct guest_conf_index {
	bloom_t bloom;
	uint32_t n;
	uint32_t hashes[];
};

/* FNV-1a */
static uint32_t key_hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

static void bloom_add(bloom_t *b, uint32_t hash)
{
	unsigned b1 = hash & 255, b2 = (hash >> 8) & 255;
	b->w[b1 >> 6] |= UINT64_C(1) << (b1 & 63);
	b->w[b2 >> 6] |= UINT64_C(1) << (b2 & 63);
}

static bool bloom_may_have(const bloom_t *b, uint32_t hash)
{
	unsigned b1 = hash & 255, b2 = (hash >> 8) & 255;
	return (b->w[b1 >> 6] >> (b1 & 63)) & (b->w[b2 >> 6] >> (b2 & 63)) & 1;
}

static const prop_span_t *index_spans(const guest_conf_index_t *ix)
{
	return (const prop_span_t *)&ix->hashes[ix->n];
}

/* printable ASCII but '"' and '\': json-glib writes such a string as is */
static bool json_plain(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return false;
	}
	return true;
}

/* the value of a line that starts with a @key_len-byte key and ':' */
static bool line_value(const char *line, size_t l, size_t key_len, const char **ret_val,
		       size_t *ret_len)
{
	if (l <= key_len + 1)
		return false;
	const char *v = line + key_len + 1;
	size_t n = l - key_len - 1;
	const char *nul = memchr(v, '\0', n);
	if (nul)
		n = (size_t)(nul - v);
	while (n > 0 && g_ascii_isspace(v[0])) {
		v++;
		n--;
	}
	while (n > 0 && g_ascii_isspace(v[n - 1]))
		n--;
	if (n == 0)
		return false;
	*ret_val = v;
	*ret_len = n;
	return true;
}

/* Calls @fn for each non-empty line of the main section (up to a line that
 * starts with '['). */
typedef void (*line_fn)(const char *line, size_t l, void *data);

static void each_line(const char *conf, size_t len, line_fn fn, void *data)
{
	for (size_t o = 0; o < len;) {
		const char *line = conf + o;
		const char *nl = memchr(line, '\n', len - o);
		size_t l = nl ? (size_t)(nl - line) : len - o;
		o += l + 1;
		if (l == 0)
			continue;
		if (line[0] == '[')
			return;
		fn(line, l, data);
	}
}

/* The index is built in one block sized for the worst case (a property
 * line takes at least 4 bytes, "k:v\n"), the spans where that worst case
 * puts them; at the end they move down behind the real number of hashes
 * and the block shrinks. */
typedef struct build {
	guest_conf_index_t *ix;
	prop_span_t *spans;
	const char *conf;
} build_t;

static void index_line(const char *line, size_t l, void *data)
{
	build_t *b = data;
	const char *colon = memchr(line, ':', l);
	if (!colon || colon == line)
		return;
	size_t key_len = (size_t)(colon - line);
	const char *v;
	size_t n;
	/* a key with a NUL equals no property name */
	if (memchr(line, '\0', key_len) || !line_value(line, l, key_len, &v, &n))
		return;
	uint32_t i = b->ix->n++;
	b->ix->hashes[i] = key_hash(line, key_len);
	b->spans[i] = (prop_span_t){
		.key = (uint32_t)(line - b->conf),
		.key_len = (uint32_t)key_len,
		.val = (uint32_t)(v - b->conf),
		.val_len = (uint32_t)n,
		.plain = json_plain(v, n),
	};
}

guest_conf_index_t *guest_conf_index_new(const char *conf, size_t len)
{
	g_assert(len < (1u << 31));
	size_t max = len / 4 + 1; /* property lines */
	build_t b = {.ix = g_malloc(sizeof(guest_conf_index_t) +
				    max * (sizeof(uint32_t) + sizeof(prop_span_t))),
		     .conf = conf};
	memset(b.ix, 0, sizeof(*b.ix));
	b.spans = (prop_span_t *)&b.ix->hashes[max];
	each_line(conf, len, index_line, &b);

	guest_conf_index_t *ix = b.ix;
	memmove((prop_span_t *)index_spans(ix), b.spans, ix->n * sizeof(prop_span_t));
	ix = g_realloc(ix, (size_t)((const char *)&index_spans(ix)[ix->n] - (const char *)ix));
	for (uint32_t i = 0; i < ix->n; i++)
		bloom_add(&ix->bloom, ix->hashes[i]);
	return ix;
}

/* the last line with this key (a later line replaces an earlier one) */
static const prop_span_t *index_find(const guest_conf_index_t *ix, const char *conf,
				     const char *prop, size_t prop_len, uint32_t hash)
{
	if (!bloom_may_have(&ix->bloom, hash))
		return NULL;
	for (uint32_t i = ix->n; i-- > 0;) {
		if (ix->hashes[i] != hash)
			continue;
		const prop_span_t *s = &index_spans(ix)[i];
		if (s->key_len == prop_len && memcmp(conf + s->key, prop, prop_len) == 0)
			return s;
	}
	return NULL;
}

bool guest_conf_index_get(const guest_conf_index_t *ix, const char *conf, const char *prop,
			  size_t prop_len, const char **ret_val, size_t *ret_len)
{
	const prop_span_t *s =
		prop_len ? index_find(ix, conf, prop, prop_len, key_hash(prop, prop_len)) : NULL;
	if (!s)
		return false;
	*ret_val = conf + s->val;
	*ret_len = s->val_len;
	return true;
}

typedef struct scan {
	const char *prop;
	size_t prop_len;
	const char *val;
	size_t val_len;
} scan_t;

static void scan_line(const char *line, size_t l, void *data)
{
	scan_t *s = data;
	const char *v;
	size_t n;
	if (l > s->prop_len && memcmp(line, s->prop, s->prop_len) == 0 &&
	    line[s->prop_len] == ':' && line_value(line, l, s->prop_len, &v, &n)) {
		s->val = v;
		s->val_len = n;
	}
}

bool guest_conf_scan(const char *conf, size_t len, const char *prop, size_t prop_len,
		     const char **ret_val, size_t *ret_len)
{
	scan_t s = {prop, prop_len, NULL, 0};
	if (prop_len)
		each_line(conf, len, scan_line, &s);
	if (!s.val)
		return false;
	*ret_val = s.val;
	*ret_len = s.val_len;
	return true;
}

/* --- the cache ------------------------------------------------------------- */

typedef struct cached {
	uint32_t vm_version; /* memdb_vm_t.version the index was built at */
	unsigned pass;       /* the last request over all guests that used it */
	guest_conf_index_t *ix;
	GBytes *bytes;    /* a reference to the content */
	const char *conf; /* the index points into */
	size_t len;
} cached_t;

/* one guest of the list, for requests over all guests */
typedef struct slot {
	bloom_t bloom; /* the index's */
	uint32_t vmid;
	const guest_conf_index_t *ix; /* NULL: the config is missing or empty */
	const char *conf;
	size_t len;
} slot_t;

struct guest_props {
	GHashTable *cache; /* vmid -> cached_t* */
	unsigned pass;
	/* The slots of the guest list @list (a reference to memdb's sorted
	 * array, so that no other array can have its address).  While memdb
	 * hands out the same array, no guest came or went and no config
	 * changed, and the slots are right. */
	GPtrArray *list;
	slot_t *slots;
};

static void cached_free(gpointer p)
{
	cached_t *c = p;
	g_free(c->ix);
	g_bytes_unref(c->bytes);
	g_free(c);
}

/* before any change of the cache: the slots point into it */
static void slots_drop(guest_props_t *gp)
{
	if (gp->list)
		g_ptr_array_unref(gp->list);
	gp->list = NULL;
	g_free(gp->slots);
	gp->slots = NULL;
}

guest_props_t *guest_props_new(void)
{
	guest_props_t *gp = g_new0(guest_props_t, 1);
	gp->cache = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, cached_free);
	return gp;
}

guest_props_t *guest_props_free(guest_props_t *gp)
{
	if (!gp)
		return NULL;
	slots_drop(gp);
	g_hash_table_unref(gp->cache);
	g_free(gp);
	return NULL;
}

static const char *vm_kind_dir(int type)
{
	return type == VMTYPE_QEMU ? "qemu-server" : type == VMTYPE_LXC ? "lxc" : "openvz";
}

/* the content of @vm's config (a new reference), or NULL when it is
 * missing or empty */
static GBytes *conf_read(memdb_t *mdb, const memdb_vm_t *vm)
{
	g_autofree char *path =
		g_strdup_printf("nodes/%s/%s/%u.conf", vm->node, vm_kind_dir(vm->type), vm->vmid);
	GBytes *conf = NULL;
	/* > 0: a non-empty file, so a reference came */
	if (memdb_read(mdb, path, &conf) <= 0) {
		if (conf)
			g_bytes_unref(conf);
		return NULL;
	}
	return conf;
}

/* the index of @vm's config: cached, or built now; NULL when the config is
 * missing or empty */
static cached_t *conf_index(guest_props_t *gp, memdb_t *mdb, const memdb_vm_t *vm)
{
	cached_t *c = g_hash_table_lookup(gp->cache, GUINT_TO_POINTER(vm->vmid));
	if (c && c->vm_version == vm->version)
		return c;
	/* the slots point into the entries: only replacing or removing one
	 * (a stale entry) makes them wrong; adding one does not */
	if (c)
		slots_drop(gp);
	GBytes *conf = conf_read(mdb, vm);
	if (!conf) {
		g_hash_table_remove(gp->cache, GUINT_TO_POINTER(vm->vmid));
		return NULL;
	}
	c = g_new0(cached_t, 1);
	c->vm_version = vm->version;
	c->bytes = conf;
	c->conf = g_bytes_get_data(conf, &c->len);
	c->ix = guest_conf_index_new(c->conf, c->len);
	g_hash_table_replace(gp->cache, GUINT_TO_POINTER(vm->vmid), c);
	return c;
}

/* drop the indexes of guests that are not in the list any more: those the
 * request over all guests that just ran did not use (@all_pass), or those
 * of vmids memdb does not know */
static void prune(guest_props_t *gp, memdb_t *mdb, bool all_pass)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, gp->cache);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const cached_t *c = v;
		if (all_pass ? c->pass != gp->pass : !memdb_vm_get(mdb, GPOINTER_TO_UINT(k)))
			g_hash_table_iter_remove(&it);
	}
}

/* the slots of the guest list @vms, their indexes brought up to date */
static void slots_make(guest_props_t *gp, memdb_t *mdb, GPtrArray *vms)
{
	slots_drop(gp);
	gp->pass++;
	slot_t *slots = g_new0(slot_t, vms->len ? vms->len : 1);
	for (guint i = 0; i < vms->len; i++) {
		const memdb_vm_t *vm = vms->pdata[i];
		cached_t *c = conf_index(gp, mdb, vm);
		slots[i].vmid = vm->vmid;
		if (!c)
			continue;
		c->pass = gp->pass;
		slots[i].ix = c->ix;
		slots[i].conf = c->conf;
		slots[i].len = c->len;
		slots[i].bloom = c->ix->bloom;
	}
	if (g_hash_table_size(gp->cache) > vms->len)
		prune(gp, mdb, true);
	gp->slots = slots;
	gp->list = g_ptr_array_ref(vms);
}

/* --- the reply ------------------------------------------------------------- */

/* a JSON string: as is between quotes when json-glib would not escape it,
 * else written by json-glib (after making it valid UTF-8, as the values
 * always were) */
static void append_json_string(GString *out, const char *s, size_t n, bool plain)
{
	if (plain) {
		g_string_append_c(out, '"');
		g_string_append_len(out, s, (gssize)n);
		g_string_append_c(out, '"');
		return;
	}
	g_autofree char *valid = g_utf8_make_valid(s, (gssize)n);
	g_autoptr(JsonNode) node = json_node_init_string(json_node_alloc(), valid);
	g_autofree char *text = json_to_string(node, FALSE);
	g_string_append(out, text);
}

/* a member name and ':', as json-glib writes member names */
static void append_json_name(GString *out, const char *name)
{
	size_t n = strlen(name);
	if (json_plain(name, n)) {
		append_json_string(out, name, n, true);
	} else {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, name);
		json_builder_add_null_value(b);
		json_builder_end_object(b);
		g_autoptr(JsonNode) root = json_builder_get_root(b);
		g_autofree char *text = json_to_string(root, FALSE);
		/* {"<escaped>":null} */
		size_t tl = strlen(text);
		g_string_append_len(out, text + 1, (gssize)(tl - 1 - 6));
	}
	g_string_append_c(out, ':');
}

typedef struct request {
	unsigned n;
	const char **props; /* distinct names, in request order */
	size_t *lens;
	uint32_t *hashes;
	char **names;    /* each name as JSON, with the ':' after it */
	bool *has_colon; /* looked up by reading the config, not in the index */
	bool any_colon;
} request_t;

static void request_clear(request_t *q)
{
	for (unsigned i = 0; i < q->n; i++)
		g_free(q->names[i]);
	g_free(q->names);
	g_free(q->lens);
	g_free(q->hashes);
	g_free(q->has_colon);
	g_free(q->props);
}

static void request_init(request_t *q, const char *const *props, unsigned n_props)
{
	memset(q, 0, sizeof(*q));
	q->props = g_new0(const char *, n_props);
	for (unsigned i = 0; i < n_props; i++) {
		bool dup = false;
		for (unsigned j = 0; j < q->n && !dup; j++)
			dup = strcmp(q->props[j], props[i]) == 0;
		if (!dup)
			q->props[q->n++] = props[i];
	}
	q->lens = g_new0(size_t, q->n);
	q->hashes = g_new0(uint32_t, q->n);
	q->names = g_new0(char *, q->n);
	q->has_colon = g_new0(bool, q->n);
	for (unsigned i = 0; i < q->n; i++) {
		q->lens[i] = strlen(q->props[i]);
		q->hashes[i] = key_hash(q->props[i], q->lens[i]);
		q->has_colon[i] = memchr(q->props[i], ':', q->lens[i]) != NULL;
		q->any_colon |= q->has_colon[i];
		GString *s = g_string_new(NULL);
		append_json_name(s, q->props[i]);
		q->names[i] = g_string_free(s, FALSE);
	}
}

static bool may_have_any(const bloom_t *b, const request_t *q)
{
	for (unsigned i = 0; i < q->n; i++)
		if (bloom_may_have(b, q->hashes[i]))
			return true;
	return false;
}

/* ,"<vmid>":{ (no comma before the first guest) */
static void append_vmid(GString *out, uint32_t vmid, bool first)
{
	char buf[16];
	size_t i = sizeof(buf);
	buf[--i] = '{';
	buf[--i] = ':';
	buf[--i] = '"';
	do
		buf[--i] = (char)('0' + vmid % 10);
	while ((vmid /= 10) > 0);
	buf[--i] = '"';
	if (!first)
		buf[--i] = ',';
	g_string_append_len(out, buf + i, (gssize)(sizeof(buf) - i));
}

/* The members of guest @vmid (its config @conf, @len bytes, and its index),
 * if it has a value; returns whether it had. */
static bool append_guest(GString *out, const request_t *q, uint32_t vmid,
			 const guest_conf_index_t *ix, const char *conf, size_t len, bool first)
{
	bool any = false;
	for (unsigned i = 0; i < q->n; i++) {
		const char *v;
		size_t vl;
		bool plain;
		if (!q->has_colon[i]) {
			const prop_span_t *s =
				index_find(ix, conf, q->props[i], q->lens[i], q->hashes[i]);
			if (!s)
				continue;
			v = conf + s->val;
			vl = s->val_len;
			plain = s->plain;
		} else {
			/* the index cannot tell such names apart */
			if (!guest_conf_scan(conf, len, q->props[i], q->lens[i], &v, &vl))
				continue;
			plain = json_plain(v, vl);
		}
		if (!any) {
			append_vmid(out, vmid, first);
			any = true;
		} else {
			g_string_append_c(out, ',');
		}
		g_string_append(out, q->names[i]);
		append_json_string(out, v, vl, plain);
	}
	if (any)
		g_string_append_c(out, '}');
	return any;
}

int guest_props_json(guest_props_t *gp, memdb_t *mdb, uint32_t vmid, const char *const *props,
		     unsigned n_props, char **ret)
{
	g_assert(n_props > 0);
	request_t q;
	GString *out;
	if (vmid) {
		const memdb_vm_t *vm = memdb_vm_get(mdb, vmid);
		if (!vm)
			return -ENOENT;
		const cached_t *c = conf_index(gp, mdb, vm);
		if (!c)
			return -EIO;
		request_init(&q, props, n_props);
		out = g_string_new("{");
		append_guest(out, &q, vmid, c->ix, c->conf, c->len, true);
		/* guests may have left without a request over all of them */
		if (g_hash_table_size(gp->cache) > 2 * memdb_vm_count(mdb) + 64) {
			slots_drop(gp);
			prune(gp, mdb, false);
		}
	} else {
		g_autoptr(GPtrArray) vms = memdb_vm_list(mdb);
		if (vms != gp->list)
			slots_make(gp, mdb, vms);
		request_init(&q, props, n_props);
		out = g_string_sized_new(4096);
		g_string_append_c(out, '{');
		bool first = true;
		for (guint i = 0; i < vms->len; i++) {
			const slot_t *sl = &gp->slots[i];
			if (!sl->ix)
				continue;
			if (!q.any_colon && !may_have_any(&sl->bloom, &q))
				continue; /* none of the names is a key of this config */
			if (append_guest(out, &q, sl->vmid, sl->ix, sl->conf, sl->len, first))
				first = false;
		}
	}
	g_string_append_c(out, '}');
	request_clear(&q);
	*ret = g_string_free(out, FALSE);
	return 0;
}
