/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dfsm.h: the distributed state machine of cluster.md §1, without corosync.
 *
 * The engine is fed what CPG delivers (membership changes and messages, in
 * CPG's agreed order) and answers through callbacks: bytes to multicast,
 * and the application's hooks (deliver a change, give the state, pick the
 * leader, apply the leader's updates, commit).  It holds no handle, starts
 * no thread and never blocks, so the unit tests run many engines on one
 * simulated bus, and the daemon's loop runs one per CPG group (dcdb and
 * kvstore) with the corosync calls in its glue.
 *
 * Writes answer asynchronously: dfsm_send_normal() returns the message's
 * count, and the `result` hook reports the local result once this node has
 * applied its own message at its place in the total order (§1.11), or that
 * it never will (the engine restarted or the message was lost).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dfsm-proto.h"

typedef enum {
	DFSM_MODE_START = 0,
	DFSM_MODE_START_SYNC = 1,
	DFSM_MODE_SYNCED = 2,
	DFSM_MODE_UPDATE = 3,
	DFSM_MODE_LEAVE = 253,         /* error: leave the group, restartable */
	DFSM_MODE_VERSION_ERROR = 254, /* a newer protocol was seen */
	DFSM_MODE_ERROR = 255,         /* internal error, not restartable */
} dfsm_mode_t;

#define DFSM_MODE_IS_ERROR(m) ((m) >= 128)

typedef struct dfsm_member {
	uint32_t nodeid;
	uint32_t pid;
} dfsm_member_t;

/* One member during a state exchange (§1.6), sorted by nodeid, pid. */
typedef struct dfsm_node {
	uint32_t nodeid;
	uint32_t pid;
	bool synced;
	uint8_t *state; /* its STATE payload, once received */
	size_t state_len;
} dfsm_node_t;

typedef struct dfsm_sync_info {
	dfsm_node_t *nodes;
	size_t n_nodes;
	dfsm_node_t *local; /* our entry; NULL if we are not a member */
} dfsm_sync_info_t;

typedef struct dfsm_callbacks {
	/* Multicast @iov (agreed order) to the group.  0 or a negative errno;
	 * the glue retries TRY_AGAIN itself (§1.11). */
	int (*send)(void *ud, const struct iovec *iov, unsigned n_iov);
	/* Apply a NORMAL message.  Return < 0 for a fatal error (the node
	 * leaves); *msg_result is what the sender's request gets. */
	int (*deliver)(void *ud, uint32_t nodeid, uint32_t pid, uint16_t subtype, uint32_t time,
		       const uint8_t *payload, size_t len, int *msg_result);
	/* The membership as corosync reported it (may be NULL). */
	void (*confchg)(void *ud, const dfsm_member_t *members, size_t n);
	/* Our state for the exchange (a new GBytes); NULL fails. */
	GBytes *(*get_state)(void *ud);
	/* Every member's state is in @si: mark members synced (the leader
	 * and those equal to it).  < 0 leaves. */
	int (*process_state_update)(void *ud, dfsm_sync_info_t *si);
	/* An UPDATE from the leader (only while we are in mode UPDATE). */
	int (*process_update)(void *ud, dfsm_sync_info_t *si, uint32_t nodeid, uint32_t pid,
			      const uint8_t *payload, size_t len);
	/* UPDATE_COMPLETE: apply what process_update collected.  < 0 leaves. */
	int (*commit)(void *ud, dfsm_sync_info_t *si);
	/* The checksum of our data for verification (NULL: no verification). */
	int (*checksum)(void *ud, uint8_t csum[MEMDB_CSUM_LEN]);
	/* Entered mode SYNCED (may be NULL). */
	void (*synced)(void *ud);
	/* The state exchange is over or abandoned: free what the app kept. */
	void (*cleanup)(void *ud, dfsm_sync_info_t *si);
	/* The outcome of our message @count: @processed with the app's
	 * @msg_result, or not (aborted or lost). */
	void (*result)(void *ud, uint64_t count, bool processed, int msg_result);
	/* Another member's message @count was applied here (deliver said
	 * so); may be NULL.  Confirmed writes (confirm.h) are built on it. */
	void (*applied)(void *ud, uint32_t nodeid, uint32_t pid, uint64_t count);
	/* A line for the log (level as syslog). */
	void (*log)(void *ud, int level, const char *msg);
} dfsm_callbacks_t;

typedef struct dfsm dfsm_t;

dfsm_t *dfsm_new(uint32_t protocol_version, uint32_t nodeid, uint32_t pid,
		 const dfsm_callbacks_t *cb, void *ud);
dfsm_t *dfsm_free(dfsm_t *d); /* aborts outstanding results; NULL-safe */

/* (Re)start: mode START, queues emptied, outstanding results aborted.
 * -EPERM if the mode is not restartable (ERROR, VERSION_ERROR). */
int dfsm_restart(dfsm_t *d);

/* What CPG delivered. */
void dfsm_confchg(dfsm_t *d, const dfsm_member_t *members, size_t n, size_t n_joined);
void dfsm_deliver(dfsm_t *d, uint32_t nodeid, uint32_t pid, const uint8_t *msg, size_t len);

/* Send a NORMAL message; *ret_count gets its count.  With @want_result
 * the `result` hook reports its outcome later.  The send's error, or
 * -ENOTCONN in an error mode. */
int dfsm_send_normal(dfsm_t *d, uint16_t subtype, const void *payload, size_t len, bool want_result,
		     uint64_t *ret_count);
/* Send a state message (UPDATE, UPDATE_COMPLETE) stamped with the current
 * sync epoch: for the application's leader. */
int dfsm_send_state_msg(dfsm_t *d, uint16_t type, const void *payload, size_t len);

/* The hourly verification (§1.12): send VERIFY_REQUEST if we are the
 * lowest member, synced, and the last round finished. */
void dfsm_verify_tick(dfsm_t *d);

/* The glue cannot deliver what the engine sent (corosync refused it past
 * the bound): mode LEAVE, outstanding results aborted.  The glue leaves the
 * group and restarts the engine later. */
void dfsm_leave(dfsm_t *d);
/* In an error mode no message of ours will be applied any more: tell the
 * waiting requests now rather than at the restart. */
void dfsm_abort_results(dfsm_t *d);

/* A serious local error (e.g. the database cannot be written): mode
 * ERROR, which leaves the group for good. */
void dfsm_set_error(dfsm_t *d);

dfsm_mode_t dfsm_mode(const dfsm_t *d);
bool dfsm_is_member(const dfsm_t *d);
uint32_t dfsm_lowest_nodeid(const dfsm_t *d);
/* Messages waiting in the queues (tests). */
size_t dfsm_queued(const dfsm_t *d);
