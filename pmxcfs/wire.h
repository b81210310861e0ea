/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * wire.h: little-endian byte helpers with bounds checks, for every message
 * that crosses the network (design.md "Wire formats are explicit").
 *
 * The original sends its C structs as they lie in memory, so the wire
 * format is x86-64/arm64 layout: little-endian, no padding between the
 * fields it uses.  We never cast received bytes to a struct.  A reader walks
 * a buffer it does not own; a writer appends to a GByteArray or fills a
 * caller's buffer.
 *
 * DESIGN
 *   Both keep a sticky error: the first access that does not fit sets
 *   err = -EMSGSIZE, returns zeros (reader) or writes nothing (writer), and
 *   every later access does the same.  So a decoder reads all fixed fields
 *   in a row and checks err once, and nothing is ever read or written
 *   outside [buf, buf + len).  All functions are inline and pure.
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* --- plain loads and stores (the caller has checked the bounds) ---------- */

static inline uint16_t wire_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t wire_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wire_le64(const uint8_t *p)
{
	return (uint64_t)wire_le32(p) | (uint64_t)wire_le32(p + 4) << 32;
}

static inline void wire_store16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void wire_store32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wire_store64(uint8_t *p, uint64_t v)
{
	wire_store32(p, (uint32_t)v);
	wire_store32(p + 4, (uint32_t)(v >> 32));
}

/* --- reader --------------------------------------------------------------- */

typedef struct wire_reader {
	const uint8_t *buf; /* borrowed; never written */
	size_t len;
	size_t pos; /* next byte to read; never beyond len */
	int err;    /* 0, or -EMSGSIZE after an access past the end (sticky) */
} wire_reader_t;

static inline wire_reader_t wire_reader(const void *buf, size_t len)
{
	return (wire_reader_t){.buf = buf, .len = buf ? len : 0, .err = buf || !len ? 0 : -EINVAL};
}

static inline size_t wire_remaining(const wire_reader_t *r)
{
	return r->len - r->pos;
}

/* @n bytes at the current position, or NULL (and err set) if fewer are
 * left.  With n == 0 the pointer may be one past the end (or NULL for an
 * empty buffer): never read it, and test r->err rather than the pointer. */
static inline const uint8_t *wire_get_bytes(wire_reader_t *r, size_t n)
{
	if (r->err || n > r->len - r->pos) {
		if (!r->err)
			r->err = -EMSGSIZE;
		return NULL;
	}
	if (!r->buf)
		return NULL;
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static inline uint8_t wire_get_u8(wire_reader_t *r)
{
	const uint8_t *p = wire_get_bytes(r, 1);
	return p ? p[0] : 0;
}

static inline uint16_t wire_get_u16(wire_reader_t *r)
{
	const uint8_t *p = wire_get_bytes(r, 2);
	return p ? wire_le16(p) : 0;
}

static inline uint32_t wire_get_u32(wire_reader_t *r)
{
	const uint8_t *p = wire_get_bytes(r, 4);
	return p ? wire_le32(p) : 0;
}

static inline uint64_t wire_get_u64(wire_reader_t *r)
{
	const uint8_t *p = wire_get_bytes(r, 8);
	return p ? wire_le64(p) : 0;
}

/* The rest of the buffer (possibly empty); *ret_len its length. */
static inline const uint8_t *wire_get_rest(wire_reader_t *r, size_t *ret_len)
{
	*ret_len = r->err ? 0 : wire_remaining(r);
	return wire_get_bytes(r, *ret_len);
}

/* --- writer --------------------------------------------------------------- */

typedef struct wire_writer {
	GByteArray *array; /* append here ... */
	uint8_t *buf;      /* ... or fill this buffer of cap bytes */
	size_t cap;
	size_t pos;   /* bytes written by this writer */
	size_t start; /* array: its length when the writer was made */
	int err;      /* 0, or -EMSGSIZE after a write that did not fit (sticky) */
} wire_writer_t;

static inline wire_writer_t wire_writer_array(GByteArray *array)
{
	return (wire_writer_t){
		.array = array, .start = array ? array->len : 0, .err = array ? 0 : -EINVAL};
}

static inline wire_writer_t wire_writer_buffer(void *buf, size_t cap)
{
	return (wire_writer_t){.buf = buf, .cap = buf ? cap : 0, .err = buf || !cap ? 0 : -EINVAL};
}

/* Room for @n more bytes; returns where they go, or NULL (err set, or
 * n == 0: an empty array or buffer may have no storage to point into). */
static inline uint8_t *wire_put_space(wire_writer_t *w, size_t n)
{
	if (w->err || n == 0)
		return NULL;
	if (w->array) {
		size_t at = w->array->len;
		if (n > G_MAXUINT - at) {
			w->err = -EMSGSIZE;
			return NULL;
		}
		g_byte_array_set_size(w->array, (guint)(at + n));
		w->pos += n;
		return w->array->data + at;
	}
	if (n > w->cap - w->pos) {
		w->err = -EMSGSIZE;
		return NULL;
	}
	uint8_t *p = w->buf + w->pos;
	w->pos += n;
	return p;
}

static inline void wire_put_bytes(wire_writer_t *w, const void *src, size_t n)
{
	uint8_t *p = wire_put_space(w, n);
	if (p && n)
		memcpy(p, src, n);
}

static inline void wire_put_zeros(wire_writer_t *w, size_t n)
{
	uint8_t *p = wire_put_space(w, n);
	if (p && n)
		memset(p, 0, n);
}

static inline void wire_put_u8(wire_writer_t *w, uint8_t v)
{
	uint8_t *p = wire_put_space(w, 1);
	if (p)
		p[0] = v;
}

static inline void wire_put_u16(wire_writer_t *w, uint16_t v)
{
	uint8_t *p = wire_put_space(w, 2);
	if (p)
		wire_store16(p, v);
}

static inline void wire_put_u32(wire_writer_t *w, uint32_t v)
{
	uint8_t *p = wire_put_space(w, 4);
	if (p)
		wire_store32(p, v);
}

static inline void wire_put_u64(wire_writer_t *w, uint64_t v)
{
	uint8_t *p = wire_put_space(w, 8);
	if (p)
		wire_store64(p, v);
}

/* Set the sticky error by hand (an encoder refusing its input). */
static inline void wire_put_fail(wire_writer_t *w, int err)
{
	if (!w->err)
		w->err = err;
}

/* End of an encoding: returns 0, or the error after taking back everything
 * this writer appended to its array (a caller's buffer is left as is). */
static inline int wire_writer_finish(wire_writer_t *w)
{
	if (w->err && w->array && w->array->len >= w->start)
		g_byte_array_set_size(w->array, (guint)w->start);
	return w->err;
}
