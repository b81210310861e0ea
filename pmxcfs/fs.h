/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fs.h: the mounted tree, served with the FUSE low-level API from the
 * daemon's GLib main loop.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cluster.h"
#include "memdb.h"
#include "status.h"

typedef struct fs fs_t;

typedef struct fs_options {
	const char *mountpoint;
	gid_t gid;                  /* group of every file (www-data) */
	bool no_invalidate;         /* tests only: the negative control of the cache tests */
	bool guard_stderr;          /* the mount guard (guard.h) logs to stderr too */
	cluster_t *cluster;         /* cluster mode: changes go through it (NULL: local) */
	void (*exited)(void *data); /* the kernel ended the session */
	void *exited_data;
} fs_options_t;

/* Mount at opts->mountpoint and serve from @ctx (NULL = default context).
 * On failure *ret_err gets a message. */
int fs_mount(memdb_t *mdb, status_t *st, const fs_options_t *opts, GMainContext *ctx, fs_t **ret,
	     char **ret_err);
/* Quorum moved: the kernel's cached modes are stale. */
void fs_quorum_changed(fs_t *fs);
/* Commit what open handles hold (in cluster mode waiting a bounded time
 * for the answers), unmount, free.  NULL-safe. */
fs_t *fs_unmount(fs_t *fs);
