/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test-paths.c: the path rules of core.md §2.5 and §2.7. */
#include "config.h"

#include <glib.h>

#include "constants.h"
#include "paths.h"

static void test_canonical(void)
{
	const char *cases[][2] = {
		{"", ""},
		{"/", ""},
		{".", ""},
		{"//a//b/", "a/b"},
		{"nodes/pve1/qemu-server/100.conf", "nodes/pve1/qemu-server/100.conf"},
		{"/priv/lock/x", "priv/lock/x"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *c = path_canonical(cases[i][0]);
		g_assert_cmpstr(c, ==, cases[i][1]);
	}
	g_autofree char *longp = g_strnfill(MEMDB_MAX_PATH + 1, 'a');
	g_assert_null(path_canonical(longp));
}

static void test_split(void)
{
	g_autofree char *d1 = NULL, *d2 = NULL;
	g_assert_cmpstr(path_split("a", &d1), ==, "a");
	g_assert_cmpstr(d1, ==, "");
	g_assert_cmpstr(path_split("priv/lock/x", &d2), ==, "x");
	g_assert_cmpstr(d2, ==, "priv/lock");
	g_assert_false(path_name_valid(""));
	g_assert_false(path_name_valid("."));
	g_assert_false(path_name_valid(".."));
	g_assert_true(path_name_valid("..."));
}

static void test_private(void)
{
	g_assert_true(path_is_private("priv"));
	g_assert_true(path_is_private("priv/shadow.cfg"));
	g_assert_true(path_is_private("nodes/pve1/priv"));
	g_assert_true(path_is_private("nodes/pve1/priv/x"));
	g_assert_false(path_is_private("private"));
	g_assert_false(path_is_private("nodes/pve1/private"));
	g_assert_false(path_is_private("nodes/priv"));
	g_assert_false(path_is_private("nodes//priv"));
	g_assert_false(path_is_private("x/priv"));
}

static void test_lock(void)
{
	g_assert_true(path_is_lock_dir("priv/lock/a"));
	g_assert_true(path_is_lock_dir("priv/lock/a/b"));
	g_assert_false(path_is_lock_dir("priv/lock/"));
	g_assert_false(path_is_lock_dir("priv/lock"));
	g_assert_false(path_is_lock_dir("priv/locka"));
	g_assert_true(path_is_lock_parent("priv/lock"));
	g_assert_false(path_is_lock_parent("priv/lock/a"));
}

static void test_vm_config(void)
{
	uint32_t vmid;
	int type;
	const char *node;
	size_t nodelen;
	g_assert_true(path_parse_vm_config("nodes/pve-1/qemu-server/100.conf", &vmid, &type, &node,
					   &nodelen));
	g_assert_cmpuint(vmid, ==, 100);
	g_assert_cmpint(type, ==, VMTYPE_QEMU);
	g_assert_cmpuint(nodelen, ==, 5);
	g_assert_true(
		path_parse_vm_config("nodes/a/lxc/4294967295.conf", &vmid, &type, NULL, NULL));
	g_assert_cmpuint(vmid, ==, 4294967295u);
	g_assert_cmpint(type, ==, VMTYPE_LXC);
	g_assert_true(path_parse_vm_config("nodes/a/openvz/1.conf", NULL, &type, NULL, NULL));
	g_assert_cmpint(type, ==, VMTYPE_OPENVZ);

	const char *bad[] = {
		"nodes/a/lxc/4294967296.conf", /* overflow */
		"nodes/a/lxc/0100.conf",       /* leading zero */
		"nodes/a/lxc/100.conf.tmp",    /* suffix */
		"nodes/a/lxc/100.cfg",         "nodes/a/lxc/.conf",
		"nodes/a.b/lxc/100.conf", /* dot in node */
		"nodes/a_b/lxc/100.conf", /* underscore */
		"nodes/-a/lxc/100.conf",  /* leading hyphen */
		"nodes/a-/lxc/100.conf",  /* trailing hyphen */
		"nodes//lxc/100.conf",         "nodes/a/kvm/100.conf",
		"nodes/a/lxc/x/100.conf",      "node/a/lxc/100.conf",
		"x/nodes/a/lxc/100.conf",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(path_parse_vm_config(bad[i], &vmid, &type, &node, &nodelen));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/paths/canonical", test_canonical);
	g_test_add_func("/paths/split", test_split);
	g_test_add_func("/paths/private", test_private);
	g_test_add_func("/paths/lock", test_lock);
	g_test_add_func("/paths/vm-config", test_vm_config);
	return g_test_run();
}
