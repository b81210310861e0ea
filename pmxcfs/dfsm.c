/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dfsm.c: the DFSM engine (cluster.md §1): modes, epochs, the state
 * exchange, the queues and their delivery order, verification, and the
 * local results of our own messages.  See dfsm.h.
 *
 * Every step follows the order of §1.7 and §1.8, because the order is what
 * keeps every node's tree identical: NORMAL messages apply in CPG's agreed
 * order; queued ones apply sorted by their sender's counter (ties in arrival
 * order); after a join every member resends its own queued messages, byte
 * for byte, and drops the queue.  One rule is ours: a message from a member
 * that has not got the leader's tree yet waits for UPDATE_COMPLETE on every
 * node, as it does on that member (the original applies it at once where it
 * is synced, so the trees can differ at the same version).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "dfsm.h"

typedef struct queued {
	uint32_t nodeid;
	uint32_t pid;
	uint64_t count;
	uint8_t *msg; /* the whole message, header included */
	size_t len;
} queued_t;

struct dfsm {
	dfsm_callbacks_t cb;
	void *ud;
	uint32_t protocol_version;
	uint32_t nodeid;
	uint32_t pid;
	dfsm_mode_t mode;
	bool we_are_member;
	uint32_t lowest_nodeid;
	bool have_sync_info;
	dfsm_sync_info_t si;
	dfsm_epoch_t sync_epoch;
	uint32_t local_epoch_counter;
	GQueue msg_queue;  /* queued_t, sorted by count (stable) */
	GQueue sync_queue; /* queued_t, arrival order */
	uint64_t msgcount;
	GHashTable *pending; /* counts whose result is wanted */
	dfsm_epoch_t csum_epoch;
	uint64_t csum_id;
	uint64_t csum_counter;
	uint8_t csum[MEMDB_CSUM_LEN];
};

static void logf_(dfsm_t *d, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void logf_(dfsm_t *d, int level, const char *fmt, ...)
{
	if (!d->cb.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	d->cb.log(d->ud, level, s);
}

static void queued_free(gpointer p)
{
	queued_t *q = p;
	g_free(q->msg);
	g_free(q);
}

/* --- modes (§1.5) ------------------------------------------------------------ */

static void set_mode(dfsm_t *d, dfsm_mode_t m)
{
	if (m == d->mode)
		return;
	if (DFSM_MODE_IS_ERROR(m) && DFSM_MODE_IS_ERROR(d->mode) && m < d->mode)
		return; /* errors only escalate */
	dfsm_mode_t old = d->mode;
	d->mode = m;
	logf_(d, LOG_DEBUG, "mode %d -> %d", old, m);
	if (m == DFSM_MODE_SYNCED && d->cb.synced)
		d->cb.synced(d->ud);
}

static void clear_states(dfsm_t *d)
{
	for (size_t i = 0; i < d->si.n_nodes; i++) {
		g_clear_pointer(&d->si.nodes[i].state, g_free);
		d->si.nodes[i].state_len = 0;
	}
}

static void free_states(dfsm_t *d)
{
	if (!d->have_sync_info)
		return;
	if (d->cb.cleanup)
		d->cb.cleanup(d->ud, &d->si);
	clear_states(d);
}

static void leave(dfsm_t *d)
{
	set_mode(d, DFSM_MODE_LEAVE);
	free_states(d);
}

/* --- results of our own messages (§1.11) ------------------------------------- */

static void abort_pending_upto(dfsm_t *d, uint64_t upto)
{
	GHashTableIter it;
	gpointer key;
	g_autoptr(GArray) lost = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_hash_table_iter_init(&it, d->pending);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		uint64_t c = *(uint64_t *)key;
		if (c <= upto) {
			g_array_append_val(lost, c);
			g_hash_table_iter_remove(&it);
		}
	}
	for (guint i = 0; i < lost->len; i++) {
		if (d->cb.result)
			d->cb.result(d->ud, g_array_index(lost, uint64_t, i), false, -1);
	}
}

static void record_result(dfsm_t *d, uint64_t count, int res, int msg_result)
{
	/* earlier messages of ours that never came are lost */
	if (count > 0)
		abort_pending_upto(d, count - 1);
	if (g_hash_table_remove(d->pending, &count) && d->cb.result)
		d->cb.result(d->ud, count, res != 0, msg_result);
}

/* --- membership --------------------------------------------------------------- */

static dfsm_node_t *find_node(dfsm_t *d, uint32_t nodeid, uint32_t pid)
{
	for (size_t i = 0; i < d->si.n_nodes; i++) {
		if (d->si.nodes[i].nodeid == nodeid && d->si.nodes[i].pid == pid)
			return &d->si.nodes[i];
	}
	return NULL;
}

static bool sender_synced(dfsm_t *d, uint32_t nodeid, uint32_t pid)
{
	dfsm_node_t *n = find_node(d, nodeid, pid);
	return n && n->synced;
}

static void mark_all_synced(dfsm_t *d)
{
	for (size_t i = 0; i < d->si.n_nodes; i++)
		d->si.nodes[i].synced = true;
}

static int node_cmp(const void *a, const void *b)
{
	const dfsm_node_t *x = a, *y = b;
	if (x->nodeid != y->nodeid)
		return x->nodeid < y->nodeid ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return 0;
}

/* --- sending ------------------------------------------------------------------ */

static int send_state(dfsm_t *d, uint16_t type, const void *payload, size_t len)
{
	dfsm_msg_t m = {.type = type,
			.protocol_version = d->protocol_version,
			.time = (uint32_t)time(NULL),
			.epoch = d->sync_epoch};
	uint8_t hdr[DFSM_STATE_HEADER_LEN];
	int hl = dfsm_header_encode(&m, hdr);
	if (hl < 0)
		return hl;
	struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)payload, len}};
	return d->cb.send(d->ud, iov, len ? 2 : 1);
}

int dfsm_send_state_msg(dfsm_t *d, uint16_t type, const void *payload, size_t len)
{
	if (type != DFSM_MSG_UPDATE && type != DFSM_MSG_UPDATE_COMPLETE)
		return -EINVAL;
	return send_state(d, type, payload, len);
}

int dfsm_send_normal(dfsm_t *d, uint16_t subtype, const void *payload, size_t len, bool want_result,
		     uint64_t *ret_count)
{
	if (DFSM_MODE_IS_ERROR(d->mode))
		return -ENOTCONN;
	uint64_t count = ++d->msgcount;
	dfsm_msg_t m = {.type = DFSM_MSG_NORMAL,
			.subtype = subtype,
			.protocol_version = d->protocol_version,
			.time = (uint32_t)time(NULL),
			.count = count};
	uint8_t hdr[DFSM_STATE_HEADER_LEN];
	int hl = dfsm_header_encode(&m, hdr);
	if (hl < 0)
		return hl;
	if (want_result) {
		uint64_t *k = g_new(uint64_t, 1);
		*k = count;
		g_hash_table_add(d->pending, k);
	}
	struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)payload, len}};
	int r = d->cb.send(d->ud, iov, len ? 2 : 1);
	if (r < 0) {
		g_hash_table_remove(d->pending, &count);
		return r;
	}
	if (ret_count)
		*ret_count = count;
	return 0;
}

/* --- delivery ----------------------------------------------------------------- */

static void deliver_normal(dfsm_t *d, uint32_t nodeid, uint32_t pid, const dfsm_msg_t *m)
{
	int msg_result = -1;
	int res = d->cb.deliver(d->ud, nodeid, pid, m->subtype, m->time, m->payload, m->payload_len,
				&msg_result);
	if (nodeid == d->nodeid && pid == d->pid)
		record_result(d, m->count, res, msg_result);
	else if (res > 0 && d->cb.applied)
		d->cb.applied(d->ud, nodeid, pid, m->count);
	if (res < 0) {
		logf_(d, LOG_ERR, "applying a message from %u/%u failed: leaving", nodeid, pid);
		leave(d);
	}
}

static void queue_sorted(dfsm_t *d, queued_t *q)
{
	/* after the last entry whose count is not greater: stable */
	GList *l = d->msg_queue.tail;
	while (l && ((queued_t *)l->data)->count > q->count)
		l = l->prev;
	if (l)
		g_queue_insert_after(&d->msg_queue, l, q);
	else
		g_queue_push_head(&d->msg_queue, q);
}

static void deliver_msg_queue(dfsm_t *d)
{
	GList *l = d->msg_queue.head;
	while (l) {
		GList *next = l->next;
		queued_t *q = l->data;
		if (!find_node(d, q->nodeid, q->pid)) {
			g_queue_delete_link(&d->msg_queue, l);
			queued_free(q);
		} else if (d->mode == DFSM_MODE_SYNCED) {
			if (sender_synced(d, q->nodeid, q->pid)) {
				g_queue_delete_link(&d->msg_queue, l);
				dfsm_msg_t m;
				if (dfsm_msg_decode(q->msg, q->len, &m) == 0)
					deliver_normal(d, q->nodeid, q->pid, &m);
				queued_free(q);
			}
		} else if (d->mode == DFSM_MODE_UPDATE) {
			if (sender_synced(d, q->nodeid, q->pid)) {
				g_queue_delete_link(&d->msg_queue, l);
				g_queue_push_tail(&d->sync_queue, q);
			}
		} else {
			return;
		}
		l = next;
	}
}

static void deliver_sync_queue(dfsm_t *d)
{
	queued_t *q;
	while ((q = g_queue_pop_head(&d->sync_queue))) {
		dfsm_msg_t m;
		if (d->mode == DFSM_MODE_SYNCED && dfsm_msg_decode(q->msg, q->len, &m) == 0)
			deliver_normal(d, q->nodeid, q->pid, &m);
		queued_free(q);
	}
}

/* every member's state is here: let the app choose (§1.8, START_SYNC) */
static void states_complete(dfsm_t *d)
{
	if (d->cb.process_state_update(d->ud, &d->si) < 0) {
		logf_(d, LOG_ERR, "processing the states failed: leaving");
		leave(d);
		return;
	}
	if (d->si.local && d->si.local->synced) {
		set_mode(d, DFSM_MODE_SYNCED);
		free_states(d);
		deliver_msg_queue(d);
	} else {
		set_mode(d, DFSM_MODE_UPDATE);
		deliver_msg_queue(d);
	}
}

static void on_state_msg(dfsm_t *d, uint32_t nodeid, uint32_t pid, const dfsm_msg_t *m)
{
	bool from_us = nodeid == d->nodeid && pid == d->pid;
	switch (d->mode) {
	case DFSM_MODE_SYNCED:
		if (m->type == DFSM_MSG_UPDATE_COMPLETE) {
			mark_all_synced(d);
			deliver_msg_queue(d);
		} else if (m->type == DFSM_MSG_VERIFY_REQUEST) {
			uint64_t id;
			if (dfsm_verify_request_decode(m->payload, m->payload_len, &id) < 0) {
				logf_(d, LOG_ERR,
				      "a verify request of %zu bytes from %u/%u (not %u): leaving",
				      m->payload_len, nodeid, pid, DFSM_VERIFY_REQUEST_LEN);
				leave(d);
				return;
			}
			if (!d->cb.checksum)
				return;
			if (d->cb.checksum(d->ud, d->csum) < 0) {
				logf_(d, LOG_ERR, "cannot compute the checksum: leaving");
				leave(d);
				return;
			}
			d->csum_epoch = m->epoch;
			d->csum_id = id;
			if (from_us) {
				uint8_t v[DFSM_VERIFY_LEN];
				dfsm_verify_encode(v, id, d->csum);
				if (send_state(d, DFSM_MSG_VERIFY, v, sizeof(v)) < 0)
					leave(d);
			}
		} else if (m->type == DFSM_MSG_VERIFY) {
			if (!d->cb.checksum)
				return;
			uint64_t id;
			const uint8_t *theirs;
			if (dfsm_verify_decode(m->payload, m->payload_len, &id, &theirs) < 0) {
				logf_(d, LOG_ERR,
				      "a checksum of %zu bytes from %u/%u (not %u): leaving",
				      m->payload_len, nodeid, pid, DFSM_VERIFY_LEN);
				leave(d);
				return;
			}
			if (id == d->csum_id && dfsm_epoch_equal(&m->epoch, &d->csum_epoch)) {
				if (memcmp(theirs, d->csum, MEMDB_CSUM_LEN) != 0) {
					logf_(d, LOG_CRIT,
					      "wrong checksum %" G_GUINT64_FORMAT
					      " from %u/%u - restarting",
					      id, nodeid, pid);
					leave(d);
				} else {
					logf_(d, LOG_INFO, "data verification successful");
				}
			} else {
				logf_(d, LOG_INFO, "skip verification - no checksum saved");
			}
		}
		/* SYNC_START, STATE, UPDATE and others: ignored */
		return;

	case DFSM_MODE_START_SYNC:
		if (m->type == DFSM_MSG_SYNC_START) {
			if (nodeid != d->lowest_nodeid)
				logf_(d, LOG_CRIT, "SYNC_START from %u, not the lowest node %u",
				      nodeid, d->lowest_nodeid);
			d->sync_epoch = m->epoch;
			clear_states(d);
			GBytes *st = d->cb.get_state(d->ud);
			gsize n = 0;
			const void *data = st ? g_bytes_get_data(st, &n) : NULL;
			int r = n ? send_state(d, DFSM_MSG_STATE, data, n) : -ENODATA;
			if (st)
				g_bytes_unref(st);
			if (r < 0) {
				logf_(d, LOG_ERR, "cannot send our state: leaving");
				leave(d);
			}
		} else if (m->type == DFSM_MSG_STATE) {
			dfsm_node_t *n = find_node(d, nodeid, pid);
			if (!n || n->state) {
				logf_(d, LOG_ERR, "%s state from %u/%u: leaving",
				      n ? "a second" : "a non-member's", nodeid, pid);
				leave(d);
				return;
			}
			/* never NULL, so an empty state counts as received */
			n->state = g_malloc(m->payload_len + 1);
			if (m->payload_len)
				memcpy(n->state, m->payload, m->payload_len);
			n->state_len = m->payload_len;
			for (size_t i = 0; i < d->si.n_nodes; i++) {
				if (!d->si.nodes[i].state)
					return;
			}
			states_complete(d);
		} else if (m->type != DFSM_MSG_VERIFY_REQUEST && m->type != DFSM_MSG_VERIFY) {
			logf_(d, LOG_ERR, "unknown state message type %u: leaving", m->type);
			leave(d);
		}
		return;

	case DFSM_MODE_UPDATE:
		if (m->type == DFSM_MSG_UPDATE) {
			if (d->cb.process_update(d->ud, &d->si, nodeid, pid, m->payload,
						 m->payload_len) < 0) {
				logf_(d, LOG_ERR, "processing an update failed: leaving");
				leave(d);
			}
		} else if (m->type == DFSM_MSG_UPDATE_COMPLETE) {
			if (d->cb.commit(d->ud, &d->si) < 0) {
				logf_(d, LOG_ERR, "committing the updates failed: leaving");
				leave(d);
				return;
			}
			mark_all_synced(d);
			set_mode(d, DFSM_MODE_SYNCED);
			deliver_sync_queue(d);
			deliver_msg_queue(d);
			free_states(d);
		} else if (m->type != DFSM_MSG_VERIFY_REQUEST && m->type != DFSM_MSG_VERIFY) {
			logf_(d, LOG_ERR, "unknown state message type %u: leaving", m->type);
			leave(d);
		}
		return;

	default:
		logf_(d, LOG_ERR, "internal error - unknown mode %d: leaving", d->mode);
		leave(d);
		return;
	}
}

void dfsm_deliver(dfsm_t *d, uint32_t nodeid, uint32_t pid, const uint8_t *msg, size_t len)
{
	if (DFSM_MODE_IS_ERROR(d->mode)) {
		free_states(d);
		return;
	}
	if (!d->have_sync_info) {
		logf_(d, LOG_ERR, "internal error - a message before any membership: leaving");
		leave(d);
		return;
	}
	dfsm_msg_t m;
	if (dfsm_base_decode(msg, len, &m) < 0) {
		logf_(d, LOG_ERR, "a message of %zu bytes from %u/%u is too short: leaving", len,
		      nodeid, pid);
		leave(d);
		return;
	}
	switch (dfsm_version_check(m.protocol_version, d->protocol_version)) {
	case DFSM_VERSION_NEWER:
		logf_(d, LOG_CRIT, "detected newer protocol %u from %u/%u - please upgrade",
		      m.protocol_version, nodeid, pid);
		set_mode(d, DFSM_MODE_VERSION_ERROR);
		free_states(d);
		return;
	case DFSM_VERSION_IGNORE:
		logf_(d, LOG_INFO, "ignoring a message of older protocol %u from %u/%u",
		      m.protocol_version, nodeid, pid);
		return;
	case DFSM_VERSION_OK:
		break;
	}
	int r = dfsm_msg_decode(msg, len, &m);
	if (r == -EMSGSIZE) {
		logf_(d, LOG_ERR, "a message of type %u from %u/%u is shorter than its header",
		      m.type, nodeid, pid);
		leave(d);
		return;
	}

	if (m.type == DFSM_MSG_NORMAL) {
		/* a member that is still taking the leader's tree applies what
		 * it sent meanwhile after the update (its own queue), so every
		 * other member waits for UPDATE_COMPLETE too: applied at once
		 * here, it would land elsewhere in the order than there, and
		 * the trees would differ at the same version */
		if (d->mode == DFSM_MODE_SYNCED && sender_synced(d, nodeid, pid)) {
			deliver_normal(d, nodeid, pid, &m);
			return;
		}
		if (!find_node(d, nodeid, pid)) {
			logf_(d, LOG_ERR, "a message from non-member %u/%u: leaving", nodeid, pid);
			leave(d);
			return;
		}
		queued_t *q = g_new0(queued_t, 1);
		q->nodeid = nodeid;
		q->pid = pid;
		q->count = m.count;
		q->msg = g_memdup2(msg, len);
		q->len = len;
		if (d->mode == DFSM_MODE_UPDATE && sender_synced(d, nodeid, pid))
			g_queue_push_tail(&d->sync_queue, q);
		else
			queue_sorted(d, q);
		return;
	}

	/* state messages: those of another configuration vanish here */
	if (m.type != DFSM_MSG_SYNC_START && !dfsm_epoch_equal(&m.epoch, &d->sync_epoch))
		return;
	on_state_msg(d, nodeid, pid, &m);
}

void dfsm_confchg(dfsm_t *d, const dfsm_member_t *members, size_t n, size_t n_joined)
{
	d->we_are_member = false;
	d->local_epoch_counter++;
	d->sync_epoch =
		(dfsm_epoch_t){d->local_epoch_counter, (uint32_t)time(NULL), d->nodeid, d->pid};
	d->csum_id = d->csum_counter;
	memset(&d->csum_epoch, 0, sizeof(d->csum_epoch));
	g_queue_clear_full(&d->sync_queue, queued_free);
	if (DFSM_MODE_IS_ERROR(d->mode))
		return;

	d->lowest_nodeid = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || members[i].nodeid < d->lowest_nodeid)
			d->lowest_nodeid = members[i].nodeid;
		if (members[i].nodeid == d->nodeid && members[i].pid == d->pid)
			d->we_are_member = true;
	}

	/* the member list alone counts (join and leave lists may differ
	 * between nodes) */
	free_states(d);
	g_free(d->si.nodes);
	d->si.nodes = g_new0(dfsm_node_t, n ? n : 1);
	d->si.n_nodes = n;
	for (size_t i = 0; i < n; i++) {
		d->si.nodes[i].nodeid = members[i].nodeid;
		d->si.nodes[i].pid = members[i].pid;
	}
	qsort(d->si.nodes, n, sizeof(dfsm_node_t), node_cmp);
	d->si.local = find_node(d, d->nodeid, d->pid);
	d->have_sync_info = true;

	if (!d->we_are_member) {
		if (d->mode == DFSM_MODE_START)
			return; /* our own join has not shown yet */
		logf_(d, LOG_NOTICE, "we (%u/%u) left the process group", d->nodeid, d->pid);
		leave(d);
		return;
	}

	if (n > 1) {
		if (n_joined > 0 && d->msg_queue.length > 0) {
			/* our queued messages again, byte for byte; then
			 * every member drops its queue */
			for (GList *l = d->msg_queue.head; l; l = l->next) {
				queued_t *q = l->data;
				if (q->nodeid != d->nodeid || q->pid != d->pid)
					continue;
				struct iovec iov = {q->msg, q->len};
				if (d->cb.send(d->ud, &iov, 1) < 0) {
					logf_(d, LOG_ERR, "cannot resend queued messages: leaving");
					g_queue_clear_full(&d->msg_queue, queued_free);
					leave(d);
					return;
				}
			}
			g_queue_clear_full(&d->msg_queue, queued_free);
		}
		set_mode(d, DFSM_MODE_START_SYNC);
		if (d->lowest_nodeid == d->nodeid &&
		    send_state(d, DFSM_MSG_SYNC_START, NULL, 0) < 0) {
			logf_(d, LOG_ERR, "cannot send SYNC_START: leaving");
			leave(d);
			return;
		}
	} else {
		set_mode(d, DFSM_MODE_SYNCED);
		if (d->si.local)
			d->si.local->synced = true;
		deliver_msg_queue(d);
	}
	if (d->cb.confchg)
		d->cb.confchg(d->ud, members, n);
}

void dfsm_verify_tick(dfsm_t *d)
{
	if (d->nodeid != d->lowest_nodeid || d->mode != DFSM_MODE_SYNCED)
		return;
	if (d->csum_counter != d->csum_id) {
		logf_(d, LOG_INFO, "delay verify request %" G_GUINT64_FORMAT, d->csum_counter + 1);
		return;
	}
	d->csum_counter++;
	uint8_t p[DFSM_VERIFY_REQUEST_LEN];
	dfsm_verify_request_encode(p, d->csum_counter);
	if (send_state(d, DFSM_MSG_VERIFY_REQUEST, p, sizeof(p)) < 0)
		logf_(d, LOG_WARNING, "cannot send the verify request");
}

/* --- life cycle --------------------------------------------------------------- */

dfsm_t *dfsm_new(uint32_t protocol_version, uint32_t nodeid, uint32_t pid,
		 const dfsm_callbacks_t *cb, void *ud)
{
	dfsm_t *d = g_new0(dfsm_t, 1);
	d->cb = *cb;
	d->ud = ud;
	d->protocol_version = protocol_version;
	d->nodeid = nodeid;
	d->pid = pid;
	d->mode = DFSM_MODE_START;
	g_queue_init(&d->msg_queue);
	g_queue_init(&d->sync_queue);
	d->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	return d;
}

int dfsm_restart(dfsm_t *d)
{
	if (d->mode == DFSM_MODE_ERROR || d->mode == DFSM_MODE_VERSION_ERROR)
		return -EPERM;
	g_queue_clear_full(&d->msg_queue, queued_free);
	g_queue_clear_full(&d->sync_queue, queued_free);
	abort_pending_upto(d, UINT64_MAX);
	free_states(d);
	d->have_sync_info = false;
	set_mode(d, DFSM_MODE_START);
	return 0;
}

dfsm_t *dfsm_free(dfsm_t *d)
{
	if (!d)
		return NULL;
	g_queue_clear_full(&d->msg_queue, queued_free);
	g_queue_clear_full(&d->sync_queue, queued_free);
	abort_pending_upto(d, UINT64_MAX);
	free_states(d);
	g_hash_table_unref(d->pending);
	g_free(d->si.nodes);
	g_free(d);
	return NULL;
}

void dfsm_leave(dfsm_t *d)
{
	logf_(d, LOG_WARNING, "leaving the process group");
	leave(d);
	abort_pending_upto(d, UINT64_MAX);
}

void dfsm_abort_results(dfsm_t *d)
{
	abort_pending_upto(d, UINT64_MAX);
}

void dfsm_set_error(dfsm_t *d)
{
	set_mode(d, DFSM_MODE_ERROR);
	free_states(d);
}

dfsm_mode_t dfsm_mode(const dfsm_t *d)
{
	return d->mode;
}

bool dfsm_is_member(const dfsm_t *d)
{
	return d->we_are_member;
}

uint32_t dfsm_lowest_nodeid(const dfsm_t *d)
{
	return d->lowest_nodeid;
}

size_t dfsm_queued(const dfsm_t *d)
{
	return d->msg_queue.length + d->sync_queue.length;
}
