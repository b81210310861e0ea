/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * kvstore.h: the status group pve_kvstore_v1 (cluster.md §3.1-§3.4): the
 * application the DFSM engine runs for what is not in the tree.
 *
 * Every node broadcasts its key/value status (UPDATE: kv/..., rrd/...,
 * nodeip, tasklist) and its new cluster-log entries (LOG); peers keep the
 * values per sender (status.c).  On a membership change the members
 * exchange their whole cluster logs as their states and merge them; there
 * is no leader and no UPDATE transfer, every member is synced at once and
 * sends its own keys again.  Membership of this group is what `.members`
 * shows as "online".
 *
 * It owns its dfsm_t and hooks itself into the status (the kv and
 * cluster-log hooks) for its lifetime; the caller feeds the engine what
 * CPG delivers and sends what the `send` hook gets.  No corosync calls.
 */
#pragma once

#include <stdint.h>
#include <sys/uio.h>

#include "dfsm.h"
#include "status.h"

typedef struct kvstore kvstore_t;

typedef struct kvstore_hooks {
	/* multicast (agreed order); 0 or a negative errno */
	int (*send)(void *ud, const struct iovec *iov, unsigned n_iov);
	void (*log)(void *ud, int level, const char *msg);
} kvstore_hooks_t;

kvstore_t *kvstore_new(status_t *st, uint32_t nodeid, uint32_t pid, const kvstore_hooks_t *hooks,
		       void *ud);
kvstore_t *kvstore_free(kvstore_t *kv); /* unhooks the status; NULL-safe */
dfsm_t *kvstore_dfsm(kvstore_t *kv);
