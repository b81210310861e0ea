/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cfs.h: libcfs, the client library of pmxcfs.
 *
 * It speaks the `pve2` IPC protocol of the pmxcfs daemon (the one that
 * PVE::IPCC speaks) and gives C programs what PVE::Cluster gives Perl.
 *
 * Conventions
 * - Every function returns 0 (or a count) on success and a negative errno
 *   on failure, as the daemon reported it (-ENOENT, -EPERM, ...) or as the
 *   transport failed (-ECONNREFUSED, -ENOTCONN, ...).
 * - Buffers handed out are cfs_buf_t; the caller frees them with
 *   cfs_buf_free().  Their data is followed by a NUL that is not counted in
 *   len, so text can be used as a C string.  A missing file is -ENOENT, an
 *   empty one is 0 with len 0.
 * - Strings passed in are only read during the call.
 *
 * Threads: a handle is not thread-safe; use one handle per thread.  After
 * fork() a handle notices the new pid and connects anew.
 */
#ifndef CFS_H
#define CFS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFS_VERSION_MAJOR 0
#define CFS_VERSION_MINOR 1
/* the version of the library the program runs with, e.g. "0.1.0" */
const char *cfs_version(void);

typedef struct cfs_client cfs_client_t;

typedef struct cfs_buf {
	char *data; /* NUL-terminated beyond len; NULL when len is 0 */
	size_t len;
} cfs_buf_t;

/* Frees the data and sets it to NULL/0; NULL-safe. */
void cfs_buf_free(cfs_buf_t *buf);

typedef struct cfs_client_opts {
	const char *service;       /* IPC service name; NULL = "pve2" */
	const char *restart_flag;  /* NULL = "/run/pve-cluster/cfs-restart-flag" */
	unsigned restart_grace_ms; /* retry while the flag exists; 0 = 10000 */
	int timeout_ms;            /* per request; 0 = wait for ever (as PVE::IPCC) */
} cfs_client_opts_t;

/* A handle; it connects on first use.  @opts may be NULL (defaults).
 * CONSTRUCTOR: free with cfs_client_free(). */
int cfs_client_new(const cfs_client_opts_t *opts, cfs_client_t **ret);
/* DESTRUCTOR: disconnects and frees; NULL-safe. */
void cfs_client_free(cfs_client_t *h);

/* One raw request: op code and payload; the reply data goes to @reply (may
 * be NULL if not wanted).  The daemon's error comes back as the return. */
int cfs_ipc_call(cfs_client_t *h, int32_t op, const void *req, size_t req_len, cfs_buf_t *reply);

/* --- typed requests (cluster.md §4.4) -------------------------------- */

int cfs_get_fs_version(cfs_client_t *h, cfs_buf_t *json);   /* .version */
int cfs_get_cluster_info(cfs_client_t *h, cfs_buf_t *json); /* .members */
int cfs_get_guest_list(cfs_client_t *h, cfs_buf_t *json);   /* .vmlist */
/* The content of a file below the mount root, e.g. "storage.cfg". */
int cfs_get_config(cfs_client_t *h, const char *path, cfs_buf_t *content);
/* Status store: @len 0 deletes.  Keys: "kv/<name>", "rrd/<key>", others. */
int cfs_status_set(cfs_client_t *h, const char *name, const void *data, size_t len);
/* @node NULL or "" = this node. */
int cfs_status_get(cfs_client_t *h, const char *name, const char *node, cfs_buf_t *value);
/* Cluster log entry; @priority 0..7 (syslog). */
int cfs_log_msg(cfs_client_t *h, int priority, const char *ident, const char *tag, const char *msg);
/* Newest @max entries (0 = 50), of @user only if not NULL; JSON. */
int cfs_get_cluster_log(cfs_client_t *h, const char *user, unsigned max, cfs_buf_t *json);
int cfs_get_rrd_dump(cfs_client_t *h, cfs_buf_t *text);
/* Properties of guest @vmid (0 = all guests); JSON {"<vmid>": {...}}. */
int cfs_get_guest_config_properties(cfs_client_t *h, uint32_t vmid, const char *const *props,
				    unsigned n_props, cfs_buf_t *json);
/* 1 if "<userid> <secret>" @token is a line of priv/token.cfg, 0 if not. */
int cfs_verify_token(cfs_client_t *h, const char *token);

#ifdef __cplusplus
}
#endif

#endif /* CFS_H */
