/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * example-parsers.c: datacenter.cfg and SectionConfig parser/writer pairs
 * (see example-parsers.h).  Written from the format descriptions in
 * client.md §14.2 and §14.5.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "example-parsers.h"

#define DC_DEFAULT_MAC_PREFIX "BC:24:11"

/* a writer's text into the malloc'ed buffer libcfs frees; @o is consumed */
static int to_buf(GString *o, cfs_buf_t *raw)
{
	raw->len = o->len;
	raw->data = malloc(o->len + 1);
	if (raw->data)
		memcpy(raw->data, o->str, o->len + 1);
	g_string_free(o, TRUE);
	return raw->data ? 0 : -ENOMEM;
}

/* --- datacenter.cfg ------------------------------------------------------ */

typedef enum {
	V_STRING,
	V_BOOL,
	V_UINT1, /* an integer >= 1 */
	V_ENUM,
	V_PROPS, /* a property string */
	V_MAC,
	V_PROXY,
} vtype_t;

typedef struct dc_key {
	const char *name;
	vtype_t type;
	const char *arg; /* V_ENUM: "a|b|c"; V_PROPS: the default key or "" */
} dc_key_t;

static const dc_key_t dc_schema[] = {
	{"bwlimit", V_PROPS, ""},
	{"console", V_ENUM, "applet|vv|html5|xtermjs"},
	{"consent-text", V_STRING, NULL},
	{"crs", V_PROPS, ""},
	{"description", V_STRING, NULL},
	{"email_from", V_STRING, NULL},
	{"fencing", V_ENUM, "watchdog|hardware|both"},
	{"ha", V_PROPS, ""},
	{"http_proxy", V_PROXY, NULL},
	{"keyboard", V_STRING, NULL},
	{"language", V_STRING, NULL},
	{"location", V_STRING, NULL},
	{"mac_prefix", V_MAC, NULL},
	{"max_workers", V_UINT1, NULL},
	{"migration", V_PROPS, "type"},
	{"migration_unsecure", V_BOOL, NULL},
	{"next-id", V_PROPS, ""},
	{"notify", V_PROPS, ""},
	{"registered-tags", V_STRING, NULL},
	{"replication", V_PROPS, "type"},
	{"tag-style", V_PROPS, ""},
	{"u2f", V_PROPS, ""},
	{"user-tag-access", V_PROPS, ""},
	{"webauthn", V_PROPS, ""},
};

static const dc_key_t *dc_key(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(dc_schema); i++) {
		if (strcmp(dc_schema[i].name, name) == 0)
			return &dc_schema[i];
	}
	return NULL;
}

/* a unicast MAC prefix: "hh" with an even low nibble, then up to two
 * ":hh", then optionally ":h" or ":" */
static bool mac_prefix_ok(const char *v)
{
	if (!g_ascii_isxdigit(v[0]) || !g_ascii_isxdigit(v[1]) || (g_ascii_xdigit_value(v[1]) & 1))
		return false;
	const char *p = v + 2;
	for (int i = 0; i < 2 && p[0] == ':' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2]);
	     i++)
		p += 3;
	if (p[0] == ':' && g_ascii_isxdigit(p[1]))
		p += 2;
	else if (p[0] == ':')
		p += 1;
	return *p == '\0';
}

static bool parse_bool(const char *v, bool *b)
{
	static const char *const yes[] = {"1", "on", "yes", "true"};
	static const char *const no[] = {"0", "off", "no", "false"};
	for (int i = 0; i < 4; i++) {
		if (g_ascii_strcasecmp(v, yes[i]) == 0)
			return (*b = true);
		if (g_ascii_strcasecmp(v, no[i]) == 0)
			return !(*b = false);
	}
	return false;
}

static int keycmp(gconstpointer a, gconstpointer b, gpointer ud)
{
	return strcmp(a, b);
}

/* a property string in its written form: the default key's value bare
 * first, then the other keys sorted; NULL if malformed (duplicate keys,
 * empty parts, two bare values) */
static char *props_normalise(const char *v, const char *default_key)
{
	g_autoptr(GTree) t = g_tree_new_full(keycmp, NULL, g_free, g_free);
	g_auto(GStrv) parts = g_strsplit(v, ",", -1);
	for (char **p = parts; *p; p++) {
		if (!**p)
			return NULL;
		char *eq = strchr(*p, '=');
		char *k, *val;
		if (eq) {
			k = g_strndup(*p, (gsize)(eq - *p));
			val = g_strdup(eq + 1);
		} else if (default_key[0]) {
			k = g_strdup(default_key);
			val = g_strdup(*p);
		} else {
			return NULL;
		}
		if (!k[0] || g_tree_lookup(t, k)) {
			g_free(k);
			g_free(val);
			return NULL;
		}
		g_tree_insert(t, k, val);
	}
	GString *out = g_string_new(NULL);
	const char *dv = default_key[0] ? g_tree_lookup(t, default_key) : NULL;
	if (dv)
		g_string_append(out, dv);
	GTreeNode *n = g_tree_node_first(t);
	for (; n; n = g_tree_node_next(n)) {
		const char *k = g_tree_node_key(n);
		if (dv && strcmp(k, default_key) == 0)
			continue;
		if (out->len)
			g_string_append_c(out, ',');
		g_string_append_printf(out, "%s=%s", k, (const char *)g_tree_node_value(n));
	}
	return g_string_free(out, FALSE);
}

/* the normalised value of @key, or NULL if the schema refuses @v */
static char *dc_check(const dc_key_t *k, const char *v)
{
	bool b;
	switch (k->type) {
	case V_STRING:
		return g_strdup(v);
	case V_BOOL:
		return parse_bool(v, &b) ? g_strdup(b ? "1" : "0") : NULL;
	case V_UINT1: {
		char *end;
		long n = strtol(v, &end, 10);
		return *v && !*end && n >= 1 ? g_strdup_printf("%ld", n) : NULL;
	}
	case V_ENUM: {
		g_auto(GStrv) alts = g_strsplit(k->arg, "|", -1);
		if (!g_strv_contains((const char *const *)alts, v))
			return NULL;
		/* console: applet is read and written as html5 */
		return g_strdup(strcmp(v, "applet") == 0 ? "html5" : v);
	}
	case V_PROPS:
		return *v ? props_normalise(v, k->arg) : NULL;
	case V_MAC:
		return mac_prefix_ok(v) ? g_strdup(v) : NULL;
	case V_PROXY:
		return g_str_has_prefix(v, "http://") ? g_strdup(v) : NULL;
	}
	return NULL;
}

static dc_config_t *dc_new(void)
{
	dc_config_t *c = g_new0(dc_config_t, 1);
	c->keys = g_tree_new_full(keycmp, NULL, g_free, g_free);
	return c;
}

static char *percent_decode(const char *s)
{
	GString *o = g_string_new(NULL);
	for (; *s; s++) {
		if (s[0] == '%' && g_ascii_xdigit_value(s[1]) >= 0 &&
		    g_ascii_xdigit_value(s[2]) >= 0) {
			g_string_append_c(o, (char)(g_ascii_xdigit_value(s[1]) * 16 +
						    g_ascii_xdigit_value(s[2])));
			s += 2;
		} else {
			g_string_append_c(o, *s);
		}
	}
	return g_string_free(o, FALSE);
}

int dc_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj, void *ud)
{
	dc_config_t *c = dc_new();
	GString *desc = NULL;
	g_autofree char *text = exists ? g_strndup(raw, len) : g_strdup("");
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **lp = lines; *lp; lp++) {
		/* the description: lines that start with '#' (not indented) */
		if ((*lp)[0] == '#') {
			if (!desc)
				desc = g_string_new(NULL);
			g_autofree char *d = percent_decode(*lp + 1);
			g_string_append(desc, d);
			g_string_append_c(desc, '\n');
		}
		char *line = g_strstrip(*lp);
		if (!*line || line[0] == '#')
			continue;
		char *colon = strchr(line, ':');
		size_t klen = colon ? (size_t)(colon - line) : 0;
		if (!colon || klen == 0 || memchr(line, ' ', klen) || memchr(line, '\t', klen)) {
			c->warnings++; /* not "key: value" */
			continue;
		}
		g_autofree char *key = g_strndup(line, klen);
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		const dc_key_t *k = dc_key(key);
		char *nv = k ? dc_check(k, v) : NULL;
		if (!nv) {
			c->warnings++; /* unknown key or invalid value: dropped */
			continue;
		}
		g_tree_replace(c->keys, g_steal_pointer(&key), nv);
	}
	/* the comment text replaces a description key, even when empty */
	g_tree_remove(c->keys, "description");
	c->description = desc ? g_string_free(desc, FALSE) : g_strdup("");
	/* legacy: migration_unsecure sets migration.type unless it is set */
	const char *mu = g_tree_lookup(c->keys, "migration_unsecure");
	if (mu) {
		const char *mig = g_tree_lookup(c->keys, "migration");
		/* normalised, a set type is the first part, bare */
		size_t first = mig ? strcspn(mig, ",") : 0;
		bool has_type = mig && first > 0 && !memchr(mig, '=', first);
		if (!has_type) {
			g_autofree char *nm = g_strdup_printf(
				"%s%s%s", strcmp(mu, "1") == 0 ? "insecure" : "secure",
				mig ? "," : "", mig ? mig : "");
			g_tree_replace(c->keys, g_strdup("migration"), props_normalise(nm, "type"));
		}
	}
	*obj = c;
	return 0;
}

static void percent_encode(GString *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)s[i];
		if (b < 0x21 || b > 0x7e || b == '%' || b == ':')
			g_string_append_printf(o, "%%%02X", b);
		else
			g_string_append_c(o, (char)b);
	}
}

static gboolean dump_key(gpointer k, gpointer v, gpointer data)
{
	GString *o = data;
	/* mac_prefix at its default is left out */
	if (strcmp(k, "mac_prefix") == 0 && g_ascii_strcasecmp(v, DC_DEFAULT_MAC_PREFIX) == 0)
		return FALSE;
	g_string_append_printf(o, "%s: %s\n", (const char *)k, (const char *)v);
	return FALSE;
}

int dc_write(const char *fullpath, const void *obj, cfs_buf_t *raw, void *ud)
{
	const dc_config_t *c = obj;
	GString *o = g_string_new(NULL);
	/* the description as comment lines, then always one empty line */
	const char *s = c->description ? c->description : "";
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		if (n || nl) {
			g_string_append_c(o, '#');
			percent_encode(o, s, n);
			g_string_append_c(o, '\n');
		}
		s += n + (nl ? 1 : 0);
	}
	g_string_append_c(o, '\n');
	g_tree_foreach(c->keys, dump_key, o);
	return to_buf(o, raw);
}

void dc_free(void *obj, void *ud)
{
	dc_config_t *c = obj;
	if (!c)
		return;
	g_tree_unref(c->keys);
	g_free(c->description);
	g_free(c);
}

static gboolean copy_key(gpointer k, gpointer v, gpointer data)
{
	g_tree_insert(data, g_strdup(k), g_strdup(v));
	return FALSE;
}

dc_config_t *dc_copy(const dc_config_t *c)
{
	dc_config_t *n = dc_new();
	n->description = g_strdup(c->description);
	n->warnings = c->warnings;
	g_tree_foreach(c->keys, copy_key, n->keys);
	return n;
}

const char *dc_get(const dc_config_t *c, const char *key)
{
	if (strcmp(key, "description") == 0)
		return c->description;
	const char *v = g_tree_lookup(c->keys, key);
	if (!v && strcmp(key, "mac_prefix") == 0)
		return DC_DEFAULT_MAC_PREFIX;
	return v;
}

int dc_set(dc_config_t *c, const char *key, const char *value)
{
	if (strcmp(key, "description") == 0) {
		g_free(c->description);
		c->description = g_strdup(value);
		return 0;
	}
	const dc_key_t *k = dc_key(key);
	if (!k)
		return -EINVAL;
	if (!value) {
		g_tree_remove(c->keys, key);
		return 0;
	}
	char *nv = dc_check(k, value);
	if (!nv)
		return -EINVAL;
	g_tree_replace(c->keys, g_strdup(key), nv);
	return 0;
}

/* --- SectionConfig ----------------------------------------------------------- */

static void prop_free(gpointer p)
{
	sc_prop_t *x = p;
	g_free(x->key);
	g_free(x->value);
	g_free(x);
}

static void section_free(gpointer p)
{
	sc_section_t *s = p;
	g_free(s->type);
	g_free(s->id);
	g_ptr_array_unref(s->props);
	g_free(s);
}

int sc_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj, void *ud)
{
	sc_config_t *c = g_new0(sc_config_t, 1);
	c->sections = g_ptr_array_new_with_free_func(section_free);
	g_autofree char *digest = g_compute_checksum_for_data(
		G_CHECKSUM_SHA1, (const guchar *)(raw ? raw : ""), exists ? len : 0);
	g_strlcpy(c->digest, digest, sizeof(c->digest));
	g_autofree char *text = exists ? g_strndup(raw, len) : g_strdup("");
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	sc_section_t *cur = NULL;
	for (char **lp = lines; *lp; lp++) {
		char *line = *lp;
		if (line[0] == '#')
			continue;
		g_autofree char *trimmed = g_strstrip(g_strdup(line));
		if (!trimmed[0]) {
			cur = NULL; /* a blank line ends a section */
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (!cur || trimmed[0] == '#') {
				c->errors += cur ? 0 : 1;
				continue;
			}
			sc_prop_t *p = g_new0(sc_prop_t, 1);
			char *sp = strpbrk(trimmed, " \t");
			if (sp) {
				p->key = g_strndup(trimmed, (gsize)(sp - trimmed));
				p->value = g_strdup(g_strchug(sp + 1));
			} else {
				p->key = g_strdup(trimmed);
			}
			g_ptr_array_add(cur->props, p);
			continue;
		}
		char *colon = strchr(trimmed, ':');
		const char *ws = strpbrk(trimmed, " \t");
		if (!colon || colon == trimmed || (ws && ws < colon)) {
			c->errors++;
			cur = NULL;
			continue;
		}
		const char *id = colon + 1;
		while (*id == ' ' || *id == '\t')
			id++;
		if (!*id || strpbrk(id, " \t")) {
			c->errors++;
			cur = NULL;
			continue;
		}
		cur = g_new0(sc_section_t, 1);
		cur->type = g_strndup(trimmed, (gsize)(colon - trimmed));
		cur->id = g_strdup(id);
		cur->props = g_ptr_array_new_with_free_func(prop_free);
		g_ptr_array_add(c->sections, cur);
	}
	*obj = c;
	return 0;
}

static int prop_rank(const sc_prop_t *p)
{
	return strcmp(p->key, "comment") == 0 ? 0 : strcmp(p->key, "disable") == 0 ? 1 : 2;
}

static gint prop_cmp(gconstpointer a, gconstpointer b)
{
	const sc_prop_t *x = *(sc_prop_t *const *)a, *y = *(sc_prop_t *const *)b;
	int r = prop_rank(x) - prop_rank(y);
	return r ? r : strcmp(x->key, y->key);
}

int sc_write(const char *fullpath, const void *obj, cfs_buf_t *raw, void *ud)
{
	const sc_config_t *c = obj;
	GString *o = g_string_new(NULL);
	for (guint i = 0; i < c->sections->len; i++) {
		const sc_section_t *s = c->sections->pdata[i];
		g_string_append_printf(o, "%s: %s\n", s->type, s->id);
		/* comment, disable, then the rest by key; repeated keys keep
		 * their order (the sort is stable) */
		/* (borrowed pointers: g_ptr_array_copy would copy the free
		 * function too) */
		g_autoptr(GPtrArray) ps = g_ptr_array_sized_new(s->props->len);
		for (guint j = 0; j < s->props->len; j++)
			g_ptr_array_add(ps, s->props->pdata[j]);
		g_ptr_array_sort(ps, prop_cmp);
		for (guint j = 0; j < ps->len; j++) {
			const sc_prop_t *p = ps->pdata[j];
			if ((p->value && strchr(p->value, '\n')) || strchr(p->key, '\n')) {
				g_string_free(o, TRUE);
				return -EINVAL;
			}
			if (p->value)
				g_string_append_printf(o, "\t%s %s\n", p->key, p->value);
			else
				g_string_append_printf(o, "\t%s\n", p->key);
		}
		g_string_append_c(o, '\n');
	}
	return to_buf(o, raw);
}

void sc_free(void *obj, void *ud)
{
	sc_config_t *c = obj;
	if (!c)
		return;
	g_ptr_array_unref(c->sections);
	g_free(c);
}

const sc_section_t *sc_find(const sc_config_t *c, const char *id)
{
	for (guint i = 0; i < c->sections->len; i++) {
		const sc_section_t *s = c->sections->pdata[i];
		if (strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

const char *sc_get(const sc_section_t *s, const char *key)
{
	for (guint i = 0; i < s->props->len; i++) {
		const sc_prop_t *p = s->props->pdata[i];
		if (strcmp(p->key, key) == 0)
			return p->value;
	}
	return NULL;
}
