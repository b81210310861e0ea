/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dcdb.c: the dcdb application of the DFSM (cluster.md §2); see dcdb.h.
 *
 * Every member applies every change in the same order with the same writer
 * and mtime, so every memdb stays identical; a joining node gets the
 * leader's entries and replaces its tree in one transaction, which must
 * give the leader's index byte for byte.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>

#include "dcdb.h"
#include "paths.h"

struct dcdb {
	memdb_t *mdb;
	dfsm_t *dfsm;
	uint32_t nodeid;
	dcdb_hooks_t hooks;
	void *ud;
	/* during a resync */
	uint8_t *leader_index;
	size_t leader_len;
	GArray *updates;    /* db_row_t, name and data owned */
	GPtrArray *buffers; /* what the rows point into */
};

static void logf_(dcdb_t *db, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void logf_(dcdb_t *db, int level, const char *fmt, ...)
{
	if (!db->hooks.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	db->hooks.log(db->ud, level, s);
}

static bool quorate(dcdb_t *db)
{
	return !db->hooks.quorate || db->hooks.quorate(db->ud);
}

/* --- applying a change (§2.4, §2.10) ----------------------------------------- */

static bool is_corosync_conf(const char *path)
{
	g_autofree char *c = path_canonical(path);
	return c && strcmp(c, "corosync.conf") == 0;
}

/* the lock directory at @path, if its record checksum is @csum */
static bool lock_matches(dcdb_t *db, const char *path, const uint8_t *csum)
{
	g_autofree char *canon = path_canonical(path);
	if (!canon || !path_is_lock_dir(canon))
		return false;
	const memdb_entry_t *e = memdb_lookup(db->mdb, canon);
	if (!e || e->type != MEMDB_TYPE_DIR)
		return false;
	uint8_t mine[MEMDB_CSUM_LEN];
	memdb_record_checksum(e, mine);
	return memcmp(mine, csum, MEMDB_CSUM_LEN) == 0;
}

static int send_unlock(dcdb_t *db, uint16_t subtype, const char *path, const uint8_t *csum)
{
	dcdb_msg_t m = {.subtype = subtype, .path = path, .csum = csum};
	g_autoptr(GByteArray) a = g_byte_array_new();
	int r = dcdb_msg_encode(a, &m);
	if (r < 0)
		return r;
	return dfsm_send_normal(db->dfsm, subtype, a->data, a->len, false, NULL);
}

static int apply(dcdb_t *db, uint32_t nodeid, uint32_t time, const dcdb_msg_t *m)
{
	memdb_t *mdb = db->mdb;
	switch (m->subtype) {
	case DCDB_MSG_WRITE:
		return memdb_write(mdb, m->path, nodeid, time, m->data, m->size, m->offset,
				   m->flags & DCDB_FLAG_TRUNCATE);
	case DCDB_MSG_CREATE:
		return memdb_create(mdb, m->path, nodeid, time);
	case DCDB_MSG_MKDIR:
		return memdb_mkdir(mdb, m->path, nodeid, time);
	case DCDB_MSG_DELETE:
		return memdb_delete(mdb, m->path, nodeid, time);
	case DCDB_MSG_RENAME:
		return memdb_rename(mdb, m->path, m->to, nodeid, time);
	case DCDB_MSG_MTIME:
		return memdb_mtime(mdb, m->path, nodeid, m->mtime);
	case DCDB_MSG_UNLOCK:
		if (lock_matches(db, m->path, m->csum))
			(void)memdb_delete(mdb, m->path, nodeid, time);
		return 0;
	case DCDB_MSG_UNLOCK_REQUEST:
		/* the lowest member decides, by its own clock */
		if (lock_matches(db, m->path, m->csum) &&
		    db->nodeid == dfsm_lowest_nodeid(db->dfsm) &&
		    memdb_lock_expired(mdb, m->path, m->csum)) {
			logf_(db, LOG_INFO, "lock %s expired: sending unlock", m->path);
			if (send_unlock(db, DCDB_MSG_UNLOCK, m->path, m->csum) < 0)
				logf_(db, LOG_WARNING, "cannot send the unlock of %s", m->path);
		}
		return 0;
	}
	return -EINVAL;
}

static int on_deliver(void *ud, uint32_t nodeid, uint32_t pid, uint16_t subtype, uint32_t time,
		      const uint8_t *payload, size_t len, int *msg_result)
{
	dcdb_t *db = ud;
	if (subtype < DCDB_MSG_WRITE || subtype > DCDB_MSG_UNLOCK) {
		logf_(db, LOG_ERR, "unknown message subtype %u from %u/%u", subtype, nodeid, pid);
		return -1;
	}
	if (!quorate(db)) {
		logf_(db, LOG_ERR, "received write while not quorate - trigger resync");
		return -1;
	}
	dcdb_msg_t m;
	int r = dcdb_msg_decode(subtype, payload, len, &m);
	if (r == -EINVAL) {
		/* well framed, but no node can apply it (a ".." component, no
		 * name): every node fails it alike, nothing changes */
		logf_(db, LOG_WARNING, "refusing a change from %u/%u that cannot apply", nodeid,
		      pid);
		*msg_result = -EACCES;
		return 1;
	}
	if (r < 0) {
		logf_(db, LOG_ERR, "malformed message (subtype %u, %zu bytes) from %u/%u: %s",
		      subtype, len, nodeid, pid, g_strerror(-r));
		return -1;
	}
	memdb_clear_db_error(db->mdb);
	r = apply(db, nodeid, time, &m);
	*msg_result = r;
	if (memdb_db_error(db->mdb)) {
		/* memdb changed nothing (memory follows the disk), but every
		 * other member applied it: this node is behind.  Leave (the
		 * restartable mode): it joins again and takes the leader's
		 * tree, which fails again while the disk is full, and works
		 * once there is space. */
		memdb_clear_db_error(db->mdb);
		logf_(db, LOG_CRIT,
		      "the database cannot be written (%s): leaving the group to resync "
		      "when it joins again",
		      g_strerror(r < 0 ? -r : EIO));
		return -1;
	}
	bool conf = r >= 0 && (((subtype == DCDB_MSG_WRITE || subtype == DCDB_MSG_CREATE) &&
				is_corosync_conf(m.path)) ||
			       (subtype == DCDB_MSG_RENAME && is_corosync_conf(m.to)));
	if (conf && db->hooks.corosync_conf_changed)
		db->hooks.corosync_conf_changed(db->ud, nodeid == db->nodeid);
	return 1;
}

/* --- state exchange and resync (§2.5-§2.8) -------------------------------- */

static GBytes *on_get_state(void *ud)
{
	dcdb_t *db = ud;
	size_t len;
	uint8_t *idx = memdb_encode_index(db->mdb, &len);
	return idx ? g_bytes_new_take(idx, len) : NULL;
}

static void resync_clear(dcdb_t *db)
{
	g_clear_pointer(&db->leader_index, g_free);
	db->leader_len = 0;
	g_array_set_size(db->updates, 0);
	g_ptr_array_set_size(db->buffers, 0);
}

/* the entries of @leader that @other lacks or has otherwise (§2.7) */
static void collect_missing(const memdb_index_view_t *leader, const memdb_index_view_t *other,
			    GHashTable *set)
{
	uint32_t j = 0;
	for (uint32_t i = 0; i < leader->size; i++) {
		uint64_t inode = memdb_index_inode(leader, i);
		while (j < other->size && memdb_index_inode(other, j) < inode)
			j++;
		if (j >= other->size || memdb_index_inode(other, j) != inode ||
		    memcmp(memdb_index_digest(leader, i), memdb_index_digest(other, j),
			   MEMDB_CSUM_LEN) != 0)
			g_hash_table_add(set, g_memdup2(&inode, sizeof(inode)));
	}
}

static gint u64_cmp(gconstpointer a, gconstpointer b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int send_updates(dcdb_t *db, dfsm_sync_info_t *si, size_t leader,
			const memdb_index_view_t *views)
{
	g_autoptr(GHashTable) set =
		g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	for (size_t i = 0; i < si->n_nodes; i++) {
		if (!si->nodes[i].synced)
			collect_missing(&views[leader], &views[i], set);
	}
	/* in inode order: the order does not matter to the receiver, but a
	 * fixed one makes runs repeatable */
	g_autoptr(GArray) inodes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &key, NULL))
		g_array_append_val(inodes, *(uint64_t *)key);
	g_array_sort(inodes, u64_cmp);
	unsigned sent = 0;
	for (guint k = 0; k < inodes->len; k++) {
		const memdb_entry_t *e = memdb_get(db->mdb, g_array_index(inodes, uint64_t, k));
		if (!e)
			continue;
		g_autoptr(GByteArray) a = g_byte_array_new();
		if (dcdb_update_encode_entry(a, e) < 0 ||
		    dfsm_send_state_msg(db->dfsm, DFSM_MSG_UPDATE, a->data, a->len) < 0) {
			logf_(db, LOG_WARNING, "cannot send the update of inode %" G_GUINT64_FORMAT,
			      e->inode);
			continue;
		}
		sent++;
	}
	logf_(db, LOG_INFO, "sent %u updates", sent);
	return dfsm_send_state_msg(db->dfsm, DFSM_MSG_UPDATE_COMPLETE, NULL, 0);
}

static int on_process_state_update(void *ud, dfsm_sync_info_t *si)
{
	dcdb_t *db = ud;
	resync_clear(db);
	g_autofree memdb_index_view_t *views = g_new0(memdb_index_view_t, si->n_nodes);
	for (size_t i = 0; i < si->n_nodes; i++) {
		if (dcdb_state_decode(si->nodes[i].state, si->nodes[i].state_len, &views[i]) < 0) {
			logf_(db, LOG_ERR, "malformed state from %u/%u", si->nodes[i].nodeid,
			      si->nodes[i].pid);
			return -1;
		}
	}
	/* highest version, then newest mtime, then the first (§2.6) */
	size_t leader = 0;
	for (size_t i = 1; i < si->n_nodes; i++) {
		if (views[i].version > views[leader].version ||
		    (views[i].version == views[leader].version &&
		     views[i].mtime > views[leader].mtime))
			leader = i;
	}
	dfsm_node_t *ln = &si->nodes[leader];
	for (size_t i = 0; i < si->n_nodes; i++) {
		dfsm_node_t *n = &si->nodes[i];
		n->synced = i == leader || (n->state_len == ln->state_len &&
					    memcmp(n->state, ln->state, n->state_len) == 0);
	}
	logf_(db, LOG_INFO, "leader is %u/%u", ln->nodeid, ln->pid);
	if (!si->local->synced) {
		db->leader_index = g_memdup2(ln->state, ln->state_len);
		db->leader_len = ln->state_len;
	}
	/* the leader always sends, UPDATE_COMPLETE even with nothing to
	 * update (§2.7); synced members ignore both */
	if (ln == si->local)
		return send_updates(db, si, leader, views) < 0 ? -1 : 0;
	return 0;
}

static int on_process_update(void *ud, dfsm_sync_info_t *si, uint32_t nodeid, uint32_t pid,
			     const uint8_t *payload, size_t len)
{
	dcdb_t *db = ud;
	dcdb_update_t u;
	if (dcdb_update_decode(payload, len, &u) < 0) {
		logf_(db, LOG_ERR, "malformed update from %u/%u", nodeid, pid);
		return -1;
	}
	/* the message goes away after this call: keep a copy */
	uint8_t *copy = g_memdup2(payload, len);
	g_ptr_array_add(db->buffers, copy);
	db_row_t row = {.inode = u.inode,
			.parent = u.parent,
			.version = u.version,
			.writer = u.writer,
			.mtime = u.mtime,
			.type = u.type,
			.name = (const char *)copy + ((const uint8_t *)u.name - payload),
			.data = u.data ? copy + (u.data - payload) : NULL,
			.size = u.size};
	g_array_append_val(db->updates, row);
	return 0;
}

static int on_commit(void *ud, dfsm_sync_info_t *si)
{
	dcdb_t *db = ud;
	if (!db->leader_index) {
		logf_(db, LOG_ERR, "update complete without a leader index");
		return -1;
	}
	g_autofree char *err = NULL;
	int r = memdb_replace_tree(db->mdb, db->leader_index, db->leader_len,
				   (const db_row_t *)(void *)db->updates->data, db->updates->len,
				   &err);
	if (r < 0) {
		logf_(db, LOG_CRIT, "cannot take the leader's tree: %s",
		      err ? err : g_strerror(-r));
		resync_clear(db);
		return -1;
	}
	logf_(db, LOG_INFO, "took the leader's tree (%u entries sent)", db->updates->len);
	resync_clear(db);
	if (db->hooks.corosync_conf_changed)
		db->hooks.corosync_conf_changed(db->ud, false);
	return 0;
}

static int on_checksum(void *ud, uint8_t csum[MEMDB_CSUM_LEN])
{
	dcdb_t *db = ud;
	memdb_tree_checksum(db->mdb, csum);
	return 0;
}

static void on_cleanup(void *ud, dfsm_sync_info_t *si)
{
	(void)si;
	resync_clear(ud);
}

static int on_send(void *ud, const struct iovec *iov, unsigned n)
{
	dcdb_t *db = ud;
	return db->hooks.send(db->ud, iov, n);
}

static void on_result(void *ud, uint64_t count, bool processed, int msg_result)
{
	dcdb_t *db = ud;
	if (db->hooks.result)
		db->hooks.result(db->ud, count, processed ? msg_result : -EBUSY);
}

static void on_applied(void *ud, uint32_t nodeid, uint32_t pid, uint64_t count)
{
	dcdb_t *db = ud;
	if (db->hooks.applied)
		db->hooks.applied(db->ud, nodeid, pid, count);
}

static void on_log(void *ud, int level, const char *msg)
{
	dcdb_t *db = ud;
	if (db->hooks.log)
		db->hooks.log(db->ud, level, msg);
}

int dcdb_update_encode_entry(GByteArray *out, const memdb_entry_t *e)
{
	gsize dlen = 0;
	const void *data = e->data ? g_bytes_get_data(e->data, &dlen) : NULL;
	dcdb_update_t u = {.parent = e->parent,
			   .inode = e->inode,
			   .version = e->version,
			   .writer = e->writer,
			   .mtime = e->mtime,
			   .size = e->type == MEMDB_TYPE_REG ? e->size : 0,
			   .type = e->type,
			   .name = e->name,
			   .data = e->type == MEMDB_TYPE_REG && dlen ? data : NULL};
	return dcdb_update_encode(out, &u);
}

/* --- the sender side (§2.3) ---------------------------------------------------- */

int dcdb_send(dcdb_t *db, const dcdb_msg_t *m, uint64_t *ret_count)
{
	if (!quorate(db))
		return -EACCES;
	g_autoptr(GByteArray) a = g_byte_array_new();
	int r = dcdb_msg_encode(a, m);
	if (r < 0)
		return r;
	return dfsm_send_normal(db->dfsm, m->subtype, a->data, a->len, true, ret_count);
}

int dcdb_send_unlock_request(dcdb_t *db, const char *path, const uint8_t csum[MEMDB_CSUM_LEN])
{
	if (!quorate(db))
		return 0;
	return send_unlock(db, DCDB_MSG_UNLOCK_REQUEST, path, csum);
}

/* --- life cycle ----------------------------------------------------------------- */

dcdb_t *dcdb_new(memdb_t *mdb, uint32_t nodeid, uint32_t pid, const dcdb_hooks_t *hooks, void *ud)
{
	static const dfsm_callbacks_t cb = {
		.send = on_send,
		.deliver = on_deliver,
		.get_state = on_get_state,
		.process_state_update = on_process_state_update,
		.process_update = on_process_update,
		.commit = on_commit,
		.checksum = on_checksum,
		.cleanup = on_cleanup,
		.result = on_result,
		.applied = on_applied,
		.log = on_log,
	};
	dcdb_t *db = g_new0(dcdb_t, 1);
	db->mdb = mdb;
	db->nodeid = nodeid;
	db->hooks = *hooks;
	db->ud = ud;
	db->updates = g_array_new(FALSE, FALSE, sizeof(db_row_t));
	db->buffers = g_ptr_array_new_with_free_func(g_free);
	db->dfsm = dfsm_new(DCDB_PROTOCOL_VERSION, nodeid, pid, &cb, db);
	return db;
}

dcdb_t *dcdb_free(dcdb_t *db)
{
	if (!db)
		return NULL;
	db->dfsm = dfsm_free(db->dfsm); /* its cleanup clears the resync */
	g_array_unref(db->updates);
	g_ptr_array_unref(db->buffers);
	g_free(db);
	return NULL;
}

dfsm_t *dcdb_dfsm(dcdb_t *db)
{
	return db->dfsm;
}
