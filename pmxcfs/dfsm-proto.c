/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dfsm-proto.c: encoding and decoding of everything pmxcfs sends through
 * corosync CPG (see dfsm-proto.h for the API, docs/wire.md for the tables).
 *
 * DESIGN
 *   Every decoder reads through a wire_reader_t (wire.h), so a length
 *   field can only make it fail, never read further than the buffer.
 *   Lengths from the wire are added in 64 bits, so no sum can wrap (the
 *   original adds them in 32 bits).  Strings must fill their field exactly:
 *   the last byte is the only NUL.  Encoders check their input with the
 *   same rules before writing, and take back what they appended on failure.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dfsm-proto.h"
#include "wire.h"

/* --- shared checks --------------------------------------------------------- */

/* [p, p + n) is a string whose only NUL is its last byte. */
static bool exact_string(const uint8_t *p, size_t n)
{
	return n > 0 && p[n - 1] == '\0' && memchr(p, '\0', n - 1) == NULL;
}

/* No component of @path is "..". */
static bool path_without_dotdot(const char *path)
{
	const char *c = path;
	for (;;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return false;
		if (!end)
			return true;
		c = end + 1;
	}
}

/* A path field of the given length (incl. NUL, 0 = absent): 0 with *ret
 * set (NULL when absent), or a negative errno.  Its content (the ".."
 * rule) is checked later, after everything that can give -EPROTO. */
static int take_path(wire_reader_t *r, uint32_t n, const char **ret)
{
	*ret = NULL;
	if (n == 0)
		return 0;
	const uint8_t *p = wire_get_bytes(r, n);
	if (!p)
		return -EMSGSIZE;
	if (!exact_string(p, n))
		return -EPROTO;
	if (n - 1 > MEMDB_MAX_PATH)
		return -EMSGSIZE;
	*ret = (const char *)p;
	return 0;
}

/* The same rules for a path we are about to send. */
static int check_out_path(const char *path)
{
	if (strlen(path) > MEMDB_MAX_PATH)
		return -EMSGSIZE;
	return path_without_dotdot(path) ? 0 : -EINVAL;
}

/* --- CPG group names ------------------------------------------------------- */

int dfsm_group_name_init(dfsm_group_name_t *ret, const char *name)
{
	memset(ret, 0, sizeof(*ret));
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n + 1 > DFSM_GROUP_NAME_MAX)
		return -EINVAL;
	memcpy(ret->value, name, n + 1);
	ret->length = (uint32_t)(n + 1);
	return 0;
}

bool dfsm_group_name_is(uint32_t length, const char *value, const char *name)
{
	size_t n = strlen(name) + 1;
	return value && length == n && length <= DFSM_GROUP_NAME_MAX && memcmp(value, name, n) == 0;
}

/* --- DFSM headers ---------------------------------------------------------- */

size_t dfsm_header_len(uint16_t type)
{
	if (type == DFSM_MSG_NORMAL)
		return DFSM_NORMAL_HEADER_LEN;
	if (type <= DFSM_MSG_MAX)
		return DFSM_STATE_HEADER_LEN;
	return 0;
}

static void read_base(wire_reader_t *r, dfsm_msg_t *m)
{
	m->type = wire_get_u16(r);
	m->subtype = wire_get_u16(r);
	m->protocol_version = wire_get_u32(r);
	m->time = wire_get_u32(r);
	m->reserved = wire_get_u32(r);
}

int dfsm_base_decode(const uint8_t *buf, size_t len, dfsm_msg_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	wire_reader_t r = wire_reader(buf, len);
	read_base(&r, ret);
	return r.err ? -EMSGSIZE : 0;
}

int dfsm_msg_decode(const uint8_t *buf, size_t len, dfsm_msg_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	wire_reader_t r = wire_reader(buf, len);
	read_base(&r, ret);
	if (r.err)
		return -EMSGSIZE;

	/* an unknown type is read as a state message, as the original does */
	if (ret->type == DFSM_MSG_NORMAL) {
		ret->count = wire_get_u64(&r);
	} else {
		ret->epoch.epoch = wire_get_u32(&r);
		ret->epoch.time = wire_get_u32(&r);
		ret->epoch.nodeid = wire_get_u32(&r);
		ret->epoch.pid = wire_get_u32(&r);
	}
	if (r.err)
		return -EMSGSIZE;
	ret->payload = wire_get_rest(&r, &ret->payload_len);
	return ret->type > DFSM_MSG_MAX ? -EPROTO : 0;
}

int dfsm_header_encode(const dfsm_msg_t *m, uint8_t out[DFSM_STATE_HEADER_LEN])
{
	size_t hlen = dfsm_header_len(m->type);
	if (hlen == 0 || (m->type != DFSM_MSG_NORMAL && m->subtype != 0))
		return -EINVAL;

	wire_writer_t w = wire_writer_buffer(out, DFSM_STATE_HEADER_LEN);
	wire_put_u16(&w, m->type);
	wire_put_u16(&w, m->subtype);
	wire_put_u32(&w, m->protocol_version);
	wire_put_u32(&w, m->time);
	wire_put_u32(&w, 0); /* reserved */
	if (m->type == DFSM_MSG_NORMAL) {
		wire_put_u64(&w, m->count);
	} else {
		wire_put_u32(&w, m->epoch.epoch);
		wire_put_u32(&w, m->epoch.time);
		wire_put_u32(&w, m->epoch.nodeid);
		wire_put_u32(&w, m->epoch.pid);
	}
	g_assert(w.err == 0 && w.pos == hlen);
	return (int)hlen;
}

int dfsm_msg_encode(GByteArray *out, const dfsm_msg_t *m)
{
	uint8_t hdr[DFSM_STATE_HEADER_LEN];
	int hlen = dfsm_header_encode(m, hdr);
	if (hlen < 0)
		return hlen;
	if (m->payload_len && !m->payload)
		return -EINVAL;

	wire_writer_t w = wire_writer_array(out);
	wire_put_bytes(&w, hdr, (size_t)hlen);
	wire_put_bytes(&w, m->payload, m->payload_len);
	return wire_writer_finish(&w);
}

dfsm_version_verdict_t dfsm_version_check(uint32_t theirs, uint32_t ours)
{
	if (theirs > ours)
		return DFSM_VERSION_NEWER;
	if (theirs < ours)
		return DFSM_VERSION_IGNORE;
	return DFSM_VERSION_OK;
}

bool dfsm_epoch_equal(const dfsm_epoch_t *a, const dfsm_epoch_t *b)
{
	return a->epoch == b->epoch && a->time == b->time && a->nodeid == b->nodeid &&
	       a->pid == b->pid;
}

void dfsm_verify_request_encode(uint8_t out[DFSM_VERIFY_REQUEST_LEN], uint64_t csum_id)
{
	wire_store64(out, csum_id);
}

int dfsm_verify_request_decode(const uint8_t *buf, size_t len, uint64_t *ret_csum_id)
{
	*ret_csum_id = 0;
	if (!buf || len != DFSM_VERIFY_REQUEST_LEN)
		return -EMSGSIZE;
	*ret_csum_id = wire_le64(buf);
	return 0;
}

void dfsm_verify_encode(uint8_t out[DFSM_VERIFY_LEN], uint64_t csum_id,
			const uint8_t csum[MEMDB_CSUM_LEN])
{
	wire_store64(out, csum_id);
	memcpy(out + 8, csum, MEMDB_CSUM_LEN);
}

int dfsm_verify_decode(const uint8_t *buf, size_t len, uint64_t *ret_csum_id,
		       const uint8_t **ret_csum)
{
	*ret_csum_id = 0;
	*ret_csum = NULL;
	if (!buf || len != DFSM_VERIFY_LEN)
		return -EMSGSIZE;
	*ret_csum_id = wire_le64(buf);
	*ret_csum = buf + 8;
	return 0;
}

/* --- dcdb NORMAL payloads -------------------------------------------------- */

/* What a subtype's fuse-msg may carry (§2.2, and what the original's
 * sender, cfs-plug-memdb.c, puts in each). */
enum {
	F_TO = 1 << 0,     /* a `to` path (required when allowed) */
	F_DATA = 1 << 1,   /* data bytes */
	F_OFFSET = 1 << 2, /* a non-zero offset field */
	F_FLAGS = 1 << 3,  /* flags 0 or DCDB_FLAG_TRUNCATE */
};

static int fuse_rules(uint16_t subtype)
{
	switch (subtype) {
	case DCDB_MSG_WRITE:
		return F_DATA | F_OFFSET | F_FLAGS;
	case DCDB_MSG_MKDIR:
	case DCDB_MSG_DELETE:
	case DCDB_MSG_CREATE:
		return 0;
	case DCDB_MSG_RENAME:
		return F_TO;
	case DCDB_MSG_MTIME:
		return F_OFFSET;
	default:
		return -1;
	}
}

/* The fields against the subtype's rules: -EPROTO for something its sender
 * never sets, -EINVAL for a missing path. */
static int fuse_check(const dcdb_msg_t *m, int rules)
{
	if (!(rules & F_TO) && m->to)
		return -EPROTO;
	if (!(rules & F_DATA) && m->size != 0)
		return -EPROTO;
	if (!(rules & F_OFFSET) && m->offset != 0)
		return -EPROTO;
	if (m->flags != 0 && !((rules & F_FLAGS) && m->flags == DCDB_FLAG_TRUNCATE))
		return -EPROTO;
	if (!m->path || ((rules & F_TO) && !m->to))
		return -EINVAL;
	if (!path_without_dotdot(m->path) || (m->to && !path_without_dotdot(m->to)))
		return -EINVAL;
	return 0;
}

static int unlock_decode(const uint8_t *buf, size_t len, dcdb_msg_t *ret)
{
	if (len < DCDB_UNLOCK_MIN_LEN)
		return -EMSGSIZE;
	wire_reader_t r = wire_reader(buf, len);
	ret->csum = wire_get_bytes(&r, MEMDB_CSUM_LEN);
	size_t n;
	const uint8_t *p = wire_get_rest(&r, &n);
	if (r.err)
		return -EMSGSIZE;
	if (!exact_string(p, n))
		return -EPROTO;
	if (n - 1 > MEMDB_MAX_PATH)
		return -EMSGSIZE;
	if (!path_without_dotdot((const char *)p))
		return -EINVAL;
	ret->path = (const char *)p;
	return 0;
}

int dcdb_msg_decode(uint16_t subtype, const uint8_t *buf, size_t len, dcdb_msg_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->subtype = subtype;
	if (subtype == DCDB_MSG_UNLOCK_REQUEST || subtype == DCDB_MSG_UNLOCK) {
		int r = unlock_decode(buf, len, ret);
		if (r < 0)
			memset(ret, 0, sizeof(*ret));
		return r;
	}
	int rules = fuse_rules(subtype);
	if (rules < 0)
		return -EPROTO;

	wire_reader_t r = wire_reader(buf, len);
	uint32_t size = wire_get_u32(&r);
	uint32_t offset = wire_get_u32(&r);
	uint32_t pathlen = wire_get_u32(&r);
	uint32_t tolen = wire_get_u32(&r);
	uint32_t flags = wire_get_u32(&r);
	if (r.err)
		return -EMSGSIZE;
	if ((uint64_t)size + pathlen + tolen != wire_remaining(&r) || size > MEMDB_MAX_FILE_SIZE)
		return -EMSGSIZE;

	dcdb_msg_t m = {.subtype = subtype, .size = size, .offset = offset, .flags = flags};
	int e = take_path(&r, pathlen, &m.path);
	if (e == 0)
		e = take_path(&r, tolen, &m.to);
	if (e < 0)
		return e;
	m.data = size ? wire_get_bytes(&r, size) : NULL;
	g_assert(r.err == 0 && wire_remaining(&r) == 0);

	e = fuse_check(&m, rules);
	if (e < 0)
		return e;
	*ret = m;
	return 0;
}

int dcdb_msg_encode(GByteArray *out, const dcdb_msg_t *m)
{
	wire_writer_t w = wire_writer_array(out);
	if (!m->path)
		return -EINVAL;
	int e = check_out_path(m->path);
	if (e < 0)
		return e;

	if (m->subtype == DCDB_MSG_UNLOCK_REQUEST || m->subtype == DCDB_MSG_UNLOCK) {
		if (!m->csum || m->to || m->size || m->offset || m->flags)
			return -EINVAL;
		wire_put_bytes(&w, m->csum, MEMDB_CSUM_LEN);
		wire_put_bytes(&w, m->path, strlen(m->path) + 1);
		return wire_writer_finish(&w);
	}

	int rules = fuse_rules(m->subtype);
	if (rules < 0 || m->csum || (m->size && !m->data))
		return -EINVAL;
	if (m->size > MEMDB_MAX_FILE_SIZE)
		return -EMSGSIZE;
	if (m->to && (e = check_out_path(m->to)) < 0)
		return e;
	if (fuse_check(m, rules) < 0)
		return -EINVAL;

	uint32_t pathlen = (uint32_t)strlen(m->path) + 1;
	uint32_t tolen = m->to ? (uint32_t)strlen(m->to) + 1 : 0;
	wire_put_u32(&w, m->size);
	wire_put_u32(&w, m->offset);
	wire_put_u32(&w, pathlen);
	wire_put_u32(&w, tolen);
	wire_put_u32(&w, m->flags);
	wire_put_bytes(&w, m->path, pathlen);
	if (m->to)
		wire_put_bytes(&w, m->to, tolen);
	if (m->size)
		wire_put_bytes(&w, m->data, m->size);
	return wire_writer_finish(&w);
}

/* --- dcdb STATE and UPDATE ------------------------------------------------- */

int dcdb_state_decode(const uint8_t *buf, size_t len, memdb_index_view_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!buf || len < MEMDB_INDEX_HEADER_LEN || wire_le32(buf + 28) != len)
		return -EMSGSIZE;
	return memdb_index_parse(buf, len, ret) < 0 ? -EPROTO : 0;
}

/* An entry name as memdb stores it: "" for the root, else one component. */
static int check_entry_name(uint64_t inode, const char *name)
{
	if (inode == 0)
		return name[0] == '\0' ? 0 : -EINVAL;
	if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	return 0;
}

int dcdb_update_decode(const uint8_t *buf, size_t len, dcdb_update_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	wire_reader_t r = wire_reader(buf, len);
	dcdb_update_t u = {
		.parent = wire_get_u64(&r),
		.inode = wire_get_u64(&r),
		.version = wire_get_u64(&r),
		.writer = wire_get_u32(&r),
		.mtime = wire_get_u32(&r),
		.size = wire_get_u32(&r),
	};
	uint32_t namelen = wire_get_u32(&r);
	u.type = wire_get_u8(&r);
	if (r.err)
		return -EMSGSIZE;
	if (u.type != MEMDB_TYPE_DIR && u.type != MEMDB_TYPE_REG)
		return -EPROTO;
	if ((uint64_t)namelen + u.size != wire_remaining(&r))
		return -EMSGSIZE;
	if (namelen == 0 || (u.type == MEMDB_TYPE_DIR && u.size != 0))
		return -EPROTO;
	if (u.size > MEMDB_MAX_FILE_SIZE || namelen - 1 > MEMDB_MAX_PATH)
		return -EMSGSIZE;

	const uint8_t *name = wire_get_bytes(&r, namelen);
	if (!exact_string(name, namelen))
		return -EPROTO;
	u.name = (const char *)name;
	int e = check_entry_name(u.inode, u.name);
	if (e < 0)
		return e;
	u.data = u.size ? wire_get_bytes(&r, u.size) : NULL;
	g_assert(r.err == 0 && wire_remaining(&r) == 0);
	*ret = u;
	return 0;
}

int dcdb_update_encode(GByteArray *out, const dcdb_update_t *u)
{
	if (!u->name || (u->type != MEMDB_TYPE_DIR && u->type != MEMDB_TYPE_REG) ||
	    (u->type == MEMDB_TYPE_DIR && u->size) || (u->size && !u->data))
		return -EINVAL;
	int e = check_entry_name(u->inode, u->name);
	if (e < 0)
		return e;
	size_t namelen = strlen(u->name) + 1;
	if (u->size > MEMDB_MAX_FILE_SIZE || namelen - 1 > MEMDB_MAX_PATH)
		return -EMSGSIZE;

	wire_writer_t w = wire_writer_array(out);
	wire_put_u64(&w, u->parent);
	wire_put_u64(&w, u->inode);
	wire_put_u64(&w, u->version);
	wire_put_u32(&w, u->writer);
	wire_put_u32(&w, u->mtime);
	wire_put_u32(&w, u->size);
	wire_put_u32(&w, (uint32_t)namelen);
	wire_put_u8(&w, u->type);
	wire_put_bytes(&w, u->name, namelen);
	if (u->size)
		wire_put_bytes(&w, u->data, u->size);
	return wire_writer_finish(&w);
}

/* --- kvstore UPDATE -------------------------------------------------------- */

int kvstore_update_decode(const uint8_t *buf, size_t len, kvstore_update_t *ret)
{
	memset(ret, 0, sizeof(*ret));
	wire_reader_t r = wire_reader(buf, len);
	const uint8_t *key = wire_get_bytes(&r, KVSTORE_KEY_LEN);
	if (!key)
		return -EMSGSIZE;
	/* only up to the first NUL: the original sends stack garbage after it */
	if (!memchr(key, '\0', KVSTORE_KEY_LEN))
		return -EPROTO;
	size_t n;
	const uint8_t *value = wire_get_rest(&r, &n);
	if (n > KVSTORE_MAX_VALUE)
		return -EMSGSIZE;
	ret->key = (const char *)key;
	ret->value = n ? value : NULL;
	ret->value_len = n;
	return 0;
}

int kvstore_update_encode(GByteArray *out, const char *key, const void *value, size_t value_len)
{
	if (!key || strlen(key) >= KVSTORE_KEY_LEN || (value_len && !value))
		return -EINVAL;
	if (value_len > KVSTORE_MAX_VALUE)
		return -EMSGSIZE;
	size_t klen = strlen(key);
	wire_writer_t w = wire_writer_array(out);
	wire_put_bytes(&w, key, klen);
	wire_put_zeros(&w, KVSTORE_KEY_LEN - klen);
	wire_put_bytes(&w, value, value_len);
	return wire_writer_finish(&w);
}
