/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-ipc-proto.c: libFuzzer target for the `pve2` request decoder and the
 * response header encoder (pmxcfs/ipc-proto.h).
 *
 * An input is one request as a client sends it: the 16-byte header and the
 * payload.  Each input is decoded twice: as it is, and with its size field
 * set to its length, so that inputs reach the payload decoders even when
 * their size field is wrong.  Beyond "no crash, no read outside the
 * buffer" (the sanitizers' part), every decoded request is checked:
 *
 * - the result is 0, -EINVAL or -ECHRNG, with a reason exactly on failure;
 * - the buffer is unchanged and a second decode gives the same answer;
 * - every returned string starts inside the buffer and ends with a NUL
 *   inside it, and lies where the layout of its request code says;
 * - what cluster.md §4.4 requires of each code holds (sizes, vmid range,
 *   property names), no path has a ".." component, and the codes of our
 *   own (WATCH, UNWATCH) keep their layouts.
 *
 * The first bytes also drive ipc_response_header(), whose output must read
 * back as what went in.  A failed check aborts with a message.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc-proto.h"
#include "fuzz.h"

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* @s is a string at offset @off of [buf, buf + len), its NUL inside too;
 * returns its length */
static size_t string_at(const uint8_t *buf, size_t len, const char *s, size_t off)
{
	CHECK(s != NULL);
	CHECK((const uint8_t *)s == buf + off);
	CHECK(off < len);
	const uint8_t *nul = memchr(s, '\0', len - off);
	CHECK(nul != NULL);
	return (size_t)(nul - (const uint8_t *)s);
}

/* no component of @path is ".." */
static bool no_dotdot(const char *path)
{
	for (const char *c = path;; c++) {
		const char *end = strchr(c, '/');
		size_t l = end ? (size_t)(end - c) : strlen(c);
		if (l == 2 && c[0] == '.' && c[1] == '.')
			return false;
		if (!end)
			return true;
		c = end;
	}
}

/* the views of a successful decode, against the layout of its code */
static void check_request(const uint8_t *buf, size_t len, const ipc_request_t *q)
{
	const size_t h = IPC_REQ_HEADER_LEN;
	size_t n = len - h; /* payload length */
	CHECK(len >= h && get_u32(buf + 8) == len);
	CHECK((int32_t)get_u32(buf) == q->id);

	switch (q->id) {
	case CFS_IPC_GET_FS_VERSION:
	case CFS_IPC_GET_CLUSTER_INFO:
	case CFS_IPC_GET_GUEST_LIST:
	case CFS_IPC_GET_RRD_DUMP:
		CHECK(n == 0);
		break;
	case CFS_IPC_SET_STATUS:
		CHECK(n >= IPC_NAME_LEN);
		CHECK(string_at(buf, len, q->name, h) < IPC_NAME_LEN);
		CHECK(q->value_len == n - IPC_NAME_LEN);
		CHECK(q->value_len ? q->value == buf + h + IPC_NAME_LEN : q->value == NULL);
		break;
	case CFS_IPC_GET_STATUS:
		CHECK(n >= 2 * IPC_NAME_LEN);
		CHECK(string_at(buf, len, q->name, h) < IPC_NAME_LEN);
		CHECK(string_at(buf, len, q->node, h + IPC_NAME_LEN) < IPC_NAME_LEN);
		break;
	case CFS_IPC_GET_CONFIG:
		CHECK(string_at(buf, len, q->path, h) + 1 == n);
		CHECK(no_dotdot(q->path));
		break;
	case CFS_IPC_LOG_CLUSTER_MSG: {
		size_t ilen = buf[h + 1], tlen = buf[h + 2];
		CHECK(q->priority == buf[h]);
		CHECK(string_at(buf, len, q->ident, h + 3) + 1 == ilen);
		CHECK(string_at(buf, len, q->tag, h + 3 + ilen) + 1 == tlen);
		CHECK(string_at(buf, len, q->msg, h + 3 + ilen + tlen) + 1 == n - 3 - ilen - tlen);
		break;
	}
	case CFS_IPC_GET_CLUSTER_LOG:
		CHECK(q->max_entries == get_u32(buf + h));
		CHECK(string_at(buf, len, q->user, h + 16) + 1 == n - 16);
		break;
	case CFS_IPC_GET_GUEST_CONFIG_PROPERTY:
		CHECK(q->n_props == 1);
		CHECK(string_at(buf, len, q->props[0], h + 4) + 1 == n - 4);
		CHECK(q->props[0][0] != '\0');
		break;
	case CFS_IPC_GET_GUEST_CONFIG_PROPERTIES: {
		CHECK(q->n_props == buf[h + 4] && q->n_props > 0 && q->n_props <= IPC_MAX_PROPS);
		size_t off = h + 5;
		for (unsigned i = 0; i < q->n_props; i++) {
			size_t l = string_at(buf, len, q->props[i], off);
			CHECK(l > 0 && q->props[i][0] >= 'a' && q->props[i][0] <= 'z');
			off += l + 1;
		}
		CHECK(off == len); /* nothing left over */
		break;
	}
	case CFS_IPC_VERIFY_TOKEN: {
		size_t l = string_at(buf, len, q->token, h);
		CHECK(l > 0 && l + 1 == n);
		CHECK(memchr(q->token, '\n', l) == NULL);
		break;
	}
	case CFS_IPC_WATCH:
		CHECK(q->known ==
		      ((uint64_t)get_u32(buf + h) | (uint64_t)get_u32(buf + h + 4) << 32));
		CHECK(string_at(buf, len, q->path, h + 8) + 1 == n - 8);
		CHECK(no_dotdot(q->path));
		break;
	case CFS_IPC_UNWATCH:
		CHECK(n == 4 && q->watch_id == get_u32(buf + h));
		break;
	default:
		CHECK(!"a request code this target does not know was accepted");
	}
	if (q->id == CFS_IPC_GET_GUEST_CONFIG_PROPERTY ||
	    q->id == CFS_IPC_GET_GUEST_CONFIG_PROPERTIES) {
		CHECK(q->vmid == get_u32(buf + h));
		CHECK(q->vmid == 0 || q->vmid >= 100);
	} else {
		CHECK(q->n_props == 0);
	}
}

static void check_parse(const uint8_t *buf, size_t len)
{
	uint8_t *saved = malloc(len ? len : 1);
	CHECK(saved != NULL);
	if (len)
		memcpy(saved, buf, len);

	ipc_request_t q, again;
	const char *why = "unset", *why_again = "unset";
	int r = ipc_request_parse(buf, len, &q, &why);
	CHECK(r == 0 || r == -EINVAL || r == -ECHRNG);
	CHECK(r == 0 ? why == NULL : why != NULL && why[0] != '\0');
	CHECK(len == 0 || memcmp(saved, buf, len) == 0);
	if (r == -ECHRNG)
		CHECK(len >= IPC_REQ_HEADER_LEN && q.id == (int32_t)get_u32(buf));
	if (r == 0)
		check_request(buf, len, &q);

	/* the same answer again: the decoder keeps no state */
	CHECK(ipc_request_parse(buf, len, &again, &why_again) == r);
	CHECK(why_again == why);
	CHECK(memcmp(&q, &again, sizeof(q)) == 0);
	free(saved);
}

static void check_response_header(const uint8_t *data, size_t size)
{
	uint8_t in[12] = {0};
	memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
	int32_t id = (int32_t)get_u32(in);
	int32_t error = -(int32_t)(get_u32(in + 4) % 4096); /* 0 or -errno */
	size_t data_len = get_u32(in + 8) % (IPC_MAX_REQUEST + 1);
	uint8_t out[IPC_RESP_HEADER_LEN];
	memset(out, 0xa5, sizeof(out));
	ipc_response_header(out, id, error, data_len);
	CHECK((int32_t)get_u32(out) == id);
	CHECK(get_u32(out + 8) == IPC_RESP_HEADER_LEN + data_len);
	CHECK((int32_t)get_u32(out + 16) == error);
	CHECK(get_u32(out + 4) == 0 && get_u32(out + 12) == 0 && get_u32(out + 20) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > IPC_MAX_REQUEST)
		return 0; /* the transport delivers no more */
	check_parse(data, size);
	if (size >= IPC_REQ_HEADER_LEN && get_u32(data + 8) != size) {
		/* the same request with a size field that agrees: an exact-size
		 * heap copy, as the input itself is */
		uint8_t *fixed = malloc(size);
		CHECK(fixed != NULL);
		memcpy(fixed, data, size);
		put_u32(fixed + 8, (uint32_t)size);
		check_parse(fixed, size);
		free(fixed);
	}
	check_response_header(data, size);
	return 0;
}
