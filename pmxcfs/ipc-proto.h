/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ipc-proto.h: the wire format of the `pve2` IPC service (cluster.md §4).
 *
 * Requests are a 16-byte libqb request header (id, size) and a payload
 * whose layout depends on the request code.  ipc_request_parse() checks a
 * whole request against the layout of its code and returns views into the
 * caller's buffer; it never reads outside [buf, buf + len) and never
 * changes the buffer (the original writes NULs into requests and reads one
 * byte past their end; this decoder does neither).  It is a pure function:
 * the fuzz target and the unit tests call it directly.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* request codes (cluster.md §4.4); 9 is unused */
enum {
	CFS_IPC_GET_FS_VERSION = 1,
	CFS_IPC_GET_CLUSTER_INFO = 2,
	CFS_IPC_GET_GUEST_LIST = 3,
	CFS_IPC_SET_STATUS = 4,
	CFS_IPC_GET_STATUS = 5,
	CFS_IPC_GET_CONFIG = 6,
	CFS_IPC_LOG_CLUSTER_MSG = 7,
	CFS_IPC_GET_CLUSTER_LOG = 8,
	CFS_IPC_GET_RRD_DUMP = 10,
	CFS_IPC_GET_GUEST_CONFIG_PROPERTY = 11,
	CFS_IPC_VERIFY_TOKEN = 12,
	CFS_IPC_GET_GUEST_CONFIG_PROPERTIES = 13,
	/* Ours, not the original's: codes from 0x10000 up cannot meet a future
	 * code of the original (which numbers from 1); the original answers
	 * them -ECHRNG, which libcfs reports as -EOPNOTSUPP. */
	CFS_IPC_WATCH = 0x10001,
	CFS_IPC_UNWATCH = 0x10002,
};

#define IPC_REQ_HEADER_LEN  16u
#define IPC_RESP_HEADER_LEN 24u
#define IPC_NAME_LEN        256u          /* SET_STATUS / GET_STATUS name fields */
#define IPC_MAX_STATUS      32768u        /* CFS_MAX_STATUS_SIZE */
#define IPC_MAX_REQUEST     (1024 * 1024) /* the client's buffer: 8192 * 128 */
#define IPC_MAX_PROPS       255u

typedef struct ipc_request {
	int32_t id;
	/* strings are NUL-terminated inside the request; lengths exclude NUL */
	const char *name;  /* SET/GET_STATUS: key */
	const char *node;  /* GET_STATUS: node ("" = local) */
	const char *path;  /* GET_CONFIG */
	const void *value; /* SET_STATUS */
	size_t value_len;
	uint8_t priority; /* LOG_CLUSTER_MSG */
	const char *ident, *tag, *msg;
	uint32_t max_entries; /* GET_CLUSTER_LOG */
	const char *user;
	uint32_t vmid; /* GET_GUEST_CONFIG_PROPERTY(IES) */
	const char *props[IPC_MAX_PROPS];
	unsigned n_props;
	const char *token; /* VERIFY_TOKEN */
	uint64_t known;    /* WATCH: the version the client knows */
	uint32_t watch_id; /* UNWATCH (0 = all of the connection's watches) */
} ipc_request_t;

/* WATCH: u64 known version, then the path, NUL-terminated ("" = the tree).
 * Reply: u32 watch id (0 = not registered because the version differs
 * already) and u64 current version.  The notice, sent as a libqb event
 * once the version differs from the known one: a response header with id
 * CFS_IPC_WATCH, then u32 watch id and u64 version.  UNWATCH: u32 id. */
#define IPC_WATCH_REPLY_LEN 12u
#define IPC_WATCH_MAX       1024u /* watches per connection */

/* Decode one request.  Returns 0, -EINVAL for a malformed request (with a
 * reason in *ret_why, a static string), or -ECHRNG for an unknown code
 * (ret->id is set whenever the header could be read). */
int ipc_request_parse(const uint8_t *buf, size_t len, ipc_request_t *ret, const char **ret_why);

/* Encode a response header for @id with @error (0 or -errno) and @data_len
 * bytes of data following. */
void ipc_response_header(uint8_t out[IPC_RESP_HEADER_LEN], int32_t id, int32_t error,
			 size_t data_len);
