/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * locks.c: the lock table of priv/lock (core.md §2.9).
 *
 * A cluster lock is a directory priv/lock/<name>.  Each node remembers, per
 * lock, the checksum of the lock's record and the (monotonic, local) time it
 * first saw the lock in that state.  A lock is expired when its state has
 * not changed for the lock timeout; only then may an unlock request remove
 * it.  Times are local to each node and never read from the tree, so clock
 * skew between nodes does not matter.
 *
 * Fix over the original: a rebuild (after a load or a cluster sync) keeps
 * the age of every lock whose checksum did not change, instead of restarting
 * every timer.
 */
#include "config.h"

#include <string.h>

#include "memdb-internal.h"
#include "paths.h"

typedef struct lock_state {
	uint64_t since;
	uint8_t csum[MEMDB_CSUM_LEN];
} lock_state_t;

struct locktable {
	GHashTable *locks; /* path (owned) -> lock_state_t* (owned) */
};

locktable_t *locktable_new(void)
{
	locktable_t *lt = g_new0(locktable_t, 1);
	lt->locks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return lt;
}

locktable_t *locktable_free(locktable_t *lt)
{
	if (!lt)
		return NULL;
	g_hash_table_unref(lt->locks);
	g_free(lt);
	return NULL;
}

void locktable_set(locktable_t *lt, const char *path, const uint8_t csum[MEMDB_CSUM_LEN],
		   uint64_t now)
{
	lock_state_t *s = g_new0(lock_state_t, 1);
	s->since = now;
	memcpy(s->csum, csum, MEMDB_CSUM_LEN);
	g_hash_table_replace(lt->locks, g_strdup(path), s);
}

void locktable_remove(locktable_t *lt, const char *path)
{
	g_hash_table_remove(lt->locks, path);
}

bool locktable_expired(locktable_t *lt, const char *path, const uint8_t csum[MEMDB_CSUM_LEN],
		       uint64_t now, uint32_t timeout)
{
	lock_state_t *s = g_hash_table_lookup(lt->locks, path);
	if (!s) {
		locktable_set(lt, path, csum, now);
		return false;
	}
	if (memcmp(s->csum, csum, MEMDB_CSUM_LEN) != 0) {
		memcpy(s->csum, csum, MEMDB_CSUM_LEN);
		s->since = now;
		return false;
	}
	return now > s->since && now - s->since > timeout;
}

void locktable_rebuild(locktable_t *lt, memdb_tree_t *t, uint64_t now)
{
	GHashTable *old = lt->locks;
	lt->locks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	const memdb_entry_t *priv = g_hash_table_lookup(t->root->children, "priv");
	const memdb_entry_t *dir =
		priv && priv->children ? g_hash_table_lookup(priv->children, "lock") : NULL;
	if (dir && dir->children) {
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, dir->children);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			const memdb_entry_t *e = v;
			if (e->type != MEMDB_TYPE_DIR)
				continue;
			g_autofree char *path = g_strdup_printf(MEMDB_LOCK_DIR "/%s", e->name);
			uint8_t csum[MEMDB_CSUM_LEN];
			memdb_record_checksum(e, csum);
			const lock_state_t *prev = g_hash_table_lookup(old, path);
			bool same = prev && memcmp(prev->csum, csum, MEMDB_CSUM_LEN) == 0;
			locktable_set(lt, path, csum, same ? prev->since : now);
		}
	}
	g_hash_table_unref(old);
}

size_t locktable_count(locktable_t *lt)
{
	return g_hash_table_size(lt->locks);
}
