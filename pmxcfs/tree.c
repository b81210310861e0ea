/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tree.c: memdb entries and whole trees: building a tree from database rows
 * with full validation, and the checksums and index of core.md §2.10.
 *
 * DESIGN
 * - A tree is a root entry plus an index inode -> entry; directories map
 *   names to children, so a lookup costs O(depth) and a listing O(entries).
 * - Loading happens in two passes: every row becomes an entry (row-level
 *   checks), then every entry is linked to its parent (structure checks),
 *   then a walk from the root proves there is no cycle or orphan, and the
 *   global version is checked against every inode and version.  Rows may
 *   come in any order.  Every error names the row and what is wrong.
 * - The index digest of each entry is cached in the entry and dropped by
 *   memdb whenever the entry changes, so encoding the index of an unchanged
 *   tree hashes nothing.
 * - All hashed fields are fed in little-endian order without padding, never
 *   by hashing a struct.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "memdb-internal.h"
#include "paths.h"

memdb_entry_t *entry_new(uint64_t inode, uint64_t parent, uint64_t version, uint32_t writer,
			 uint32_t mtime, uint8_t type, const char *name, GBytes *data)
{
	memdb_entry_t *e = g_new0(memdb_entry_t, 1);
	e->inode = inode;
	e->parent = parent;
	e->version = version;
	e->writer = writer;
	e->mtime = mtime;
	e->type = type;
	e->name = g_strdup(name);
	if (type == MEMDB_TYPE_DIR) {
		e->children = g_hash_table_new(g_str_hash, g_str_equal);
	} else if (data && g_bytes_get_size(data) > 0) {
		e->data = g_bytes_ref(data);
		e->size = (uint32_t)g_bytes_get_size(data);
	}
	return e;
}

void entry_free(memdb_entry_t *e)
{
	if (!e)
		return;
	if (e->children)
		g_hash_table_unref(e->children);
	if (e->data)
		g_bytes_unref(e->data);
	g_free(e->name);
	g_free(e);
}

static void entry_free_cb(gpointer p)
{
	entry_free(p);
}

static memdb_tree_t *tree_alloc(void)
{
	memdb_tree_t *t = g_new0(memdb_tree_t, 1);
	t->index = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, entry_free_cb);
	return t;
}

memdb_tree_t *tree_new_empty(void)
{
	memdb_tree_t *t = tree_alloc();
	t->root = entry_new(0, 0, 0, 0, 0, MEMDB_TYPE_DIR, "", NULL);
	g_hash_table_insert(t->index, &t->root->inode, t->root);
	return t;
}

memdb_tree_t *tree_free(memdb_tree_t *t)
{
	if (!t)
		return NULL;
	g_hash_table_unref(t->index);
	g_free(t);
	return NULL;
}

/* --- loading ------------------------------------------------------------ */

static int load_row(const db_row_t *row, void *userdata, char **ret_err)
{
	memdb_tree_t *t = userdata;

	if (row->inode == 0) {
		if (strcmp(row->name, MEMDB_VERSION_ROW_NAME) != 0) {
			*ret_err =
				g_strdup_printf("root inode has unexpected name '%s'", row->name);
			return -EUCLEAN;
		}
		t->root->version = row->version;
		t->root->writer = row->writer;
		t->root->mtime = row->mtime;
		t->had_version_row = true;
		return 0;
	}
	if (row->name[0] == '\0') {
		*ret_err =
			g_strdup_printf("inode has no name (inode = %016" PRIX64 ")", row->inode);
		return -EUCLEAN;
	}
	if (!path_name_valid(row->name) || strchr(row->name, '/')) {
		*ret_err =
			g_strdup_printf("inode has an invalid name '%s' (inode = %016" PRIX64 ")",
					row->name, row->inode);
		return -EUCLEAN;
	}
	if (row->type != MEMDB_TYPE_DIR && row->type != MEMDB_TYPE_REG) {
		*ret_err = g_strdup_printf("inode has unknown type (inode = %016" PRIX64
					   ", type = %u)",
					   row->inode, row->type);
		return -EUCLEAN;
	}
	if (row->type == MEMDB_TYPE_DIR && row->size > 0) {
		*ret_err = g_strdup_printf("directory inode contains data (inode = %016" PRIX64
					   ", name = '%s')",
					   row->inode, row->name);
		return -EUCLEAN;
	}
	if (row->parent == row->inode) {
		*ret_err = g_strdup_printf("inode is its own parent (inode = %016" PRIX64
					   ", name = '%s')",
					   row->inode, row->name);
		return -EUCLEAN;
	}
	g_autoptr(GBytes) data = row->size ? g_bytes_new(row->data, row->size) : NULL;
	memdb_entry_t *e = entry_new(row->inode, row->parent, row->version, row->writer, row->mtime,
				     row->type, row->name, data);
	g_hash_table_insert(t->index, &e->inode, e);
	t->total_bytes += e->size;
	return 0;
}

/* pass 2: link every entry into its parent directory */
static int tree_link(memdb_tree_t *t, char **ret_err)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, t->index);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		memdb_entry_t *e = v;
		if (e == t->root)
			continue;
		memdb_entry_t *p = g_hash_table_lookup(t->index, &e->parent);
		if (!p) {
			*ret_err = g_strdup_printf("missing directory inode (inode = %016" PRIX64
						   ", parent of inode %016" PRIX64 " '%s')",
						   e->parent, e->inode, e->name);
			return -EUCLEAN;
		}
		if (p->type != MEMDB_TYPE_DIR) {
			*ret_err = g_strdup_printf("parent is not a directory (inode = %016" PRIX64
						   ", parent = %016" PRIX64 ", name = '%s')",
						   e->inode, e->parent, e->name);
			return -EUCLEAN;
		}
		memdb_entry_t *other = g_hash_table_lookup(p->children, e->name);
		if (other) {
			*ret_err = g_strdup_printf(
				"found entry with duplicate name '%s' - A:(inode = 0x%016" PRIX64
				", parent = 0x%016" PRIX64 ", v./mtime = 0x%" PRIX64 "/0x%" PRIX32
				") vs. B:(inode = 0x%016" PRIX64 ", parent = 0x%016" PRIX64
				", v./mtime = 0x%" PRIX64 "/0x%" PRIX32 ")",
				e->name, other->inode, other->parent, other->version, other->mtime,
				e->inode, e->parent, e->version, e->mtime);
			return -EUCLEAN;
		}
		g_hash_table_insert(p->children, e->name, e);
		e->up = p;
	}
	return 0;
}

/* pass 3: every entry reachable from the root (no cycles, no orphans) */
static int tree_check_reachable(memdb_tree_t *t, char **ret_err)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autoptr(GPtrArray) stack = g_ptr_array_new();
	g_ptr_array_add(stack, t->root);
	while (stack->len > 0) {
		memdb_entry_t *e = g_ptr_array_steal_index_fast(stack, stack->len - 1);
		g_hash_table_add(seen, &e->inode);
		if (!e->children)
			continue;
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, e->children);
		while (g_hash_table_iter_next(&it, NULL, &v))
			g_ptr_array_add(stack, v);
	}
	if (g_hash_table_size(seen) == g_hash_table_size(t->index))
		return 0;

	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, t->index);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		memdb_entry_t *e = v;
		if (!g_hash_table_contains(seen, &e->inode)) {
			*ret_err = g_strdup_printf(
				"inode is not reachable from the root, its parents form "
				"a cycle (inode = %016" PRIX64 ", parent = %016" PRIX64
				", name = '%s')",
				e->inode, e->parent, e->name);
			break;
		}
	}
	return -EUCLEAN;
}

/* pass 4: the global version covers every inode and version (core.md §2.13 #7) */
static int tree_check_versions(memdb_tree_t *t, char **ret_err)
{
	if (!t->had_version_row) {
		if (g_hash_table_size(t->index) == 1)
			return 0; /* empty database: memdb starts it at version 1 */
		*ret_err = g_strdup("the '" MEMDB_VERSION_ROW_NAME "' row (inode 0) is missing");
		return -EUCLEAN;
	}
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, t->index);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		memdb_entry_t *e = v;
		uint64_t m = MAX(e->inode, e->version);
		if (m > t->root->version) {
			*ret_err = g_strdup_printf("global version %" PRIu64
						   " is lower than the inode or "
						   "version of a row (inode = %016" PRIX64
						   ", version = %" PRIu64 ", name = '%s')",
						   t->root->version, e->inode, e->version, e->name);
			return -EUCLEAN;
		}
	}
	return 0;
}

int tree_load(db_t *db, memdb_tree_t **ret, char **ret_err)
{
	memdb_tree_t *t = tree_new_empty();
	char *err = NULL;
	int r = db_load(db, load_row, t, ret_err);
	if (r == 0 && ((r = tree_link(t, &err)) < 0 || (r = tree_check_reachable(t, &err)) < 0 ||
		       (r = tree_check_versions(t, &err)) < 0))
		*ret_err = g_strdup_printf("'%s': %s", db_path(db), err);
	g_free(err);
	if (r < 0) {
		tree_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

/* --- checksums (core.md §2.10) ------------------------------------------ */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* feed fields [inode] version writer mtime size type parent name [data] */
static void hash_entry(GChecksum *cs, const memdb_entry_t *e, bool with_inode)
{
	uint8_t b[8 + 8 + 4 + 4 + 4 + 1 + 8];
	size_t o = 0;
	if (with_inode) {
		put_le64(b + o, e->inode);
		o += 8;
	}
	put_le64(b + o, e->version);
	o += 8;
	put_le32(b + o, e->writer);
	o += 4;
	put_le32(b + o, e->mtime);
	o += 4;
	put_le32(b + o, e->size);
	o += 4;
	b[o++] = e->type;
	put_le64(b + o, e->parent);
	o += 8;
	g_checksum_update(cs, b, (gssize)o);
	g_checksum_update(cs, (const guchar *)e->name, (gssize)strlen(e->name));
	if (e->type == MEMDB_TYPE_REG && e->size > 0 && e->data)
		g_checksum_update(cs, g_bytes_get_data(e->data, NULL), e->size);
}

static void checksum_get(GChecksum *cs, uint8_t out[MEMDB_CSUM_LEN])
{
	gsize len = MEMDB_CSUM_LEN;
	g_checksum_get_digest(cs, out, &len);
}

void memdb_record_checksum(const memdb_entry_t *e, uint8_t out[MEMDB_CSUM_LEN])
{
	GChecksum *cs = g_checksum_new(G_CHECKSUM_SHA256);
	hash_entry(cs, e, true);
	checksum_get(cs, out);
	g_checksum_free(cs);
}

void entry_digest(memdb_entry_t *e)
{
	if (e->digest_valid)
		return;
	GChecksum *cs = g_checksum_new(G_CHECKSUM_SHA256);
	hash_entry(cs, e, false);
	checksum_get(cs, e->digest);
	g_checksum_free(cs);
	e->digest_valid = true;
}

static gint cmp_inode(gconstpointer a, gconstpointer b)
{
	const memdb_entry_t *x = *(memdb_entry_t *const *)a;
	const memdb_entry_t *y = *(memdb_entry_t *const *)b;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

GPtrArray *tree_sorted(memdb_tree_t *t)
{
	GPtrArray *a = g_ptr_array_sized_new(g_hash_table_size(t->index));
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, t->index);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(a, v);
	g_ptr_array_sort(a, cmp_inode);
	return a;
}

uint8_t *tree_encode_index(memdb_tree_t *t, size_t *ret_len)
{
	g_autoptr(GPtrArray) a = tree_sorted(t);
	size_t len = MEMDB_INDEX_HEADER_LEN + (size_t)MEMDB_INDEX_ENTRY_LEN * a->len;
	uint8_t *buf = g_malloc(len);
	memdb_entry_t *last = g_ptr_array_index(a, a->len - 1);
	put_le64(buf, t->root->version);
	put_le64(buf + 8, last->inode);
	put_le32(buf + 16, t->root->writer);
	put_le32(buf + 20, t->root->mtime);
	put_le32(buf + 24, a->len);
	put_le32(buf + 28, (uint32_t)len);
	uint8_t *p = buf + MEMDB_INDEX_HEADER_LEN;
	for (guint i = 0; i < a->len; i++) {
		memdb_entry_t *e = g_ptr_array_index(a, i);
		entry_digest(e);
		put_le64(p, e->inode);
		memcpy(p + 8, e->digest, MEMDB_CSUM_LEN);
		p += MEMDB_INDEX_ENTRY_LEN;
	}
	*ret_len = len;
	return buf;
}

void tree_checksum(memdb_tree_t *t, uint8_t out[MEMDB_CSUM_LEN])
{
	g_autoptr(GPtrArray) a = tree_sorted(t);
	GChecksum *cs = g_checksum_new(G_CHECKSUM_SHA256);
	for (guint i = 0; i < a->len; i++)
		hash_entry(cs, g_ptr_array_index(a, i), true);
	checksum_get(cs, out);
	g_checksum_free(cs);
}

/* --- index decoding (peer input) --------------------------------------- */

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int memdb_index_parse(const uint8_t *buf, size_t len, memdb_index_view_t *ret)
{
	if (!buf || len < MEMDB_INDEX_HEADER_LEN)
		return -EBADMSG;
	memdb_index_view_t v = {
		.version = get_le64(buf),
		.last_inode = get_le64(buf + 8),
		.writer = get_le32(buf + 16),
		.mtime = get_le32(buf + 20),
		.size = get_le32(buf + 24),
		.entries = buf + MEMDB_INDEX_HEADER_LEN,
	};
	uint32_t bytes = get_le32(buf + 28);
	if (bytes != len || v.size == 0 ||
	    (uint64_t)v.size * MEMDB_INDEX_ENTRY_LEN + MEMDB_INDEX_HEADER_LEN != len)
		return -EBADMSG;
	uint64_t prev = 0;
	for (uint32_t i = 0; i < v.size; i++) {
		uint64_t ino = memdb_index_inode(&v, i);
		if (i > 0 && ino <= prev)
			return -EBADMSG;
		prev = ino;
	}
	if (prev != v.last_inode)
		return -EBADMSG;
	*ret = v;
	return 0;
}

uint64_t memdb_index_inode(const memdb_index_view_t *v, uint32_t i)
{
	return get_le64(v->entries + (size_t)i * MEMDB_INDEX_ENTRY_LEN);
}

const uint8_t *memdb_index_digest(const memdb_index_view_t *v, uint32_t i)
{
	return v->entries + (size_t)i * MEMDB_INDEX_ENTRY_LEN + 8;
}
