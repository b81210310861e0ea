/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client.c: the libcfs handle, its connection to the pve2 service, and
 * the typed requests (include/cfs.h).
 *
 * DESIGN
 * - The connection is made on first use and remembered with the pid that
 *   made it; after fork() the child connects anew (PVE::IPCC does the same).
 * - A transport failure disconnects and tries once more on a new connection.
 *   While the daemon's restart flag exists (it is restarting), a refused
 *   connection is retried every 100 ms for the grace period.
 * - Requests are packed byte by byte (little-endian, fixed 256-byte names),
 *   never by casting structs.  Non-logging: errors are returned.
 */
#include "config.h"

#include <errno.h>
#include <qb/qbipcc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cfs.h"
#include "internal.h"

#define DEFAULT_SERVICE      "pve2"
#define DEFAULT_RESTART_FLAG "/run/pve-cluster/cfs-restart-flag"
#define DEFAULT_BASE_DIR     "/etc/pve"
#define DEFAULT_GRACE_MS     10000u
#define NAME_LEN             256

int64_t cfs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cfs_version(void)
{
	return PACKAGE_VERSION;
}

void cfs_buf_free(cfs_buf_t *buf)
{
	if (!buf)
		return;
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
}

int cfs_client_new(const cfs_client_opts_t *opts, cfs_client_t **ret)
{
	if (!ret)
		return -EINVAL;
	cfs_client_t *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->service = strdup(opts && opts->service ? opts->service : DEFAULT_SERVICE);
	h->restart_flag =
		strdup(opts && opts->restart_flag ? opts->restart_flag : DEFAULT_RESTART_FLAG);
	h->base_dir = strdup(opts && opts->base_dir ? opts->base_dir : DEFAULT_BASE_DIR);
	h->grace_ms = opts && opts->restart_grace_ms ? opts->restart_grace_ms : DEFAULT_GRACE_MS;
	h->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : -1;
	h->rbuf = malloc(MAX_MSG);
	cfs_cache_init(h);
	if (!h->service || !h->restart_flag || !h->base_dir || !h->rbuf) {
		cfs_client_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

void cfs_disconnect(cfs_client_t *h)
{
	if (h->conn && h->pid == getpid())
		qb_ipcc_disconnect(h->conn);
	/* a connection inherited through fork() is left alone: it is the
	 * parent's */
	h->conn = NULL;
}

void cfs_client_free(cfs_client_t *h)
{
	if (!h)
		return;
	cfs_disconnect(h);
	free(h->service);
	free(h->restart_flag);
	free(h->base_dir);
	cfs_cache_fini(h);
	free(h->rbuf);
	free(h);
}

int cfs_connect(cfs_client_t *h)
{
	int64_t start = cfs_now_ms();
	for (;;) {
		h->conn = qb_ipcc_connect(h->service, MAX_MSG);
		if (h->conn) {
			h->pid = getpid();
			h->conn_gen++;
			return 0;
		}
		int err = errno ? errno : ECONNREFUSED;
		struct stat st;
		if (stat(h->restart_flag, &st) < 0)
			return -err;
		if (cfs_now_ms() - start >= (int64_t)h->grace_ms)
			return -err;
		struct timespec nap = {0, 100 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
}

static int send_once(cfs_client_t *h, int32_t op, const void *req, size_t req_len, cfs_buf_t *reply)
{
	if (!h->conn || h->pid != getpid()) {
		h->conn = NULL;
		int r = cfs_connect(h);
		if (r < 0)
			return r;
	}
	h->requests++;
	struct qb_ipc_request_header hdr = {.id = op, .size = (int32_t)(sizeof(hdr) + req_len)};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)req, req_len}};
	ssize_t n =
		qb_ipcc_sendv_recv(h->conn, iov, req_len ? 2 : 1, h->rbuf, MAX_MSG, h->timeout_ms);
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(struct qb_ipc_response_header))
		return -EBADMSG;
	const struct qb_ipc_response_header *rh = (const void *)h->rbuf;
	if (rh->error < 0)
		return rh->error;
	size_t dlen = (size_t)n - sizeof(*rh);
	if (reply) {
		reply->data = NULL;
		reply->len = dlen;
		if (dlen) {
			reply->data = malloc(dlen + 1);
			if (!reply->data)
				return -ENOMEM;
			memcpy(reply->data, h->rbuf + sizeof(*rh), dlen);
			reply->data[dlen] = '\0';
		}
	}
	return 0;
}

/* the connection is gone: the request did not reach the daemon or its
 * reply cannot come, so one resend on a new connection is safe */
static bool connection_lost(int r)
{
	return r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE || r == -ESHUTDOWN;
}

/* no usable reply on a live connection (a time-out, a malformed reply):
 * the request may have run, so it is not sent again, but a late reply
 * must not be taken for the next request's */
static bool reply_lost(int r)
{
	return r == -ETIMEDOUT || r == -EAGAIN || r == -EBADMSG;
}

int cfs_ipc_call(cfs_client_t *h, int32_t op, const void *req, size_t req_len, cfs_buf_t *reply)
{
	if (!h || (req_len && !req) || req_len > MAX_MSG - sizeof(struct qb_ipc_request_header))
		return -EINVAL;
	if (reply) {
		reply->data = NULL;
		reply->len = 0;
	}
	int r = send_once(h, op, req, req_len, reply);
	if (r == -ECHRNG && op > 0xffff)
		return -EOPNOTSUPP; /* a daemon without our extensions */
	if (r < 0 && connection_lost(r)) {
		cfs_disconnect(h);
		r = send_once(h, op, req, req_len, reply);
	}
	if (r < 0 && (connection_lost(r) || reply_lost(r)))
		cfs_disconnect(h);
	return r;
}

int cfs_get_fs_version(cfs_client_t *h, cfs_buf_t *json)
{
	return cfs_ipc_call(h, OP_GET_FS_VERSION, NULL, 0, json);
}

int cfs_get_cluster_info(cfs_client_t *h, cfs_buf_t *json)
{
	return cfs_ipc_call(h, OP_GET_CLUSTER_INFO, NULL, 0, json);
}

int cfs_get_guest_list(cfs_client_t *h, cfs_buf_t *json)
{
	return cfs_ipc_call(h, OP_GET_GUEST_LIST, NULL, 0, json);
}

int cfs_get_rrd_dump(cfs_client_t *h, cfs_buf_t *text)
{
	int r = cfs_ipc_call(h, OP_GET_RRD_DUMP, NULL, 0, text);
	/* the daemon adds a NUL so the reply is never empty: not part of the text */
	if (r == 0 && text && text->len > 0 && text->data[text->len - 1] == '\0')
		text->len--;
	return r;
}

int cfs_get_config(cfs_client_t *h, const char *path, cfs_buf_t *content)
{
	if (!path || !path[0])
		return -EINVAL;
	return cfs_ipc_call(h, OP_GET_CONFIG, path, strlen(path) + 1, content);
}

static int put_name(uint8_t *dst, const char *name)
{
	size_t n = strlen(name);
	if (n >= NAME_LEN)
		return -ENAMETOOLONG;
	memset(dst, 0, NAME_LEN);
	memcpy(dst, name, n);
	return 0;
}

int cfs_status_set(cfs_client_t *h, const char *name, const void *data, size_t len)
{
	if (!name || (len && !data))
		return -EINVAL;
	if (len > 32768)
		return -EFBIG;
	uint8_t *req = malloc(NAME_LEN + len);
	if (!req)
		return -ENOMEM;
	int r = put_name(req, name);
	if (r == 0) {
		if (len)
			memcpy(req + NAME_LEN, data, len);
		r = cfs_ipc_call(h, OP_SET_STATUS, req, NAME_LEN + len, NULL);
	}
	free(req);
	return r;
}

int cfs_status_get(cfs_client_t *h, const char *name, const char *node, cfs_buf_t *value)
{
	if (!name)
		return -EINVAL;
	uint8_t req[2 * NAME_LEN];
	int r = put_name(req, name);
	if (r == 0)
		r = put_name(req + NAME_LEN, node ? node : "");
	if (r < 0)
		return r;
	return cfs_ipc_call(h, OP_GET_STATUS, req, sizeof(req), value);
}

int cfs_log_msg(cfs_client_t *h, int priority, const char *ident, const char *tag, const char *msg)
{
	if (priority < 0 || priority > 7 || !ident || !tag || !msg)
		return -EINVAL;
	size_t il = strlen(ident) + 1, tl = strlen(tag) + 1, ml = strlen(msg) + 1;
	if (il > 255 || tl > 255)
		return -ENAMETOOLONG;
	size_t len = 3 + il + tl + ml;
	uint8_t *req = malloc(len);
	if (!req)
		return -ENOMEM;
	req[0] = (uint8_t)priority;
	req[1] = (uint8_t)il;
	req[2] = (uint8_t)tl;
	memcpy(req + 3, ident, il);
	memcpy(req + 3 + il, tag, tl);
	memcpy(req + 3 + il + tl, msg, ml);
	int r = cfs_ipc_call(h, OP_LOG_CLUSTER_MSG, req, len, NULL);
	free(req);
	return r;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int cfs_get_cluster_log(cfs_client_t *h, const char *user, unsigned max, cfs_buf_t *json)
{
	const char *u = user ? user : "";
	size_t ul = strlen(u) + 1;
	uint8_t *req = calloc(1, 16 + ul);
	if (!req)
		return -ENOMEM;
	put_u32(req, max);
	memcpy(req + 16, u, ul);
	int r = cfs_ipc_call(h, OP_GET_CLUSTER_LOG, req, 16 + ul, json);
	free(req);
	return r;
}

int cfs_get_guest_config_properties(cfs_client_t *h, uint32_t vmid, const char *const *props,
				    unsigned n_props, cfs_buf_t *json)
{
	if (!props || n_props == 0 || n_props > 255)
		return -EINVAL;
	size_t len = 5;
	for (unsigned i = 0; i < n_props; i++) {
		if (!props[i] || props[i][0] < 'a' || props[i][0] > 'z')
			return -EINVAL;
		len += strlen(props[i]) + 1;
	}
	uint8_t *req = malloc(len);
	if (!req)
		return -ENOMEM;
	put_u32(req, vmid);
	req[4] = (uint8_t)n_props;
	size_t o = 5;
	for (unsigned i = 0; i < n_props; i++) {
		size_t l = strlen(props[i]) + 1;
		memcpy(req + o, props[i], l);
		o += l;
	}
	int r = cfs_ipc_call(h, OP_GET_GUEST_CONFIG_PROPERTIES, req, len, json);
	free(req);
	return r;
}

int cfs_verify_token(cfs_client_t *h, const char *token)
{
	if (!token || !token[0] || strchr(token, '\n'))
		return -EINVAL;
	int r = cfs_ipc_call(h, OP_VERIFY_TOKEN, token, strlen(token) + 1, NULL);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : 1;
}
