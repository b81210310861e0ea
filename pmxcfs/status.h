/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * status.h: node status and the texts of the generated files.
 *
 * Holds what is not in the tree: the start time, the node name, quorum,
 * and the cluster log, and renders the JSON of `.version`, `.members`,
 * `.vmlist` and `.clusterlog` (cluster.md §3.6-§3.10) with the original's
 * structure, escaped by a JSON library.  Texts are built when asked for, so
 * they are always current, except the RRD dump: like the original's it is
 * rebuilt at most every 2 s (§3.9).
 *
 * The cluster log is the original's ring (clog.h); the functions below the
 * "replication" mark give a replication layer (kvstore.c) its bytes, and
 * the key/value functions keep this node's store, every other node's (as
 * their UPDATEs tell), the RRD data of all, and each node's address.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "memdb.h"

typedef struct status status_t;

status_t *status_new(const char *nodename, memdb_t *mdb);
status_t *status_free(status_t *st);

const char *status_nodename(status_t *st);

/* Quorum: local mode is always quorate.  corosync's quorum is what
 * `.members` shows and what gates applying a change (as the original). */
void status_set_quorate(status_t *st, bool quorate);
bool status_quorate(status_t *st);

/* Do the daemons of the tree's group hold a quorum of votes themselves
 * (cluster.c decides; true in local mode)?  Writes need both quorums:
 * status_writable() is what the filesystem's modes and EACCES follow. */
void status_set_group_quorate(status_t *st, bool quorate);
bool status_group_quorate(status_t *st);
bool status_writable(status_t *st);

/* Add a cluster log entry (priority 0..7, else -EINVAL).  0 also when the
 * duplicate filter (cluster.md §3.10) dropped it; the hook below sees it. */
int status_clog_add(status_t *st, const char *node, const char *user, const char *tag, uint32_t pid,
		    uint8_t priority, uint32_t time, const char *msg);

/* --- cluster log replication (cluster.md §3.3, §3.4, §3.10) --------------
 *
 * The hook gets the bytes of every entry status_clog_add packed (the kvstore
 * LOG payload to send; borrowed for the call); the startup entry is not
 * passed, the original keeps it local too.  NULL removes the hook. */
typedef void (*status_clog_hook_t)(void *data, GBytes *entry);
void status_set_clog_hook(status_t *st, status_clog_hook_t fn, void *data);

/* A LOG payload from a peer: inserted through the duplicate filter.
 * 1 inserted, 0 dropped as a duplicate, -EINVAL/-EPROTO malformed (logged). */
int status_clog_receive(status_t *st, const void *data, size_t len);

/* Our STATE payload: the ring, sorted and compacted first (a new reference;
 * CLOG_DEFAULT_SIZE bytes). */
GBytes *status_clog_state(status_t *st);

/* After a state exchange: merge the members' states, @count of them in
 * member order, into our log.  @states[@local_index] stands for our own log
 * and is not read; NULL or malformed states count as missing (malformed ones
 * are logged).  Returns the number of entries kept, or -EINVAL. */
int status_clog_merge(status_t *st, GBytes *const *states, size_t count, size_t local_index);

/* Key/value status (cluster.md §3.2, local part): "rrd/<key>" updates the
 * RRD dump, "nodeip" the node's address, anything else the node's own kv
 * store (len 0 deletes; a replaced key's version moves).  -EFBIG over
 * 32 KiB, -EINVAL for a key of 256 bytes or more or a malformed rrd/nodeip
 * value.  What is accepted goes to the kv hook (the kvstore UPDATE). */
int status_kv_set(status_t *st, const char *key, const void *value, size_t len);
typedef void (*status_kv_hook_t)(void *data, const char *key, const void *value, size_t len);
void status_set_kv_hook(status_t *st, status_kv_hook_t fn, void *data);
/* Every key of this node's own store (not rrd/, not nodeip): what a
 * state exchange sends again (§3.4). */
void status_kv_local_each(status_t *st, status_kv_hook_t fn, void *data);
/* An UPDATE from node @nodeid (§3.2, remote part): rrd/ into the shared
 * RRD data, nodeip as that node's address, anything else into that node's
 * store.  -ENOENT if @nodeid is not in the cluster info (ignored), -EFBIG,
 * -EINVAL as above. */
int status_kv_receive(status_t *st, uint32_t nodeid, const char *key, const void *value,
		      size_t len);
/* The value of @key on @node ("" or NULL = this node): a new reference in
 * *ret, or -ENOENT. */
int status_kv_get(status_t *st, const char *node, const char *key, GBytes **ret);

/* --- cluster info (cluster.md §3.6, §5.2) ---------------------------------
 *
 * The configured nodes as cmap lists them; "online" is group membership,
 * set separately.  A new info keeps the online flags of nodes by nodeid and
 * bumps the info version (also bumped by online and address changes). */
typedef struct status_node {
	const char *name;
	uint32_t nodeid;
	uint32_t votes;
} status_node_t;
void status_set_cluster_info(status_t *st, const char *cluster_name, uint64_t config_version,
			     const status_node_t *nodes, size_t n);
/* The members of the group that decides "online" (sorted or not). */
void status_set_online(status_t *st, const uint32_t *nodeids, size_t n);
/* The address shown for node @name (NULL forgets it). */
void status_set_node_ip(status_t *st, const char *name, const char *ip);
const char *status_node_ip(status_t *st, const char *name); /* NULL: none */
/* Is @nodeid in the cluster info? (true when there is no info) */
bool status_node_known(status_t *st, uint32_t nodeid);
uint32_t status_clinfo_version(status_t *st);

/* Generated texts (g_free). */
char *status_version_json(status_t *st);
char *status_members_json(status_t *st);
char *status_vmlist_json(status_t *st);
/* newest @max entries (0 = 50), only those of @user if not NULL */
char *status_clusterlog_json(status_t *st, unsigned max, const char *user);
/* "<key>:<data>\n" per RRD entry younger than 300 s, rebuilt at most every
 * 2 s (the same text in between). */
char *status_rrd_text(status_t *st);

/* Tests: the monotonic clock, in microseconds, of the RRD data and its
 * dump cache (NULL = the real one). */
void status_set_clock(status_t *st, int64_t (*now_us)(void));
