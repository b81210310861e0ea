/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lock.c: cluster-wide locks (client.md §5): a directory priv/lock/<id>
 * made with mkdir, which only one node's request wins.
 *
 * DESIGN
 * - The algorithm of PVE::Cluster::cfs_lock: a 10 s default timeout, a
 *   back-off from 1 s down to 0.1 s, an unlock request (utime 0,0) for an
 *   expired holder before each sleep, cfs_update once held, and the lock
 *   always released (rmdir) after the callback.
 * - No alarm()/SIGALRM in a library: the callback cannot be interrupted, so
 *   its 60 s budget is exposed (cfs_lock_remaining_ms) and a callback that
 *   returns late gets CFS_E_CMD_TIMEOUT.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfs.h"
#include "internal.h"

#define LOCK_DEFAULT_TIMEOUT 10    /* seconds (client.md §5.2) */
#define LOCK_CMD_BUDGET_MS   60000 /* half of the 120 s lock lifetime */
#define LOCK_ID_MAX          255

static void nap_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int64_t cfs_lock_remaining_ms(cfs_client_t *h)
{
	return h && h->lock_deadline_ms ? h->lock_deadline_ms - cfs_now_ms() : 0;
}

/* mkdir with the original's back-off; 0 when held */
static int acquire(cfs_client_t *h, const char *dir, int timeout_s)
{
	int slept_ms = 0;
	for (;;) {
		if (mkdir(dir, 0755) == 0)
			return 0;
		int err = errno;
		int remaining = timeout_s - slept_ms / 1000;
		if (remaining < 1)
			remaining = 1;
		int nap = (remaining < 10 ? remaining : 10) * 100;
		if ((slept_ms + nap) / 1000 >= timeout_s)
			return err == EACCES ? CFS_E_NOQUORUM : CFS_E_LOCK_TIMEOUT;
		/* ask for the release of a holder past its lifetime; the
		 * daemon refuses the change itself (EACCES), as intended */
		struct timespec zero[2] = {{0, 0}, {0, 0}};
		(void)utimensat(AT_FDCWD, dir, zero, 0);
		nap_ms(nap);
		slept_ms += nap;
	}
}

int cfs_lock(cfs_client_t *h, const char *lockid, int timeout_s, cfs_locked_fn fn, void *arg)
{
	if (!h || !lockid || !lockid[0] || strlen(lockid) > LOCK_ID_MAX || strchr(lockid, '/') ||
	    !fn)
		return -EINVAL;
	if (timeout_s <= 0)
		timeout_s = LOCK_DEFAULT_TIMEOUT;
	char locks[4096], dir[4096 + LOCK_ID_MAX + 2];
	snprintf(locks, sizeof(locks), "%s/priv/lock", h->base_dir);
	snprintf(dir, sizeof(dir), "%s/%s", locks, lockid);

	/* as make_path: priv and priv/lock may be missing on a new tree;
	 * each try is a round trip through the mount, so only when needed */
	struct stat st;
	if (stat(locks, &st) < 0 && errno == ENOENT) {
		char priv[4096 + 8];
		snprintf(priv, sizeof(priv), "%s/priv", h->base_dir);
		(void)mkdir(priv, 0700);
		(void)mkdir(locks, 0755);
	}
	if (stat(locks, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cfs_set_error(h, "cfs-lock '%s' error: %s", lockid,
			      cfs_strerror(CFS_E_NOT_MOUNTED));
		return CFS_E_NOT_MOUNTED;
	}
	int r = acquire(h, dir, timeout_s);
	if (r < 0) {
		cfs_set_error(h, "cfs-lock '%s' error: %s", lockid, cfs_strerror(r));
		return r;
	}

	int64_t outer = h->lock_deadline_ms; /* locks nest */
	h->lock_deadline_ms = cfs_now_ms() + LOCK_CMD_BUDGET_MS;
	(void)cfs_update(h); /* the code under the lock sees the newest versions */
	r = fn(h, arg);
	bool late = cfs_now_ms() > h->lock_deadline_ms;
	h->lock_deadline_ms = outer;

	if (rmdir(dir) < 0 && errno != ENOENT && r >= 0) {
		r = -errno;
		cfs_set_error(h, "cfs-lock '%s' error: cannot release: %s", lockid, strerror(-r));
	}
	if (late && r >= 0) {
		cfs_set_error(h, "'%s'-locked command timed out - aborting", lockid);
		r = CFS_E_CMD_TIMEOUT;
	}
	return r;
}

int cfs_lockid_for_file(const char *filename, char *buf, size_t size)
{
	if (!filename || !buf)
		return -EINVAL;
	int n = snprintf(buf, size, "file-%s", filename);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	for (char *p = buf; *p; p++) {
		if (*p == '.' || *p == '/')
			*p = '_';
	}
	return 0;
}

int cfs_lock_file(cfs_client_t *h, const char *filename, int timeout_s, cfs_locked_fn fn, void *arg)
{
	if (!h || !filename)
		return -EINVAL;
	if (filename[0] == '/' || !cfs_observed(filename)) {
		cfs_set_error(h, "cfs_lock_file: unknown file '%s'", filename);
		return CFS_E_UNKNOWN_FILE;
	}
	char id[LOCK_ID_MAX + 1];
	int r = cfs_lockid_for_file(filename, id, sizeof(id));
	if (r < 0)
		return r;
	return cfs_lock(h, id, timeout_s, fn, arg);
}
