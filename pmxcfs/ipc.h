/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ipc.h: the `pve2` IPC service (libqb, shared memory), run from the
 * daemon's GLib loop.  Request formats: ipc-proto.h.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "memdb.h"
#include "status.h"

typedef struct ipc ipc_t;

/* Start serving @name ("pve2") on @ctx (NULL = default).  Clients of group
 * @gid (www-data) read only; uid 0 with gid 0 read and write; others are
 * refused.  On failure *ret_err gets a message. */
int ipc_start(const char *name, memdb_t *mdb, status_t *st, gid_t gid, GMainContext *ctx,
	      ipc_t **ret, char **ret_err);
ipc_t *ipc_stop(ipc_t *ipc); /* NULL-safe */
