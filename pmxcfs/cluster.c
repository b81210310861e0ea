/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cluster.c: corosync glue for cluster mode (see cluster.h).
 *
 * DESIGN
 * - Three kinds of service, as in the original (cluster.md §1.14, §5, §6):
 *   quorum, cmap, and one CPG group per DFSM application: the tree (dcdb,
 *   pve_dcdb_v1) and the status (kvstore, pve_kvstore_v1).  Each
 *   connects from a start job that runs every second and retries a failed
 *   or lost connection; each connected service is an fd source in the main
 *   loop, dispatched with CS_DISPATCH_ALL.  Nothing waits on corosync: a
 *   TRY_AGAIN from dispatch is simply tried again when the fd is readable.
 * - Sending.  The engine's `send` goes to cpg_mcast_joined at once when
 *   nothing is queued; when corosync answers TRY_AGAIN (flow control, a
 *   membership change) the message is copied to a queue that a timer
 *   retries in order, so the loop keeps serving reads meanwhile.  If the
 *   head of the queue cannot go out within the bound (send_bound_ms, the
 *   original tries for 10 s, but never less than a membership change may
 *   take: bound_read), the queue is dropped and the group left: every waiting
 *   request gets -EBUSY, and the node resyncs when it rejoins.  Messages
 *   are never reordered, and none is sent twice.
 * - Error modes.  After each dispatch the engine's mode is checked: in an
 *   error mode the group is left (cpg_leave), waiting requests are answered
 *   at once (-EBUSY), and a LEAVE-mode engine is restarted and joins again
 *   after rejoin_delay seconds (the original's "more than 5 s"); ERROR and
 *   VERSION_ERROR stay out for good.  The rejoin first tries the same
 *   CPG handle; corosync 3.1 answers "exists" there after our leave, and
 *   then the handle is dropped and the start job connects anew, as after
 *   a lost connection (corosync died), which also aborts what waits.
 * - Each application is created once the node id is known (its group's
 *   first connection), and kept: its engine is restarted on each rejoin.
 *   The two groups are independent: one can be out while the other runs.
 * - corosync.conf (§2.11) is copied from the tree to the host file when its
 *   config_version is newer: at start, after a change to it (corosync is
 *   told to reload only when the change was ours) and after a resync.
 */
#define G_LOG_DOMAIN "cluster"
#include "config.h"

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cluster.h"
#include "confirm.h"
#include "constants.h"
#include "dcdb.h"
#include "kvstore.h"

#define START_JOB_MS    1000
#define SEND_RETRY_MS   10
#define VERIFY_SECONDS  3600
#define CONF_RELOAD_MS  1000
#define DEFAULT_REJOIN  5
#define DEFAULT_BOUNDMS 10000
#define WATCHDOG_MS     1000

typedef struct cpg_svc cpg_svc_t;

struct cpg_svc {
	cluster_t *cl;
	const char *group;
	struct cpg_name name;
	cpg_handle_t handle;
	bool have_handle;
	bool joined;  /* cpg_join succeeded, no cpg_leave since */
	bool failing; /* the last connection attempt failed (log once) */
	guint fd_src;
	guint rejoin_src;
	dfsm_t *dfsm;    /* the application's engine (set on connect) */
	uint32_t nodeid; /* the node id it was made for */
	/* the application: make its engine for @nodeid, or find the one it
	 * has (unless @renew: the node id changed, start afresh) */
	dfsm_t *(*connected)(cpg_svc_t *svc, uint32_t nodeid, bool renew);
	void (*members)(cpg_svc_t *svc, const struct cpg_address *m, size_t n);
	GQueue sendq; /* GBytes not yet accepted by corosync */
	gint64 sendq_since;
	guint send_src;
	gint64 last_progress; /* monotonic time corosync last delivered to us */
	gint64 wait_since;    /* when the oldest of the waiting requests came */
	bool stalled;         /* left because corosync stalled: cpg_leave waits */
};

/* The group of confirmed writes (confirm.h): a plain CPG group, no engine. */
typedef struct confirm_svc {
	struct cpg_name name;
	cpg_handle_t handle;
	bool have_handle, joined, failing;
	guint fd_src, send_src;
	bool resend_all;    /* the last message did not go out: all again */
	GArray *members;    /* dfsm_member_t: the group now */
	GHashTable *seen;   /* (nodeid << 32 | pid) of daemons seen in the group */
	gint64 last_reject; /* monotonic time of the last malformed message logged */
} confirm_svc_t;

struct cluster {
	memdb_t *mdb;
	status_t *st;
	cluster_options_t opts;
	dcdb_t *dcdb;
	kvstore_t *kvstore;
	GHashTable *waiters; /* count -> waiter_t */
	unsigned n_applied;  /* waiters applied here, waiting for confirmation */
	confirm_t *confirm;  /* for the dcdb engine's identity (NULL before) */
	confirm_svc_t confirm_svc;
	GArray *dcdb_addrs; /* dfsm_member_t: the pve_dcdb_v1 members */
	cpg_svc_t dcdb_svc;
	cpg_svc_t kvstore_svc;
	/* quorum */
	quorum_handle_t qh;
	bool have_qh, q_failing;
	guint q_src;
	/* cmap */
	cmap_handle_t ch;
	bool have_ch, c_failing, c_changes;
	GHashTable *votes; /* nodeid -> votes, from the cmap nodelist */
	uint32_t need;     /* votes a group needs for writes (0: no nodelist) */
	unsigned bound_ms; /* how long corosync may deliver nothing (see bound_read) */
	guint c_src;
	guint start_src, verify_src, reload_src, watchdog_src;
};

typedef struct waiter {
	cluster_done_fn done;
	void *data;
	uint64_t count;
	bool applied; /* applied here with `result`; waits for a quorum's word */
	int result;
	gint64 applied_at; /* monotonic */
} waiter_t;

static const char *cs_str(cs_error_t e)
{
	switch (e) {
	case CS_OK:
		return "ok";
	case CS_ERR_LIBRARY:
		return "cannot connect to corosync (library)";
	case CS_ERR_TRY_AGAIN:
		return "try again";
	case CS_ERR_BAD_HANDLE:
		return "bad handle";
	case CS_ERR_ACCESS:
		return "access denied";
	case CS_ERR_NOT_EXIST:
		return "does not exist";
	case CS_ERR_EXIST:
		return "exists";
	case CS_ERR_NO_MEMORY:
		return "no memory";
	default:
		return "corosync error";
	}
}

/* --- CPG services ------------------------------------------------------------- */

static void svc_disconnect(cpg_svc_t *svc);

static void sendq_clear(cpg_svc_t *svc)
{
	g_queue_clear_full(&svc->sendq, (GDestroyNotify)g_bytes_unref);
	if (svc->send_src) {
		g_source_remove(svc->send_src);
		svc->send_src = 0;
	}
}

static void svc_leave(cpg_svc_t *svc)
{
	sendq_clear(svc);
	if (!svc->joined)
		return;
	cs_error_t r = cpg_leave(svc->handle, &svc->name);
	if (r != CS_OK)
		g_warning("%s: cpg_leave failed: %s", svc->group, cs_str(r));
	svc->joined = false;
}

static void svc_check_mode(cpg_svc_t *svc);

/* the queued messages, in order; false when the timer is done */
static gboolean sendq_flush(gpointer data)
{
	cpg_svc_t *svc = data;
	while (!g_queue_is_empty(&svc->sendq)) {
		GBytes *b = g_queue_peek_head(&svc->sendq);
		gsize len;
		struct iovec iov = {(void *)g_bytes_get_data(b, &len), 0};
		iov.iov_len = len;
		cs_error_t r = cpg_mcast_joined(svc->handle, CPG_TYPE_AGREED, &iov, 1);
		if (r == CS_OK) {
			g_bytes_unref(g_queue_pop_head(&svc->sendq));
			svc->sendq_since = g_get_monotonic_time();
			continue;
		}
		gint64 waited = (g_get_monotonic_time() - svc->sendq_since) / 1000;
		if (r == CS_ERR_TRY_AGAIN && waited < svc->cl->bound_ms)
			return G_SOURCE_CONTINUE;
		g_critical("%s: cpg_send_message failed after %" G_GINT64_FORMAT " ms: %s; leaving "
			   "the group",
			   svc->group, waited, cs_str(r));
		svc->send_src = 0;
		sendq_clear(svc);
		svc->stalled = true; /* corosync may not be reading at all */
		if (svc->dfsm)
			dfsm_leave(svc->dfsm);
		svc_check_mode(svc);
		return G_SOURCE_REMOVE;
	}
	svc->send_src = 0;
	return G_SOURCE_REMOVE;
}

static int svc_send(cpg_svc_t *svc, const struct iovec *iov, unsigned n)
{
	if (!svc->have_handle || !svc->joined)
		return -ENOTCONN;
	if (g_queue_is_empty(&svc->sendq)) {
		cs_error_t r = cpg_mcast_joined(svc->handle, CPG_TYPE_AGREED, iov, n);
		if (r == CS_OK)
			return 0;
		if (r != CS_ERR_TRY_AGAIN) {
			g_warning("%s: cpg_send_message failed: %s", svc->group, cs_str(r));
			return -ECOMM;
		}
		svc->sendq_since = g_get_monotonic_time();
	}
	GByteArray *a = g_byte_array_new();
	for (unsigned i = 0; i < n; i++)
		g_byte_array_append(a, iov[i].iov_base, (guint)iov[i].iov_len);
	g_queue_push_tail(&svc->sendq, g_byte_array_free_to_bytes(a));
	if (!svc->send_src)
		svc->send_src = g_timeout_add(SEND_RETRY_MS, sendq_flush, svc);
	return 0;
}

static gboolean svc_rejoin(gpointer data);

/* After each dispatch: an engine in an error mode leaves the group. */
static void svc_check_mode(cpg_svc_t *svc)
{
	if (!svc->dfsm)
		return;
	dfsm_mode_t mode = dfsm_mode(svc->dfsm);
	if (!DFSM_MODE_IS_ERROR(mode))
		return;
	if (svc->joined) {
		dfsm_abort_results(svc->dfsm);
		if (svc->stalled)
			return; /* cpg_leave would wait for corosync: at its next sign of life */
		svc_leave(svc);
		if (mode == DFSM_MODE_LEAVE) {
			g_message("%s: left the group; joining again in %u s", svc->group,
				  svc->cl->opts.rejoin_delay);
			if (!svc->rejoin_src)
				svc->rejoin_src = g_timeout_add_seconds(svc->cl->opts.rejoin_delay,
									svc_rejoin, svc);
		} else {
			g_critical("%s: left the group for good (mode %d): restart the daemon",
				   svc->group, mode);
		}
	}
}

static int svc_join(cpg_svc_t *svc)
{
	cs_error_t r = cpg_join(svc->handle, &svc->name);
	if (r == CS_ERR_TRY_AGAIN)
		return -EAGAIN;
	if (r == CS_ERR_EXIST) {
		/* after a cpg_leave, corosync 3.1 keeps answering "exists" on
		 * that connection (retrying for 5 s did not help): a new one */
		g_message("%s: corosync still counts us in after our leave; joining through a "
			  "new connection",
			  svc->group);
		return -ECOMM;
	}
	if (r != CS_OK) {
		g_warning("%s: cpg_join failed: %s", svc->group, cs_str(r));
		return -ECOMM;
	}
	svc->joined = true;
	svc->last_progress = g_get_monotonic_time();
	g_debug("%s: joined", svc->group);
	return 0;
}

static gboolean svc_rejoin(gpointer data)
{
	cpg_svc_t *svc = data;
	if (!svc->have_handle || !svc->dfsm) {
		svc->rejoin_src = 0;
		return G_SOURCE_REMOVE; /* the start job connects anew */
	}
	if (!svc->joined) {
		if (dfsm_restart(svc->dfsm) < 0) {
			svc->rejoin_src = 0;
			return G_SOURCE_REMOVE;
		}
		int r = svc_join(svc);
		if (r == -EAGAIN)
			return G_SOURCE_CONTINUE; /* the timer tries again */
		if (r < 0) {
			svc_disconnect(svc);
			svc->rejoin_src = 0;
			return G_SOURCE_REMOVE;
		}
	}
	svc->rejoin_src = 0;
	return G_SOURCE_REMOVE;
}

static void on_cpg_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
			   uint32_t pid, void *msg, size_t len)
{
	void *ctx = NULL;
	cpg_context_get(h, &ctx);
	cpg_svc_t *svc = ctx;
	if (!svc || !svc->dfsm || !dfsm_group_name_is(group->length, group->value, svc->group))
		return;
	svc->last_progress = g_get_monotonic_time();
	dfsm_deliver(svc->dfsm, nodeid, pid, msg, len);
}

static void quorum_refresh(cluster_t *cl);

static void on_cpg_confchg(cpg_handle_t h, const struct cpg_name *group,
			   const struct cpg_address *members, size_t n,
			   const struct cpg_address *left, size_t n_left,
			   const struct cpg_address *joined, size_t n_joined)
{
	void *ctx = NULL;
	cpg_context_get(h, &ctx);
	cpg_svc_t *svc = ctx;
	if (!svc || !svc->dfsm || !dfsm_group_name_is(group->length, group->value, svc->group))
		return;
	g_autofree dfsm_member_t *m = g_new0(dfsm_member_t, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		m[i] = (dfsm_member_t){members[i].nodeid, members[i].pid};
	svc->last_progress = g_get_monotonic_time();
	g_message("%s: members: %zu (%zu joined, %zu left)", svc->group, n, n_joined, n_left);
	quorum_refresh(svc->cl);
	if (svc->members)
		svc->members(svc, members, n);
	dfsm_confchg(svc->dfsm, m, n, n_joined);
}

static void confirm_flush(cluster_t *cl);

static gboolean on_svc_fd(gint fd, GIOCondition cond, gpointer data)
{
	cpg_svc_t *svc = data;
	cs_error_t r = cpg_dispatch(svc->handle, CS_DISPATCH_ALL);
	if (svc == &svc->cl->dcdb_svc)
		confirm_flush(svc->cl); /* one word for what this batch applied */
	if (r == CS_OK || r == CS_ERR_TRY_AGAIN) {
		if (svc->stalled) {
			g_message("%s: corosync answers again", svc->group);
			svc->stalled = false;
		}
		svc_check_mode(svc);
		return G_SOURCE_CONTINUE;
	}
	g_warning("%s: cpg_dispatch failed: %s; reconnecting", svc->group, cs_str(r));
	svc->fd_src = 0;
	svc_disconnect(svc);
	return G_SOURCE_REMOVE;
}

/* Drop the connection: what waits gets -EBUSY; the start job reconnects. */
static void svc_disconnect(cpg_svc_t *svc)
{
	sendq_clear(svc);
	if (svc->rejoin_src) {
		g_source_remove(svc->rejoin_src);
		svc->rejoin_src = 0;
	}
	if (svc->fd_src) {
		g_source_remove(svc->fd_src);
		svc->fd_src = 0;
	}
	if (svc->have_handle) {
		if (svc->joined && !svc->stalled)
			(void)cpg_leave(svc->handle, &svc->name);
		cpg_finalize(svc->handle);
	}
	svc->have_handle = false;
	svc->joined = false;
	svc->stalled = false;
	if (svc->members)
		svc->members(svc, NULL, 0); /* in no group now */
	if (svc->dfsm && dfsm_restart(svc->dfsm) < 0)
		dfsm_abort_results(svc->dfsm);
}

/* A CPG connection with @ctx as its context, and its fd; false (logged
 * once while *failing) when corosync does not take it. */
static bool cpg_open(const char *group, cpg_handle_t *h, cpg_deliver_fn_t deliver,
		     cpg_confchg_fn_t confchg, void *ctx, int *fd, bool *failing)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = deliver,
		.cpg_confchg_fn = confchg,
	};
	cs_error_t r = cpg_model_initialize(h, CPG_MODEL_V1, (cpg_model_data_t *)&model, ctx);
	if (r == CS_OK && (r = cpg_fd_get(*h, fd)) != CS_OK)
		cpg_finalize(*h);
	if (r != CS_OK) {
		if (!*failing)
			g_warning(
				"%s: cannot connect to corosync's CPG: %s (retrying every second)",
				group, cs_str(r));
		*failing = true;
	}
	return r == CS_OK;
}

static void svc_connect(cpg_svc_t *svc)
{
	if (svc->have_handle)
		return;
	int fd = -1;
	if (!cpg_open(svc->group, &svc->handle, on_cpg_deliver, on_cpg_confchg, svc, &fd,
		      &svc->failing))
		return;
	svc->have_handle = true;
	uint32_t nodeid = 0;
	cs_error_t r = cpg_local_get(svc->handle, &nodeid);
	if (r != CS_OK) {
		g_warning("%s: cannot get the node id: %s", svc->group, cs_str(r));
		svc_disconnect(svc);
		svc->failing = true;
		return;
	}
	bool renew = svc->dfsm && svc->nodeid != nodeid;
	if (renew)
		g_warning("%s: the node id changed from %u to %u", svc->group, svc->nodeid, nodeid);
	svc->nodeid = nodeid;
	svc->dfsm = svc->connected(svc, nodeid, renew);
	if (!svc->dfsm || dfsm_restart(svc->dfsm) < 0) {
		g_critical("%s: the engine cannot start again (an earlier fatal error)",
			   svc->group);
		cpg_finalize(svc->handle);
		svc->have_handle = false;
		return;
	}
	if (svc_join(svc) < 0) {
		/* TRY_AGAIN: the rejoin timer tries until it works */
		if (!svc->have_handle)
			return;
		if (!svc->rejoin_src)
			svc->rejoin_src = g_timeout_add(100, svc_rejoin, svc);
	}
	svc->fd_src = g_unix_fd_add(fd, G_IO_IN | G_IO_ERR | G_IO_HUP, on_svc_fd, svc);
	if (svc->failing)
		g_message("%s: connected to corosync", svc->group);
	svc->failing = false;
	g_message("%s: node id %u, joining", svc->group, nodeid);
}

/* --- dcdb ------------------------------------------------------------------- */

static int dcdb_hook_send(void *ud, const struct iovec *iov, unsigned n)
{
	cluster_t *cl = ud;
	return svc_send(&cl->dcdb_svc, iov, n);
}

static bool dcdb_hook_quorate(void *ud)
{
	cluster_t *cl = ud;
	return status_quorate(cl->st);
}

/* Answer the request of our change @count, if one waits. */
static void waiter_answer(cluster_t *cl, uint64_t count, int result)
{
	gpointer key = NULL, p = NULL;
	if (!g_hash_table_steal_extended(cl->waiters, &count, &key, &p))
		return;
	waiter_t *w = p;
	if (w->applied)
		cl->n_applied--;
	g_free(key);
	w->done(w->data, result);
	g_free(w);
}

static bool confirm_possible(cluster_t *cl);
static void confirm_check(cluster_t *cl);

/* Our change was applied here (or never will be).  An applied change is
 * answered once a quorum confirmed it (confirm.h), unless none can. */
static void dcdb_hook_result(void *ud, uint64_t count, int result)
{
	cluster_t *cl = ud;
	waiter_t *w = g_hash_table_lookup(cl->waiters, &count);
	if (!w || w->applied)
		return;
	if (result < 0 || !confirm_possible(cl)) {
		waiter_answer(cl, count, result);
		return;
	}
	w->applied = true;
	w->result = result;
	w->applied_at = g_get_monotonic_time();
	cl->n_applied++;
	confirm_check(cl);
}

static void dcdb_hook_applied(void *ud, uint32_t nodeid, uint32_t pid, uint64_t count)
{
	cluster_t *cl = ud;
	if (cl->confirm)
		confirm_applied(cl->confirm, nodeid, pid, count);
}

static void conf_sync(cluster_t *cl, bool notify);

static void dcdb_hook_conf(void *ud, bool ours)
{
	conf_sync(ud, ours);
}

/* an application's log line (syslog level) into GLib's log, under @domain */
static void app_log(const char *domain, int level, const char *msg)
{
	GLogLevelFlags f = level <= LOG_ERR       ? G_LOG_LEVEL_CRITICAL
			   : level <= LOG_WARNING ? G_LOG_LEVEL_WARNING
			   : level <= LOG_INFO    ? G_LOG_LEVEL_MESSAGE
						  : G_LOG_LEVEL_DEBUG;
	g_log(domain, f, "%s", msg);
}

static void dcdb_hook_log(void *ud, int level, const char *msg)
{
	app_log("dcdb", level, msg);
}

static dfsm_t *dcdb_connected(cpg_svc_t *svc, uint32_t nodeid, bool renew)
{
	cluster_t *cl = svc->cl;
	if (renew)
		cl->dcdb = dcdb_free(cl->dcdb);
	if (renew || !cl->confirm) {
		confirm_free(cl->confirm);
		cl->confirm = confirm_new(nodeid, (uint32_t)getpid());
	}
	if (!cl->dcdb) {
		static const dcdb_hooks_t hooks = {
			.send = dcdb_hook_send,
			.quorate = dcdb_hook_quorate,
			.result = dcdb_hook_result,
			.applied = dcdb_hook_applied,
			.corosync_conf_changed = dcdb_hook_conf,
			.log = dcdb_hook_log,
		};
		cl->dcdb = dcdb_new(cl->mdb, nodeid, (uint32_t)getpid(), &hooks, cl);
	}
	return dcdb_dfsm(cl->dcdb);
}

/* --- kvstore (§3) ------------------------------------------------------------------ */

static int kvstore_hook_send(void *ud, const struct iovec *iov, unsigned n)
{
	cluster_t *cl = ud;
	return svc_send(&cl->kvstore_svc, iov, n);
}

static void kvstore_hook_log(void *ud, int level, const char *msg)
{
	app_log("kvstore", level, msg);
}

static dfsm_t *kvstore_connected(cpg_svc_t *svc, uint32_t nodeid, bool renew)
{
	cluster_t *cl = svc->cl;
	if (renew)
		cl->kvstore = kvstore_free(cl->kvstore);
	if (!cl->kvstore) {
		static const kvstore_hooks_t hooks = {
			.send = kvstore_hook_send,
			.log = kvstore_hook_log,
		};
		cl->kvstore = kvstore_new(cl->st, nodeid, (uint32_t)getpid(), &hooks, cl);
	}
	return kvstore_dfsm(cl->kvstore);
}

/* "online" is membership of the status group (§3.4); when we are in no
 * group (corosync gone) no node is known to be online */
static void kvstore_members(cpg_svc_t *svc, const struct cpg_address *m, size_t n)
{
	if (n == 0)
		status_set_online(svc->cl->st, NULL, 0);
}

/* A change is answered when this node applies it, so a local corosync
 * that takes messages but delivers nothing (stopped, stuck) would park
 * requests for ever, and a parked create holds its directory's lock in
 * the kernel, so every lookup there waits too.  When changes wait and
 * nothing at all was delivered for the bound, the engine leaves
 * (mode LEAVE): the waiting requests get EBUSY (their messages may still
 * be applied later: EBUSY means "not known"), new ones get EBUSY at once,
 * and the group is left and joined again, with a resync, once corosync
 * answers; cpg_leave is not called before that, because the library waits
 * for corosync's reply without a time limit. */
static gboolean on_watchdog(gpointer data)
{
	cluster_t *cl = data;
	cpg_svc_t *svc = &cl->dcdb_svc;
	confirm_check(cl); /* confirmations that took too long */
	unsigned waiting = g_hash_table_size(cl->waiters) - cl->n_applied;
	if (!svc->joined || svc->stalled || !svc->dfsm || waiting == 0 ||
	    DFSM_MODE_IS_ERROR(dfsm_mode(svc->dfsm)))
		return G_SOURCE_CONTINUE;
	/* from the last delivery, or from when the oldest request came if
	 * that was later: an idle cluster delivers nothing either */
	gint64 quiet = (g_get_monotonic_time() - MAX(svc->last_progress, svc->wait_since)) / 1000;
	if (quiet < cl->bound_ms)
		return G_SOURCE_CONTINUE;
	g_critical("%s: corosync delivered nothing for %" G_GINT64_FORMAT
		   " ms while %u changes wait: answering them EBUSY and leaving the group",
		   svc->group, quiet, waiting);
	svc->stalled = true;
	sendq_clear(svc);
	dfsm_leave(svc->dfsm);
	svc_check_mode(svc);
	return G_SOURCE_CONTINUE;
}

static gboolean on_verify(gpointer data)
{
	cluster_t *cl = data;
	if (cl->dcdb && cl->dcdb_svc.joined)
		dfsm_verify_tick(dcdb_dfsm(cl->dcdb));
	return G_SOURCE_CONTINUE;
}

/* Do the daemons in pve_dcdb_v1 hold a quorum of votes themselves?
 * corosync's quorum counts corosyncs: a daemon alone in the group beside
 * running corosyncs is quorate by that count, and what it writes alone is
 * lost when a node with a newer database joins and leads the state
 * exchange (the fault suite saw it after kill -9 of all daemons and in
 * flapping partitions).  So writes also need the group's own quorum. */
static uint32_t member_votes(cluster_t *cl, bool seen_only);

static bool group_quorate(cluster_t *cl)
{
	if (cl->need == 0)
		return true; /* no nodelist read (yet): corosync's quorum alone */
	return member_votes(cl, false) >= cl->need;
}

/* After a change of the group or of the votes it needs: the filesystem's
 * modes and EACCES follow status_writable(), so it is told of a change. */
static void group_update(cluster_t *cl)
{
	bool q = group_quorate(cl);
	bool was = status_writable(cl->st);
	if (q != status_group_quorate(cl->st))
		g_message(q ? "the daemons in %s hold a quorum of votes: writes allowed"
			    : "the daemons in %s hold no quorum of votes: writes refused",
			  cl->dcdb_svc.group);
	status_set_group_quorate(cl->st, q);
	if (status_writable(cl->st) != was && cl->opts.quorum_changed)
		cl->opts.quorum_changed(cl->opts.data, status_quorate(cl->st));
	confirm_check(cl);
}

static void confirm_prune(cluster_t *cl);

/* the members of pve_dcdb_v1 (with their pids: the confirm group names
 * daemons, not nodes) */
static void dcdb_members(cpg_svc_t *svc, const struct cpg_address *m, size_t n)
{
	cluster_t *cl = svc->cl;
	g_array_set_size(cl->dcdb_addrs, 0);
	for (size_t i = 0; i < n; i++) {
		dfsm_member_t a = {m[i].nodeid, m[i].pid};
		g_array_append_val(cl->dcdb_addrs, a);
	}
	confirm_prune(cl);
	group_update(cl);
}

int cluster_submit(cluster_t *cl, const dcdb_msg_t *m, cluster_done_fn done, void *data)
{
	if (!cl->dcdb) /* not connected yet: dcdb_send checks quorum */
		return status_quorate(cl->st) ? -EBUSY : -EACCES;
	if (!status_group_quorate(cl->st)) /* kept by group_update */
		return -EACCES;
	uint64_t count = 0;
	int r = dcdb_send(cl->dcdb, m, &count);
	if (r < 0)
		return r == -EACCES ? r : -EBUSY;
	waiter_t *w = g_new0(waiter_t, 1);
	w->done = done;
	w->data = data;
	w->count = count;
	uint64_t *key = g_new(uint64_t, 1);
	*key = count;
	if (g_hash_table_size(cl->waiters) == cl->n_applied)
		cl->dcdb_svc.wait_since = g_get_monotonic_time();
	g_hash_table_insert(cl->waiters, key, w);
	return 0;
}

int cluster_unlock_request(cluster_t *cl, const char *path, const uint8_t csum[MEMDB_CSUM_LEN])
{
	if (!cl->dcdb)
		return -EBUSY;
	return dcdb_send_unlock_request(cl->dcdb, path, csum);
}

unsigned cluster_outstanding(cluster_t *cl)
{
	return g_hash_table_size(cl->waiters);
}

/* --- confirmed writes (confirm.h) ------------------------------------------------ */

static bool addr_in(const GArray *a, uint32_t nodeid, uint32_t pid)
{
	for (guint i = 0; i < a->len; i++) {
		const dfsm_member_t *m = &g_array_index(a, dfsm_member_t, i);
		if (m->nodeid == nodeid && m->pid == pid)
			return true;
	}
	return false;
}

/* Forget daemons that are neither in pve_dcdb_v1 nor in the confirm group. */
static void confirm_prune(cluster_t *cl)
{
	confirm_svc_t *cs = &cl->confirm_svc;
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, cs->seen);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		uint64_t k = *(uint64_t *)key;
		uint32_t nodeid = (uint32_t)(k >> 32), pid = (uint32_t)k;
		if (!addr_in(cl->dcdb_addrs, nodeid, pid) && !addr_in(cs->members, nodeid, pid))
			g_hash_table_iter_remove(&it);
	}
}

/* Does member @m count for member_votes()? */
static bool member_counts(cluster_t *cl, const dfsm_member_t *m, bool seen_only)
{
	uint64_t k = confirm_key(m->nodeid, m->pid);
	return !seen_only || m->nodeid == cl->dcdb_svc.nodeid ||
	       g_hash_table_contains(cl->confirm_svc.seen, &k);
}

/* The votes of the nodes in pve_dcdb_v1, each node once (a node may run
 * two daemons briefly); with @seen_only, only of the daemons seen in the
 * confirm group, and always this node's (it applied what it asks about). */
static uint32_t member_votes(cluster_t *cl, bool seen_only)
{
	uint32_t self = cl->dcdb_svc.nodeid, have = 0;
	bool self_counted = false;
	const GArray *a = cl->dcdb_addrs;
	for (guint i = 0; i < a->len; i++) {
		const dfsm_member_t *m = &g_array_index(a, dfsm_member_t, i);
		bool dup = false;
		for (guint j = 0; j < i && !dup; j++) {
			const dfsm_member_t *o = &g_array_index(a, dfsm_member_t, j);
			dup = o->nodeid == m->nodeid && member_counts(cl, o, seen_only);
		}
		if (dup || !member_counts(cl, m, seen_only))
			continue;
		self_counted |= m->nodeid == self;
		have += GPOINTER_TO_UINT(
			g_hash_table_lookup(cl->votes, GUINT_TO_POINTER(m->nodeid)));
	}
	if (seen_only && !self_counted)
		have += GPOINTER_TO_UINT(g_hash_table_lookup(cl->votes, GUINT_TO_POINTER(self)));
	return have;
}

/* Can a quorum confirm our changes?  Only our daemons confirm: when we and
 * the members of pve_dcdb_v1 that were seen in the confirm group hold no
 * quorum of votes (original nodes make up the rest, or we are not in the
 * confirm group), a change is answered once it is applied here, as the
 * original answers it.  A member that left the confirm group but not
 * pve_dcdb_v1 still counts, so a partition seen first in the confirm group
 * does not look like a cluster of original nodes. */
static bool confirm_possible(cluster_t *cl)
{
	if (!cl->confirm || !cl->confirm_svc.joined || cl->need == 0)
		return false;
	return member_votes(cl, true) >= cl->need;
}

/* Answer what a quorum now holds, and what it never will: a node cut off
 * (not writable) before the word came, or no word within the bound, gets
 * EBUSY ("not known": the change may or may not be kept). */
static void confirm_check(cluster_t *cl)
{
	if (cl->n_applied == 0)
		return;
	bool writable = status_writable(cl->st);
	bool possible = confirm_possible(cl);
	gint64 now = g_get_monotonic_time();
	g_autoptr(GArray) answers = g_array_new(FALSE, FALSE, sizeof(int64_t) * 2);
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, cl->waiters);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		waiter_t *w = value;
		if (!w->applied)
			continue;
		int64_t a[2] = {(int64_t)w->count, w->result};
		gint64 waited = (now - w->applied_at) / 1000;
		if (!writable) {
			g_warning(
				"change %" G_GUINT64_FORMAT " was applied here, but this node lost "
				"its quorum before a quorum confirmed it: answering EBUSY (it may "
				"or may not be kept)",
				w->count);
			a[1] = -EBUSY;
		} else if (cl->confirm &&
			   confirm_votes(cl->confirm, w->count, cl->votes) >= cl->need) {
			/* a quorum holds it */
		} else if (!cl->confirm_svc.joined) {
			g_warning("change %" G_GUINT64_FORMAT " was applied here, but the "
				  "connection to %s was lost before a quorum confirmed it: "
				  "answering EBUSY (it may or may not be kept)",
				  w->count, CONFIRM_GROUP_NAME);
			a[1] = -EBUSY;
		} else if (!possible) {
			g_debug("change %" G_GUINT64_FORMAT " answered unconfirmed: the daemons "
				"that confirm hold no quorum of votes",
				w->count);
		} else if (waited >= cl->bound_ms) {
			g_warning("change %" G_GUINT64_FORMAT " was applied here, but no quorum "
				  "confirmed it within %" G_GINT64_FORMAT
				  " ms: answering EBUSY (it "
				  "may or may not be kept)",
				  w->count, waited);
			a[1] = -EBUSY;
		} else {
			continue;
		}
		g_array_append_vals(answers, a, 1);
	}
	for (guint i = 0; i < answers->len; i++) {
		const int64_t *a = &g_array_index(answers, int64_t, 2 * i);
		waiter_answer(cl, (uint64_t)a[0], (int)a[1]);
	}
}

static gboolean on_confirm_retry(gpointer data)
{
	cluster_t *cl = data;
	cl->confirm_svc.send_src = 0;
	confirm_flush(cl);
	return G_SOURCE_REMOVE;
}

/* Multicast our word on what was applied since the last one. */
static void confirm_flush(cluster_t *cl)
{
	confirm_svc_t *cs = &cl->confirm_svc;
	if (!cl->confirm || !cs->joined || cs->send_src)
		return;
	g_autoptr(GBytes) b = confirm_take(cl->confirm, cs->resend_all);
	if (!b)
		return;
	gsize len;
	struct iovec iov = {(void *)g_bytes_get_data(b, &len), 0};
	iov.iov_len = len;
	cs_error_t r = cpg_mcast_joined(cs->handle, CPG_TYPE_AGREED, &iov, 1);
	if (r == CS_OK) {
		cs->resend_all = false;
		return;
	}
	cs->resend_all = true; /* what this message said goes in the next one */
	if (r != CS_ERR_TRY_AGAIN)
		g_warning("%s: cpg_send_message failed: %s", CONFIRM_GROUP_NAME, cs_str(r));
	cs->send_src = g_timeout_add(SEND_RETRY_MS, on_confirm_retry, cl);
}

static void on_confirm_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
			       uint32_t pid, void *msg, size_t len)
{
	void *ctx = NULL;
	cpg_context_get(h, &ctx);
	cluster_t *cl = ctx;
	if (!cl || !cl->confirm || (nodeid == cl->dcdb_svc.nodeid && pid == (uint32_t)getpid()))
		return;
	int r = confirm_receive(cl->confirm, nodeid, msg, len);
	if (r < 0) {
		gint64 now = g_get_monotonic_time();
		if (now - cl->confirm_svc.last_reject > 10 * G_USEC_PER_SEC) {
			g_warning("%s: ignoring a message from %u/%u (%zu bytes): %s",
				  CONFIRM_GROUP_NAME, nodeid, pid, len, g_strerror(-r));
			cl->confirm_svc.last_reject = now;
		}
		return;
	}
	confirm_check(cl);
}

static void on_confirm_confchg(cpg_handle_t h, const struct cpg_name *group,
			       const struct cpg_address *members, size_t n,
			       const struct cpg_address *left, size_t n_left,
			       const struct cpg_address *joined, size_t n_joined)
{
	void *ctx = NULL;
	cpg_context_get(h, &ctx);
	cluster_t *cl = ctx;
	if (!cl)
		return;
	confirm_svc_t *cs = &cl->confirm_svc;
	g_array_set_size(cs->members, 0);
	for (size_t i = 0; i < n; i++) {
		dfsm_member_t a = {members[i].nodeid, members[i].pid};
		g_array_append_val(cs->members, a);
		uint64_t k = confirm_key(a.nodeid, a.pid);
		g_hash_table_add(cs->seen, g_memdup2(&k, sizeof(k)));
	}
	g_debug("%s: members: %zu (%zu joined, %zu left)", CONFIRM_GROUP_NAME, n, n_joined, n_left);
	confirm_prune(cl);
	confirm_check(cl);
}

static void confirm_disconnect(cluster_t *cl)
{
	confirm_svc_t *cs = &cl->confirm_svc;
	if (cs->send_src) {
		g_source_remove(cs->send_src);
		cs->send_src = 0;
	}
	if (cs->fd_src) {
		g_source_remove(cs->fd_src);
		cs->fd_src = 0;
	}
	if (cs->have_handle)
		cpg_finalize(cs->handle); /* leaves the group; no reply awaited */
	cs->have_handle = cs->joined = false;
	g_array_set_size(cs->members, 0);
	confirm_prune(cl);
	confirm_check(cl);
}

static gboolean on_confirm_fd(gint fd, GIOCondition cond, gpointer data)
{
	cluster_t *cl = data;
	cs_error_t r = cpg_dispatch(cl->confirm_svc.handle, CS_DISPATCH_ALL);
	if (r == CS_OK || r == CS_ERR_TRY_AGAIN)
		return G_SOURCE_CONTINUE;
	g_warning("%s: cpg_dispatch failed: %s; reconnecting", CONFIRM_GROUP_NAME, cs_str(r));
	cl->confirm_svc.fd_src = 0;
	confirm_disconnect(cl);
	return G_SOURCE_REMOVE;
}

/* From the start job, before pve_dcdb_v1: a peer sees us here before it
 * sees our first change. */
static void confirm_connect(cluster_t *cl)
{
	confirm_svc_t *cs = &cl->confirm_svc;
	if (!cs->have_handle) {
		int fd = -1;
		if (!cpg_open(CONFIRM_GROUP_NAME, &cs->handle, on_confirm_deliver,
			      on_confirm_confchg, cl, &fd, &cs->failing))
			return;
		cs->have_handle = true;
		cs->fd_src = g_unix_fd_add(fd, G_IO_IN | G_IO_ERR | G_IO_HUP, on_confirm_fd, cl);
	}
	if (cs->joined)
		return;
	cs_error_t r = cpg_join(cs->handle, &cs->name);
	if (r == CS_ERR_TRY_AGAIN)
		return; /* the start job tries again in a second */
	if (r != CS_OK) {
		if (!cs->failing)
			g_warning("%s: cpg_join failed: %s (retrying every second)",
				  CONFIRM_GROUP_NAME, cs_str(r));
		cs->failing = true;
		confirm_disconnect(cl);
		return;
	}
	if (cs->failing)
		g_message("%s: joined", CONFIRM_GROUP_NAME);
	cs->failing = false;
	cs->joined = true;
	cs->resend_all = true;
}

/* --- quorum (§5.1) ------------------------------------------------------------ */

static void set_quorate(cluster_t *cl, bool q)
{
	if (status_quorate(cl->st) == q)
		return;
	status_set_quorate(cl->st, q);
	g_message(q ? "node has quorum" : "node lost quorum");
	if (cl->opts.quorum_changed)
		cl->opts.quorum_changed(cl->opts.data, q);
	confirm_check(cl);
}

/* Ask corosync now: its quorum notice of a membership change may come after
 * CPG's (two connections), and a change delivered in the new configuration
 * must not be applied on the old answer. */
static void quorum_refresh(cluster_t *cl)
{
	int q = 0;
	if (cl->have_qh && quorum_getquorate(cl->qh, &q) == CS_OK)
		set_quorate(cl, q != 0);
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq, uint32_t n,
		      uint32_t *list)
{
	void *ctx = NULL;
	quorum_context_get(h, (const void **)&ctx);
	if (ctx)
		set_quorate(ctx, quorate != 0);
}

static void quorum_disconnect(cluster_t *cl)
{
	if (cl->q_src) {
		g_source_remove(cl->q_src);
		cl->q_src = 0;
	}
	if (cl->have_qh)
		quorum_finalize(cl->qh);
	cl->have_qh = false;
	set_quorate(cl, false);
}

static gboolean on_quorum_fd(gint fd, GIOCondition cond, gpointer data)
{
	cluster_t *cl = data;
	cs_error_t r = quorum_dispatch(cl->qh, CS_DISPATCH_ALL);
	if (r == CS_OK || r == CS_ERR_TRY_AGAIN)
		return G_SOURCE_CONTINUE;
	g_warning("quorum_dispatch failed: %s; reconnecting", cs_str(r));
	cl->q_src = 0;
	quorum_disconnect(cl);
	return G_SOURCE_REMOVE;
}

static void quorum_connect(cluster_t *cl)
{
	if (cl->have_qh)
		return;
	quorum_callbacks_t cb = {.quorum_notify_fn = on_quorum};
	uint32_t type = 0;
	cs_error_t r = quorum_initialize(&cl->qh, &cb, &type);
	if (r != CS_OK) {
		if (!cl->q_failing)
			g_warning("quorum_initialize failed: %s (retrying every second)",
				  cs_str(r));
		cl->q_failing = true;
		return;
	}
	cl->have_qh = true;
	int fd = -1;
	if (type != QUORUM_SET) {
		g_critical("wrong quorum_type: %u (no quorum provider configured?)", type);
		quorum_disconnect(cl);
		cl->q_failing = true;
		return;
	}
	if ((r = quorum_context_set(cl->qh, cl)) != CS_OK ||
	    (r = quorum_trackstart(cl->qh, CS_TRACK_CHANGES)) != CS_OK ||
	    (r = quorum_fd_get(cl->qh, &fd)) != CS_OK) {
		g_warning("quorum tracking failed: %s", cs_str(r));
		quorum_disconnect(cl);
		cl->q_failing = true;
		return;
	}
	cl->q_src = g_unix_fd_add(fd, G_IO_IN | G_IO_ERR | G_IO_HUP, on_quorum_fd, cl);
	if (cl->q_failing)
		g_message("quorum: connected to corosync");
	cl->q_failing = false;
}

/* --- cmap (§5.2) ----------------------------------------------------------------- */

static void on_cmap_track(cmap_handle_t h, cmap_track_handle_t t, int32_t event, const char *key,
			  struct cmap_notify_value nv, struct cmap_notify_value ov, void *data)
{
	((cluster_t *)data)->c_changes = true;
}

typedef struct cmap_node {
	char *name;
	uint32_t nodeid, votes;
	bool named; /* `name` seen (it wins over ring0_addr) */
} cmap_node_t;

/* How long corosync may deliver nothing before it counts as stalled: the
 * option, but never less than twice the time a membership change may take
 * (the token timeout as corosync runs it, which grows with the node count,
 * plus the consensus timeout).  While a membership forms, corosync delivers
 * nothing and answers sends TRY_AGAIN: that is not a stall, and leaving
 * the group then would answer EBUSY to writes that are about to land. */
static void bound_read(cluster_t *cl)
{
	uint32_t token = 0, consensus = 0;
	(void)cmap_get_uint32(cl->ch, "runtime.config.totem.token", &token);
	(void)cmap_get_uint32(cl->ch, "runtime.config.totem.consensus", &consensus);
	uint64_t floor = 2 * ((uint64_t)token + consensus);
	unsigned b = MAX(cl->opts.send_bound_ms, (unsigned)MIN(floor, G_MAXUINT));
	if (b != cl->bound_ms)
		g_message("corosync may deliver nothing for %u ms before it counts as stalled "
			  "(token %u ms, consensus %u ms)",
			  b, token, consensus);
	cl->bound_ms = b;
}

static int cmap_read(cluster_t *cl)
{
	uint64_t version = 0;
	if (cmap_get_uint64(cl->ch, "totem.config_version", &version) != CS_OK)
		g_debug("cmap: no totem.config_version; using 0");
	char *cname = NULL;
	cs_error_t r = cmap_get_string(cl->ch, "totem.cluster_name", &cname);
	if (r != CS_OK) {
		g_warning("cmap: cannot read totem.cluster_name: %s", cs_str(r));
		return -1;
	}
	cmap_iter_handle_t it;
	if ((r = cmap_iter_init(cl->ch, "nodelist.node.", &it)) != CS_OK) {
		free(cname);
		g_warning("cmap: cannot list the nodes: %s", cs_str(r));
		return -1;
	}
	GHashTable *byidx = g_hash_table_new(g_direct_hash, g_direct_equal);
	GPtrArray *nodes = g_ptr_array_new();
	char key[CMAP_KEYNAME_MAXLEN + 1];
	size_t vlen;
	cmap_value_types_t type;
	while (cmap_iter_next(cl->ch, it, key, &vlen, &type) == CS_OK) {
		char *end = NULL;
		unsigned long idx = strtoul(key + strlen("nodelist.node."), &end, 10);
		if (!end || *end != '.' || idx > G_MAXUINT - 1)
			continue;
		const char *sub = end + 1;
		cmap_node_t *n = g_hash_table_lookup(byidx, GUINT_TO_POINTER((guint)idx + 1));
		if (!n) {
			n = g_new0(cmap_node_t, 1);
			n->votes = 1;
			g_hash_table_insert(byidx, GUINT_TO_POINTER((guint)idx + 1), n);
			g_ptr_array_add(nodes, n);
		}
		if (strcmp(sub, "nodeid") == 0) {
			(void)cmap_get_uint32(cl->ch, key, &n->nodeid);
		} else if (strcmp(sub, "quorum_votes") == 0) {
			(void)cmap_get_uint32(cl->ch, key, &n->votes);
		} else if (strcmp(sub, "name") == 0 ||
			   (strcmp(sub, "ring0_addr") == 0 && !n->named)) {
			char *s = NULL;
			if (cmap_get_string(cl->ch, key, &s) == CS_OK) {
				g_free(n->name);
				n->name = g_strdup(s);
				n->named = strcmp(sub, "name") == 0;
				free(s);
			}
		}
	}
	cmap_iter_finalize(cl->ch, it);
	g_autofree status_node_t *sn = g_new0(status_node_t, nodes->len ? nodes->len : 1);
	for (guint i = 0; i < nodes->len; i++) {
		cmap_node_t *n = nodes->pdata[i];
		sn[i] = (status_node_t){n->name, n->nodeid, n->votes};
	}
	status_set_cluster_info(cl->st, cname, version, sn, nodes->len);
	bound_read(cl);
	/* the votes a group of daemons needs before it takes writes: what
	 * votequorum needs (a majority of the expected votes; one of two
	 * with two_node) */
	g_hash_table_remove_all(cl->votes);
	uint32_t total = 0;
	for (guint i = 0; i < nodes->len; i++) {
		cmap_node_t *n = nodes->pdata[i];
		g_hash_table_insert(cl->votes, GUINT_TO_POINTER(n->nodeid),
				    GUINT_TO_POINTER(n->votes));
		total += n->votes;
	}
	uint32_t expected = 0;
	uint8_t two_node = 0;
	if (cmap_get_uint32(cl->ch, "quorum.expected_votes", &expected) == CS_OK && expected)
		total = expected;
	(void)cmap_get_uint8(cl->ch, "quorum.two_node", &two_node);
	cl->need = total == 0 ? 0 : two_node && total == 2 ? 1 : total / 2 + 1;
	group_update(cl);
	g_debug("cmap: cluster '%s', config version %" G_GUINT64_FORMAT ", %u nodes", cname,
		version, nodes->len);
	for (guint i = 0; i < nodes->len; i++) {
		cmap_node_t *n = nodes->pdata[i];
		g_free(n->name);
		g_free(n);
	}
	g_ptr_array_unref(nodes);
	g_hash_table_unref(byidx);
	free(cname);
	return 0;
}

static void cmap_disconnect(cluster_t *cl)
{
	if (cl->c_src) {
		g_source_remove(cl->c_src);
		cl->c_src = 0;
	}
	if (cl->have_ch)
		cmap_finalize(cl->ch);
	cl->have_ch = false;
}

static gboolean on_cmap_fd(gint fd, GIOCondition cond, gpointer data)
{
	cluster_t *cl = data;
	cs_error_t r = cmap_dispatch(cl->ch, CS_DISPATCH_ALL);
	if (r == CS_ERR_TRY_AGAIN)
		return G_SOURCE_CONTINUE;
	if (r == CS_OK) {
		if (cl->c_changes) {
			cl->c_changes = false;
			(void)cmap_read(cl);
		}
		return G_SOURCE_CONTINUE;
	}
	g_warning("cmap_dispatch failed: %s; reconnecting", cs_str(r));
	cl->c_src = 0;
	cmap_disconnect(cl);
	return G_SOURCE_REMOVE;
}

static void cmap_connect(cluster_t *cl)
{
	if (cl->have_ch)
		return;
	cs_error_t r = cmap_initialize(&cl->ch);
	if (r != CS_OK) {
		if (!cl->c_failing)
			g_warning("cmap_initialize failed: %s (retrying every second)", cs_str(r));
		cl->c_failing = true;
		return;
	}
	cl->have_ch = true;
	cmap_track_handle_t t1, t2;
	int fd = -1;
	if ((r = cmap_track_add(cl->ch, "nodelist.node.",
				CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY |
					CMAP_TRACK_PREFIX,
				on_cmap_track, cl, &t1)) != CS_OK ||
	    (r = cmap_track_add(cl->ch, "totem.config_version",
				CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY,
				on_cmap_track, cl, &t2)) != CS_OK ||
	    (r = cmap_fd_get(cl->ch, &fd)) != CS_OK || cmap_read(cl) < 0) {
		g_warning("cmap: set-up failed: %s", cs_str(r));
		cmap_disconnect(cl);
		cl->c_failing = true;
		return;
	}
	cl->c_src = g_unix_fd_add(fd, G_IO_IN | G_IO_ERR | G_IO_HUP, on_cmap_fd, cl);
	cl->c_failing = false;
}

/* --- corosync.conf (§2.11) ------------------------------------------------------- */

static uint64_t conf_version(const char *text, size_t len)
{
	g_autoptr(GRegex) re = g_regex_new("config_version\\s*:\\s*(\\d+)", 0, 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match_full(re, text, (gssize)len, 0, 0, &mi, NULL))
		return 0;
	g_autofree char *d = g_match_info_fetch(mi, 1);
	return g_ascii_strtoull(d, NULL, 10);
}

static gboolean on_reload(gpointer data)
{
	cluster_t *cl = data;
	cl->reload_src = 0;
	const char *argv[] = {"corosync-cfgtool", "-R", NULL};
	g_autoptr(GError) err = NULL;
	if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err))
		g_warning("cannot run corosync-cfgtool -R: %s", err->message);
	return G_SOURCE_REMOVE;
}

static void conf_sync(cluster_t *cl, bool notify)
{
	const memdb_entry_t *e = memdb_lookup(cl->mdb, "corosync.conf");
	if (!e || e->type != MEMDB_TYPE_REG || !e->data || e->size == 0)
		return;
	gsize len;
	const char *text = g_bytes_get_data(e->data, &len);
	uint64_t v = conf_version(text, len);
	if (v == 0) {
		g_critical("corosync.conf in the tree has no valid config_version");
		return;
	}
	const char *host = cl->opts.corosync_conf;
	g_autofree char *old = NULL;
	gsize oldlen = 0;
	uint64_t ov = 0;
	if (g_file_get_contents(host, &old, &oldlen, NULL)) {
		if (oldlen == len && memcmp(old, text, len) == 0)
			return;
		ov = conf_version(old, oldlen);
		if (ov > v) {
			g_warning("local corosync.conf is newer (%" G_GUINT64_FORMAT
				  " > %" G_GUINT64_FORMAT "): not replaced",
				  ov, v);
			return;
		}
	}
	g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", host);
	int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
	bool ok = fd >= 0;
	for (gsize off = 0; ok && off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		ok = n > 0;
		off += ok ? (gsize)n : 0;
	}
	ok = ok && fchown(fd, 0, 0) == 0 && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (!ok || rename(tmp, host) < 0) {
		g_critical("cannot write '%s': %s", host, g_strerror(errno));
		if (fd >= 0)
			(void)unlink(tmp);
		return;
	}
	g_message("wrote new corosync config '%s' (version = %" G_GUINT64_FORMAT ")", host, v);
	if (notify && ov > 0 && !cl->reload_src)
		cl->reload_src = g_timeout_add(CONF_RELOAD_MS, on_reload, cl);
}

/* --- the start job ------------------------------------------------------------ */

static gboolean on_start_job(gpointer data)
{
	cluster_t *cl = data;
	quorum_connect(cl);
	cmap_connect(cl);
	confirm_connect(cl);
	svc_connect(&cl->dcdb_svc);
	svc_connect(&cl->kvstore_svc);
	return G_SOURCE_CONTINUE;
}

static void svc_init(cpg_svc_t *svc, cluster_t *cl, const char *group, size_t len,
		     dfsm_t *(*connected)(cpg_svc_t *, uint32_t, bool),
		     void (*members)(cpg_svc_t *, const struct cpg_address *, size_t))
{
	svc->cl = cl;
	svc->group = group;
	svc->name.length = (uint32_t)len;
	memcpy(svc->name.value, group, len);
	svc->connected = connected;
	svc->members = members;
	g_queue_init(&svc->sendq);
}

cluster_t *cluster_new(memdb_t *mdb, status_t *st, const cluster_options_t *opts)
{
	cluster_t *cl = g_new0(cluster_t, 1);
	cl->mdb = mdb;
	cl->st = st;
	cl->opts = *opts;
	if (!cl->opts.rejoin_delay)
		cl->opts.rejoin_delay = DEFAULT_REJOIN;
	if (!cl->opts.send_bound_ms)
		cl->opts.send_bound_ms = DEFAULT_BOUNDMS;
	cl->bound_ms = cl->opts.send_bound_ms;
	cl->waiters = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	cl->votes = g_hash_table_new(g_direct_hash, g_direct_equal);
	cl->dcdb_addrs = g_array_new(FALSE, FALSE, sizeof(dfsm_member_t));
	cl->confirm_svc.name.length = (uint32_t)CONFIRM_GROUP_NAME_LEN;
	memcpy(cl->confirm_svc.name.value, CONFIRM_GROUP_NAME, CONFIRM_GROUP_NAME_LEN);
	cl->confirm_svc.members = g_array_new(FALSE, FALSE, sizeof(dfsm_member_t));
	cl->confirm_svc.seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	svc_init(&cl->dcdb_svc, cl, DCDB_GROUP_NAME, DCDB_GROUP_NAME_LEN, dcdb_connected,
		 dcdb_members);
	svc_init(&cl->kvstore_svc, cl, KVSTORE_GROUP_NAME, KVSTORE_GROUP_NAME_LEN,
		 kvstore_connected, kvstore_members);

	status_set_quorate(st, false);
	if (opts->node_ip)
		status_set_node_ip(st, status_nodename(st), opts->node_ip);
	conf_sync(cl, true);
	on_start_job(cl);
	cl->start_src = g_timeout_add(START_JOB_MS, on_start_job, cl);
	cl->verify_src = g_timeout_add_seconds(
		opts->verify_interval ? opts->verify_interval : VERIFY_SECONDS, on_verify, cl);
	cl->watchdog_src = g_timeout_add(WATCHDOG_MS, on_watchdog, cl);
	return cl;
}

cluster_t *cluster_free(cluster_t *cl)
{
	if (!cl)
		return NULL;
	g_source_remove(cl->start_src);
	g_source_remove(cl->verify_src);
	g_source_remove(cl->watchdog_src);
	if (cl->reload_src)
		g_source_remove(cl->reload_src);
	svc_disconnect(&cl->dcdb_svc);
	svc_disconnect(&cl->kvstore_svc);
	confirm_disconnect(cl);
	cl->kvstore = kvstore_free(cl->kvstore);
	cl->dcdb = dcdb_free(cl->dcdb); /* aborts what waits: -EBUSY */
	/* anything left had no engine to answer it */
	GList *left = g_hash_table_get_values(cl->waiters);
	g_hash_table_remove_all(cl->waiters);
	for (GList *l = left; l; l = l->next) {
		waiter_t *w = l->data;
		w->done(w->data, -EBUSY);
		g_free(w);
	}
	g_list_free(left);
	g_hash_table_unref(cl->waiters);
	cl->n_applied = 0;
	quorum_disconnect(cl);
	cmap_disconnect(cl);
	g_hash_table_unref(cl->votes);
	g_array_unref(cl->dcdb_addrs);
	g_array_unref(cl->confirm_svc.members);
	g_hash_table_unref(cl->confirm_svc.seen);
	cl->confirm = confirm_free(cl->confirm);
	g_free(cl);
	return NULL;
}
