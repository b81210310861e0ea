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
#define CFS_VERSION_MINOR 2
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
	const char *base_dir;      /* the mount point; NULL = "/etc/pve" */
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

/* --- errors of the library itself (beyond errno) ------------------------- */

#define CFS_E_BASE               10000
#define CFS_E_NOQUORUM           (-(CFS_E_BASE + 1)) /* lock not taken: no quorum */
#define CFS_E_LOCK_TIMEOUT       (-(CFS_E_BASE + 2)) /* "got lock request timeout" */
#define CFS_E_CMD_TIMEOUT        (-(CFS_E_BASE + 3)) /* locked code ran past 60 s */
#define CFS_E_NOT_MOUNTED        (-(CFS_E_BASE + 4)) /* "pve cluster filesystem not online" */
#define CFS_E_UNKNOWN_FILE       (-(CFS_E_BASE + 5)) /* not an observed file */
#define CFS_E_ALREADY_REGISTERED (-(CFS_E_BASE + 6))
#define CFS_E_NO_WRITER          (-(CFS_E_BASE + 7))
#define CFS_E_PROTO              (-(CFS_E_BASE + 8)) /* the daemon's reply is malformed */

/* A text for a negative return of any cfs_ function (static). */
const char *cfs_strerror(int err);
/* The message of the last failure on @h, with the context the Perl stack
 * prints (e.g. "cfs-lock 'file-storage_cfg' error: got lock request
 * timeout"); "" if none.  Valid until the next call on @h. */
const char *cfs_last_error(cfs_client_t *h);
/* Requests sent on @h so far (round trips; for tests and benchmarks). */
uint64_t cfs_request_count(cfs_client_t *h);

/* --- cached cluster state (PVE::Cluster::cfs_update) --------------------- */

/* Ask for the versions (one round trip) and, when their versions moved, the
 * cluster info and the guest list.  A new daemon start time drops every
 * cached file.  On failure everything cached is dropped and the error is
 * returned. */
int cfs_update(cfs_client_t *h);
/* The daemon's start time as of the last cfs_update (0: none yet). */
uint32_t cfs_starttime(cfs_client_t *h);
/* The cluster info / guest list JSON of the last cfs_update; borrowed until
 * the next cfs_update on @h; NULL if unknown. */
const char *cfs_cluster_info_json(cfs_client_t *h);
const char *cfs_guest_list_json(cfs_client_t *h);

/* --- registered files, read through a version cache ---------------------- */

/* The names that may be registered (client.md §4.1), NULL-terminated: the
 * observed paths and the guest tags "/qemu-server/", "/lxc/", "/openvz/". */
extern const char *const cfs_observed_files[];

typedef struct cfs_file_ops {
	/* @raw is NULL and @exists 0 for a missing file.  Store the parsed
	 * object in *@obj (may be NULL).  Return 0 or a negative errno. */
	int (*parse)(const char *fullpath, const char *raw, size_t len, int exists, void **obj,
		     void *ud);
	/* Fill @raw (malloc'ed data) from @obj; NULL = read-only file. */
	int (*write)(const char *fullpath, const void *obj, cfs_buf_t *raw, void *ud);
	/* Free a parsed object (NULL = nothing to free). */
	void (*free)(void *obj, void *ud);
	void *ud;
} cfs_file_ops_t;

/* A parsed object shared by the cache and its readers; immutable. */
typedef struct cfs_obj cfs_obj_t;
const void *cfs_obj_get(const cfs_obj_t *o);
void cfs_obj_unref(cfs_obj_t *o); /* NULL-safe */

#define CFS_REGISTER_ANY_NAME 1 /* allow a name that is not observed (tests) */
/* @ops is copied.  CFS_E_UNKNOWN_FILE, CFS_E_ALREADY_REGISTERED. */
int cfs_register_file(cfs_client_t *h, const char *name, const cfs_file_ops_t *ops, int flags);
/* The version a read of @name is cached by: the per-path counter, or for
 * nodes/<node>/<type>/<vmid>.conf the guest's version in the guest list.
 * Returns 1 and sets *version, 0 if unknown, or CFS_E_UNKNOWN_FILE when
 * nothing is registered for @name. */
int cfs_file_version(cfs_client_t *h, const char *name, uint64_t *version);
/* The parsed content of @name (a new reference in *obj).  It is fetched
 * and parsed again only if there is no cached object, the version is
 * unknown or 0, or it differs from the cached one (client.md §4.4). */
int cfs_read_file(cfs_client_t *h, const char *name, cfs_obj_t **obj);
/* Run the writer and write the result atomically through the mount:
 * "<name>.tmp.<pid>.<n>" (O_EXCL), then rename over @name.  The cache entry
 * is marked stale first (the next read fetches and parses).  No lock is
 * taken: wrap read-modify-write in cfs_lock. */
int cfs_write_file(cfs_client_t *h, const char *name, const void *obj);
/* Write @len bytes to @path below the mount, atomically as cfs_write_file
 * does, without the registry (the counterpart of cfs_get_config). */
int cfs_write_config(cfs_client_t *h, const char *path, const void *data, size_t len);

/* --- cluster locks (client.md §5) ----------------------------------------- */

typedef int (*cfs_locked_fn)(cfs_client_t *h, void *arg);
/* Take priv/lock/@lockid (mkdir) within @timeout_s seconds (0 = 10), with
 * the original's back-off and an unlock request for an expired holder
 * before each retry; then cfs_update, run @fn, and always release (rmdir).
 * Returns what @fn returns, CFS_E_CMD_TIMEOUT if @fn returned after the
 * 60 s budget (another node may have broken the lock at 120 s), or a
 * locking error (CFS_E_LOCK_TIMEOUT, CFS_E_NOQUORUM, CFS_E_NOT_MOUNTED)
 * with "cfs-lock '<id>' error: ..." in cfs_last_error.  No signals are
 * used; a hung mount blocks the mkdir. */
int cfs_lock(cfs_client_t *h, const char *lockid, int timeout_s, cfs_locked_fn fn, void *arg);
/* cfs_lock on "file-<filename>" with '.' and '/' made '_'; only observed
 * files (CFS_E_UNKNOWN_FILE). */
int cfs_lock_file(cfs_client_t *h, const char *filename, int timeout_s, cfs_locked_fn fn,
		  void *arg);
/* The lock id of @filename into @buf; -ENAMETOOLONG if it does not fit. */
int cfs_lockid_for_file(const char *filename, char *buf, size_t size);
/* Milliseconds left of the 60 s budget of the lock whose callback runs on
 * @h (negative once passed); 0 outside a callback. */
int64_t cfs_lock_remaining_ms(cfs_client_t *h);

/* --- change watch (ours; an original daemon answers -EOPNOTSUPP) --------- *
 *
 * A watch names a path (or "" for the whole tree) and the version the
 * caller knows: the entry's version (0: no such entry) or the tree's.  The
 * daemon sends one notice once the version differs, then forgets the watch.
 * Notices arrive on the handle's connection; poll cfs_watch_fd() for input
 * or block in cfs_watch_read().  Give watching a handle of its own: a
 * reconnect (after a daemon restart) loses the watches, and reads then
 * return -ENOTCONN so that the caller adds them again. */
typedef struct cfs_watch_event {
	uint32_t id;
	uint64_t version; /* the version when the notice was sent */
} cfs_watch_event_t;

/* Returns the watch id (> 0), or 0 when the version differs already (no
 * watch made).  *@current (may be NULL) gets the version now. */
int cfs_watch_add(cfs_client_t *h, const char *path, uint64_t known, uint64_t *current);
/* Forget watch @id (0: all of them). */
int cfs_watch_remove(cfs_client_t *h, uint32_t id);
/* A file descriptor that becomes readable when a notice may be waiting. */
int cfs_watch_fd(cfs_client_t *h);
/* The next notice: 1 with *@ev set, 0 when none came within @timeout_ms
 * (-1: wait for ever, 0: do not wait). */
int cfs_watch_read(cfs_client_t *h, int timeout_ms, cfs_watch_event_t *ev);
/* Block until the version of @path differs from *@version or @timeout_ms
 * passes (-1: for ever): 1 (changed, *@version updated) or 0 (timed out). */
int cfs_watch_wait(cfs_client_t *h, const char *path, uint64_t *version, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* CFS_H */
