/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * confirm.c: the bookkeeping of confirmed writes (see confirm.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "confirm.h"
#include "wire.h"

struct confirm {
	uint32_t nodeid, pid;
	/* confirming side: (nodeid << 32 | pid) -> highest count applied */
	GHashTable *applied;
	GHashTable *dirty; /* keys of `applied` changed since the last message */
	/* sending side: node id -> highest count of ours it confirmed */
	GHashTable *confirmed;
};

confirm_t *confirm_new(uint32_t nodeid, uint32_t pid)
{
	confirm_t *c = g_new0(confirm_t, 1);
	c->nodeid = nodeid;
	c->pid = pid;
	c->applied = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	c->dirty = g_hash_table_new(g_int64_hash, g_int64_equal); /* keys owned by applied */
	c->confirmed = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	return c;
}

confirm_t *confirm_free(confirm_t *c)
{
	if (!c)
		return NULL;
	g_hash_table_unref(c->dirty);
	g_hash_table_unref(c->applied);
	g_hash_table_unref(c->confirmed);
	g_free(c);
	return NULL;
}

void confirm_applied(confirm_t *c, uint32_t nodeid, uint32_t pid, uint64_t count)
{
	uint64_t k = confirm_key(nodeid, pid);
	gpointer key = NULL, value = NULL;
	if (g_hash_table_lookup_extended(c->applied, &k, &key, &value)) {
		if (*(uint64_t *)value >= count)
			return;
	} else {
		if (g_hash_table_size(c->applied) >= CONFIRM_MAX_ENTRIES) {
			/* senders that restarted leave their old pids behind:
			 * forget them all; a message goes out for each sender
			 * again as it sends */
			g_hash_table_remove_all(c->dirty);
			g_hash_table_remove_all(c->applied);
		}
		key = g_memdup2(&k, sizeof(k));
		value = g_new0(uint64_t, 1);
		g_hash_table_insert(c->applied, key, value);
	}
	*(uint64_t *)value = count;
	g_hash_table_add(c->dirty, key);
}

GBytes *confirm_take(confirm_t *c, bool all)
{
	GHashTable *which = all ? c->applied : c->dirty;
	guint n = g_hash_table_size(which);
	if (n == 0)
		return NULL;
	gsize len = CONFIRM_HEADER_LEN + (gsize)n * CONFIRM_ENTRY_LEN;
	uint8_t *buf = g_malloc(len), *p = buf + CONFIRM_HEADER_LEN;
	wire_store32(buf, CONFIRM_MAGIC);
	wire_store32(buf + 4, CONFIRM_VERSION);
	wire_store32(buf + 8, n);
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, which);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		uint64_t k = *(uint64_t *)key;
		const uint64_t *count = g_hash_table_lookup(c->applied, &k);
		wire_store32(p, (uint32_t)(k >> 32));
		wire_store32(p + 4, (uint32_t)k);
		wire_store64(p + 8, *count);
		p += CONFIRM_ENTRY_LEN;
	}
	g_hash_table_remove_all(c->dirty);
	return g_bytes_new_take(buf, len);
}

int confirm_decode(const void *msg, size_t len, confirm_entry_t **out, size_t *n_out)
{
	const uint8_t *p = msg;
	if (out)
		*out = NULL;
	if (n_out)
		*n_out = 0;
	if (!p || len < CONFIRM_HEADER_LEN || wire_le32(p) != CONFIRM_MAGIC)
		return -EINVAL;
	if (wire_le32(p + 4) != CONFIRM_VERSION)
		return -EPROTONOSUPPORT;
	uint32_t n = wire_le32(p + 8);
	if (n > CONFIRM_MAX_ENTRIES || len != CONFIRM_HEADER_LEN + (size_t)n * CONFIRM_ENTRY_LEN)
		return -EINVAL;
	if (out) {
		confirm_entry_t *e = g_new0(confirm_entry_t, n ? n : 1);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *q = p + CONFIRM_HEADER_LEN + (size_t)i * CONFIRM_ENTRY_LEN;
			e[i] = (confirm_entry_t){wire_le32(q), wire_le32(q + 4), wire_le64(q + 8)};
		}
		*out = e;
	}
	if (n_out)
		*n_out = n;
	return 0;
}

int confirm_receive(confirm_t *c, uint32_t from, const void *msg, size_t len)
{
	g_autofree confirm_entry_t *e = NULL;
	size_t n = 0;
	int r = confirm_decode(msg, len, &e, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (e[i].nodeid != c->nodeid || e[i].pid != c->pid)
			continue; /* another sender's business */
		uint64_t *have = g_hash_table_lookup(c->confirmed, GUINT_TO_POINTER(from));
		if (!have) {
			have = g_new0(uint64_t, 1);
			g_hash_table_insert(c->confirmed, GUINT_TO_POINTER(from), have);
		}
		if (e[i].count > *have)
			*have = e[i].count;
	}
	return 0;
}

uint64_t confirm_confirmed(const confirm_t *c, uint32_t nodeid)
{
	const uint64_t *have = g_hash_table_lookup(c->confirmed, GUINT_TO_POINTER(nodeid));
	return have ? *have : 0;
}

uint32_t confirm_votes(const confirm_t *c, uint64_t count, GHashTable *votes)
{
	uint32_t sum = GPOINTER_TO_UINT(g_hash_table_lookup(votes, GUINT_TO_POINTER(c->nodeid)));
	GHashTableIter it;
	gpointer key, value;
	g_hash_table_iter_init(&it, c->confirmed);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		uint32_t node = GPOINTER_TO_UINT(key);
		if (node != c->nodeid && *(uint64_t *)value >= count)
			sum += GPOINTER_TO_UINT(g_hash_table_lookup(votes, key));
	}
	return sum;
}
