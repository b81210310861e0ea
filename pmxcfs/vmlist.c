/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * vmlist.c: the guest list, VMID -> {node, type, version} (core.md §2.7,
 * cluster.md §2.12).
 *
 * memdb keeps it current on every change to a VM config path and rebuilds
 * it after a load or a cluster sync.  It backs the VMID uniqueness check
 * (the same VMID may not exist on two nodes or as two guest types) and the
 * `.vmlist` file.  The list version moves on every register, remove and
 * rebuild; each registered guest gets a fresh per-guest version from one
 * counter, so clients can tell which guest config changed.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "memdb-internal.h"
#include "paths.h"

struct vmlist {
	GHashTable *vms; /* vmid (GUINT_TO_POINTER) -> memdb_vm_t* */
	uint32_t version;
	uint32_t vm_counter;
	GPtrArray *sorted; /* vmlist_sorted() until the list changes, or NULL */
};

/* every change of vms goes through here first: the sorted array holds
 * pointers to the entries */
static void vmlist_changing(vmlist_t *vl)
{
	if (vl->sorted) {
		g_ptr_array_unref(vl->sorted);
		vl->sorted = NULL;
	}
}

static void vm_free(gpointer p)
{
	memdb_vm_t *vm = p;
	g_free(vm->node);
	g_free(vm);
}

vmlist_t *vmlist_new(void)
{
	vmlist_t *vl = g_new0(vmlist_t, 1);
	vl->vms = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, vm_free);
	return vl;
}

vmlist_t *vmlist_free(vmlist_t *vl)
{
	if (!vl)
		return NULL;
	vmlist_changing(vl);
	g_hash_table_unref(vl->vms);
	g_free(vl);
	return NULL;
}

static void vmlist_insert(vmlist_t *vl, uint32_t vmid, int type, const char *node, size_t nodelen)
{
	vmlist_changing(vl);
	memdb_vm_t *vm = g_new0(memdb_vm_t, 1);
	vm->vmid = vmid;
	vm->type = type;
	vm->node = g_strndup(node, nodelen);
	vm->version = ++vl->vm_counter;
	g_hash_table_replace(vl->vms, GUINT_TO_POINTER(vmid), vm);
}

void vmlist_register(vmlist_t *vl, uint32_t vmid, int type, const char *node, size_t nodelen)
{
	vmlist_insert(vl, vmid, type, node, nodelen);
	vl->version++;
}

void vmlist_remove(vmlist_t *vl, uint32_t vmid)
{
	vmlist_changing(vl);
	g_hash_table_remove(vl->vms, GUINT_TO_POINTER(vmid));
	vl->version++;
}

bool vmlist_conflict(vmlist_t *vl, uint32_t vmid, int type, const char *node, size_t nodelen)
{
	const memdb_vm_t *vm = g_hash_table_lookup(vl->vms, GUINT_TO_POINTER(vmid));
	if (!vm)
		return false;
	return vm->type != type || strlen(vm->node) != nodelen ||
	       memcmp(vm->node, node, nodelen) != 0;
}

const memdb_vm_t *vmlist_get(vmlist_t *vl, uint32_t vmid)
{
	return g_hash_table_lookup(vl->vms, GUINT_TO_POINTER(vmid));
}

static gint cmp_vmid(gconstpointer a, gconstpointer b)
{
	const memdb_vm_t *x = *(memdb_vm_t *const *)a;
	const memdb_vm_t *y = *(memdb_vm_t *const *)b;
	return x->vmid < y->vmid ? -1 : x->vmid > y->vmid;
}

/* sorted once per change of the list: a request over all guests must not
 * pay for sorting 10,000 entries */
GPtrArray *vmlist_sorted(vmlist_t *vl)
{
	if (!vl->sorted) {
		GPtrArray *a = g_ptr_array_sized_new(g_hash_table_size(vl->vms));
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, vl->vms);
		while (g_hash_table_iter_next(&it, NULL, &v))
			g_ptr_array_add(a, v);
		g_ptr_array_sort(a, cmp_vmid);
		vl->sorted = a;
	}
	return g_ptr_array_ref(vl->sorted);
}

size_t vmlist_count(vmlist_t *vl)
{
	return g_hash_table_size(vl->vms);
}

uint32_t vmlist_version(vmlist_t *vl)
{
	return vl->version;
}

static gint cmp_name(gconstpointer a, gconstpointer b)
{
	const memdb_entry_t *x = *(memdb_entry_t *const *)a;
	const memdb_entry_t *y = *(memdb_entry_t *const *)b;
	return strcmp(x->name, y->name);
}

/* children of @dir sorted by name, so that a rebuild is deterministic */
static GPtrArray *sorted_children(const memdb_entry_t *dir)
{
	GPtrArray *a = g_ptr_array_new();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, dir->children);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(a, v);
	g_ptr_array_sort(a, cmp_name);
	return a;
}

static const char *const vm_kinds[] = {"qemu-server", "openvz", "lxc"};

int vmlist_rebuild(vmlist_t *vl, memdb_tree_t *t, char **ret_err)
{
	const memdb_entry_t *nodes = g_hash_table_lookup(t->root->children, "nodes");
	if (!nodes || nodes->type != MEMDB_TYPE_DIR) {
		/* The original installs nothing and keeps the old list; an old list
		 * would block creates for guests that no longer exist, so empty it. */
		if (g_hash_table_size(vl->vms) > 0) {
			vmlist_changing(vl);
			g_hash_table_remove_all(vl->vms);
			vl->version++;
		}
		return 0;
	}

	vmlist_changing(vl);
	g_hash_table_remove_all(vl->vms);
	g_autoptr(GHashTable) where =
		g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	g_autoptr(GPtrArray) node_dirs = sorted_children(nodes);
	int r = 0;
	for (guint i = 0; i < node_dirs->len; i++) {
		const memdb_entry_t *nd = g_ptr_array_index(node_dirs, i);
		if (nd->type != MEMDB_TYPE_DIR || !node_name_valid(nd->name, strlen(nd->name)))
			continue;
		for (size_t k = 0; k < G_N_ELEMENTS(vm_kinds); k++) {
			const memdb_entry_t *kd = g_hash_table_lookup(nd->children, vm_kinds[k]);
			if (!kd || kd->type != MEMDB_TYPE_DIR)
				continue;
			int type = vm_kind_type(vm_kinds[k], strlen(vm_kinds[k]));
			g_autoptr(GPtrArray) files = sorted_children(kd);
			for (guint j = 0; j < files->len; j++) {
				const memdb_entry_t *f = g_ptr_array_index(files, j);
				uint32_t vmid;
				if (f->type != MEMDB_TYPE_REG ||
				    !vm_config_name_parse(f->name, &vmid))
					continue;
				char *path = g_strdup_printf("nodes/%s/%s/%s", nd->name,
							     vm_kinds[k], f->name);
				const char *first =
					g_hash_table_lookup(where, GUINT_TO_POINTER(vmid));
				if (first) {
					if (r == 0 && ret_err)
						*ret_err = g_strdup_printf(
							"detected duplicate VMID %u: '%s' and '%s'",
							vmid, first, path);
					r = -EEXIST;
					g_free(path);
					continue;
				}
				g_hash_table_insert(where, GUINT_TO_POINTER(vmid), path);
				vmlist_insert(vl, vmid, type, nd->name, strlen(nd->name));
			}
		}
	}
	vl->version++;
	return r;
}
