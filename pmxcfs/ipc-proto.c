/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ipc-proto.c: decoding `pve2` requests and encoding response headers
 * (see ipc-proto.h).  Every read is bounds-checked against the length the
 * transport delivered; the size field in the header must agree with it.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ipc-proto.h"

static int32_t get_i32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)get_i32(p);
}

static void put_i32(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

/* a string that fills [p, p + n) and ends with its only NUL at p[n-1] */
static const char *exact_string(const uint8_t *p, size_t n)
{
	if (n == 0 || p[n - 1] != '\0' || memchr(p, '\0', n) != p + n - 1)
		return NULL;
	return (const char *)p;
}

/* a NUL-terminated string somewhere inside [p, p + n) (a fixed-size field) */
static const char *field_string(const uint8_t *p, size_t n)
{
	return memchr(p, '\0', n) ? (const char *)p : NULL;
}

/* a ".." component: no request names anything above the root */
static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2) {
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	}
	return false;
}

#define BAD(why)                                                                                   \
	do {                                                                                       \
		*ret_why = (why);                                                                  \
		return -EINVAL;                                                                    \
	} while (0)

int ipc_request_parse(const uint8_t *buf, size_t len, ipc_request_t *ret, const char **ret_why)
{
	memset(ret, 0, sizeof(*ret));
	*ret_why = NULL;
	if (!buf || len < IPC_REQ_HEADER_LEN)
		BAD("request shorter than its header");
	ret->id = get_i32(buf);
	int32_t size = get_i32(buf + 8);
	if (size < 0 || (size_t)size != len)
		BAD("size field does not match the request length");
	const uint8_t *p = buf + IPC_REQ_HEADER_LEN;
	size_t n = len - IPC_REQ_HEADER_LEN;

	switch (ret->id) {
	case CFS_IPC_GET_FS_VERSION:
	case CFS_IPC_GET_CLUSTER_INFO:
	case CFS_IPC_GET_GUEST_LIST:
	case CFS_IPC_GET_RRD_DUMP:
		if (n != 0)
			BAD("this request takes no payload");
		return 0;

	case CFS_IPC_SET_STATUS:
		if (n < IPC_NAME_LEN)
			BAD("status name field missing");
		if (!(ret->name = field_string(p, IPC_NAME_LEN)))
			BAD("status name is not NUL-terminated");
		ret->value = p + IPC_NAME_LEN;
		ret->value_len = n - IPC_NAME_LEN;
		if (ret->value_len == 0)
			ret->value = NULL;
		return 0;

	case CFS_IPC_GET_STATUS:
		if (n < 2 * IPC_NAME_LEN)
			BAD("status name or node field missing");
		if (!(ret->name = field_string(p, IPC_NAME_LEN)) ||
		    !(ret->node = field_string(p + IPC_NAME_LEN, IPC_NAME_LEN)))
			BAD("status name or node is not NUL-terminated");
		return 0; /* extra bytes are ignored, as by the original */

	case CFS_IPC_GET_CONFIG:
		if (!(ret->path = exact_string(p, n)))
			BAD("path must be one NUL-terminated string");
		if (has_dotdot(ret->path))
			BAD("path contains '..'");
		return 0;

	case CFS_IPC_LOG_CLUSTER_MSG: {
		if (n < 3)
			BAD("log message header missing");
		ret->priority = p[0];
		size_t ilen = p[1], tlen = p[2];
		if (ilen == 0 || tlen == 0 || n < 3 + ilen + tlen + 1)
			BAD("log message lengths do not fit");
		if (!(ret->ident = exact_string(p + 3, ilen)) ||
		    !(ret->tag = exact_string(p + 3 + ilen, tlen)) ||
		    !(ret->msg = exact_string(p + 3 + ilen + tlen, n - 3 - ilen - tlen)))
			BAD("log message strings are not NUL-terminated where their lengths say");
		return 0;
	}

	case CFS_IPC_GET_CLUSTER_LOG:
		if (n < 16 + 1)
			BAD("cluster log request too short");
		ret->max_entries = get_u32(p);
		if (!(ret->user = exact_string(p + 16, n - 16)))
			BAD("user filter must be one NUL-terminated string");
		return 0;

	case CFS_IPC_GET_GUEST_CONFIG_PROPERTY:
		if (n < 4 + 1)
			BAD("property request too short");
		ret->vmid = get_u32(p);
		if (!(ret->props[0] = exact_string(p + 4, n - 4)) || !ret->props[0][0])
			BAD("property must be one non-empty NUL-terminated string");
		ret->n_props = 1;
		break;

	case CFS_IPC_GET_GUEST_CONFIG_PROPERTIES: {
		if (n < 5)
			BAD("properties request too short");
		ret->vmid = get_u32(p);
		unsigned count = p[4];
		if (count == 0)
			BAD("no properties requested");
		size_t o = 5;
		for (unsigned i = 0; i < count; i++) {
			const uint8_t *s = p + o;
			const uint8_t *nul = o < n ? memchr(s, '\0', n - o) : NULL;
			if (!nul || nul == s)
				BAD("property names must be non-empty and NUL-terminated");
			if (s[0] < 'a' || s[0] > 'z')
				BAD("property names start with a-z");
			ret->props[i] = (const char *)s;
			o += (size_t)(nul - s) + 1;
		}
		if (o != n)
			BAD("bytes left after the property names");
		ret->n_props = count;
		break;
	}

	case CFS_IPC_VERIFY_TOKEN:
		if (!(ret->token = exact_string(p, n)) || !ret->token[0])
			BAD("token must be one non-empty NUL-terminated string");
		if (strchr(ret->token, '\n'))
			BAD("token contains a newline");
		return 0;

	case CFS_IPC_WATCH:
		if (n < 8 + 1)
			BAD("watch request too short");
		ret->known = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
		if (!(ret->path = exact_string(p + 8, n - 8)))
			BAD("watched path must be one NUL-terminated string");
		if (has_dotdot(ret->path))
			BAD("path contains '..'");
		return 0;

	case CFS_IPC_UNWATCH:
		if (n != 4)
			BAD("unwatch request takes one 32-bit id");
		ret->watch_id = get_u32(p);
		return 0;

	default:
		*ret_why = "unknown request code";
		return -ECHRNG;
	}
	/* guest config properties: all guests (0) or one VMID (>= 100) */
	if (ret->vmid > 0 && ret->vmid < 100)
		BAD("vmid must be 0 or at least 100");
	return 0;
}

void ipc_response_header(uint8_t out[IPC_RESP_HEADER_LEN], int32_t id, int32_t error,
			 size_t data_len)
{
	memset(out, 0, IPC_RESP_HEADER_LEN);
	put_i32(out, id);
	put_i32(out + 8, (int32_t)(IPC_RESP_HEADER_LEN + data_len));
	put_i32(out + 16, error);
}
