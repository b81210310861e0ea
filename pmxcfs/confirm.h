/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * confirm.h: a quorum's word that a change is kept (docs/cluster.md,
 * "Confirmed writes").
 *
 * CPG's agreed order does not promise that a message this node delivered
 * reached anyone else: a change sent just before the node is cut off can
 * be delivered to it alone (in its transitional configuration).  So before
 * a write is answered, the daemons that applied it say so in a group of
 * their own, `pmxcfs_confirm_v1`, which the original never joins: each
 * member multicasts, after each batch it applied, the highest count it
 * applied per sender.  The sender answers once it and the nodes that
 * confirmed hold a quorum of votes.  A change a quorum holds is in every
 * later quorate configuration, so its write is never undone.
 *
 * This module is the bookkeeping and the wire format, without corosync
 * (cluster.c sends and receives, and decides when to stop waiting).
 *
 * The message, little endian: u32 magic CONFIRM_MAGIC, u32 version (1),
 * u32 n (at most CONFIRM_MAX_ENTRIES), then n entries of u32 nodeid,
 * u32 pid, u64 count: "I applied the messages of that sender up to count".
 */
#pragma once
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define CONFIRM_GROUP_NAME     "pmxcfs_confirm_v1"
#define CONFIRM_GROUP_NAME_LEN (sizeof(CONFIRM_GROUP_NAME) - 1)
#define CONFIRM_MAGIC          0x4643584dU /* "MXCF" */
#define CONFIRM_VERSION        1
#define CONFIRM_HEADER_LEN     12
#define CONFIRM_ENTRY_LEN      16
#define CONFIRM_MAX_ENTRIES    1024

typedef struct confirm confirm_t;

/* One daemon (node id and pid) as one 64-bit hash key. */
static inline uint64_t confirm_key(uint32_t nodeid, uint32_t pid)
{
	return (uint64_t)nodeid << 32 | pid;
}

typedef struct confirm_entry {
	uint32_t nodeid;
	uint32_t pid;
	uint64_t count;
} confirm_entry_t;

/* For the daemon @nodeid/@pid (its dcdb engine's identity). */
confirm_t *confirm_new(uint32_t nodeid, uint32_t pid);
confirm_t *confirm_free(confirm_t *c); /* NULL-safe */

/* --- what this node applied (the confirming side) --- */

/* The message @count of @nodeid/@pid was applied here. */
void confirm_applied(confirm_t *c, uint32_t nodeid, uint32_t pid, uint64_t count);
/* The message for what was applied since the last one (a new GBytes), or
 * NULL when there is nothing new.  @all: every sender known, new or not
 * (after a send failed, or for a member that just joined). */
GBytes *confirm_take(confirm_t *c, bool all);

/* --- what others confirmed of ours (the sending side) --- */

/* Decode a message; 0, or -EINVAL (bad magic, length or count of entries)
 * or -EPROTONOSUPPORT (another version).  @out gets the entries (may be
 * NULL: check only); free with g_free. */
int confirm_decode(const void *msg, size_t len, confirm_entry_t **out, size_t *n_out);
/* A message from @from (a node id): record its word on our messages.
 * 0 or the decode error. */
int confirm_receive(confirm_t *c, uint32_t from, const void *msg, size_t len);
/* The highest count of ours that node @nodeid confirmed (0: none). */
uint64_t confirm_confirmed(const confirm_t *c, uint32_t nodeid);
/* The votes that hold our message @count: our own (we applied it) plus
 * those of each node that confirmed it; @votes maps node ids
 * (GUINT_TO_POINTER) to votes, a node missing there has none. */
uint32_t confirm_votes(const confirm_t *c, uint64_t count, GHashTable *votes);
