/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-dfsm-proto.c: the CPG wire codec (cluster.md §1-§3, dfsm-proto.h).
 *
 * Each message type has a golden byte array written out by hand from the
 * spec's tables (and checked against the original's structs: dfsm.c
 * dfsm_message_*_header_t, dcdb.c dcdb_send_fuse_message /
 * dcdb_send_update_inode, status.c kvstore_send_update_message, logger.h
 * clog_entry_t).  The golden bytes must decode to the expected fields and
 * the fields must encode to the golden bytes.  Then every truncation of
 * every message, every length off by one and the known bad inputs must be
 * refused with the documented errno.  Every buffer handed to a decoder is
 * an exact-size heap copy, so ASan and valgrind see any read past its end.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "dfsm-proto.h"
#include "testutil.h"
#include "wire.h"

/* --- helpers ---------------------------------------------------------------- */

/* an exact-size heap copy (NULL for n == 0, as a peer's empty payload may be) */
static uint8_t *dup_exact(const void *p, size_t n)
{
	return n ? g_memdup2(p, n) : NULL;
}

typedef int (*decode_fn)(const uint8_t *buf, size_t len);

static int call(decode_fn fn, const void *p, size_t n)
{
	uint8_t *b = dup_exact(p, n);
	int r = fn(b, n);
	g_free(b);
	return r;
}

/* Every proper prefix of @msg fails with @err (or any error if err is 0). */
static void check_truncations(decode_fn fn, const uint8_t *msg, size_t len, int err)
{
	for (size_t n = 0; n < len; n++) {
		int r = call(fn, msg, n);
		if (err)
			g_assert_cmpint(r, ==, err);
		else
			g_assert_cmpint(r, <, 0);
	}
}

/* @msg with one more byte @extra fails with @err. */
static void check_extension(decode_fn fn, const uint8_t *msg, size_t len, uint8_t extra, int err)
{
	uint8_t *b = g_malloc(len + 1);
	memcpy(b, msg, len);
	b[len] = extra;
	g_assert_cmpint(fn(b, len + 1), ==, err);
	g_free(b);
}

/* A copy of @msg with bytes [off, off + n) replaced; decoded by @fn. */
static int call_patched(decode_fn fn, const uint8_t *msg, size_t len, size_t off, const void *p,
			size_t n)
{
	g_assert_cmpuint(off + n, <=, len);
	uint8_t *b = dup_exact(msg, len);
	memcpy(b + off, p, n);
	int r = fn(b, len);
	g_free(b);
	return r;
}

static int call_patch32(decode_fn fn, const uint8_t *msg, size_t len, size_t off, uint32_t v)
{
	uint8_t le[4];
	wire_store32(le, v);
	return call_patched(fn, msg, len, off, le, 4);
}

static void assert_bytes(GByteArray *a, const uint8_t *want, size_t n)
{
	g_assert_cmpmem(a->data, a->len, want, n);
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;
	return q >= buf && n <= len && q - buf <= (ptrdiff_t)(len - n);
}

/* --- wire.h ----------------------------------------------------------------- */

static void test_wire_reader(void)
{
	const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b};
	wire_reader_t r = wire_reader(b, sizeof(b));
	g_assert_cmpuint(wire_get_u8(&r), ==, 0x01);
	g_assert_cmpuint(wire_get_u16(&r), ==, 0x0302);
	g_assert_cmpuint(wire_get_u64(&r), ==, 0x0b0a090807060504ull);
	g_assert_cmpint(r.err, ==, 0);
	g_assert_cmpuint(wire_remaining(&r), ==, 0);
	/* past the end: zero, sticky error, position unchanged */
	g_assert_cmpuint(wire_get_u32(&r), ==, 0);
	g_assert_cmpint(r.err, ==, -EMSGSIZE);
	g_assert_cmpuint(r.pos, ==, sizeof(b));

	r = wire_reader(b, 3);
	g_assert_cmpuint(wire_get_u32(&r), ==, 0);
	g_assert_cmpint(r.err, ==, -EMSGSIZE);
	g_assert_cmpuint(wire_get_u8(&r), ==, 0); /* a byte is left, but the error sticks */
	g_assert_cmpuint(r.pos, ==, 0);

	r = wire_reader(b, 4);
	g_assert_null(wire_get_bytes(&r, SIZE_MAX));
	g_assert_cmpint(r.err, ==, -EMSGSIZE);

	r = wire_reader(NULL, 0);
	size_t n = 1;
	(void)wire_get_rest(&r, &n);
	g_assert_cmpuint(n, ==, 0);
	g_assert_cmpint(r.err, ==, 0);
	g_assert_cmpuint(wire_get_u8(&r), ==, 0);
	g_assert_cmpint(r.err, ==, -EMSGSIZE);

	r = wire_reader(NULL, 5);
	g_assert_cmpint(r.err, ==, -EINVAL);
}

static void test_wire_writer(void)
{
	uint8_t buf[7];
	wire_writer_t w = wire_writer_buffer(buf, sizeof(buf));
	wire_put_u16(&w, 0xbeef);
	wire_put_u32(&w, 0x01020304);
	g_assert_cmpint(w.err, ==, 0);
	wire_put_u16(&w, 1); /* one byte left: refused, nothing written */
	g_assert_cmpint(w.err, ==, -EMSGSIZE);
	g_assert_cmpuint(w.pos, ==, 6);
	const uint8_t want[] = {0xef, 0xbe, 0x04, 0x03, 0x02, 0x01};
	g_assert_cmpmem(buf, 6, want, 6);

	GByteArray *a = g_byte_array_new();
	g_byte_array_append(a, (const guint8 *)"ab", 2);
	w = wire_writer_array(a);
	wire_put_u64(&w, 0x1122334455667788ull);
	wire_put_zeros(&w, 2);
	g_assert_cmpint(wire_writer_finish(&w), ==, 0);
	const uint8_t want2[] = {'a', 'b', 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0};
	assert_bytes(a, want2, sizeof(want2));
	/* zero bytes, also into an array or buffer that has no storage yet */
	GByteArray *e = g_byte_array_new();
	w = wire_writer_array(e);
	wire_put_bytes(&w, NULL, 0);
	wire_put_zeros(&w, 0);
	g_assert_cmpint(wire_writer_finish(&w), ==, 0);
	g_assert_cmpuint(e->len, ==, 0);
	g_byte_array_unref(e);
	w = wire_writer_buffer(NULL, 0);
	wire_put_bytes(&w, NULL, 0);
	g_assert_cmpint(w.err, ==, 0);
	wire_put_u8(&w, 1);
	g_assert_cmpint(w.err, ==, -EMSGSIZE);
	/* a failed encoding takes back what it appended */
	w = wire_writer_array(a);
	wire_put_u32(&w, 7);
	wire_put_fail(&w, -EINVAL);
	wire_put_u32(&w, 8);
	g_assert_cmpint(wire_writer_finish(&w), ==, -EINVAL);
	assert_bytes(a, want2, sizeof(want2));
	g_byte_array_unref(a);
}

/* --- CPG group names (§1.1) ------------------------------------------------- */

static void test_group_names(void)
{
	dfsm_group_name_t g;
	g_assert_cmpint(dfsm_group_name_init(&g, DCDB_GROUP_NAME), ==, 0);
	g_assert_cmpuint(g.length, ==, 12);
	g_assert_cmpuint(g.length, ==, DCDB_GROUP_NAME_LEN);
	g_assert_cmpmem(g.value, 12, "pve_dcdb_v1\0", 12);
	g_assert_true(dfsm_group_name_is(g.length, g.value, DCDB_GROUP_NAME));
	g_assert_false(dfsm_group_name_is(11, g.value, DCDB_GROUP_NAME)); /* strlen(): no */
	g_assert_false(dfsm_group_name_is(g.length, g.value, KVSTORE_GROUP_NAME));

	g_assert_cmpint(dfsm_group_name_init(&g, KVSTORE_GROUP_NAME), ==, 0);
	g_assert_cmpuint(g.length, ==, 15);
	g_assert_cmpuint(g.length, ==, KVSTORE_GROUP_NAME_LEN);
	g_assert_cmpmem(g.value, 15, "pve_kvstore_v1\0", 15);
	g_assert_cmpuint((uint8_t)g.value[15], ==, 0);

	char name[DFSM_GROUP_NAME_MAX + 1];
	memset(name, 'g', sizeof(name));
	name[DFSM_GROUP_NAME_MAX - 1] = '\0'; /* 127 characters: fits with its NUL */
	g_assert_cmpint(dfsm_group_name_init(&g, name), ==, 0);
	g_assert_cmpuint(g.length, ==, DFSM_GROUP_NAME_MAX);
	name[DFSM_GROUP_NAME_MAX - 1] = 'g';
	name[DFSM_GROUP_NAME_MAX] = '\0';
	g_assert_cmpint(dfsm_group_name_init(&g, name), ==, -EINVAL);
	g_assert_cmpint(dfsm_group_name_init(&g, ""), ==, -EINVAL);
	g_assert_cmpint(dfsm_group_name_init(&g, NULL), ==, -EINVAL);
	g_assert_false(dfsm_group_name_is(12, NULL, DCDB_GROUP_NAME));
}

/* --- DFSM headers (§1.2-§1.4) ----------------------------------------------- */

/* NORMAL, dcdb subtype MKDIR, version 1, time 0x65a0b0c0, count 0x0102030405060708,
 * payload "xy" */
static const uint8_t golden_normal[] = {
	0x00, 0x00,                                     /* type NORMAL */
	0x02, 0x00,                                     /* subtype 2 */
	0x01, 0x00, 0x00, 0x00,                         /* protocol_version 1 */
	0xc0, 0xb0, 0xa0, 0x65,                         /* time */
	0x00, 0x00, 0x00, 0x00,                         /* reserved */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* count */
	'x',  'y',                                      /* payload */
};

/* SYNC_START, kvstore version 0, time 0x65000001, epoch {7, 0x64ffffff, 3, 0x1234} */
static const uint8_t golden_sync_start[] = {
	0x01, 0x00,             /* type SYNC_START */
	0x00, 0x00,             /* subtype 0 */
	0x00, 0x00, 0x00, 0x00, /* protocol_version 0 */
	0x01, 0x00, 0x00, 0x65, /* time */
	0x00, 0x00, 0x00, 0x00, /* reserved */
	0x07, 0x00, 0x00, 0x00, /* epoch.epoch */
	0xff, 0xff, 0xff, 0x64, /* epoch.time */
	0x03, 0x00, 0x00, 0x00, /* epoch.nodeid */
	0x34, 0x12, 0x00, 0x00, /* epoch.pid */
};

/* VERIFY, dcdb, csum_id 0x0a0b, csum 0x00..0x1f */
static uint8_t golden_verify[32 + 40];

static void build_golden_verify(void)
{
	static const uint8_t hdr[32] = {
		0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00,
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00,
	};
	memcpy(golden_verify, hdr, 32);
	golden_verify[32] = 0x0b; /* csum_id, little-endian */
	golden_verify[33] = 0x0a;
	for (int i = 0; i < 32; i++)
		golden_verify[40 + i] = (uint8_t)i;
}

static int dec_msg(const uint8_t *b, size_t n)
{
	dfsm_msg_t m;
	return dfsm_msg_decode(b, n, &m);
}

static int dec_base(const uint8_t *b, size_t n)
{
	dfsm_msg_t m;
	return dfsm_base_decode(b, n, &m);
}

static void test_normal_header(void)
{
	uint8_t *b = dup_exact(golden_normal, sizeof(golden_normal));
	dfsm_msg_t m;
	g_assert_cmpint(dfsm_msg_decode(b, sizeof(golden_normal), &m), ==, 0);
	g_assert_cmpuint(m.type, ==, DFSM_MSG_NORMAL);
	g_assert_cmpuint(m.subtype, ==, DCDB_MSG_MKDIR);
	g_assert_cmpuint(m.protocol_version, ==, DCDB_PROTOCOL_VERSION);
	g_assert_cmpuint(m.time, ==, 0x65a0b0c0);
	g_assert_cmpuint(m.reserved, ==, 0);
	g_assert_cmpuint(m.count, ==, 0x0102030405060708ull);
	g_assert_true(m.payload == b + 24);
	g_assert_cmpuint(m.payload_len, ==, 2);

	GByteArray *a = g_byte_array_new();
	g_assert_cmpint(dfsm_msg_encode(a, &m), ==, 0);
	assert_bytes(a, golden_normal, sizeof(golden_normal));

	uint8_t h[DFSM_STATE_HEADER_LEN];
	g_assert_cmpint(dfsm_header_encode(&m, h), ==, 24);
	g_assert_cmpmem(h, 24, golden_normal, 24);

	/* the header alone: an empty payload */
	g_assert_cmpint(call(dec_msg, golden_normal, 24), ==, 0);
	check_truncations(dec_msg, golden_normal, 24, -EMSGSIZE);
	check_truncations(dec_base, golden_normal, 16, -EMSGSIZE);
	g_assert_cmpint(call(dec_base, golden_normal, 16), ==, 0);

	/* reserved is read as sent, but always sent as 0 */
	const uint8_t one[] = {1};
	uint8_t *c = dup_exact(golden_normal, sizeof(golden_normal));
	memcpy(c + 12, one, 1);
	dfsm_msg_t m2;
	g_assert_cmpint(dfsm_msg_decode(c, sizeof(golden_normal), &m2), ==, 0);
	g_assert_cmpuint(m2.reserved, ==, 1);
	g_byte_array_set_size(a, 0);
	g_assert_cmpint(dfsm_msg_encode(a, &m2), ==, 0);
	assert_bytes(a, golden_normal, sizeof(golden_normal));

	g_free(c);
	g_free(b);
	g_byte_array_unref(a);
}

static void test_state_headers(void)
{
	uint8_t *b = dup_exact(golden_sync_start, sizeof(golden_sync_start));
	dfsm_msg_t m;
	g_assert_cmpint(dfsm_msg_decode(b, sizeof(golden_sync_start), &m), ==, 0);
	g_assert_cmpuint(m.type, ==, DFSM_MSG_SYNC_START);
	g_assert_cmpuint(m.protocol_version, ==, KVSTORE_PROTOCOL_VERSION);
	g_assert_cmpuint(m.time, ==, 0x65000001);
	g_assert_cmpuint(m.epoch.epoch, ==, 7);
	g_assert_cmpuint(m.epoch.time, ==, 0x64ffffff);
	g_assert_cmpuint(m.epoch.nodeid, ==, 3);
	g_assert_cmpuint(m.epoch.pid, ==, 0x1234);
	g_assert_cmpuint(m.payload_len, ==, 0);
	g_free(b);
	check_truncations(dec_msg, golden_sync_start, sizeof(golden_sync_start), -EMSGSIZE);
	/* trailing bytes are framing-valid (the original does not look) */
	uint8_t *x = g_malloc(33);
	memcpy(x, golden_sync_start, 32);
	x[32] = 0;
	g_assert_cmpint(dfsm_msg_decode(x, 33, &m), ==, 0);
	g_assert_cmpuint(m.payload_len, ==, 1);
	g_free(x);

	GByteArray *a = g_byte_array_new();
	dfsm_msg_t s = {
		.type = DFSM_MSG_SYNC_START,
		.protocol_version = 0,
		.time = 0x65000001,
		.epoch = {7, 0x64ffffff, 3, 0x1234},
	};
	g_assert_cmpint(dfsm_msg_encode(a, &s), ==, 0);
	assert_bytes(a, golden_sync_start, sizeof(golden_sync_start));

	/* every state type: same header, round trip, type in the first two bytes */
	for (uint16_t t = DFSM_MSG_SYNC_START; t <= DFSM_MSG_VERIFY; t++) {
		g_byte_array_set_size(a, 0);
		s.type = t;
		uint8_t pl[40] = {0};
		s.payload = pl;
		s.payload_len = t == DFSM_MSG_VERIFY_REQUEST ? 8 : t == DFSM_MSG_VERIFY ? 40 : 0;
		g_assert_cmpint(dfsm_msg_encode(a, &s), ==, 0);
		g_assert_cmpuint(a->len, ==, 32 + s.payload_len);
		g_assert_cmpuint(a->data[0], ==, t);
		g_assert_cmpmem(a->data + 2, 30, golden_sync_start + 2, 30);
		uint8_t *c = dup_exact(a->data, a->len);
		dfsm_msg_t d;
		g_assert_cmpint(dfsm_msg_decode(c, a->len, &d), ==, 0);
		g_assert_cmpuint(d.type, ==, t);
		g_assert_true(dfsm_epoch_equal(&d.epoch, &s.epoch));
		g_assert_cmpuint(d.payload_len, ==, s.payload_len);
		check_truncations(dec_msg, c, 32, -EMSGSIZE);
		g_free(c);
	}

	/* VERIFY golden */
	build_golden_verify();
	b = dup_exact(golden_verify, sizeof(golden_verify));
	g_assert_cmpint(dfsm_msg_decode(b, sizeof(golden_verify), &m), ==, 0);
	g_assert_cmpuint(m.type, ==, DFSM_MSG_VERIFY);
	g_assert_cmpuint(m.epoch.epoch, ==, 2);
	g_assert_cmpuint(m.epoch.time, ==, 0x20);
	g_assert_cmpuint(m.epoch.nodeid, ==, 1);
	g_assert_cmpuint(m.epoch.pid, ==, 0x99);
	uint64_t id;
	const uint8_t *csum;
	g_assert_cmpint(dfsm_verify_decode(m.payload, m.payload_len, &id, &csum), ==, 0);
	g_assert_cmpuint(id, ==, 0x0a0b);
	g_assert_true(csum == b + 40);
	uint8_t v[DFSM_VERIFY_LEN];
	dfsm_verify_encode(v, 0x0a0b, golden_verify + 40);
	g_assert_cmpmem(v, sizeof(v), golden_verify + 32, 40);
	g_assert_cmpint(dfsm_verify_decode(m.payload, 39, &id, &csum), ==, -EMSGSIZE);
	g_assert_cmpint(dfsm_verify_decode(NULL, 0, &id, &csum), ==, -EMSGSIZE);
	g_assert_null(csum);
	g_free(b);

	uint8_t vr[DFSM_VERIFY_REQUEST_LEN];
	dfsm_verify_request_encode(vr, 0x1122334455667788ull);
	const uint8_t want_vr[] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
	g_assert_cmpmem(vr, 8, want_vr, 8);
	g_assert_cmpint(dfsm_verify_request_decode(vr, 8, &id), ==, 0);
	g_assert_cmpuint(id, ==, 0x1122334455667788ull);
	g_assert_cmpint(dfsm_verify_request_decode(vr, 7, &id), ==, -EMSGSIZE);
	g_assert_cmpint(dfsm_verify_request_decode(v, 9, &id), ==, -EMSGSIZE);

	g_byte_array_unref(a);
}

static void test_bad_types(void)
{
	/* an unknown type: read as a state message, -EPROTO, every field filled */
	for (unsigned t = 7; t <= 0xffff; t += t < 300 ? 1 : 997) {
		uint8_t *b = dup_exact(golden_sync_start, sizeof(golden_sync_start));
		b[0] = (uint8_t)t;
		b[1] = (uint8_t)(t >> 8);
		dfsm_msg_t m;
		g_assert_cmpint(dfsm_msg_decode(b, sizeof(golden_sync_start), &m), ==, -EPROTO);
		g_assert_cmpuint(m.type, ==, t);
		g_assert_cmpuint(m.time, ==, 0x65000001);
		g_assert_cmpuint(m.epoch.pid, ==, 0x1234);
		g_assert_cmpuint(m.payload_len, ==, 0);
		g_assert_cmpint(dfsm_msg_decode(b, 31, &m), ==, -EMSGSIZE);
		g_assert_cmpint(dfsm_base_decode(b, 16, &m), ==, 0);
		g_assert_cmpuint(dfsm_header_len((uint16_t)t), ==, 0);
		g_free(b);
	}
	g_assert_cmpuint(dfsm_header_len(0), ==, 24);
	for (uint16_t t = 1; t <= 6; t++)
		g_assert_cmpuint(dfsm_header_len(t), ==, 32);

	uint8_t h[DFSM_STATE_HEADER_LEN];
	dfsm_msg_t m = {.type = 7};
	g_assert_cmpint(dfsm_header_encode(&m, h), ==, -EINVAL);
	m = (dfsm_msg_t){.type = DFSM_MSG_STATE, .subtype = 1};
	g_assert_cmpint(dfsm_header_encode(&m, h), ==, -EINVAL);
	GByteArray *a = g_byte_array_new();
	g_assert_cmpint(dfsm_msg_encode(a, &m), ==, -EINVAL);
	m = (dfsm_msg_t){.type = DFSM_MSG_STATE, .payload_len = 3};
	g_assert_cmpint(dfsm_msg_encode(a, &m), ==, -EINVAL);
	g_assert_cmpuint(a->len, ==, 0);
	g_byte_array_unref(a);
}

static void test_version_and_epoch(void)
{
	g_assert_cmpint(dfsm_version_check(1, 1), ==, DFSM_VERSION_OK);
	g_assert_cmpint(dfsm_version_check(0, 1), ==, DFSM_VERSION_IGNORE);
	g_assert_cmpint(dfsm_version_check(2, 1), ==, DFSM_VERSION_NEWER);
	g_assert_cmpint(dfsm_version_check(1, 0), ==, DFSM_VERSION_NEWER);
	g_assert_cmpint(dfsm_version_check(0, 0), ==, DFSM_VERSION_OK);
	g_assert_cmpint(dfsm_version_check(UINT32_MAX, 1), ==, DFSM_VERSION_NEWER);

	dfsm_epoch_t a = {1, 2, 3, 4}, b = a;
	g_assert_true(dfsm_epoch_equal(&a, &b));
	const dfsm_epoch_t differ[] = {{9, 2, 3, 4}, {1, 9, 3, 4}, {1, 2, 9, 4}, {1, 2, 3, 9}};
	for (size_t i = 0; i < G_N_ELEMENTS(differ); i++)
		g_assert_false(dfsm_epoch_equal(&a, &differ[i]));
	g_assert_cmpuint(sizeof(dfsm_epoch_t), ==, DFSM_EPOCH_LEN);
}

/* --- dcdb NORMAL payloads (§2.2) -------------------------------------------- */

static uint16_t cur_subtype;

static int dec_dcdb(const uint8_t *b, size_t n)
{
	dcdb_msg_t m;
	int r = dcdb_msg_decode(cur_subtype, b, n, &m);
	if (r == 0) {
		g_assert_true(inside(m.path, strlen(m.path) + 1, b, n));
		if (m.to)
			g_assert_true(inside(m.to, strlen(m.to) + 1, b, n));
		if (m.size)
			g_assert_true(inside(m.data, m.size, b, n));
		if (m.csum)
			g_assert_true(inside(m.csum, 32, b, n));
	} else {
		g_assert_null(m.path);
	}
	return r;
}

/* WRITE "a/b.conf", 5 bytes "hello" at offset 3 */
static const uint8_t golden_write[] = {
	0x05, 0x00, 0x00, 0x00,                        /* size 5 */
	0x03, 0x00, 0x00, 0x00,                        /* offset 3 */
	0x09, 0x00, 0x00, 0x00,                        /* pathlen 9 */
	0x00, 0x00, 0x00, 0x00,                        /* tolen 0 */
	0x00, 0x00, 0x00, 0x00,                        /* flags 0 */
	'a',  '/',  'b',  '.',  'c', 'o', 'n', 'f', 0, /* path */
	'h',  'e',  'l',  'l',  'o',                   /* data */
};

/* truncate("f", 300): WRITE, size 0, offset 300, flags 1 */
static const uint8_t golden_truncate[] = {
	0x00, 0x00, 0x00, 0x00, /* size 0 */
	0x2c, 0x01, 0x00, 0x00, /* offset 300 = the new length */
	0x02, 0x00, 0x00, 0x00, /* pathlen 2 */
	0x00, 0x00, 0x00, 0x00, /* tolen */
	0x01, 0x00, 0x00, 0x00, /* flags: truncate */
	'f',  0,
};

/* MKDIR / DELETE / CREATE "nodes/n1": path only */
static const uint8_t golden_path_only[] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* size, offset */
	0x09, 0x00, 0x00, 0x00,                         /* pathlen 9 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* tolen, flags */
	'n',  'o',  'd',  'e',  's',  '/',  'n',  '1',  0,
};

/* RENAME "x.tmp" -> "x" */
static const uint8_t golden_rename[] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* size, offset */
	0x06, 0x00, 0x00, 0x00,                         /* pathlen 6 */
	0x02, 0x00, 0x00, 0x00,                         /* tolen 2 */
	0x00, 0x00, 0x00, 0x00,                         /* flags */
	'x',  '.',  't',  'm',  'p',  0,    'x',  0,
};

/* MTIME "priv/lock/l" to 0x60000001: the mtime is the offset field */
static const uint8_t golden_mtime[] = {
	0x00, 0x00, 0x00, 0x00,                         /* size */
	0x01, 0x00, 0x00, 0x60,                         /* offset = mtime */
	0x0c, 0x00, 0x00, 0x00,                         /* pathlen 12 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* tolen, flags */
	'p',  'r',  'i',  'v',  '/',  'l',  'o',  'c',  'k', '/', 'l', 0,
};

/* UNLOCK_REQUEST / UNLOCK "priv/lock/l": csum 0xa0..0xbf, then the path */
static uint8_t golden_unlock[32 + 12];

static void build_golden_unlock(void)
{
	for (int i = 0; i < 32; i++)
		golden_unlock[i] = (uint8_t)(0xa0 + i);
	memcpy(golden_unlock + 32, "priv/lock/l", 12);
}

/* decode @golden as @subtype, compare with @want, re-encode, truncate, extend */
static void check_dcdb_golden(uint16_t subtype, const uint8_t *golden, size_t len,
			      const dcdb_msg_t *want)
{
	uint8_t *b = dup_exact(golden, len);
	dcdb_msg_t m;
	g_assert_cmpint(dcdb_msg_decode(subtype, b, len, &m), ==, 0);
	g_assert_cmpuint(m.subtype, ==, subtype);
	g_assert_cmpstr(m.path, ==, want->path);
	g_assert_cmpstr(m.to, ==, want->to);
	g_assert_cmpuint(m.size, ==, want->size);
	g_assert_cmpmem(m.data, m.size, want->data, want->size);
	g_assert_cmpuint(m.offset, ==, want->offset);
	g_assert_cmpuint(m.flags, ==, want->flags);
	if (want->csum)
		g_assert_cmpmem(m.csum, 32, want->csum, 32);
	else
		g_assert_null(m.csum);

	GByteArray *a = g_byte_array_new();
	g_assert_cmpint(dcdb_msg_encode(a, want), ==, 0);
	assert_bytes(a, golden, len);
	g_byte_array_set_size(a, 0);
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, 0);
	assert_bytes(a, golden, len);
	g_byte_array_unref(a);
	g_free(b);

	cur_subtype = subtype;
	bool unlock = subtype == DCDB_MSG_UNLOCK || subtype == DCDB_MSG_UNLOCK_REQUEST;
	if (unlock) {
		/* below 33 bytes too short; from there the last byte is no NUL */
		check_truncations(dec_dcdb, golden, 33, -EMSGSIZE);
		for (size_t n = 33; n < len; n++)
			g_assert_cmpint(call(dec_dcdb, golden, n), ==, -EPROTO);
		check_extension(dec_dcdb, golden, len, 'x', -EPROTO);
		check_extension(dec_dcdb, golden, len, 0, -EPROTO);
	} else {
		check_truncations(dec_dcdb, golden, len, -EMSGSIZE);
		check_extension(dec_dcdb, golden, len, 0, -EMSGSIZE);
	}
	/* any other subtype reads the same bytes differently or refuses them */
	for (uint16_t st = 0; st <= 10; st++) {
		if (st == 0 || st > 8) {
			cur_subtype = st;
			g_assert_cmpint(call(dec_dcdb, golden, len), ==, -EPROTO);
		}
	}
}

static void test_dcdb_golden(void)
{
	dcdb_msg_t w = {.subtype = DCDB_MSG_WRITE,
			.path = "a/b.conf",
			.data = (const uint8_t *)"hello",
			.size = 5,
			.offset = 3};
	check_dcdb_golden(DCDB_MSG_WRITE, golden_write, sizeof(golden_write), &w);

	dcdb_msg_t t = {
		.subtype = DCDB_MSG_WRITE, .path = "f", .offset = 300, .flags = DCDB_FLAG_TRUNCATE};
	check_dcdb_golden(DCDB_MSG_WRITE, golden_truncate, sizeof(golden_truncate), &t);

	const uint16_t path_only[] = {DCDB_MSG_MKDIR, DCDB_MSG_DELETE, DCDB_MSG_CREATE};
	for (size_t i = 0; i < G_N_ELEMENTS(path_only); i++) {
		dcdb_msg_t p = {.subtype = path_only[i], .path = "nodes/n1"};
		check_dcdb_golden(path_only[i], golden_path_only, sizeof(golden_path_only), &p);
	}

	dcdb_msg_t r = {.subtype = DCDB_MSG_RENAME, .path = "x.tmp", .to = "x"};
	check_dcdb_golden(DCDB_MSG_RENAME, golden_rename, sizeof(golden_rename), &r);

	dcdb_msg_t mt = {.subtype = DCDB_MSG_MTIME, .path = "priv/lock/l", .mtime = 0x60000001};
	g_assert_cmpuint(mt.offset, ==, 0x60000001); /* the same field */
	check_dcdb_golden(DCDB_MSG_MTIME, golden_mtime, sizeof(golden_mtime), &mt);

	build_golden_unlock();
	for (uint16_t st = DCDB_MSG_UNLOCK_REQUEST; st <= DCDB_MSG_UNLOCK; st++) {
		dcdb_msg_t u = {.subtype = st, .path = "priv/lock/l", .csum = golden_unlock};
		check_dcdb_golden(st, golden_unlock, sizeof(golden_unlock), &u);
	}
}

/* a fuse-msg built from parts, lengths as given (may be inconsistent) */
static GByteArray *fuse_msg(uint32_t size, uint32_t offset, uint32_t pathlen, uint32_t tolen,
			    uint32_t flags, const void *rest, size_t rest_len)
{
	GByteArray *a = g_byte_array_new();
	wire_writer_t w = wire_writer_array(a);
	wire_put_u32(&w, size);
	wire_put_u32(&w, offset);
	wire_put_u32(&w, pathlen);
	wire_put_u32(&w, tolen);
	wire_put_u32(&w, flags);
	wire_put_bytes(&w, rest, rest_len);
	g_assert_cmpint(wire_writer_finish(&w), ==, 0);
	return a;
}

static int dcdb_try(uint16_t st, GByteArray *a)
{
	cur_subtype = st;
	int r = call(dec_dcdb, a->data, a->len);
	g_byte_array_unref(a);
	return r;
}

static void test_dcdb_malformed(void)
{
	const uint16_t W = DCDB_MSG_WRITE;
	/* the fixed part */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 0, 0, 0, NULL, 0)), ==, -EINVAL); /* no path */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 0, 0, "a", 2)), ==, 0);
	/* lengths that do not add up, one byte either way */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 3, 0, 0, "a", 2)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 1, 0, 0, "a", 2)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(1, 0, 2, 0, 0, "a", 2)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 1, 0, "a", 2)), ==, -EMSGSIZE);
	/* 32-bit wrap: the original adds the lengths in u32 and accepts these */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0xffffffff, 0, 1, 0, 0, NULL, 0)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0xffffffff, 0, 2, 0, 0, "a", 1)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(1, 0, 0xffffffff, 2, 0, "ab", 2)), ==, -EMSGSIZE);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 0x80000000, 0x80000000, 0, NULL, 0)), ==,
			-EMSGSIZE);
	/* strings */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 0, 0, "ab", 2)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 3, 0, 0, "a\0b", 3)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 3, 0, 0, "a\0\0", 3)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 1, 0, 0, "", 1)), ==, 0); /* "" is a path */
	const uint16_t R = DCDB_MSG_RENAME;
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 0, 2, 2, 0, "a\0bc", 4)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 0, 2, 2, 0, "a\0\0\0", 4)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 0, 2, 0, 0, "a", 2)), ==, -EINVAL); /* no to */
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 0, 0, 2, 0, "b", 2)), ==, -EINVAL); /* no from */
	/* ".." as a component only */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 5, 0, 0, "a/..", 5)), ==, -EINVAL);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 5, 0, 0, "../a", 5)), ==, -EINVAL);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 3, 0, 0, "..", 3)), ==, -EINVAL);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 7, 0, 0, "a/../b", 7)), ==, -EINVAL);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 6, 0, 0, "a..b/", 6)), ==, 0);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 6, 0, 0, "/.../", 6)), ==, 0);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 5, 0, 0, "a//b", 5)), ==, 0);
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 0, 2, 5, 0, "a\0b/..", 7)), ==, -EINVAL);
	uint8_t ul[32 + 13] = {0};
	memcpy(ul + 32, "priv/lock/..", 13);
	cur_subtype = DCDB_MSG_UNLOCK;
	g_assert_cmpint(call(dec_dcdb, ul, sizeof(ul)), ==, -EINVAL);
	/* fields the original's sender never sets for the subtype */
	const uint16_t M = DCDB_MSG_MKDIR;
	g_assert_cmpint(dcdb_try(M, fuse_msg(0, 0, 2, 2, 0, "a\0b", 4)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(M, fuse_msg(1, 0, 2, 0, 0, "a\0x", 3)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(M, fuse_msg(0, 5, 2, 0, 0, "a", 2)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(M, fuse_msg(0, 0, 2, 0, 1, "a", 2)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(DCDB_MSG_MTIME, fuse_msg(0, 5, 2, 0, 0, "a", 2)), ==, 0);
	g_assert_cmpint(dcdb_try(DCDB_MSG_MTIME, fuse_msg(1, 5, 2, 0, 0, "a\0x", 3)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(DCDB_MSG_MTIME, fuse_msg(0, 5, 2, 0, 1, "a", 2)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(R, fuse_msg(0, 1, 2, 2, 0, "a\0b", 4)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 2, 0, "a\0b", 4)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 0, 2, "a", 2)), ==, -EPROTO);
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0, 2, 0, 0x80000001, "a", 2)), ==, -EPROTO);
	/* any offset: a write past 1 MiB fails EFBIG in memdb on every node */
	g_assert_cmpint(dcdb_try(W, fuse_msg(0, 0xffffffff, 2, 0, 1, "a", 2)), ==, 0);
	/* -EPROTO wins over -EINVAL: a ".." path with a stray `to` */
	g_assert_cmpint(dcdb_try(M, fuse_msg(0, 0, 3, 2, 0, "..\0b", 5)), ==, -EPROTO);

	/* unlock: the csum and at least one byte of path */
	uint8_t u[34] = {0};
	cur_subtype = DCDB_MSG_UNLOCK;
	g_assert_cmpint(call(dec_dcdb, u, 33), ==, 0); /* path "" */
	g_assert_cmpint(call(dec_dcdb, u, 32), ==, -EMSGSIZE);
	g_assert_cmpint(call(dec_dcdb, u, 34), ==, -EPROTO); /* "\0\0" */
	u[32] = 'a';
	g_assert_cmpint(call(dec_dcdb, u, 34), ==, 0);
	g_assert_cmpint(call(dec_dcdb, u, 33), ==, -EPROTO);
}

static void test_dcdb_limits(void)
{
	const uint16_t W = DCDB_MSG_WRITE;
	/* data: 1 MiB is the largest file */
	size_t big = MEMDB_MAX_FILE_SIZE + 1;
	uint8_t *rest = g_malloc0(big + 2);
	rest[0] = 'a';
	g_assert_cmpint(dcdb_try(W, fuse_msg(MEMDB_MAX_FILE_SIZE, 0, 2, 0, 0, rest, big + 1)), ==,
			0);
	g_assert_cmpint(dcdb_try(W, fuse_msg((uint32_t)big, 0, 2, 0, 0, rest, big + 2)), ==,
			-EMSGSIZE);

	/* paths: MEMDB_MAX_PATH bytes plus the NUL */
	char *p = g_malloc(MEMDB_MAX_PATH + 2);
	memset(p, 'p', MEMDB_MAX_PATH + 1);
	p[MEMDB_MAX_PATH] = '\0';
	g_assert_cmpint(
		dcdb_try(W, fuse_msg(0, 0, MEMDB_MAX_PATH + 1, 0, 0, p, MEMDB_MAX_PATH + 1)), ==,
		0);
	p[MEMDB_MAX_PATH] = 'p';
	p[MEMDB_MAX_PATH + 1] = '\0';
	g_assert_cmpint(
		dcdb_try(W, fuse_msg(0, 0, MEMDB_MAX_PATH + 2, 0, 0, p, MEMDB_MAX_PATH + 2)), ==,
		-EMSGSIZE);

	/* the encoder refuses the same */
	GByteArray *a = g_byte_array_new();
	dcdb_msg_t m = {.subtype = W, .path = p};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EMSGSIZE);
	m = (dcdb_msg_t){.subtype = W, .path = "a", .data = rest, .size = (uint32_t)big};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EMSGSIZE);
	m = (dcdb_msg_t){.subtype = W, .path = "a/../b"};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = W};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = W, .path = "a", .size = 3}; /* data missing */
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = W, .path = "a", .to = "b"};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = W, .path = "a", .flags = 2};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = DCDB_MSG_RENAME, .path = "a"};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = DCDB_MSG_RENAME, .path = "a", .to = "../b"};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = DCDB_MSG_MKDIR, .path = "a", .offset = 1};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = DCDB_MSG_UNLOCK, .path = "priv/lock/a"}; /* no csum */
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = DCDB_MSG_CREATE, .path = "a", .csum = (const uint8_t *)p};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	m = (dcdb_msg_t){.subtype = 9, .path = "a"};
	g_assert_cmpint(dcdb_msg_encode(a, &m), ==, -EINVAL);
	g_assert_cmpuint(a->len, ==, 0);
	g_byte_array_unref(a);
	g_free(p);
	g_free(rest);
}

/* --- dcdb STATE (§2.5) ------------------------------------------------------ */

/* version 5, last_inode 3, writer 1, mtime 100, 2 entries (inode 0, inode 3) */
static uint8_t golden_index[32 + 80];

static void build_golden_index(void)
{
	static const uint8_t hdr[32] = {
		0x05, 0, 0, 0, 0, 0, 0, 0, /* version */
		0x03, 0, 0, 0, 0, 0, 0, 0, /* last_inode */
		0x01, 0, 0, 0,             /* writer */
		0x64, 0, 0, 0,             /* mtime */
		0x02, 0, 0, 0,             /* size (entries) */
		0x70, 0, 0, 0,             /* bytes 112 */
	};
	memcpy(golden_index, hdr, 32);
	memset(golden_index + 32, 0, 8); /* inode 0 */
	memset(golden_index + 40, 0x11, 32);
	memset(golden_index + 72, 0, 8); /* inode 3 */
	golden_index[72] = 3;
	memset(golden_index + 80, 0x22, 32);
}

static int dec_state(const uint8_t *b, size_t n)
{
	memdb_index_view_t v;
	return dcdb_state_decode(b, n, &v);
}

static void test_dcdb_state(void)
{
	build_golden_index();
	uint8_t *b = dup_exact(golden_index, sizeof(golden_index));
	memdb_index_view_t v;
	g_assert_cmpint(dcdb_state_decode(b, sizeof(golden_index), &v), ==, 0);
	g_assert_cmpuint(v.version, ==, 5);
	g_assert_cmpuint(v.last_inode, ==, 3);
	g_assert_cmpuint(v.writer, ==, 1);
	g_assert_cmpuint(v.mtime, ==, 100);
	g_assert_cmpuint(v.size, ==, 2);
	g_assert_cmpuint(memdb_index_inode(&v, 1), ==, 3);
	g_assert_cmpuint(memdb_index_digest(&v, 1)[0], ==, 0x22);
	g_free(b);

	/* every truncation disagrees with `bytes` */
	check_truncations(dec_state, golden_index, sizeof(golden_index), -EMSGSIZE);
	check_extension(dec_state, golden_index, sizeof(golden_index), 0, -EMSGSIZE);
	size_t n = sizeof(golden_index);
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 28, 111), ==, -EMSGSIZE);
	/* `bytes` right, the rest wrong */
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 24, 3), ==, -EPROTO);
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 24, 0), ==, -EPROTO);
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 8, 4), ==, -EPROTO);
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 72, 0), ==, -EPROTO);
	/* 32 + 40 * size wraps in 32 bits for size 0x06666667 */
	g_assert_cmpint(call_patch32(dec_state, golden_index, n, 24, 0x06666667), ==, -EPROTO);

	/* a real memdb's index decodes */
	char *dir = tu_dir_new();
	memdb_t *m = tu_open(dir);
	g_assert_cmpint(memdb_mkdir(m, "nodes", 1, 10), ==, 0);
	g_assert_cmpint(memdb_create(m, "nodes/f", 1, 11), ==, 0);
	g_assert_cmpint(memdb_write(m, "nodes/f", 1, 12, "abc", 3, 0, false), ==, 3);
	size_t len;
	uint8_t *idx = memdb_encode_index(m, &len);
	g_assert_cmpint(dcdb_state_decode(idx, len, &v), ==, 0);
	g_assert_cmpuint(v.size, ==, 3);
	g_assert_cmpuint(v.version, ==, memdb_version(m));
	check_truncations(dec_state, idx, len, -EMSGSIZE);
	g_free(idx);
	memdb_close(m);
	tu_dir_free(dir);
}

/* --- dcdb UPDATE (§2.7) ----------------------------------------------------- */

/* file "x.cfg" inode 5, parent 2, version 7, writer 2, mtime 0x61000000, "abc" */
static const uint8_t golden_update_file[] = {
	0x02, 0,   0,   0,    0,   0, 0, 0, /* parent */
	0x05, 0,   0,   0,    0,   0, 0, 0, /* inode */
	0x07, 0,   0,   0,    0,   0, 0, 0, /* version */
	0x02, 0,   0,   0,                  /* writer */
	0x00, 0,   0,   0x61,               /* mtime */
	0x03, 0,   0,   0,                  /* size */
	0x06, 0,   0,   0,                  /* namelen */
	0x08,                               /* type DT_REG */
	'x',  '.', 'c', 'f',  'g', 0,       /* name */
	'a',  'b', 'c',                     /* data */
};

/* the root: inode 0, parent 0, version 9, writer 3, mtime 0x62000000, dir, name "" */
static const uint8_t golden_update_root[] = {
	0,    0, 0, 0,    0, 0, 0, 0, /* parent */
	0,    0, 0, 0,    0, 0, 0, 0, /* inode */
	9,    0, 0, 0,    0, 0, 0, 0, /* version */
	3,    0, 0, 0,                /* writer */
	0,    0, 0, 0x62,             /* mtime */
	0,    0, 0, 0,                /* size */
	1,    0, 0, 0,                /* namelen */
	0x04,                         /* type DT_DIR */
	0,                            /* name "" */
};

static int dec_update(const uint8_t *b, size_t n)
{
	dcdb_update_t u;
	int r = dcdb_update_decode(b, n, &u);
	if (r == 0) {
		g_assert_true(inside(u.name, strlen(u.name) + 1, b, n));
		if (u.size)
			g_assert_true(inside(u.data, u.size, b, n));
	}
	return r;
}

static void test_dcdb_update(void)
{
	uint8_t *b = dup_exact(golden_update_file, sizeof(golden_update_file));
	dcdb_update_t u;
	g_assert_cmpint(dcdb_update_decode(b, sizeof(golden_update_file), &u), ==, 0);
	g_assert_cmpuint(u.parent, ==, 2);
	g_assert_cmpuint(u.inode, ==, 5);
	g_assert_cmpuint(u.version, ==, 7);
	g_assert_cmpuint(u.writer, ==, 2);
	g_assert_cmpuint(u.mtime, ==, 0x61000000);
	g_assert_cmpuint(u.size, ==, 3);
	g_assert_cmpuint(u.type, ==, MEMDB_TYPE_REG);
	g_assert_cmpstr(u.name, ==, "x.cfg");
	g_assert_cmpmem(u.data, 3, "abc", 3);
	GByteArray *a = g_byte_array_new();
	g_assert_cmpint(dcdb_update_encode(a, &u), ==, 0);
	assert_bytes(a, golden_update_file, sizeof(golden_update_file));
	g_free(b);

	b = dup_exact(golden_update_root, sizeof(golden_update_root));
	g_assert_cmpint(dcdb_update_decode(b, sizeof(golden_update_root), &u), ==, 0);
	g_assert_cmpuint(u.inode, ==, 0);
	g_assert_cmpuint(u.version, ==, 9);
	g_assert_cmpuint(u.type, ==, MEMDB_TYPE_DIR);
	g_assert_cmpstr(u.name, ==, "");
	g_assert_null(u.data);
	g_byte_array_set_size(a, 0);
	g_assert_cmpint(dcdb_update_encode(a, &u), ==, 0);
	assert_bytes(a, golden_update_root, sizeof(golden_update_root));
	g_free(b);

	/* every truncation, one byte more */
	check_truncations(dec_update, golden_update_file, sizeof(golden_update_file), -EMSGSIZE);
	check_truncations(dec_update, golden_update_root, sizeof(golden_update_root), -EMSGSIZE);
	check_extension(dec_update, golden_update_file, sizeof(golden_update_file), 0, -EMSGSIZE);
	check_extension(dec_update, golden_update_root, sizeof(golden_update_root), 0, -EMSGSIZE);

	const uint8_t *f = golden_update_file;
	size_t n = sizeof(golden_update_file);
	/* type */
	const uint8_t t5[] = {5}, t4[] = {4}, z[] = {0}, sl[] = {'/'};
	g_assert_cmpint(call_patched(dec_update, f, n, 40, t5, 1), ==, -EPROTO);
	g_assert_cmpint(call_patched(dec_update, f, n, 40, z, 1), ==, -EPROTO);
	g_assert_cmpint(call_patched(dec_update, f, n, 40, t4, 1), ==, -EPROTO); /* dir, size 3 */
	/* lengths: namelen + size must be the rest, in 64 bits */
	g_assert_cmpint(call_patch32(dec_update, f, n, 36, 5), ==, -EMSGSIZE);
	g_assert_cmpint(call_patch32(dec_update, f, n, 32, 4), ==, -EMSGSIZE);
	g_assert_cmpint(call_patch32(dec_update, f, n, 32, 0), ==, -EMSGSIZE);
	g_assert_cmpint(call_patch32(dec_update, f, n, 36, 0xfffffffe), ==, -EMSGSIZE);
	/* namelen 9, size 0: the name would be "x.cfg\0abc" */
	uint8_t *c = dup_exact(f, n);
	wire_store32(c + 36, 9);
	wire_store32(c + 32, 0);
	g_assert_cmpint(dec_update(c, n), ==, -EPROTO);
	/* namelen 0, size 9: consistent lengths, no name */
	wire_store32(c + 36, 0);
	wire_store32(c + 32, 9);
	g_assert_cmpint(dec_update(c, n), ==, -EPROTO);
	/* the name must end in its only NUL */
	memcpy(c, f, n);
	c[46] = 'x';
	g_assert_cmpint(dec_update(c, n), ==, -EPROTO);
	memcpy(c, f, n);
	c[43] = 0;
	g_assert_cmpint(dec_update(c, n), ==, -EPROTO);
	g_free(c);
	/* names memdb cannot hold */
	g_assert_cmpint(call_patched(dec_update, f, n, 42, sl, 1), ==, -EINVAL);
	g_assert_cmpint(call_patched(dec_update, f, n, 41, "..\0", 3), ==, -EPROTO); /* 2 NULs */
	uint8_t dots[] = {
		2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,   0,   0,
		0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4, '.', '.', 0,
	};
	g_assert_cmpint(call(dec_update, dots, sizeof(dots)), ==, -EINVAL);
	dots[42] = 0; /* "." plus a NUL inside: */
	g_assert_cmpint(call(dec_update, dots, sizeof(dots)), ==, -EPROTO);
	dots[36] = 2;
	g_assert_cmpint(call(dec_update, dots, sizeof(dots) - 1), ==, -EINVAL); /* "." */
	dots[36] = 1;
	dots[41] = 0;
	g_assert_cmpint(call(dec_update, dots, sizeof(dots) - 2), ==, -EINVAL); /* "" not root */
	dots[8] = 0;
	g_assert_cmpint(call(dec_update, dots, sizeof(dots) - 2), ==, 0); /* "" root */
	g_assert_cmpint(
		call_patched(dec_update, golden_update_root, sizeof(golden_update_root), 8, t4, 1),
		==, -EINVAL); /* inode 4 named "" */

	/* the original reads byte 40 of a 40-byte payload: we never do */
	g_assert_cmpint(call(dec_update, f, 40), ==, -EMSGSIZE);
	/* the original's u32 sum: size 0xffffffff + namelen 2 == 1 */
	c = dup_exact(f, 42);
	wire_store32(c + 32, 0xffffffff);
	wire_store32(c + 36, 2);
	g_assert_cmpint(dec_update(c, 42), ==, -EMSGSIZE);
	g_free(c);

	/* a 1 MiB file is fine, one byte more is not */
	size_t big = 41 + 2 + MEMDB_MAX_FILE_SIZE + 1;
	c = g_malloc0(big);
	memcpy(c, f, 41);
	wire_store32(c + 36, 2);
	c[41] = 'b';
	wire_store32(c + 32, MEMDB_MAX_FILE_SIZE);
	g_assert_cmpint(dec_update(c, big - 1), ==, 0);
	wire_store32(c + 32, MEMDB_MAX_FILE_SIZE + 1);
	g_assert_cmpint(dec_update(c, big), ==, -EMSGSIZE);
	g_free(c);

	/* the encoder refuses the same */
	g_byte_array_set_size(a, 0);
	dcdb_update_t e = {.inode = 3, .type = MEMDB_TYPE_DIR, .name = "d", .size = 1};
	g_assert_cmpint(dcdb_update_encode(a, &e), ==, -EINVAL);
	e = (dcdb_update_t){.inode = 3, .type = 1, .name = "d"};
	g_assert_cmpint(dcdb_update_encode(a, &e), ==, -EINVAL);
	e = (dcdb_update_t){.inode = 3, .type = MEMDB_TYPE_REG, .name = "a/b"};
	g_assert_cmpint(dcdb_update_encode(a, &e), ==, -EINVAL);
	e = (dcdb_update_t){.inode = 0, .type = MEMDB_TYPE_DIR, .name = "r"};
	g_assert_cmpint(dcdb_update_encode(a, &e), ==, -EINVAL);
	e = (dcdb_update_t){.inode = 3, .type = MEMDB_TYPE_REG, .name = "f", .size = 2};
	g_assert_cmpint(dcdb_update_encode(a, &e), ==, -EINVAL);
	g_assert_cmpuint(a->len, ==, 0);
	g_byte_array_unref(a);
}

/* --- kvstore UPDATE (§3.2) -------------------------------------------------- */

static int dec_kv(const uint8_t *b, size_t n)
{
	kvstore_update_t u;
	int r = kvstore_update_decode(b, n, &u);
	if (r == 0) {
		g_assert_true(inside(u.key, strlen(u.key) + 1, b, n));
		g_assert_cmpuint(strlen(u.key), <, 256);
		if (u.value_len)
			g_assert_true(inside(u.value, u.value_len, b, n));
	}
	return r;
}

static void test_kvstore_update(void)
{
	/* key "kv/foo" with stack garbage after its NUL (as the original sends),
	 * value "bar" */
	uint8_t golden[256 + 3];
	memset(golden, 0xaa, 256);
	memcpy(golden, "kv/foo", 7);
	memcpy(golden + 256, "bar", 3);

	uint8_t *b = dup_exact(golden, sizeof(golden));
	kvstore_update_t u;
	g_assert_cmpint(kvstore_update_decode(b, sizeof(golden), &u), ==, 0);
	g_assert_cmpstr(u.key, ==, "kv/foo");
	g_assert_cmpuint(u.value_len, ==, 3);
	g_assert_true(u.value == b + 256);
	g_free(b);

	/* we zero the field after the NUL */
	GByteArray *a = g_byte_array_new();
	g_assert_cmpint(kvstore_update_encode(a, "kv/foo", "bar", 3), ==, 0);
	memset(golden + 7, 0, 256 - 7);
	assert_bytes(a, golden, sizeof(golden));

	check_truncations(dec_kv, golden, 256, -EMSGSIZE);
	for (size_t n = 256; n <= sizeof(golden); n++)
		g_assert_cmpint(call(dec_kv, golden, n), ==, 0);

	/* 256 bytes: delete */
	b = dup_exact(golden, 256);
	g_assert_cmpint(kvstore_update_decode(b, 256, &u), ==, 0);
	g_assert_null(u.value);
	g_assert_cmpuint(u.value_len, ==, 0);
	g_free(b);
	g_byte_array_set_size(a, 0);
	g_assert_cmpint(kvstore_update_encode(a, "kv/foo", NULL, 0), ==, 0);
	assert_bytes(a, golden, 256);

	/* the NUL at the last byte of the field, or nowhere */
	uint8_t k[256 + 1];
	memset(k, 'k', sizeof(k));
	k[255] = 0;
	g_assert_cmpint(call(dec_kv, k, 256), ==, 0);
	k[255] = 'k';
	g_assert_cmpint(call(dec_kv, k, 257), ==, -EPROTO);
	k[256] = 0; /* a NUL in the value does not count */
	g_assert_cmpint(call(dec_kv, k, 257), ==, -EPROTO);
	memset(k, 0, 256);
	g_assert_cmpint(call(dec_kv, k, 256), ==, 0); /* key "" */

	/* value limit */
	size_t big = 256 + KVSTORE_MAX_VALUE + 1;
	uint8_t *v = g_malloc0(big);
	g_assert_cmpint(call(dec_kv, v, big - 1), ==, 0);
	g_assert_cmpint(call(dec_kv, v, big), ==, -EMSGSIZE);

	/* the encoder */
	g_byte_array_set_size(a, 0);
	char key[257];
	memset(key, 'k', 256);
	key[256] = 0;
	g_assert_cmpint(kvstore_update_encode(a, key, "x", 1), ==, -EINVAL);
	key[255] = 0;
	g_assert_cmpint(kvstore_update_encode(a, key, "x", 1), ==, 0);
	g_assert_cmpuint(a->len, ==, 257);
	g_assert_cmpuint(a->data[255], ==, 0);
	g_byte_array_set_size(a, 0);
	g_assert_cmpint(kvstore_update_encode(a, "k", v, KVSTORE_MAX_VALUE + 1), ==, -EMSGSIZE);
	g_assert_cmpint(kvstore_update_encode(a, "k", NULL, 1), ==, -EINVAL);
	g_assert_cmpint(kvstore_update_encode(a, NULL, "x", 1), ==, -EINVAL);
	g_assert_cmpuint(a->len, ==, 0);
	g_free(v);
	g_byte_array_unref(a);

	/* found by fuzz-dfsm (UBSan): key "" into a new array first writes 0
	 * bytes to an array whose data is still NULL */
	a = g_byte_array_new();
	g_assert_cmpint(kvstore_update_encode(a, "", NULL, 0), ==, 0);
	g_assert_cmpuint(a->len, ==, 256);
	uint8_t *c = dup_exact(a->data, a->len);
	g_assert_cmpint(kvstore_update_decode(c, a->len, &u), ==, 0);
	g_assert_cmpstr(u.key, ==, "");
	g_free(c);
	g_byte_array_unref(a);
}

/* --- random input ------------------------------------------------------------ */

static void test_random(void)
{
	GRand *rnd = g_rand_new_with_seed(4242);
	for (int i = 0; i < 30000; i++) {
		size_t n = (size_t)g_rand_int_range(rnd, 0, 400);
		uint8_t *p = g_malloc(n + 1);
		for (size_t k = 0; k < n; k++) {
			int c = g_rand_int_range(rnd, 0, 8);
			uint32_t v = c == 0   ? 0
				     : c == 1 ? (uint32_t)g_rand_int_range(rnd, 1, 12)
					      : g_rand_int(rnd);
			p[k] = (uint8_t)v;
		}
		uint8_t *b = dup_exact(p, n);
		(void)dec_msg(b, n);
		(void)dec_base(b, n);
		cur_subtype = (uint16_t)g_rand_int_range(rnd, 0, 10);
		(void)dec_dcdb(b, n);
		(void)dec_update(b, n);
		(void)dec_state(b, n);
		(void)dec_kv(b, n);
		g_free(b);
		g_free(p);
	}
	g_rand_free(rnd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tu_allow_warnings();
	g_test_add_func("/dfsm-proto/wire/reader", test_wire_reader);
	g_test_add_func("/dfsm-proto/wire/writer", test_wire_writer);
	g_test_add_func("/dfsm-proto/group-names", test_group_names);
	g_test_add_func("/dfsm-proto/header/normal", test_normal_header);
	g_test_add_func("/dfsm-proto/header/state", test_state_headers);
	g_test_add_func("/dfsm-proto/header/bad-types", test_bad_types);
	g_test_add_func("/dfsm-proto/header/version-epoch", test_version_and_epoch);
	g_test_add_func("/dfsm-proto/dcdb/golden", test_dcdb_golden);
	g_test_add_func("/dfsm-proto/dcdb/malformed", test_dcdb_malformed);
	g_test_add_func("/dfsm-proto/dcdb/limits", test_dcdb_limits);
	g_test_add_func("/dfsm-proto/dcdb/state", test_dcdb_state);
	g_test_add_func("/dfsm-proto/dcdb/update", test_dcdb_update);
	g_test_add_func("/dfsm-proto/kvstore/update", test_kvstore_update);
	g_test_add_func("/dfsm-proto/random", test_random);
	return g_test_run();
}
