/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * kvstore.c: the status group pve_kvstore_v1 (see kvstore.h).
 *
 * DESIGN
 * - Sending is fire and forget, as in the original: a key set or a log
 *   entry is applied locally first (status.c) and then multicast; no
 *   request waits for it, so a send that fails (not joined, corosync
 *   gone) only costs a debug line.  The next state exchange repairs the
 *   cluster log, and every member sends its keys again after one.
 * - Receiving: our own messages are skipped (same nodeid and pid), a
 *   sender not in the cmap nodelist is ignored by status.c, and a
 *   malformed or unknown message is logged and dropped: never a reason to
 *   leave the group (cluster.md §3.1).
 * - State exchange: the states are the members' cluster-log rings; all
 *   members are marked synced, so the engine goes straight to SYNCED, and
 *   the synced hook announces our address.
 */
#define G_LOG_DOMAIN "kvstore"
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "constants.h"
#include "dfsm-proto.h"
#include "kvstore.h"

struct kvstore {
	status_t *st;
	uint32_t nodeid, pid;
	kvstore_hooks_t hooks;
	void *ud;
	dfsm_t *dfsm;
};

static void klog(kvstore_t *kv, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void klog(kvstore_t *kv, int level, const char *fmt, ...)
{
	if (!kv->hooks.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	kv->hooks.log(kv->ud, level, msg);
}

/* --- sending ------------------------------------------------------------------ */

static void send_normal(kvstore_t *kv, uint16_t subtype, const void *payload, size_t len)
{
	int r = dfsm_send_normal(kv->dfsm, subtype, payload, len, false, NULL);
	if (r < 0)
		klog(kv, LOG_DEBUG, "not sent (type %u, %zu bytes): %s", subtype, len,
		     g_strerror(-r));
}

/* the status's kv hook: every accepted local set */
static void on_kv_set(void *data, const char *key, const void *value, size_t len)
{
	kvstore_t *kv = data;
	g_autoptr(GByteArray) a = g_byte_array_new();
	if (kvstore_update_encode(a, key, value, len) < 0) {
		klog(kv, LOG_WARNING, "cannot encode the update of '%s' (%zu bytes)", key, len);
		return;
	}
	send_normal(kv, KVSTORE_MSG_UPDATE, a->data, a->len);
}

/* the status's cluster-log hook: every entry logged here */
static void on_clog_entry(void *data, GBytes *entry)
{
	kvstore_t *kv = data;
	gsize len;
	const void *p = g_bytes_get_data(entry, &len);
	send_normal(kv, KVSTORE_MSG_LOG, p, len);
}

/* --- the engine's callbacks ------------------------------------------------------ */

static int on_send(void *ud, const struct iovec *iov, unsigned n)
{
	kvstore_t *kv = ud;
	return kv->hooks.send(kv->ud, iov, n);
}

static int on_deliver(void *ud, uint32_t nodeid, uint32_t pid, uint16_t subtype, uint32_t time,
		      const uint8_t *payload, size_t len, int *msg_result)
{
	kvstore_t *kv = ud;
	*msg_result = 0;
	if (nodeid == kv->nodeid && pid == kv->pid)
		return 0; /* applied when it was set */
	if (subtype == KVSTORE_MSG_UPDATE) {
		kvstore_update_t u;
		int r = kvstore_update_decode(payload, len, &u);
		if (r == 0)
			r = status_kv_receive(kv->st, nodeid, u.key, u.value, u.value_len);
		if (r == -ENOENT)
			klog(kv, LOG_DEBUG,
			     "update from node %u, which is not in the nodelist: "
			     "ignored",
			     nodeid);
		else if (r < 0)
			klog(kv, LOG_WARNING,
			     "malformed update from node %u/%u (%zu bytes): %s; "
			     "ignored",
			     nodeid, pid, len, g_strerror(-r));
		*msg_result = r;
	} else if (subtype == KVSTORE_MSG_LOG) {
		/* status.c logs a malformed entry */
		*msg_result = status_clog_receive(kv->st, payload, len) < 0 ? -EINVAL : 0;
	} else {
		klog(kv, LOG_WARNING, "message of unknown type %u from node %u/%u: ignored",
		     subtype, nodeid, pid);
		*msg_result = -EACCES;
	}
	return 0;
}

static void on_confchg(void *ud, const dfsm_member_t *members, size_t n)
{
	kvstore_t *kv = ud;
	g_autofree uint32_t *ids = g_new0(uint32_t, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		ids[i] = members[i].nodeid;
	status_set_online(kv->st, ids, n);
}

static GBytes *on_get_state(void *ud)
{
	kvstore_t *kv = ud;
	return status_clog_state(kv->st);
}

static int on_process_state_update(void *ud, dfsm_sync_info_t *si)
{
	kvstore_t *kv = ud;
	g_autofree GBytes **states = g_new0(GBytes *, si->n_nodes ? si->n_nodes : 1);
	size_t local = si->n_nodes;
	for (size_t i = 0; i < si->n_nodes; i++) {
		dfsm_node_t *n = &si->nodes[i];
		n->synced = true;
		if (n == si->local)
			local = i;
		else if (n->state)
			states[i] = g_bytes_new_static(n->state, n->state_len);
	}
	if (local < si->n_nodes) {
		int r = status_clog_merge(kv->st, states, si->n_nodes, local);
		if (r < 0)
			klog(kv, LOG_WARNING, "cannot merge the cluster logs: %s", g_strerror(-r));
	}
	for (size_t i = 0; i < si->n_nodes; i++)
		if (states[i])
			g_bytes_unref(states[i]);
	status_kv_local_each(kv->st, on_kv_set, kv); /* sent again */
	return 0;
}

static int on_process_update(void *ud, dfsm_sync_info_t *si, uint32_t nodeid, uint32_t pid,
			     const uint8_t *payload, size_t len)
{
	/* every member is synced, so no one sends updates: a peer that does is
	 * not following the protocol, but its data are only status */
	klog(ud, LOG_WARNING, "unexpected state update from node %u/%u: ignored", nodeid, pid);
	return 0;
}

static int on_commit(void *ud, dfsm_sync_info_t *si)
{
	return 0;
}

static void on_synced(void *ud)
{
	kvstore_t *kv = ud;
	const char *ip = status_node_ip(kv->st, status_nodename(kv->st));
	if (!ip)
		return;
	g_autofree char *copy = g_strdup(ip); /* the set replaces the stored string */
	int r = status_kv_set(kv->st, "nodeip", copy, strlen(copy) + 1);
	if (r < 0)
		klog(kv, LOG_WARNING, "cannot announce our address '%s': %s", copy, g_strerror(-r));
}

static void on_log(void *ud, int level, const char *msg)
{
	kvstore_t *kv = ud;
	if (kv->hooks.log)
		kv->hooks.log(kv->ud, level, msg);
}

/* --- life cycle ----------------------------------------------------------------- */

kvstore_t *kvstore_new(status_t *st, uint32_t nodeid, uint32_t pid, const kvstore_hooks_t *hooks,
		       void *ud)
{
	static const dfsm_callbacks_t cb = {
		.send = on_send,
		.deliver = on_deliver,
		.confchg = on_confchg,
		.get_state = on_get_state,
		.process_state_update = on_process_state_update,
		.process_update = on_process_update,
		.commit = on_commit,
		.synced = on_synced,
		.log = on_log,
	};
	kvstore_t *kv = g_new0(kvstore_t, 1);
	kv->st = st;
	kv->nodeid = nodeid;
	kv->pid = pid;
	kv->hooks = *hooks;
	kv->ud = ud;
	kv->dfsm = dfsm_new(KVSTORE_PROTOCOL_VERSION, nodeid, pid, &cb, kv);
	status_set_kv_hook(st, on_kv_set, kv);
	status_set_clog_hook(st, on_clog_entry, kv);
	return kv;
}

kvstore_t *kvstore_free(kvstore_t *kv)
{
	if (!kv)
		return NULL;
	status_set_kv_hook(kv->st, NULL, NULL);
	status_set_clog_hook(kv->st, NULL, NULL);
	kv->dfsm = dfsm_free(kv->dfsm);
	g_free(kv);
	return NULL;
}

dfsm_t *kvstore_dfsm(kvstore_t *kv)
{
	return kv->dfsm;
}
