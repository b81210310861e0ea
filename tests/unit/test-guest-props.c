/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-guest-props.c: the guest config property replies (cluster.md §4.5,
 * pmxcfs/guest-props.c) against a reference: the straightforward
 * implementation the IPC server had before the cache (read every config,
 * one JsonBuilder object per guest, json-glib's generator), kept here.
 * Every reply of the cache must equal the reference's byte for byte: on
 * fixed cases, on random configs and names, and after every kind of change
 * of a config (each with a check that the reply did change, so a stale
 * cache cannot pass).
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "guest-props.h"
#include "testutil.h"

/* --- the reference ----------------------------------------------------------- */

/* the value of @prop in @conf, as a new string, or NULL */
static char *ref_value(const char *conf, size_t len, const char *prop)
{
	char *found = NULL;
	size_t pl = strlen(prop);
	for (size_t o = 0; o < len;) {
		const char *line = conf + o;
		const char *nl = memchr(line, '\n', len - o);
		size_t l = nl ? (size_t)(nl - line) : len - o;
		o += l + 1;
		if (l > 0 && line[0] == '[')
			break;
		if (l <= pl + 1 || memcmp(line, prop, pl) != 0 || line[pl] != ':')
			continue;
		char *v = g_strndup(line + pl + 1, l - pl - 1);
		g_strstrip(v);
		if (v[0]) {
			g_free(found);
			found = v;
		} else {
			g_free(v);
		}
	}
	return found;
}

static const char *kind_dir(int type)
{
	return type == VMTYPE_QEMU ? "qemu-server" : type == VMTYPE_LXC ? "lxc" : "openvz";
}

static int ref_json(memdb_t *m, uint32_t vmid, const char *const *props, unsigned n, char **ret)
{
	g_autoptr(GPtrArray) vms = g_ptr_array_new();
	if (vmid) {
		const memdb_vm_t *vm = memdb_vm_get(m, vmid);
		if (!vm)
			return -ENOENT;
		g_ptr_array_add(vms, (gpointer)vm);
	} else {
		g_autoptr(GPtrArray) all = memdb_vm_list(m);
		for (guint i = 0; i < all->len; i++)
			g_ptr_array_add(vms, all->pdata[i]);
	}
	g_autoptr(JsonBuilder) b = json_builder_new();
	json_builder_begin_object(b);
	for (guint i = 0; i < vms->len; i++) {
		const memdb_vm_t *vm = vms->pdata[i];
		g_autofree char *path = g_strdup_printf("nodes/%s/%s/%u.conf", vm->node,
							kind_dir(vm->type), vm->vmid);
		GBytes *conf = NULL;
		if (memdb_read(m, path, &conf) <= 0 || !conf) {
			if (conf)
				g_bytes_unref(conf);
			if (vmid)
				return -EIO;
			continue;
		}
		gsize len;
		const char *d = g_bytes_get_data(conf, &len);
		g_autoptr(JsonBuilder) one = json_builder_new();
		json_builder_begin_object(one);
		bool any = false;
		for (unsigned k = 0; k < n; k++) {
			g_autofree char *v = ref_value(d, len, props[k]);
			if (!v)
				continue;
			any = true;
			json_builder_set_member_name(one, props[k]);
			g_autofree char *valid = g_utf8_make_valid(v, -1);
			json_builder_add_string_value(one, valid);
		}
		json_builder_end_object(one);
		g_bytes_unref(conf);
		if (any) {
			char id[16];
			g_snprintf(id, sizeof(id), "%u", vm->vmid);
			json_builder_set_member_name(b, id);
			json_builder_add_value(b, json_builder_get_root(one));
		}
	}
	json_builder_end_object(b);
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autoptr(JsonGenerator) gen = json_generator_new();
	json_generator_set_root(gen, root);
	*ret = json_generator_to_data(gen, NULL);
	return 0;
}

/* --- fixture ------------------------------------------------------------------ */

typedef struct fx {
	char *dir;
	memdb_t *m;
	guest_props_t *gp;
} fx_t;

static void fx_setup(fx_t *f, gconstpointer data)
{
	f->dir = tu_dir_new();
	f->m = tu_open(f->dir);
	f->gp = guest_props_new();
	const char *dirs[] = {"nodes",         "nodes/a", "nodes/a/qemu-server",
			      "nodes/a/lxc",   "nodes/b", "nodes/b/qemu-server",
			      "nodes/b/openvz"};
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
		g_assert_cmpint(memdb_mkdir(f->m, dirs[i], 0, 1), ==, 0);
}

static void fx_teardown(fx_t *f, gconstpointer data)
{
	f->gp = guest_props_free(f->gp);
	f->m = memdb_close(f->m);
	tu_dir_free(f->dir);
}

static void put(fx_t *f, const char *path, const char *data, size_t len)
{
	if (!memdb_lookup(f->m, path))
		g_assert_cmpint(memdb_create(f->m, path, 0, 1), ==, 0);
	g_assert_cmpint(memdb_write(f->m, path, 0, 2, data, len, 0, true), ==, (int)len);
}

static void put_str(fx_t *f, const char *path, const char *text)
{
	put(f, path, text, strlen(text));
}

/* the cache's reply equals the reference's (same errno, same text);
 * returns the reply */
static char *check(fx_t *f, uint32_t vmid, const char *const *props, unsigned n)
{
	g_autofree char *want = NULL;
	char *got = NULL;
	int rw = ref_json(f->m, vmid, props, n, &want);
	int rg = guest_props_json(f->gp, f->m, vmid, props, n, &got);
	g_assert_cmpint(rg, ==, rw);
	if (rw == 0)
		g_assert_cmpstr(got, ==, want);
	return got;
}

static void check_all(fx_t *f, const char *const *props, unsigned n)
{
	g_free(check(f, 0, props, n));
	g_autoptr(GPtrArray) vms = memdb_vm_list(f->m);
	for (guint i = 0; i < vms->len; i++)
		g_free(check(f, ((memdb_vm_t *)vms->pdata[i])->vmid, props, n));
}

/* --- cases --------------------------------------------------------------------- */

static void test_rules(fx_t *f, gconstpointer d)
{
	put_str(f, "nodes/a/qemu-server/100.conf",
		"#comment: no\nname: web\ncores:   2  \ntags: a;b\nlock:\nlock: \t\n"
		"lock: backup\nmemory:4096\n\n[snap1]\nname: old\nparent: x\n");
	put_str(f, "nodes/a/lxc/200.conf", "hostname: ct\nname:\nlock: migrate"); /* no \n */
	put_str(f, "nodes/b/qemu-server/300.conf", "");
	put_str(f, "nodes/b/openvz/400.conf", "[PENDING]\nname: pending\n");
	put(f, "nodes/b/qemu-server/500.conf", "name: a\0b\ncores: \0 2\nlock: x \0y\n", 31);
	put_str(f, "nodes/a/qemu-server/600.conf",
		"name: q\"uote\\back\ndesc: tab\there\x01\x7f\nutf: gr\xc3\xbc\xc3\x9f\n"
		"bad: \xff\xfe\nkey:with:colon: v1\nkey: v2\n\r\nname2:  \r\nwin: C:\\dir\n");

	const char *p1[] = {"name"};
	const char *p2[] = {"lock", "cores", "hostname"};
	const char *p3[] = {"name", "name", "cores", "name"}; /* repeated names */
	const char *p4[] = {"desc", "utf", "bad", "name", "win"};
	const char *p5[] = {"key:with", "key", "key:with:colon", "name2"}; /* ':' in names */
	const char *p6[] = {"nothing"};
	const char *p7[] = {"n\"ame", "\xff", "\x01x", "lock"}; /* names json-glib escapes */
	check_all(f, p1, 1);
	check_all(f, p2, 3);
	check_all(f, p3, 4);
	check_all(f, p4, 5);
	check_all(f, p5, 4);
	check_all(f, p6, 1);
	check_all(f, p7, 4);

	g_autofree char *one = check(f, 100, p2, 3);
	g_assert_cmpstr(one, ==, "{\"100\":{\"lock\":\"backup\",\"cores\":\"2\"}}");
	g_autofree char *all = check(f, 0, p1, 1);
	g_assert_cmpstr(all, ==,
			"{\"100\":{\"name\":\"web\"},\"500\":{\"name\":\"a\"},"
			"\"600\":{\"name\":\"q\\\"uote\\\\back\"}}");
	g_autofree char *none = check(f, 0, p6, 1);
	g_assert_cmpstr(none, ==, "{}");

	char *r = NULL;
	g_assert_cmpint(guest_props_json(f->gp, f->m, 999, p1, 1, &r), ==, -ENOENT);
	g_assert_cmpint(guest_props_json(f->gp, f->m, 300, p1, 1, &r), ==, -EIO);
	g_assert_null(r);
}

/* a random config: property lines (some repeated, some odd), blank lines,
 * comments, maybe a section */
static char *random_config(GRand *rnd, size_t *ret_len)
{
	static const char *const keys[] = {"lock", "name",  "tags", "cores", "a",
					   "net0", "key:x", "lo",   "lockx", ""};
	static const char *const vals[] = {"backup",   "  spaced  ", "",       " ",   "q\"b\\s",
					   "\xc3\xa9", "\xff",       "\t\x01", "a:b", "x\0y"};
	GString *s = g_string_new(NULL);
	int lines = g_rand_int_range(rnd, 0, 20);
	for (int i = 0; i < lines; i++) {
		int kind = g_rand_int_range(rnd, 0, 12);
		if (kind == 0) {
			g_string_append(s, "\n");
		} else if (kind == 1) {
			g_string_append(s, "#lock: comment\n");
		} else if (kind == 2 && g_rand_boolean(rnd)) {
			g_string_append(s, "[snapshot]\n");
		} else {
			const char *k = keys[g_rand_int_range(rnd, 0, G_N_ELEMENTS(keys))];
			int vi = g_rand_int_range(rnd, 0, G_N_ELEMENTS(vals));
			const char *v = vals[vi];
			g_string_append(s, k);
			g_string_append_c(s, ':');
			if (g_rand_boolean(rnd))
				g_string_append_c(s, ' ');
			g_string_append_len(s, v, vi == 9 ? 3 : (gssize)strlen(v));
			if (g_rand_int_range(rnd, 0, 4) == 0)
				g_string_append_c(s, '\r');
			if (i < lines - 1 || g_rand_boolean(rnd))
				g_string_append_c(s, '\n');
		}
	}
	*ret_len = s->len;
	return g_string_free(s, FALSE);
}

static void test_random(fx_t *f, gconstpointer d)
{
	static const char *const names[] = {"lock", "name",  "tags", "cores", "a",
					    "net0", "key:x", "key",  "lo",    "missing"};
	g_autoptr(GRand) rnd = g_rand_new_with_seed(4);
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 30; i++) {
			g_autofree char *path =
				g_strdup_printf("nodes/%s/%s/%d.conf", i % 3 ? "a" : "b",
						i % 3 ? "qemu-server" : "openvz", 100 + i);
			if (g_rand_int_range(rnd, 0, 4) != 0 && round > 0)
				continue; /* some configs stay as they are */
			size_t len;
			g_autofree char *conf = random_config(rnd, &len);
			put(f, path, conf, len);
		}
		const char *props[4];
		unsigned n = (unsigned)g_rand_int_range(rnd, 1, 5);
		for (unsigned k = 0; k < n; k++)
			props[k] = names[g_rand_int_range(rnd, 0, G_N_ELEMENTS(names))];
		check_all(f, props, n);
	}
}

/* the index and the scan agree with the reference on every name */
static void test_index(void)
{
	static const char *const names[] = {"lock", "name",  "tags", "cores", "a",
					    "net0", "key:x", "key",  "lo",    "lockx"};
	g_autoptr(GRand) rnd = g_rand_new_with_seed(7);
	for (int round = 0; round < 2000; round++) {
		size_t len;
		g_autofree char *conf = random_config(rnd, &len);
		g_autofree guest_conf_index_t *ix = guest_conf_index_new(conf, len);
		for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
			const char *p = names[k];
			g_autofree char *want = ref_value(conf, len, p);
			const char *v = NULL;
			size_t vl = 0;
			bool found = guest_conf_scan(conf, len, p, strlen(p), &v, &vl);
			g_assert_cmpint(found, ==, want != NULL);
			if (found) {
				g_assert_cmpuint(vl, ==, strlen(want));
				g_assert_true(memcmp(v, want, vl) == 0);
			}
			if (strchr(p, ':'))
				continue;
			found = guest_conf_index_get(ix, conf, p, strlen(p), &v, &vl);
			g_assert_cmpint(found, ==, want != NULL);
			if (found) {
				g_assert_cmpuint(vl, ==, strlen(want));
				g_assert_true(memcmp(v, want, vl) == 0);
			}
		}
	}
}

/* every change of a config shows in the next reply */
static void test_changes(fx_t *f, gconstpointer d)
{
	const char *props[] = {"lock", "name"};
	for (int i = 0; i < 50; i++) {
		g_autofree char *path = g_strdup_printf("nodes/a/qemu-server/%d.conf", 100 + i);
		g_autofree char *conf =
			g_strdup_printf("name: vm%d\n%s", i, i % 5 ? "" : "lock: b\n");
		put_str(f, path, conf);
	}
	g_autofree char *r0 = check(f, 0, props, 2);
	g_autofree char *one0 = check(f, 110, props, 2);
	/* the same request again, nothing changed: the same reply */
	g_autofree char *again = check(f, 0, props, 2);
	g_assert_cmpstr(again, ==, r0);

	/* each change: the reply follows it (and differs from the one before,
	 * so a cache that kept the old answer would fail here) */
	g_autofree char *prev = g_strdup(r0);
#define CHANGED()                                                                                  \
	do {                                                                                       \
		char *now = check(f, 0, props, 2);                                                 \
		g_assert_cmpstr(now, !=, prev);                                                    \
		g_free(prev);                                                                      \
		prev = now;                                                                        \
		check_all(f, props, 2);                                                            \
	} while (0)
	put_str(f, "nodes/a/qemu-server/110.conf", "name: vm10\nlock: snapshot\n");
	CHANGED();
	g_autofree char *one1 = check(f, 110, props, 2);
	g_assert_cmpstr(one1, !=, one0);
	/* the same content written again: same reply, still right */
	put_str(f, "nodes/a/qemu-server/110.conf", "name: vm10\nlock: snapshot\n");
	g_free(check(f, 0, props, 2));
	g_assert_cmpint(memdb_truncate(f->m, "nodes/a/qemu-server/110.conf", 0, 3, 10), ==, 0);
	CHANGED();
	g_assert_cmpint(memdb_rename(f->m, "nodes/a/qemu-server/111.conf",
				     "nodes/b/qemu-server/111.conf", 0, 3),
			==, 0);
	put_str(f, "nodes/b/qemu-server/111.conf", "name: moved\n");
	CHANGED();
	g_assert_cmpint(memdb_rename(f->m, "nodes/a/qemu-server/112.conf",
				     "nodes/a/qemu-server/1112.conf", 0, 3),
			==, 0);
	CHANGED();
	g_assert_cmpint(memdb_delete(f->m, "nodes/a/qemu-server/113.conf", 0, 3), ==, 0);
	CHANGED();
	put_str(f, "nodes/a/lxc/113.conf", "name: back as a container\n");
	CHANGED();
	put_str(f, "nodes/a/qemu-server/114.conf", "");
	CHANGED();
	/* the single-guest path changes the cache too; the all-guests reply
	 * must still be right afterwards */
	put_str(f, "nodes/a/qemu-server/115.conf", "name: single\n");
	g_free(check(f, 115, props, 2));
	CHANGED();
	/* many guests go: the cache drops them */
	for (int i = 20; i < 50; i++) {
		g_autofree char *path = g_strdup_printf("nodes/a/qemu-server/%d.conf", 100 + i);
		g_assert_cmpint(memdb_delete(f->m, path, 0, 4), ==, 0);
	}
	CHANGED();
	/* reopened from disk (a cache serves one memdb: a new one) */
	g_autofree char *before = check(f, 0, props, 2);
	f->gp = guest_props_free(f->gp);
	f->m = memdb_close(f->m);
	f->m = tu_open(f->dir);
	f->gp = guest_props_new();
	g_autofree char *after = check(f, 0, props, 2);
	g_assert_cmpstr(after, ==, before);
	put_str(f, "nodes/a/qemu-server/101.conf", "name: after reopen\n");
	CHANGED();
#undef CHANGED
}

/* a config of one line per key, 10,000 lines */
static void test_large(fx_t *f, gconstpointer d)
{
	GString *s = g_string_new(NULL);
	for (int i = 0; i < 10000; i++)
		g_string_append_printf(s, "key%d: value %d\n", i % 5000, i);
	g_string_append(s, "lock: last\n[s]\nlock: no\n");
	put(f, "nodes/a/qemu-server/100.conf", s->str, s->len);
	g_string_free(s, TRUE);
	const char *props[] = {"key0", "key4999", "lock", "key5000"};
	g_autofree char *r = check(f, 0, props, 4);
	g_assert_cmpstr(r, ==,
			"{\"100\":{\"key0\":\"value 5000\",\"key4999\":\"value 9999\","
			"\"lock\":\"last\"}}");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/guest-props/rules", fx_t, NULL, fx_setup, test_rules, fx_teardown);
	g_test_add("/guest-props/random", fx_t, NULL, fx_setup, test_random, fx_teardown);
	g_test_add_func("/guest-props/index", test_index);
	g_test_add("/guest-props/changes", fx_t, NULL, fx_setup, test_changes, fx_teardown);
	g_test_add("/guest-props/large", fx_t, NULL, fx_setup, test_large, fx_teardown);
	return g_test_run();
}
