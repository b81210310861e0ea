/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cluster.h: cluster mode: corosync's CPG, quorum and cmap on the daemon's
 * GLib loop, feeding the replicated database (dcdb.c) and the status.
 *
 * Everything here runs on the main loop; no call blocks on corosync.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dfsm-proto.h"
#include "memdb.h"
#include "status.h"

typedef struct cluster cluster_t;

typedef struct cluster_options {
	const char *corosync_conf; /* the host's file, kept in step (§2.11) */
	const char *node_ip;       /* this node's address for .members (may be NULL) */
	/* seconds before a group left on an error is joined again (default 5) */
	unsigned rejoin_delay;
	/* seconds between checksum rounds on the lowest node (default 3600) */
	unsigned verify_interval;
	/* bound on corosync refusing a message (TRY_AGAIN), and on corosync
	 * delivering nothing while changes wait, in ms (default 10000) */
	unsigned send_bound_ms;
	/* quorum moved (the filesystem's modes depend on it) */
	void (*quorum_changed)(void *data, bool quorate);
	void *data;
} cluster_options_t;

cluster_t *cluster_new(memdb_t *mdb, status_t *st, const cluster_options_t *opts);
/* Leave the groups and disconnect.  Outstanding changes get -EBUSY. */
cluster_t *cluster_free(cluster_t *cl);

/* The outcome of a submitted change: what this node's memdb said when it
 * applied it at its place in the cluster's order (a byte count or 0), or
 * -EBUSY if it never will, -EPERM if it could not apply it. */
typedef void (*cluster_done_fn)(void *data, int result);

/* Send one change.  0: @done is called exactly once, later, from the loop;
 * < 0 (-EACCES without quorum, -EBUSY when it cannot be sent): never. */
int cluster_submit(cluster_t *cl, const dcdb_msg_t *m, cluster_done_fn done, void *data);
/* The unlock request of §2.10 (asynchronous; skipped without quorum). */
int cluster_unlock_request(cluster_t *cl, const char *path, const uint8_t csum[MEMDB_CSUM_LEN]);
/* Changes sent and not yet answered. */
unsigned cluster_outstanding(cluster_t *cl);
