/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dcdb.h: the replicated configuration database (cluster.md §2): the
 * application the DFSM engine runs for the group pve_dcdb_v1.
 *
 * It applies every delivered change to memdb with the sender as writer and
 * the message time as mtime (§2.4), gives memdb's index as its state
 * (§2.5), picks the leader and sends the entries others lack (§2.6-§2.7),
 * and on the receiving side replaces the tree in one transaction (§2.8).
 * It owns its dfsm_t; the caller feeds that engine what CPG delivers and
 * sends what its `send` hook gets.  No corosync calls here.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dfsm-proto.h"
#include "dfsm.h"
#include "memdb.h"

typedef struct dcdb dcdb_t;

typedef struct dcdb_hooks {
	/* multicast (agreed order); 0 or a negative errno */
	int (*send)(void *ud, const struct iovec *iov, unsigned n_iov);
	/* is the node quorate now? (NULL: always) */
	bool (*quorate)(void *ud);
	/* the outcome of our change @count (dcdb_send): what the FUSE
	 * request answers (§2.3): the memdb result, -EBUSY if it was never
	 * applied here, -EPERM if this node could not apply it */
	void (*result)(void *ud, uint64_t count, int result);
	/* another member's change @count was applied here (may be NULL) */
	void (*applied)(void *ud, uint32_t nodeid, uint32_t pid, uint64_t count);
	/* corosync.conf changed by a change (@ours: sent by this node) or a
	 * resync (may be NULL; the sync of §2.11 lives with the caller) */
	void (*corosync_conf_changed)(void *ud, bool ours);
	void (*log)(void *ud, int level, const char *msg);
} dcdb_hooks_t;

/* The UPDATE payload (§2.7) of memdb entry @e, appended to @out: what a
 * leader sends for each entry the others lack.  0 or -EINVAL. */
int dcdb_update_encode_entry(GByteArray *out, const memdb_entry_t *e);

dcdb_t *dcdb_new(memdb_t *mdb, uint32_t nodeid, uint32_t pid, const dcdb_hooks_t *hooks, void *ud);
dcdb_t *dcdb_free(dcdb_t *db); /* NULL-safe */
dfsm_t *dcdb_dfsm(dcdb_t *db);

/* Send one change; its result comes through the `result` hook.  -EACCES
 * when not quorate (nothing is sent), else the send's error. */
int dcdb_send(dcdb_t *db, const dcdb_msg_t *m, uint64_t *ret_count);
/* The unlock request of §2.10: asynchronous, skipped when not quorate. */
int dcdb_send_unlock_request(dcdb_t *db, const char *path, const uint8_t csum[MEMDB_CSUM_LEN]);
