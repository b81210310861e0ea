/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-parsers.c: the example parser/writer pairs (example-parsers.h) on
 * the vectors of client.md §14.2 and a storage.cfg of our own.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

#include "example-parsers.h"
#include "memdb.h"

static dc_config_t *dc(const char *text)
{
	void *o = NULL;
	g_assert_cmpint(dc_parse("/etc/pve/datacenter.cfg", text, strlen(text), 1, &o, NULL), ==,
			0);
	return o;
}

static char *dc_text(const dc_config_t *c)
{
	cfs_buf_t b = {0};
	g_assert_cmpint(dc_write("/etc/pve/datacenter.cfg", c, &b, NULL), ==, 0);
	char *s = g_strdup(b.data);
	cfs_buf_free(&b);
	return s;
}

static void test_dc_vector(void)
{
	/* client.md §14.2's vector, but with the space of the second line
	 * encoded: the writer escapes every byte outside 0x21-0x7e (as
	 * PVE::Tools::encode_text does), so "#second line" cannot come back */
	const char *text = "#Lab%20cluster\n#second%20line\n\nkeyboard: de\n"
			   "migration: insecure,network=10.0.0.0/24\n";
	dc_config_t *c = dc(text);
	g_assert_cmpstr(c->description, ==, "Lab cluster\nsecond line\n");
	g_assert_cmpstr(dc_get(c, "keyboard"), ==, "de");
	g_assert_cmpstr(dc_get(c, "migration"), ==, "insecure,network=10.0.0.0/24");
	g_assert_cmpstr(dc_get(c, "mac_prefix"), ==, "BC:24:11");
	g_assert_cmpuint(c->warnings, ==, 0);
	g_autofree char *out = dc_text(c);
	g_assert_cmpstr(out, ==, text);
	dc_free(c, NULL);
}

static void test_dc_schema(void)
{
	dc_config_t *c = dc("bogus: 1\nconsole: applet\nmax_workers: 0\nmax_workers2: 3\n"
			    "not a key line\nfencing: both\nhttp_proxy: ftp://x\n"
			    "migration: network=10.1.0.0/16,type=secure\n"
			    "replication: type=a,type=b\nmac_prefix: 01:00\n"
			    "  keyboard:   fr  \n");
	/* unknown keys, bad values, malformed lines: dropped with a warning */
	g_assert_null(dc_get(c, "bogus"));
	g_assert_null(dc_get(c, "max_workers"));
	g_assert_null(dc_get(c, "http_proxy"));
	g_assert_null(dc_get(c, "replication"));                  /* duplicate key */
	g_assert_cmpstr(dc_get(c, "mac_prefix"), ==, "BC:24:11"); /* multicast refused */
	g_assert_cmpuint(c->warnings, ==, 7);
	g_assert_cmpstr(dc_get(c, "console"), ==, "html5");
	g_assert_cmpstr(dc_get(c, "fencing"), ==, "both");
	g_assert_cmpstr(dc_get(c, "keyboard"), ==, "fr");
	/* the default key first and bare, the others sorted */
	g_assert_cmpstr(dc_get(c, "migration"), ==, "secure,network=10.1.0.0/16");
	g_autofree char *out = dc_text(c);
	g_assert_cmpstr(out, ==,
			"\nconsole: html5\nfencing: both\nkeyboard: fr\n"
			"migration: secure,network=10.1.0.0/16\n");
	g_assert_cmpint(dc_set(c, "max_workers", "x"), ==, -EINVAL);
	g_assert_cmpint(dc_set(c, "nope", "1"), ==, -EINVAL);
	g_assert_cmpint(dc_set(c, "max_workers", "4"), ==, 0);
	g_assert_cmpint(dc_set(c, "description", "a: 100%\n"), ==, 0);
	g_autofree char *out2 = dc_text(c);
	g_assert_cmpstr(out2, ==,
			"#a%3A%20100%25\n\nconsole: html5\nfencing: both\nkeyboard: fr\n"
			"max_workers: 4\nmigration: secure,network=10.1.0.0/16\n");
	dc_config_t *back = dc(out2);
	g_assert_cmpstr(back->description, ==, "a: 100%\n");
	dc_free(back, NULL);
	dc_free(c, NULL);
}

static void test_dc_legacy_and_mac(void)
{
	dc_config_t *c = dc("migration_unsecure: yes\nmac_prefix: bc:24:11\n");
	g_assert_cmpstr(dc_get(c, "migration"), ==, "insecure");
	g_autofree char *out = dc_text(c);
	/* mac_prefix at its default (any case) is left out */
	g_assert_cmpstr(out, ==, "\nmigration: insecure\nmigration_unsecure: 1\n");
	dc_free(c, NULL);
	c = dc("migration_unsecure: 1\nmigration: secure\n");
	g_assert_cmpstr(dc_get(c, "migration"), ==, "secure"); /* a set type wins */

	static const struct {
		const char *v;
		bool ok;
	} macs[] = {{"00", true},        {"02:11", true},        {"00:00:00:0", true},
		    {"00:00:00:", true}, {"00:00:00:00", false}, {"01", false},
		    {"0f:00", false},    {"0", false},           {"zz", false}};
	for (size_t i = 0; i < G_N_ELEMENTS(macs); i++) {
		dc_config_t *m = dc_copy(c);
		g_assert_cmpint(dc_set(m, "mac_prefix", macs[i].v), ==, macs[i].ok ? 0 : -EINVAL);
		dc_free(m, NULL);
	}
	dc_free(c, NULL);
}

static void test_dc_missing(void)
{
	void *o = NULL;
	g_assert_cmpint(dc_parse("/etc/pve/datacenter.cfg", NULL, 0, 0, &o, NULL), ==, 0);
	dc_config_t *c = o;
	g_assert_cmpstr(c->description, ==, "");
	g_assert_cmpstr(dc_get(c, "mac_prefix"), ==, "BC:24:11");
	g_autofree char *out = dc_text(c);
	g_assert_cmpstr(out, ==, "\n");
	dc_free(c, NULL);
}

static const char storage_cfg[] = "dir: local\n"
				  "\tpath /var/lib/vz\n"
				  "\tcontent iso,vztmpl,backup\n"
				  "\n"
				  "# a comment\n"
				  "lvmthin: local-lvm\n"
				  "\tthinpool data\n"
				  "\tvgname pve\n"
				  "\tdisable\n"
				  "\tcomment the thin pool\n"
				  "\tcontent rootdir,images\n"
				  "\n"
				  "nfs: backup\n"
				  "    export /srv/backup\n"
				  "    server 10.0.0.9\n"
				  "    path /mnt/pve/backup\n";

static void test_section_config(void)
{
	void *o = NULL;
	g_assert_cmpint(
		sc_parse("/etc/pve/storage.cfg", storage_cfg, strlen(storage_cfg), 1, &o, NULL), ==,
		0);
	sc_config_t *c = o;
	g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA1, storage_cfg, -1);
	g_assert_cmpstr(c->digest, ==, sha);
	g_assert_cmpuint(c->sections->len, ==, 3);
	g_assert_cmpuint(c->errors, ==, 0);
	const sc_section_t *s = sc_find(c, "local-lvm");
	g_assert_nonnull(s);
	g_assert_cmpstr(s->type, ==, "lvmthin");
	g_assert_cmpstr(sc_get(s, "vgname"), ==, "pve");
	g_assert_cmpstr(sc_get(s, "comment"), ==, "the thin pool");
	g_assert_null(sc_get(s, "disable")); /* a flag: present, no value */
	g_assert_cmpstr(sc_get(sc_find(c, "backup"), "server"), ==, "10.0.0.9");

	cfs_buf_t b = {0};
	g_assert_cmpint(sc_write(NULL, c, &b, NULL), ==, 0);
	g_assert_cmpstr(b.data, ==,
			"dir: local\n\tcontent iso,vztmpl,backup\n\tpath /var/lib/vz\n\n"
			"lvmthin: local-lvm\n\tcomment the thin pool\n\tdisable\n"
			"\tcontent rootdir,images\n\tthinpool data\n\tvgname pve\n\n"
			"nfs: backup\n\texport /srv/backup\n\tpath /mnt/pve/backup\n"
			"\tserver 10.0.0.9\n\n");
	/* what the writer wrote parses to the same and writes the same */
	void *o2 = NULL;
	g_assert_cmpint(sc_parse(NULL, b.data, b.len, 1, &o2, NULL), ==, 0);
	cfs_buf_t b2 = {0};
	g_assert_cmpint(sc_write(NULL, o2, &b2, NULL), ==, 0);
	g_assert_cmpstr(b2.data, ==, b.data);
	cfs_buf_free(&b2);
	cfs_buf_free(&b);
	sc_free(o2, NULL);

	/* a value with a newline cannot be written */
	sc_prop_t *p = ((sc_section_t *)c->sections->pdata[0])->props->pdata[0];
	g_free(p->value);
	p->value = g_strdup("a\nb");
	g_assert_cmpint(sc_write(NULL, c, &b, NULL), ==, -EINVAL);
	sc_free(c, NULL);
}

static void test_section_errors(void)
{
	const char *bad = "\tloose property\nno colon here\ndir:\ndir: a b\nok: x\n\tk v\n"
			  "\nnospace:y\n\tk2 v2\n";
	void *o = NULL;
	g_assert_cmpint(sc_parse(NULL, bad, strlen(bad), 1, &o, NULL), ==, 0);
	sc_config_t *c = o;
	g_assert_cmpuint(c->errors, ==, 4);
	g_assert_cmpuint(c->sections->len, ==, 2);
	g_assert_cmpstr(sc_get(sc_find(c, "x"), "k"), ==, "v");
	/* a header without a space after the colon is a header */
	g_assert_cmpstr(sc_get(sc_find(c, "y"), "k2"), ==, "v2");
	sc_free(c, NULL);
}

/* libcfs's observed names are the daemon's counted paths plus the three
 * guest tags (client.md §4.1): the two lists live apart (the library does
 * not link the daemon's code), this keeps them equal */
static void test_observed_list(void)
{
	size_t n = 0, tags = 0;
	for (const char *const *p = cfs_observed_files; *p; p++) {
		if ((*p)[0] == '/') {
			tags++;
			continue;
		}
		g_assert_cmpstr(*p, ==, memdb_path_counter_name(n));
		n++;
	}
	g_assert_cmpuint(n, ==, memdb_path_counter_count());
	g_assert_cmpuint(tags, ==, 3);
}

/* the header's version macros name the library that runs */
static void test_version(void)
{
	g_autofree char *want = g_strdup_printf("%d.%d.", CFS_VERSION_MAJOR, CFS_VERSION_MINOR);
	g_assert_true(g_str_has_prefix(cfs_version(), want));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/parsers/datacenter/vector", test_dc_vector);
	g_test_add_func("/parsers/datacenter/schema", test_dc_schema);
	g_test_add_func("/parsers/datacenter/legacy-and-mac", test_dc_legacy_and_mac);
	g_test_add_func("/parsers/datacenter/missing", test_dc_missing);
	g_test_add_func("/parsers/section-config/storage", test_section_config);
	g_test_add_func("/parsers/section-config/errors", test_section_errors);
	g_test_add_func("/parsers/libcfs-observed-list", test_observed_list);
	g_test_add_func("/parsers/libcfs-version", test_version);
	return g_test_run();
}
