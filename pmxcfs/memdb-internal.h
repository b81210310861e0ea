/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * memdb-internal.h: what the memdb files share and nobody else sees: the
 * tree structure, the VM list and the lock table.
 */
#pragma once

#include "memdb.h"

/* A whole tree: the root, the inode index and running totals. */
typedef struct memdb_tree {
	memdb_entry_t *root;
	GHashTable *index;    /* &entry->inode -> entry, every entry incl. root */
	uint64_t total_bytes; /* sum of content sizes */
	bool had_version_row; /* the database had a __version__ row */
} memdb_tree_t;

/* tree.c */
memdb_entry_t *entry_new(uint64_t inode, uint64_t parent, uint64_t version, uint32_t writer,
			 uint32_t mtime, uint8_t type, const char *name, GBytes *data);
void entry_free(memdb_entry_t *e);
memdb_tree_t *tree_new_empty(void);
memdb_tree_t *tree_free(memdb_tree_t *t);
/* Build a tree from the rows of @db, checking everything (core.md §3.6). */
int tree_load(db_t *db, memdb_tree_t **ret, char **ret_err);
void entry_digest(memdb_entry_t *e); /* fill the cached index digest */
uint8_t *tree_encode_index(memdb_tree_t *t, size_t *ret_len);
void tree_checksum(memdb_tree_t *t, uint8_t out[MEMDB_CSUM_LEN]);
/* Entries sorted by inode (borrowed). */
GPtrArray *tree_sorted(memdb_tree_t *t);

/* vmlist.c */
typedef struct vmlist vmlist_t;
vmlist_t *vmlist_new(void);
vmlist_t *vmlist_free(vmlist_t *vl);
/* Rebuild from nodes/<node>/<kind>/<vmid>.conf.  A VMID found twice gives
 * -EEXIST and a message naming both paths (the list is still installed, as
 * in the original). */
int vmlist_rebuild(vmlist_t *vl, memdb_tree_t *t, char **ret_err);
void vmlist_register(vmlist_t *vl, uint32_t vmid, int type, const char *node, size_t nodelen);
void vmlist_remove(vmlist_t *vl, uint32_t vmid);
/* registered with a different node or type? */
bool vmlist_conflict(vmlist_t *vl, uint32_t vmid, int type, const char *node, size_t nodelen);
const memdb_vm_t *vmlist_get(vmlist_t *vl, uint32_t vmid);
/* sorted by vmid; shared until the list changes (g_ptr_array_unref, do not
 * modify) */
GPtrArray *vmlist_sorted(vmlist_t *vl);
size_t vmlist_count(vmlist_t *vl);
uint32_t vmlist_version(vmlist_t *vl);

/* locks.c */
typedef struct locktable locktable_t;
locktable_t *locktable_new(void);
locktable_t *locktable_free(locktable_t *lt);
void locktable_set(locktable_t *lt, const char *path, const uint8_t csum[MEMDB_CSUM_LEN],
		   uint64_t now);
void locktable_remove(locktable_t *lt, const char *path);
bool locktable_expired(locktable_t *lt, const char *path, const uint8_t csum[MEMDB_CSUM_LEN],
		       uint64_t now, uint32_t timeout);
/* Rebuild from the directories under priv/lock; a lock whose checksum did
 * not change keeps its age (the original restarts every timer). */
void locktable_rebuild(locktable_t *lt, memdb_tree_t *t, uint64_t now);
size_t locktable_count(locktable_t *lt);
