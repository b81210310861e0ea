/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * watch.c: the change watch (ours; see include/cfs.h).  A WATCH request
 * registers a one-shot watch; the daemon's notice comes as a libqb event
 * on the same connection, so ordinary requests in between do not mix with
 * it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfs.h"
#include "internal.h"

#define WATCH_REPLY_LEN 12 /* u32 id, u64 version */

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int cfs_watch_add(cfs_client_t *h, const char *path, uint64_t known, uint64_t *current)
{
	if (!h)
		return -EINVAL;
	if (!path)
		path = "";
	size_t pl = strlen(path) + 1;
	if (pl > 4096)
		return -ENAMETOOLONG;
	uint8_t req[8 + 4096];
	for (int i = 0; i < 8; i++)
		req[i] = (uint8_t)(known >> (8 * i));
	memcpy(req + 8, path, pl);
	cfs_buf_t b = {0};
	int r = cfs_ipc_call(h, OP_WATCH, req, 8 + pl, &b);
	if (r < 0)
		return r;
	if (b.len != WATCH_REPLY_LEN) {
		cfs_buf_free(&b);
		return CFS_E_PROTO;
	}
	uint32_t id = get_u32((const uint8_t *)b.data);
	if (current)
		*current = get_u64((const uint8_t *)b.data + 4);
	cfs_buf_free(&b);
	/* watches live on the connection they were made on; reads on an
	 * older one report -ENOTCONN */
	h->watch_gen = h->conn_gen;
	return (int)(id & 0x7fffffff);
}

int cfs_watch_remove(cfs_client_t *h, uint32_t id)
{
	if (!h)
		return -EINVAL;
	if (!h->conn || h->conn_gen != h->watch_gen)
		return 0; /* the connection that held them is gone */
	uint8_t req[4];
	for (int i = 0; i < 4; i++)
		req[i] = (uint8_t)(id >> (8 * i));
	return cfs_ipc_call(h, OP_UNWATCH, req, sizeof(req), NULL);
}

static bool watches_alive(cfs_client_t *h)
{
	return h->conn && h->pid == getpid() && h->watch_gen == h->conn_gen;
}

int cfs_watch_fd(cfs_client_t *h)
{
	if (!h)
		return -EINVAL;
	if (!watches_alive(h))
		return -ENOTCONN;
	int32_t fd;
	int r = qb_ipcc_fd_get(h->conn, &fd);
	return r < 0 ? r : fd;
}

int cfs_watch_read(cfs_client_t *h, int timeout_ms, cfs_watch_event_t *ev)
{
	if (!h || !ev)
		return -EINVAL;
	if (!watches_alive(h))
		return -ENOTCONN;
	uint8_t buf[sizeof(struct qb_ipc_response_header) + 64];
	ssize_t n = qb_ipcc_event_recv(h->conn, buf, sizeof(buf), timeout_ms);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return 0;
	if (n < 0) {
		cfs_disconnect(h); /* the daemon went away: the watches with it */
		return -ENOTCONN;
	}
	const struct qb_ipc_response_header *rh = (const void *)buf;
	if ((size_t)n != sizeof(*rh) + WATCH_REPLY_LEN || rh->id != OP_WATCH)
		return CFS_E_PROTO;
	ev->id = get_u32(buf + sizeof(*rh));
	ev->version = get_u64(buf + sizeof(*rh) + 4);
	return 1;
}

int cfs_watch_wait(cfs_client_t *h, const char *path, uint64_t *version, int timeout_ms)
{
	if (!h || !version)
		return -EINVAL;
	int64_t deadline = timeout_ms < 0 ? -1 : cfs_now_ms() + timeout_ms;
	for (;;) {
		uint64_t now;
		int id = cfs_watch_add(h, path, *version, &now);
		if (id < 0)
			return id;
		if (id == 0) {
			*version = now;
			return 1;
		}
		for (;;) {
			int wait = -1;
			if (deadline >= 0) {
				int64_t left = deadline - cfs_now_ms();
				wait = left > 0 ? (int)left : 0;
			}
			cfs_watch_event_t ev;
			int r = cfs_watch_read(h, wait, &ev);
			if (r == -ENOTCONN)
				break; /* add it again on a new connection */
			if (r < 0)
				return r;
			if (r == 0) {
				(void)cfs_watch_remove(h, (uint32_t)id);
				return 0;
			}
			if (ev.id == (uint32_t)id) {
				*version = ev.version;
				return 1;
			}
			/* a notice of an earlier, abandoned watch */
		}
		if (deadline >= 0 && cfs_now_ms() >= deadline)
			return 0;
	}
}
