/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dfsm-proto.h: the bytes pmxcfs exchanges through corosync CPG
 * (cluster.md §1-§3): DFSM headers, the dcdb and kvstore payloads, the
 * update transfer and the CPG group names.
 *
 * Every function is pure: no corosync, no logging, no global state.  The
 * DFSM engine, dcdb and the kvstore call these; the fuzz target and the unit
 * tests call them directly.  Byte layouts, what each decoder rejects and how
 * we differ from the original are in docs/wire.md.
 *
 * Decoders take (buf, len, ret) and return 0 or a negative errno.  They
 * never read outside [buf, buf + len) and never write to buf.  Decoded
 * strings and data point into buf: they are valid as long as buf is.  On
 * failure *ret holds nothing useful (except where a function says so).
 * The errors mean:
 *
 *   -EMSGSIZE  the bytes do not match the lengths: shorter than the fixed
 *              part, longer or shorter than the length fields add up to, or
 *              a length over its limit (1 MiB of file data, 32 KiB of kv
 *              value, 4 KiB of log entry).
 *   -EPROTO    the layout is broken: an unknown type or subtype, a string
 *              without its NUL at the end or with one inside, a field the
 *              sender always sets differently (see docs/wire.md).
 *   -EINVAL    well framed, but the content can never be applied: a
 *              required path missing, a ".." component, a bad entry name.
 *              The original would parse it and then fail the operation on
 *              every node without changing anything (docs/wire.md says
 *              what a caller may do instead of leaving the group).
 *
 * Encoders append to a GByteArray and return 0 or a negative errno; on
 * failure they append nothing.  They refuse what the decoders refuse, so
 * we never send a message our own decoder (or the original's) would reject.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "memdb.h"

/* --- CPG group names (§1.1) ---------------------------------------------- */

/* What corosync's struct cpg_name carries: the length counts the NUL. */
typedef struct dfsm_group_name {
	uint32_t length;
	char value[DFSM_GROUP_NAME_MAX];
} dfsm_group_name_t;

/* Fill @ret for @name (length = strlen + 1, the rest of value zeroed).
 * -EINVAL for an empty name or one that does not fit with its NUL. */
int dfsm_group_name_init(dfsm_group_name_t *ret, const char *name);
/* Does the (length, value) corosync reported name the group @name? */
bool dfsm_group_name_is(uint32_t length, const char *value, const char *name);

/* --- DFSM headers and messages (§1.2-§1.4) ------------------------------- */

typedef struct dfsm_epoch {
	uint32_t epoch; /* the creator's local counter */
	uint32_t time;
	uint32_t nodeid;
	uint32_t pid;
} dfsm_epoch_t;

/* One DFSM message.  Which fields count depends on the type. */
typedef struct dfsm_msg {
	uint16_t type;    /* DFSM_MSG_* */
	uint16_t subtype; /* NORMAL: the application's type; state messages: 0 */
	uint32_t protocol_version;
	uint32_t time;          /* sender's time(NULL) */
	uint32_t reserved;      /* received as is; always sent as 0 */
	uint64_t count;         /* NORMAL: the sender's message counter */
	dfsm_epoch_t epoch;     /* types 1..6 */
	const uint8_t *payload; /* after the header (may be NULL when empty) */
	size_t payload_len;
} dfsm_msg_t;

/* Header length of @type: 24 for NORMAL, 32 for 1..6, 0 if unknown. */
size_t dfsm_header_len(uint16_t type);

/* The 16-byte base header only (type, subtype, protocol_version, time,
 * reserved): enough for the version check, which the original runs before
 * it looks at the type.  -EMSGSIZE if shorter than 16 bytes. */
int dfsm_base_decode(const uint8_t *buf, size_t len, dfsm_msg_t *ret);

/* A whole message: header of its type, payload view.  -EMSGSIZE if shorter
 * than the base header or the header of its type.  A type over 6 is read
 * with the state header, as the original does (it drops such a message on
 * an epoch mismatch or in SYNCED mode and leaves otherwise), and gives
 * -EPROTO with every field of *ret filled.  The payload is not checked
 * here: the original looks at it only after the epoch filter and the mode
 * (VERIFY_REQUEST and VERIFY through their decoders below). */
int dfsm_msg_decode(const uint8_t *buf, size_t len, dfsm_msg_t *ret);

/* Write the header of @m (type, subtype, protocol_version, time, count or
 * epoch; reserved is written as 0) into @out.  Returns its length (24 or
 * 32), or -EINVAL for an unknown type or a state message with a subtype. */
int dfsm_header_encode(const dfsm_msg_t *m, uint8_t out[DFSM_STATE_HEADER_LEN]);
/* Append header + m->payload to @out.  0, -EINVAL, -EMSGSIZE. */
int dfsm_msg_encode(GByteArray *out, const dfsm_msg_t *m);

/* §1.4: what to do with a message whose base header carries @theirs. */
typedef enum {
	DFSM_VERSION_OK,     /* the same version: go on */
	DFSM_VERSION_IGNORE, /* older: drop the message (one log line) */
	DFSM_VERSION_NEWER,  /* newer: mode VERSION_ERROR, never rejoin */
} dfsm_version_verdict_t;
dfsm_version_verdict_t dfsm_version_check(uint32_t theirs, uint32_t ours);

/* Epochs compare as their 16 raw bytes (§1.13), i.e. all four fields. */
bool dfsm_epoch_equal(const dfsm_epoch_t *a, const dfsm_epoch_t *b);

/* VERIFY_REQUEST / VERIFY payloads (§1.3, §1.12). */
void dfsm_verify_request_encode(uint8_t out[DFSM_VERIFY_REQUEST_LEN], uint64_t csum_id);
int dfsm_verify_request_decode(const uint8_t *buf, size_t len, uint64_t *ret_csum_id);
void dfsm_verify_encode(uint8_t out[DFSM_VERIFY_LEN], uint64_t csum_id,
			const uint8_t csum[MEMDB_CSUM_LEN]);
/* *ret_csum points into buf (32 bytes). */
int dfsm_verify_decode(const uint8_t *buf, size_t len, uint64_t *ret_csum_id,
		       const uint8_t **ret_csum);

/* --- dcdb NORMAL payloads (§2.2) ----------------------------------------- */

/*
 * One dcdb operation.  How each subtype fills it (everything else 0/NULL):
 *   WRITE    path, data/size, offset; flags DCDB_FLAG_TRUNCATE for truncate
 *            (then size 0 and offset = the new length)
 *   MKDIR, DELETE, CREATE   path
 *   RENAME   path (from), to
 *   MTIME    path, mtime (sent in the offset field)
 *   UNLOCK_REQUEST, UNLOCK  path, csum (the unlock-msg layout)
 * The writer is the sender's nodeid and the mtime of every other operation
 * is the DFSM header's time (§2.4): neither is in the payload.
 */
typedef struct dcdb_msg {
	uint16_t subtype; /* DCDB_MSG_* */
	const char *path; /* NUL-terminated */
	const char *to;   /* RENAME only */
	const uint8_t *data;
	uint32_t size; /* bytes of data (WRITE only) */
	union {
		uint32_t offset; /* WRITE: file offset, or the new length */
		uint32_t mtime;  /* MTIME: the new mtime */
	};
	uint32_t flags;      /* WRITE: 0 or DCDB_FLAG_TRUNCATE */
	const uint8_t *csum; /* UNLOCK*: MEMDB_CSUM_LEN bytes */
} dcdb_msg_t;

/* Decode the payload of a NORMAL message of @subtype. */
int dcdb_msg_decode(uint16_t subtype, const uint8_t *buf, size_t len, dcdb_msg_t *ret);
int dcdb_msg_encode(GByteArray *out, const dcdb_msg_t *m);

/* --- dcdb STATE, UPDATE, UPDATE_COMPLETE (§2.5, §2.7) -------------------- */

/* The STATE payload is the memdb index (memdb_encode_index() makes it).
 * This checks it as the original does (at least 32 bytes, the `bytes` field
 * equal to the length: -EMSGSIZE) and then as memdb_index_parse() does
 * (entry count, ascending inodes, last_inode: -EPROTO). */
int dcdb_state_decode(const uint8_t *buf, size_t len, memdb_index_view_t *ret);

/* One tree entry sent by the leader. */
typedef struct dcdb_update {
	uint64_t parent;
	uint64_t inode;
	uint64_t version;
	uint32_t writer;
	uint32_t mtime;
	uint32_t size;       /* 0 for a directory */
	uint8_t type;        /* MEMDB_TYPE_DIR or MEMDB_TYPE_REG */
	const char *name;    /* "" for the root (inode 0) */
	const uint8_t *data; /* size bytes of a file, NULL when size is 0 */
} dcdb_update_t;

int dcdb_update_decode(const uint8_t *buf, size_t len, dcdb_update_t *ret);
int dcdb_update_encode(GByteArray *out, const dcdb_update_t *u);
/* UPDATE_COMPLETE has no payload (not checked, as by the original). */

/* --- kvstore NORMAL payloads (§3.2, §3.3) -------------------------------- */

typedef struct kvstore_update {
	const char *key;      /* inside the 256-byte field; "" allowed */
	const uint8_t *value; /* NULL when value_len is 0 (= delete the key) */
	size_t value_len;
} kvstore_update_t;

int kvstore_update_decode(const uint8_t *buf, size_t len, kvstore_update_t *ret);
/* The key must be shorter than 256 bytes (the original cuts it silently:
 * we refuse, -EINVAL); the key field is zero-filled after the NUL. */
int kvstore_update_encode(GByteArray *out, const char *key, const void *value, size_t value_len);

/* The kvstore LOG payload and STATE (the cluster-log ring, §3.3-§3.4,
 * §3.10) are decoded by clog.h: clog_entry_decode(), clog_state_decode(). */
