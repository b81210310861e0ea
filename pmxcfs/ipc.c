/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ipc.c: the `pve2` IPC server (cluster.md §4) on the daemon's loop.
 *
 * DESIGN
 * - libqb does the transport (the abstract unix socket, shared-memory
 *   rings, credentials); its poll callbacks are mapped onto GLib sources,
 *   so requests are handled on the loop thread that owns memdb: no locks.
 * - Every request is decoded by ipc_request_parse() (a pure, bounds-checked
 *   decoder) before any handler sees it; a malformed request gets an error
 *   reply and one log line naming the client, never a crash.
 * - Permissions as the original's (§4.2): uid 0 + gid 0 read and write, the
 *   www-data group reads (no private files, no writes), others are refused.
 */
#define G_LOG_DOMAIN "ipc"
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "guest-props.h"
#include "ipc-proto.h"
#include "ipc.h"
#include "paths.h"

struct ipc {
	qb_ipcs_service_t *service;
	memdb_t *mdb;
	status_t *st;
	gid_t gid;
	GMainContext *ctx;
	GHashTable *fds;      /* fd -> fd_watch_t */
	GPtrArray *watches;   /* watch_t, of every connection */
	guest_props_t *props; /* the guest config property cache */
};

typedef struct fd_watch {
	int fd;
	qb_ipcs_dispatch_fn_t fn;
	void *data;
	GSource *source;
} fd_watch_t;

typedef struct client {
	bool read_only;
	pid_t pid;
	qb_ipcs_connection_t *conn;
	uint32_t last_watch_id;
	unsigned n_watches;
} client_t;

/* A change watch (ours): one notice when the version of @path ("" = the
 * tree) differs from @known, then it is gone. */
typedef struct watch {
	uint32_t id;
	uint64_t known;
	char *path;
	client_t *cl;
} watch_t;

static ipc_t *the_ipc; /* libqb's callbacks carry no user data of ours */

/* --- libqb poll callbacks on GLib --------------------------------------- */

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data)
{
	fd_watch_t *w = data;
	GHashTable *fds = the_ipc->fds;
	int32_t revents = 0;
	if (cond & G_IO_IN)
		revents |= POLLIN;
	if (cond & G_IO_OUT)
		revents |= POLLOUT;
	if (cond & G_IO_HUP)
		revents |= POLLHUP;
	if (cond & G_IO_ERR)
		revents |= POLLERR;
	int32_t r = w->fn(fd, revents, w->data);
	/* the callback may have replaced or removed this watch (and freed w) */
	if (g_hash_table_lookup(fds, &fd) != w)
		return G_SOURCE_REMOVE;
	if (r < 0) {
		g_hash_table_remove(fds, &fd); /* libqb is done with this fd */
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static GIOCondition to_cond(int32_t events)
{
	GIOCondition c = 0;
	if (events & POLLIN)
		c |= G_IO_IN;
	if (events & POLLOUT)
		c |= G_IO_OUT;
	return c | G_IO_HUP | G_IO_ERR;
}

static void fd_watch_free(gpointer p)
{
	fd_watch_t *w = p;
	if (w->source) {
		g_source_destroy(w->source);
		g_source_unref(w->source);
	}
	g_free(w);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	fd_watch_t *w = g_new0(fd_watch_t, 1);
	w->fd = fd;
	w->fn = fn;
	w->data = data;
	w->source = g_unix_fd_source_new(fd, to_cond(events));
	g_source_set_callback(w->source, (GSourceFunc)(void (*)(void))on_fd, w, NULL);
	g_source_set_name(w->source, "ipc");
	g_source_attach(w->source, the_ipc->ctx);
	g_hash_table_replace(the_ipc->fds, &w->fd, w);
	return 0;
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return dispatch_add(p, fd, events, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	g_hash_table_remove(the_ipc->fds, &fd);
	return 0;
}

typedef struct job {
	void *data;
	qb_loop_job_dispatch_fn fn;
} job_t;

static gboolean on_job(gpointer p)
{
	job_t *j = p;
	j->fn(j->data);
	return G_SOURCE_REMOVE;
}

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	job_t *j = g_new0(job_t, 1);
	j->data = data;
	j->fn = fn;
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, on_job, j, g_free);
	g_source_attach(s, the_ipc->ctx);
	g_source_unref(s);
	return 0;
}

/* --- connections ----------------------------------------------------------- */

static int32_t on_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	bool rw = uid == 0 && gid == 0;
	if (!rw && gid != the_ipc->gid) {
		g_message("connection from bad user %u (gid %u) refused", (unsigned)uid,
			  (unsigned)gid);
		return -EPERM;
	}
	client_t *cl = g_new0(client_t, 1);
	cl->read_only = !rw;
	cl->conn = c;
	qb_ipcs_context_set(c, cl);
	return 0;
}

static void on_created(qb_ipcs_connection_t *c)
{
	struct qb_ipcs_connection_stats stats;
	client_t *cl = qb_ipcs_context_get(c);
	if (cl && qb_ipcs_connection_stats_get(c, &stats, 0) == 0)
		cl->pid = stats.client_pid;
}

static void watches_drop(ipc_t *ipc, const client_t *cl, uint32_t id);

static void on_destroyed(qb_ipcs_connection_t *c)
{
	client_t *cl = qb_ipcs_context_get(c);
	if (cl && the_ipc)
		watches_drop(the_ipc, cl, 0);
	g_free(cl);
	qb_ipcs_context_set(c, NULL);
}

static int32_t on_closed(qb_ipcs_connection_t *c)
{
	return 0;
}

/* --- request handlers ------------------------------------------------------ */

/* The reply's data, sent from where it lies: a file's content is memdb's
 * own GBytes (a reference, no copy).  Handlers return 0 or -errno. */
typedef struct reply {
	GBytes *data; /* NULL: no data */
} reply_t;

/* @len bytes of @data (g_malloc'ed), taken */
static void reply_take(reply_t *r, void *data, size_t len)
{
	r->data = g_bytes_new_take(data, len);
}

static void reply_text(reply_t *r, char *text)
{
	reply_take(r, text, strlen(text));
}

/* @b (may be NULL), taken */
static void reply_bytes(reply_t *r, GBytes *b)
{
	r->data = b;
}

static int do_get_config(ipc_t *ipc, const client_t *cl, const char *path, reply_t *r)
{
	g_autofree char *canon = path_canonical(path);
	if (!canon)
		return -EINVAL;
	if (cl->read_only && path_is_private(canon))
		return -EPERM;
	GBytes *b = NULL;
	int n = memdb_read(ipc->mdb, canon, &b);
	if (n < 0)
		return n;
	reply_bytes(r, b);
	return 0;
}

static int do_verify_token(ipc_t *ipc, const char *token)
{
	GBytes *b = NULL;
	if (memdb_read(ipc->mdb, "priv/token.cfg", &b) <= 0 || !b)
		return -ENOENT;
	gsize n;
	const char *d = g_bytes_get_data(b, &n);
	size_t tlen = strlen(token);
	int r = -ENOENT;
	for (size_t o = 0; o < n;) {
		const char *nl = memchr(d + o, '\n', n - o);
		size_t l = nl ? (size_t)(nl - (d + o)) : n - o;
		if (l == tlen && memcmp(d + o, token, l) == 0) {
			r = 0;
			break;
		}
		o += l + 1;
	}
	g_bytes_unref(b);
	return r;
}

static int do_guest_props(ipc_t *ipc, const ipc_request_t *q, reply_t *r)
{
	char *json = NULL;
	int rc = guest_props_json(ipc->props, ipc->mdb, q->vmid, q->props, q->n_props, &json);
	if (rc < 0)
		return rc;
	reply_text(r, json);
	return 0;
}

/* --- change watches (ours) ------------------------------------------------ */

static void watch_free(gpointer p)
{
	watch_t *w = p;
	g_free(w->path);
	g_free(w);
}

/* the tree's version, or the version of the entry at @path (0: none) */
static uint64_t watch_version(ipc_t *ipc, const char *path)
{
	if (!path[0])
		return memdb_version(ipc->mdb);
	const memdb_entry_t *e = memdb_lookup(ipc->mdb, path);
	return e ? e->version : 0;
}

/* drop the watches of @cl: all (@id 0) or the one with @id */
static void watches_drop(ipc_t *ipc, const client_t *cl, uint32_t id)
{
	for (guint i = ipc->watches->len; i-- > 0;) {
		watch_t *w = ipc->watches->pdata[i];
		if (w->cl == cl && (id == 0 || w->id == id)) {
			w->cl->n_watches--;
			g_ptr_array_remove_index_fast(ipc->watches, i);
		}
	}
}

static void watch_notify(watch_t *w, uint64_t version)
{
	uint8_t msg[IPC_RESP_HEADER_LEN + IPC_WATCH_REPLY_LEN];
	ipc_response_header(msg, CFS_IPC_WATCH, 0, IPC_WATCH_REPLY_LEN);
	for (int i = 0; i < 4; i++)
		msg[IPC_RESP_HEADER_LEN + i] = (uint8_t)(w->id >> (8 * i));
	for (int i = 0; i < 8; i++)
		msg[IPC_RESP_HEADER_LEN + 4 + i] = (uint8_t)(version >> (8 * i));
	ssize_t r = qb_ipcs_event_send(w->cl->conn, msg, sizeof(msg));
	if (r < 0)
		g_warning("cannot send the notice of watch %u on '%s' to pid %d: %s", w->id,
			  w->path, w->cl->pid, g_strerror((int)-r));
}

static void on_memdb_event(const memdb_event_t *ev, void *userdata)
{
	ipc_t *ipc = userdata;
	if (ipc->watches->len == 0 || ev->kind == MEMDB_EV_RELOADING)
		return;
	/* take the fired watches out first, then notify, so that nothing a
	 * send does can change the array while it is walked */
	g_autoptr(GPtrArray) fired = g_ptr_array_new_with_free_func(watch_free);
	for (guint i = ipc->watches->len; i-- > 0;) {
		watch_t *w = ipc->watches->pdata[i];
		/* a change at the path, or of a directory above it (a rename
		 * moves what is below) */
		if (w->path[0] && ev->kind != MEMDB_EV_RELOAD && !path_within(w->path, ev->path))
			continue;
		if (watch_version(ipc, w->path) == w->known)
			continue;
		w->cl->n_watches--;
		g_ptr_array_add(fired, g_ptr_array_steal_index_fast(ipc->watches, i));
	}
	for (guint i = 0; i < fired->len; i++) {
		watch_t *w = fired->pdata[i];
		watch_notify(w, watch_version(ipc, w->path));
	}
}

static int do_watch(ipc_t *ipc, client_t *cl, const ipc_request_t *q, reply_t *r)
{
	g_autofree char *canon = q->path[0] ? path_canonical(q->path) : g_strdup("");
	if (!canon)
		return -EINVAL;
	if (cl->read_only && path_is_private(canon))
		return -EPERM;
	uint64_t now = watch_version(ipc, canon);
	uint32_t id = 0;
	if (now == q->known) {
		if (cl->n_watches >= IPC_WATCH_MAX)
			return -ENOSPC;
		watch_t *w = g_new0(watch_t, 1);
		if (++cl->last_watch_id == 0)
			cl->last_watch_id = 1;
		w->id = id = cl->last_watch_id;
		w->known = q->known;
		w->path = g_steal_pointer(&canon);
		w->cl = cl;
		cl->n_watches++;
		g_ptr_array_add(ipc->watches, w);
	}
	uint8_t *d = g_malloc(IPC_WATCH_REPLY_LEN);
	for (int i = 0; i < 4; i++)
		d[i] = (uint8_t)(id >> (8 * i));
	for (int i = 0; i < 8; i++)
		d[4 + i] = (uint8_t)(now >> (8 * i));
	reply_take(r, d, IPC_WATCH_REPLY_LEN);
	return 0;
}

static int handle(ipc_t *ipc, client_t *cl, const ipc_request_t *q, reply_t *r)
{
	switch (q->id) {
	case CFS_IPC_GET_FS_VERSION:
		reply_text(r, status_version_json(ipc->st));
		return 0;
	case CFS_IPC_GET_CLUSTER_INFO:
		reply_text(r, status_members_json(ipc->st));
		return 0;
	case CFS_IPC_GET_GUEST_LIST:
		reply_text(r, status_vmlist_json(ipc->st));
		return 0;
	case CFS_IPC_SET_STATUS:
		if (cl->read_only)
			return -EPERM;
		return status_kv_set(ipc->st, q->name, q->value, q->value_len);
	case CFS_IPC_GET_STATUS: {
		GBytes *b = NULL;
		int rc = status_kv_get(ipc->st, q->node, q->name, &b);
		if (rc < 0)
			return rc;
		reply_bytes(r, b);
		return 0;
	}
	case CFS_IPC_GET_CONFIG:
		return do_get_config(ipc, cl, q->path, r);
	case CFS_IPC_LOG_CLUSTER_MSG:
		if (cl->read_only)
			return -EPERM;
		/* an out-of-range priority is not logged, and still succeeds */
		(void)status_clog_add(ipc->st, status_nodename(ipc->st), q->ident, q->tag,
				      (uint32_t)cl->pid, q->priority, (uint32_t)time(NULL), q->msg);
		return 0;
	case CFS_IPC_GET_CLUSTER_LOG:
		reply_text(r, status_clusterlog_json(ipc->st, q->max_entries,
						     q->user[0] ? q->user : NULL));
		return 0;
	case CFS_IPC_GET_RRD_DUMP: {
		/* the text and a NUL, so the reply is never empty */
		char *t = status_rrd_text(ipc->st);
		reply_take(r, t, strlen(t) + 1);
		return 0;
	}
	case CFS_IPC_GET_GUEST_CONFIG_PROPERTY:
	case CFS_IPC_GET_GUEST_CONFIG_PROPERTIES:
		return do_guest_props(ipc, q, r);
	case CFS_IPC_VERIFY_TOKEN:
		return do_verify_token(ipc, q->token);
	case CFS_IPC_WATCH:
		return do_watch(ipc, cl, q, r);
	case CFS_IPC_UNWATCH:
		watches_drop(ipc, cl, q->watch_id);
		return 0;
	default:
		return -ECHRNG;
	}
}

static int32_t on_message(qb_ipcs_connection_t *c, void *data, size_t size)
{
	ipc_t *ipc = the_ipc;
	client_t *cl = qb_ipcs_context_get(c);
	if (!cl) {
		qb_ipcs_disconnect(c);
		return 0;
	}
	ipc_request_t q;
	const char *why = NULL;
	reply_t r = {0};
	int rc = ipc_request_parse(data, size, &q, &why);
	if (rc < 0)
		g_message("bad request %d from pid %d (%zu bytes): %s", q.id, cl->pid, size, why);
	else
		rc = handle(ipc, cl, &q, &r);
	if (rc < 0)
		g_clear_pointer(&r.data, g_bytes_unref);
	gsize len = 0;
	const void *d = r.data ? g_bytes_get_data(r.data, &len) : NULL;
	uint8_t hdr[IPC_RESP_HEADER_LEN];
	ipc_response_header(hdr, q.id, rc, len);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)d, len}};
	ssize_t sent = qb_ipcs_response_sendv(c, iov, len ? 2 : 1);
	if (sent < 0) {
		g_warning("cannot send the reply to request %d to pid %d (%zu bytes): %s", q.id,
			  cl->pid, len, g_strerror((int)-sent));
		qb_ipcs_disconnect(c);
	}
	if (r.data)
		g_bytes_unref(r.data);
	return 0;
}

int ipc_start(const char *name, memdb_t *mdb, status_t *st, gid_t gid, GMainContext *ctx,
	      ipc_t **ret, char **ret_err)
{
	if (the_ipc) {
		*ret_err = g_strdup("the IPC service runs already");
		return -EBUSY;
	}
	ipc_t *ipc = g_new0(ipc_t, 1);
	ipc->mdb = mdb;
	ipc->st = st;
	ipc->gid = gid;
	ipc->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
	ipc->fds = g_hash_table_new_full(g_int_hash, g_int_equal, NULL, fd_watch_free);
	ipc->watches = g_ptr_array_new_with_free_func(watch_free);
	ipc->props = guest_props_new();
	the_ipc = ipc;
	if (memdb_add_event_cb(mdb, on_memdb_event, ipc) < 0) {
		*ret_err = g_strdup("too many memdb listeners");
		ipc_stop(ipc);
		return -ENOSPC;
	}

	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = on_accept,
		.connection_created = on_created,
		.msg_process = on_message,
		.connection_closed = on_closed,
		.connection_destroyed = on_destroyed,
	};
	static struct qb_ipcs_poll_handlers poll = {
		.job_add = job_add,
		.dispatch_add = dispatch_add,
		.dispatch_mod = dispatch_mod,
		.dispatch_del = dispatch_del,
	};
	ipc->service = qb_ipcs_create(name, 1, QB_IPC_SHM, &handlers);
	if (!ipc->service) {
		*ret_err = g_strdup_printf("cannot create the IPC service '%s'", name);
		ipc_stop(ipc);
		return -EIO;
	}
	qb_ipcs_poll_handlers_set(ipc->service, &poll);
	int32_t r = qb_ipcs_run(ipc->service);
	if (r != 0) {
		*ret_err = g_strdup_printf("cannot start the IPC service '%s': %s", name,
					   g_strerror(-r));
		ipc_stop(ipc);
		return r;
	}
	*ret = ipc;
	return 0;
}

ipc_t *ipc_stop(ipc_t *ipc)
{
	if (!ipc)
		return NULL;
	if (ipc->service) {
		qb_ipcs_destroy(ipc->service);
		ipc->service = NULL;
	}
	memdb_remove_event_cb(ipc->mdb, on_memdb_event, ipc);
	g_ptr_array_unref(ipc->watches);
	g_hash_table_unref(ipc->fds);
	ipc->props = guest_props_free(ipc->props);
	g_main_context_unref(ipc->ctx);
	if (the_ipc == ipc)
		the_ipc = NULL;
	g_free(ipc);
	return NULL;
}
