/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * clog.h: the cluster log (cluster.md §3.10): a fixed-size ring of log
 * entries in the byte layout the original exchanges between nodes.
 *
 * A clog_t is one ring plus its duplicate filter.  The ring's bytes are the
 * wire format itself (the kvstore STATE payload, §3.4), so serialising is a
 * copy and a peer's state is checked once, by clog_state_decode(), and then
 * walked like our own.  Entries are read through clog_entry_t views; nothing
 * here casts bytes to structs.
 *
 * Decoders (clog_entry_decode, clog_state_decode) are pure: they never log,
 * never read outside the buffer they are given, and return 0 or a negative
 * errno: -EINVAL when the length or size header is wrong, -EPROTO when an
 * entry or the chain of entries is malformed.
 *
 * Ownership: a clog_t is single-threaded.  Views returned by iteration point
 * into the ring and are valid until the ring changes (insert, merge, state
 * encode, free).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

typedef struct clog clog_t;

/* One entry, decoded.  The strings are NUL-terminated and point into the
 * bytes the entry was decoded from (@raw). */
typedef struct clog_entry {
	uint32_t pos;  /* offset in its ring; 0 for a LOG payload */
	uint32_t prev; /* the ring's links (a LOG payload's are normally 0) */
	uint32_t next;
	uint32_t uid;
	uint32_t time;
	uint64_t node_digest;
	uint64_t ident_digest;
	uint32_t pid;
	uint8_t priority;
	const char *node;
	const char *ident;
	const char *tag;
	const char *msg;
	const uint8_t *raw; /* the entry's bytes: CLOG_ENTRY_BASE + the 4 lengths */
	uint32_t size;      /* their count */
} clog_entry_t;

/* A walk over a ring, newest entry first. */
typedef struct clog_iter {
	const uint8_t *ring; /* the ring's bytes and their count */
	uint32_t size;
	uint32_t pos;  /* entry to visit next; 0 = done */
	uint32_t head; /* the ring's newest entry when the walk began */
	uint32_t succ; /* the entry visited last (the newer neighbour) */
	bool wrapped;  /* the walk has jumped from the start to the end */
	int error;     /* negative errno once the walk met a malformed entry */
} clog_iter_t;

/* FNV-1a 64 of @len bytes (cluster.md §3.10 "Digests"). */
uint64_t clog_digest(const void *buf, size_t len);

/* --- entries ------------------------------------------------------------- */

/*
 * Pack an entry into @buf (at least CLOG_MAX_ENTRY_SIZE bytes), the way the
 * original builds one: node, ident and tag cut to 254 characters, msg
 * sanitised (quotes escaped, control characters as #NNN, non-ASCII as \uXXXX)
 * and cut so the entry fits 4096 bytes with its NUL, prev and next 0.
 * Returns the entry's size, or -EINVAL (NULL argument, priority over 7).
 */
int clog_entry_pack(uint8_t *buf, size_t buf_len, const char *node, const char *ident,
		    const char *tag, uint32_t uid, uint32_t pid, uint8_t priority, uint32_t time,
		    const char *msg);

/*
 * Decode a kvstore LOG payload (cluster.md §3.3): exactly one entry of @len
 * bytes, len == 48 + the four lengths, each string ending in NUL at its last
 * byte, every length at least 1, at most CLOG_MAX_ENTRY_SIZE bytes.  *ret
 * points into @buf.
 */
int clog_entry_decode(const uint8_t *buf, size_t len, clog_entry_t *ret);

/* --- rings --------------------------------------------------------------- */

/* An empty ring of @size bytes (0 = CLOG_DEFAULT_SIZE); NULL if @size is
 * outside [CLOG_MIN_SIZE, CLOG_MAX_SIZE].  Free with clog_free (NULL-safe;
 * returns NULL). */
clog_t *clog_new(uint32_t size);
clog_t *clog_free(clog_t *cl);

uint32_t clog_size(const clog_t *cl);

/*
 * Insert @e (its raw bytes are copied) as the newest entry, through the
 * duplicate filter: per node digest, an entry is taken only if its time is
 * later than the latest taken, or equal with a greater uid.  When the ring is
 * full the oldest entries are overwritten.  Returns 1 if inserted, 0 if the
 * filter dropped it, -EINVAL if @e cannot be an entry.
 */
int clog_insert(clog_t *cl, const clog_entry_t *e);

/*
 * Pack an entry with the next uid of @cl (uids start at 1) and insert it.
 * If @ret_entry is not NULL it receives the packed bytes (the LOG payload to
 * send to peers) whether or not the filter kept the entry.  Returns 1 or 0
 * as clog_insert, or -EINVAL (nothing packed, no uid used).
 */
int clog_add(clog_t *cl, const char *node, const char *ident, const char *tag, uint32_t pid,
	     uint8_t priority, uint32_t time, const char *msg, GBytes **ret_entry);

/* Walk @cl newest first.  clog_iter_next returns 1 and fills *ret, 0 at the
 * end, or a negative errno if the ring is malformed (never for rings made by
 * clog_new or clog_state_decode). */
void clog_iter_init(clog_iter_t *it, const clog_t *cl);
int clog_iter_next(clog_iter_t *it, clog_entry_t *ret);

/*
 * The JSON of `.clusterlog` / GET_CLUSTER_LOG (cluster.md §3.10): the
 * original's structure, newest first, at most @max entries (0 gives none),
 * only those whose ident digest matches @user if @user is neither NULL nor
 * "".  Every string is escaped by json-glib; msg is shown as the original's
 * JSON would decode it (\" and \uXXXX read back).  g_free the result.
 */
char *clog_dump_json(const clog_t *cl, const char *user, unsigned max);

/* --- state exchange ------------------------------------------------------ */

/*
 * The kvstore STATE payload (cluster.md §3.4): the ring is first sorted by
 * (time, node digest, uid) and compacted in place, as the original does
 * before sending, then copied.  clog_size(cl) bytes.
 */
GBytes *clog_state_encode(clog_t *cl);

/*
 * Check a ring received from a peer and copy it into a new clog_t (*ret,
 * with an empty duplicate filter).  Accepts what the original can send: size
 * field == @len within [CLOG_MIN_SIZE, CLOG_MAX_SIZE]; every entry the
 * original's walk would visit inside the buffer, 8-aligned, its next field
 * its aligned end, its older neighbour ending where it starts, at most one
 * wrap; node, ident and tag NUL-terminated at their last byte, msg somewhere
 * inside the entry's bytes (an entry the original cut at 4096 keeps its NUL
 * in the 4 trailing bytes).
 */
int clog_state_decode(const uint8_t *buf, size_t len, clog_t **ret);

/*
 * Merge rings after a membership change (cluster.md §3.10 "Merge").
 * @logs has @count slots in member order; the slot @local_index stands for
 * @cl itself (its content is ignored and may be NULL); NULL slots are
 * missing states.  Entries are taken newest time first (on equal times the
 * lowest slot first), equal (time, node digest, uid) keys once, until
 * CLOG_MERGE_LIMIT bytes; they replace @cl's ring (now CLOG_DEFAULT_SIZE
 * bytes) oldest first, and the duplicate filter is rebuilt from them.
 * Returns the number of entries taken, or -EINVAL.
 */
int clog_merge(clog_t *cl, clog_t *const *logs, size_t count, size_t local_index);
