/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-dfsm.c: libFuzzer target for the CPG wire decoders (dfsm-proto.h).
 *
 * The first byte picks the decoder, the rest is the message (for the dcdb
 * payloads the second byte is the subtype).  Besides "no crash, no read
 * outside the buffer" (ASan), every accepted message must come back
 * byte for byte from its encoder, except the bytes the protocol leaves
 * undefined (the DFSM reserved field, the kvstore key field after its NUL).
 * The LOG payload and the cluster-log ring are clog.c's: fuzz-clog.
 *
 * Build and run: docs/fuzzing.md (configure --enable-fuzzing, make
 * fuzz-short); `make check` replays tests/fuzz/corpus/dfsm/.
 */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfsm-proto.h"
#include "fuzz.h"

/* [p, p + n) lies inside [buf, buf + len) */
static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;
	return n == 0 || (q >= buf && n <= len && (size_t)(q - buf) <= len - n);
}

static int str_inside(const char *s, const uint8_t *buf, size_t len)
{
	if (!inside(s, 1, buf, len))
		return 0;
	const void *nul = memchr(s, '\0', len - (size_t)((const uint8_t *)s - buf));
	return nul != NULL;
}

static void fuzz_msg(const uint8_t *b, size_t n)
{
	dfsm_msg_t m;
	int r = dfsm_base_decode(b, n, &m);
	CHECK(r == 0 || r == -EMSGSIZE);
	r = dfsm_msg_decode(b, n, &m);
	CHECK(r == 0 || r == -EMSGSIZE || r == -EPROTO);
	if (r == -EMSGSIZE)
		return;
	CHECK(inside(m.payload, m.payload_len, b, n));
	CHECK(n == dfsm_header_len(m.type) + m.payload_len || r == -EPROTO);
	if (r < 0)
		return;
	GByteArray *a = g_byte_array_new();
	CHECK(dfsm_msg_encode(a, &m) == (m.type != DFSM_MSG_NORMAL && m.subtype ? -EINVAL : 0));
	if (a->len) {
		CHECK(a->len == n);
		CHECK(memcmp(a->data, b, 12) == 0);
		CHECK(memcmp(a->data + 16, b + 16, n - 16) == 0);
	}
	g_byte_array_unref(a);

	uint64_t id;
	const uint8_t *csum;
	if (dfsm_verify_request_decode(m.payload, m.payload_len, &id) == 0)
		CHECK(m.payload_len == 8);
	if (dfsm_verify_decode(m.payload, m.payload_len, &id, &csum) == 0)
		CHECK(inside(csum, 32, b, n));
}

static void fuzz_dcdb(const uint8_t *b, size_t n)
{
	if (n < 1)
		return;
	uint16_t subtype = b[0];
	b++;
	n--;
	dcdb_msg_t m;
	int r = dcdb_msg_decode(subtype, b, n, &m);
	CHECK(r == 0 || r == -EMSGSIZE || r == -EPROTO || r == -EINVAL);
	if (r < 0)
		return;
	CHECK(str_inside(m.path, b, n));
	CHECK(!m.to || str_inside(m.to, b, n));
	CHECK(inside(m.data, m.size, b, n));
	CHECK(!m.csum || inside(m.csum, 32, b, n));
	GByteArray *a = g_byte_array_new();
	CHECK(dcdb_msg_encode(a, &m) == 0);
	CHECK(a->len == n && memcmp(a->data, b, n) == 0);
	g_byte_array_unref(a);
}

static void fuzz_update(const uint8_t *b, size_t n)
{
	dcdb_update_t u;
	int r = dcdb_update_decode(b, n, &u);
	CHECK(r == 0 || r == -EMSGSIZE || r == -EPROTO || r == -EINVAL);
	if (r < 0)
		return;
	CHECK(str_inside(u.name, b, n));
	CHECK(inside(u.data, u.size, b, n));
	GByteArray *a = g_byte_array_new();
	CHECK(dcdb_update_encode(a, &u) == 0);
	CHECK(a->len == n && memcmp(a->data, b, n) == 0);
	g_byte_array_unref(a);
}

static void fuzz_state(const uint8_t *b, size_t n)
{
	memdb_index_view_t v;
	int r = dcdb_state_decode(b, n, &v);
	CHECK(r == 0 || r == -EMSGSIZE || r == -EPROTO);
	if (r == 0)
		CHECK(inside(v.entries, (size_t)v.size * MEMDB_INDEX_ENTRY_LEN, b, n));
}

static void fuzz_kv(const uint8_t *b, size_t n)
{
	kvstore_update_t u;
	int r = kvstore_update_decode(b, n, &u);
	CHECK(r == 0 || r == -EMSGSIZE || r == -EPROTO);
	if (r < 0)
		return;
	CHECK(str_inside(u.key, b, KVSTORE_KEY_LEN));
	CHECK(inside(u.value, u.value_len, b, n));
	GByteArray *a = g_byte_array_new();
	CHECK(kvstore_update_encode(a, u.key, u.value, u.value_len) == 0);
	size_t k = strlen(u.key) + 1;
	CHECK(a->len == n && memcmp(a->data, b, k) == 0);
	CHECK(memcmp(a->data + KVSTORE_KEY_LEN, b + KVSTORE_KEY_LEN, n - KVSTORE_KEY_LEN) == 0);
	g_byte_array_unref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* an exact-size copy, so a read past the message is a read past the heap block */
	size_t n = size - 1;
	uint8_t *b = n ? g_memdup2(data + 1, n) : NULL;
	/* (the LOG payload and the ring: fuzz-clog) */
	switch (data[0] % 5) {
	case 0:
		fuzz_msg(b, n);
		break;
	case 1:
		fuzz_dcdb(b, n);
		break;
	case 2:
		fuzz_update(b, n);
		break;
	case 3:
		fuzz_state(b, n);
		break;
	case 4:
		fuzz_kv(b, n);
		break;
	}
	g_free(b);
	return 0;
}
