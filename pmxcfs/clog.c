/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * clog.c: the cluster log ring (cluster.md §3.10; API in clog.h).
 *
 * DESIGN
 *
 * The ring is a byte buffer in the original's layout: an 8-byte header
 * (size, cpos = offset of the newest entry) and entries at 8-aligned offsets,
 * each linked to the one written before it (prev) and knowing where the next
 * one goes (next).  A new entry goes at the newest entry's next, or back at
 * offset 8 when it would reach the end, overwriting the oldest entries.
 * Every field is read and written with the little-endian helpers below.
 *
 * Walking newest first follows prev from cpos with the original's two stop
 * rules, so we show exactly the entries an original node shows for the same
 * bytes.  The walk also checks what every ring the original builds satisfies
 * (each entry inside the buffer and well-formed, its older neighbour ending
 * where it starts, at most one jump from the start to the end); a peer's
 * ring is walked once that way by clog_state_decode() and rejected if any
 * check fails, so every later walk of it is safe.  Since offsets only go
 * down between the one permitted jump, a walk always ends.
 *
 * Sorting (before a state is sent) and merging (after states are exchanged)
 * collect entries into a GTree ordered by (time, node digest, uid) and copy
 * them oldest first into a fresh ring, as the original does.
 *
 * Differences from the original, all on purpose (docs/clusterlog.md): keys
 * are compared as unsigned values (the original subtracts and casts to int,
 * which is not a consistent order), a merge also takes entries with time 0,
 * a packed msg is cut so it always keeps its NUL, and names are escaped in
 * the JSON.
 */
#define G_LOG_DOMAIN "clog"
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "clog.h"

/* byte offsets in the ring header and in an entry (cluster.md §3.10) */
enum {
	RING_SIZE = 0,
	RING_CPOS = 4,
};

enum {
	E_PREV = 0,
	E_NEXT = 4,
	E_UID = 8,
	E_TIME = 12,
	E_NODE_DIGEST = 16,
	E_IDENT_DIGEST = 24,
	E_PID = 32,
	E_PRIORITY = 36,
	E_NODE_LEN = 37,
	E_IDENT_LEN = 38,
	E_TAG_LEN = 39,
	E_MSG_LEN = 40,
};

G_STATIC_ASSERT(E_MSG_LEN + 4 == CLOG_ENTRY_TEXT_OFFS);
G_STATIC_ASSERT(CLOG_ENTRY_TEXT_OFFS + 4 == CLOG_ENTRY_BASE);
G_STATIC_ASSERT(CLOG_MIN_SIZE > CLOG_HEADER_SIZE + CLOG_MAX_ENTRY_SIZE);
G_STATIC_ASSERT(CLOG_MAX_SIZE < UINT32_MAX / 2);

struct clog {
	uint8_t *buf; /* @size bytes in the wire layout */
	uint32_t size;
	uint32_t uid;      /* the last uid clog_add gave out */
	GHashTable *dedup; /* &dedup_t.node_digest -> dedup_t */
};

/* the duplicate filter's memory of one node: the latest entry taken */
typedef struct dedup {
	uint64_t node_digest;
	uint32_t time;
	uint32_t uid;
} dedup_t;

/* --- bytes --------------------------------------------------------------- */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t align_up(uint32_t n)
{
	return (n + CLOG_ALIGN - 1) & ~(CLOG_ALIGN - 1);
}

uint64_t clog_digest(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = CLOG_FNV_OFFSET;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= CLOG_FNV_PRIME;
	}
	return h;
}

/* --- entries ------------------------------------------------------------- */

/* An entry's size from the 48 bytes of fields at @p (no overflow: the sum
 * of three bytes and a u32 fits 64 bits). */
static uint64_t entry_size_at(const uint8_t *p)
{
	return (uint64_t)CLOG_ENTRY_BASE + p[E_NODE_LEN] + p[E_IDENT_LEN] + p[E_TAG_LEN] +
	       get_le32(p + E_MSG_LEN);
}

/*
 * Read the entry at @p, whose @size bytes (its entry_size_at) are known to
 * be there.  node, ident and tag must end in NUL at their last byte.  msg
 * too if @strict (a LOG payload, §3.3); in a ring it may end anywhere in the
 * entry's bytes, because the original cuts an overlong msg_len by up to 3
 * and leaves the NUL in the 4 trailing bytes.
 */
static int entry_parse(const uint8_t *p, uint32_t size, bool strict, clog_entry_t *ret)
{
	uint32_t nl = p[E_NODE_LEN], il = p[E_IDENT_LEN], tl = p[E_TAG_LEN];
	uint32_t ml = get_le32(p + E_MSG_LEN);
	if (!nl || !il || !tl || !ml)
		return -EPROTO;
	const char *node = (const char *)p + CLOG_ENTRY_TEXT_OFFS;
	const char *ident = node + nl;
	const char *tag = ident + il;
	const char *msg = tag + tl;
	if (node[nl - 1] || ident[il - 1] || tag[tl - 1])
		return -EPROTO;
	if (strict ? msg[ml - 1] != '\0'
		   : !memchr(msg, '\0', (size_t)((const char *)p + size - msg)))
		return -EPROTO;
	*ret = (clog_entry_t){
		.prev = get_le32(p + E_PREV),
		.next = get_le32(p + E_NEXT),
		.uid = get_le32(p + E_UID),
		.time = get_le32(p + E_TIME),
		.node_digest = get_le64(p + E_NODE_DIGEST),
		.ident_digest = get_le64(p + E_IDENT_DIGEST),
		.pid = get_le32(p + E_PID),
		.priority = p[E_PRIORITY],
		.node = node,
		.ident = ident,
		.tag = tag,
		.msg = msg,
		.raw = p,
		.size = size,
	};
	return 0;
}

int clog_entry_decode(const uint8_t *buf, size_t len, clog_entry_t *ret)
{
	if (!buf || !ret || len < CLOG_ENTRY_BASE)
		return -EINVAL;
	uint64_t size = entry_size_at(buf);
	if (size != len)
		return -EINVAL;
	if (size > CLOG_MAX_ENTRY_SIZE)
		return -EPROTO;
	return entry_parse(buf, (uint32_t)size, true, ret);
}

/* The entry at @pos of a ring of @size bytes, with every check that makes
 * it safe to read and to continue the walk from. */
static int ring_entry(const uint8_t *ring, uint32_t size, uint32_t pos, clog_entry_t *ret)
{
	if (pos < CLOG_HEADER_SIZE || pos % CLOG_ALIGN || pos >= size ||
	    size - pos < CLOG_ENTRY_BASE)
		return -EPROTO;
	uint64_t esize = entry_size_at(ring + pos);
	if (esize > CLOG_MAX_ENTRY_SIZE || esize > size - pos)
		return -EPROTO;
	int r = entry_parse(ring + pos, (uint32_t)esize, false, ret);
	if (r < 0)
		return r;
	ret->pos = pos;
	/* the original's writer always sets next to the aligned end, and never
	 * lets an entry reach the end of the buffer */
	if (ret->next != pos + align_up(ret->size) || ret->next >= size)
		return -EPROTO;
	return 0;
}

/* The original's msg sanitiser (cluster.md §3.10): one piece per character,
 * stopping before a piece that would not fit @room bytes with the NUL.
 * Returns the bytes used, NUL included. */
static size_t sanitize_msg(const char *msg, char *out, size_t room)
{
	bool utf8 = g_utf8_validate(msg, -1, NULL);
	const char *p = msg;
	size_t n = 0;
	while (*p) {
		char piece[8];
		int k;
		if (utf8) {
			gunichar u = g_utf8_get_char(p);
			p = g_utf8_next_char(p);
			if (u == '"')
				k = g_snprintf(piece, sizeof(piece), "\\\"");
			else if (u < 32 || u == 127)
				k = g_snprintf(piece, sizeof(piece), "#%03u", (unsigned)u);
			else if (u < 127)
				k = g_snprintf(piece, sizeof(piece), "%c", (char)u);
			else if (u < 0x10000)
				k = g_snprintf(piece, sizeof(piece), "\\u%04x", (unsigned)u);
			else
				k = 0; /* the original drops these */
		} else {
			unsigned char c = (unsigned char)*p++;
			if (c == '"')
				k = g_snprintf(piece, sizeof(piece), "\\\"");
			else if (c < 32)
				k = g_snprintf(piece, sizeof(piece), "#%03u", c);
			else if (c < 127)
				k = g_snprintf(piece, sizeof(piece), "%c", c);
			else
				k = g_snprintf(piece, sizeof(piece), "?");
		}
		if (n + (size_t)k + 1 > room)
			break;
		memcpy(out + n, piece, (size_t)k);
		n += (size_t)k;
	}
	out[n] = '\0';
	return n + 1;
}

/* a name's length byte: with its NUL, at most 255 */
static uint32_t name_len(const char *s)
{
	size_t n = strlen(s) + 1;
	return n < CLOG_MAX_NAME_LEN ? (uint32_t)n : CLOG_MAX_NAME_LEN;
}

int clog_entry_pack(uint8_t *buf, size_t buf_len, const char *node, const char *ident,
		    const char *tag, uint32_t uid, uint32_t pid, uint8_t priority, uint32_t time,
		    const char *msg)
{
	if (!buf || buf_len < CLOG_MAX_ENTRY_SIZE || !node || !ident || !tag || !msg ||
	    priority > CLOG_MAX_PRIORITY)
		return -EINVAL;
	memset(buf, 0, CLOG_MAX_ENTRY_SIZE);
	uint32_t nl = name_len(node), il = name_len(ident), tl = name_len(tag);
	uint8_t *t = buf + CLOG_ENTRY_TEXT_OFFS;
	memcpy(t, node, nl - 1); /* the NULs are the zeroes already there */
	t += nl;
	memcpy(t, ident, il - 1);
	t += il;
	memcpy(t, tag, tl - 1);
	t += tl;
	size_t room = CLOG_MAX_ENTRY_SIZE - CLOG_ENTRY_BASE - nl - il - tl;
	uint32_t ml = (uint32_t)sanitize_msg(msg, (char *)t, room);
	put_le32(buf + E_UID, uid);
	put_le32(buf + E_TIME, time);
	/* digests over the length byte's count of the caller's string: for a
	 * name cut at 254 that is 255 bytes of it, not the stored copy */
	put_le64(buf + E_NODE_DIGEST, clog_digest(node, nl));
	put_le64(buf + E_IDENT_DIGEST, clog_digest(ident, il));
	put_le32(buf + E_PID, pid);
	buf[E_PRIORITY] = priority;
	buf[E_NODE_LEN] = (uint8_t)nl;
	buf[E_IDENT_LEN] = (uint8_t)il;
	buf[E_TAG_LEN] = (uint8_t)tl;
	put_le32(buf + E_MSG_LEN, ml);
	return (int)(CLOG_ENTRY_BASE + nl + il + tl + ml);
}

/* --- rings --------------------------------------------------------------- */

static clog_t *ring_alloc(uint32_t size)
{
	clog_t *cl = g_new0(clog_t, 1);
	cl->buf = g_malloc0(size);
	cl->size = size;
	put_le32(cl->buf + RING_SIZE, size);
	cl->dedup = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	return cl;
}

/* Move @src's ring and filter into @dst and free @src. */
static void ring_take(clog_t *dst, clog_t *src)
{
	g_free(dst->buf);
	g_hash_table_unref(dst->dedup);
	dst->buf = src->buf;
	dst->size = src->size;
	dst->dedup = src->dedup;
	g_free(src);
}

clog_t *clog_new(uint32_t size)
{
	if (size == 0)
		size = CLOG_DEFAULT_SIZE;
	if (size < CLOG_MIN_SIZE || size > CLOG_MAX_SIZE || size % CLOG_ALIGN)
		return NULL;
	return ring_alloc(size);
}

clog_t *clog_free(clog_t *cl)
{
	if (!cl)
		return NULL;
	g_hash_table_unref(cl->dedup);
	g_free(cl->buf);
	g_free(cl);
	return NULL;
}

uint32_t clog_size(const clog_t *cl)
{
	return cl->size;
}

static uint32_t ring_cpos(const clog_t *cl)
{
	return get_le32(cl->buf + RING_CPOS);
}

/*
 * Copy an entry's @size bytes in as the newest entry: after the newest one,
 * or at the start if it would reach the end.  Everything from uid on is
 * copied (the 4 trailing bytes too); prev and next are set here.  The ring
 * is at least CLOG_MIN_SIZE bytes, so an entry always fits at the start.
 */
static void ring_append(clog_t *cl, const uint8_t *raw, uint32_t size)
{
	uint32_t real = align_up(size);
	uint32_t cpos = ring_cpos(cl);
	uint32_t pos = cpos ? get_le32(cl->buf + cpos + E_NEXT) : CLOG_HEADER_SIZE;
	if ((uint64_t)pos + real >= cl->size)
		pos = CLOG_HEADER_SIZE;
	uint8_t *e = cl->buf + pos;
	memmove(e + E_UID, raw + E_UID, size - E_UID);
	put_le32(e + E_PREV, cpos);
	put_le32(e + E_NEXT, pos + real);
	put_le32(cl->buf + RING_CPOS, pos);
}

/* The duplicate filter: true (and remembered) if @e is later than the
 * latest entry taken from its node. */
static bool dedup_accept(GHashTable *dd, const clog_entry_t *e)
{
	dedup_t *d = g_hash_table_lookup(dd, &e->node_digest);
	if (!d) {
		d = g_new(dedup_t, 1);
		*d = (dedup_t){.node_digest = e->node_digest, .time = e->time, .uid = e->uid};
		g_hash_table_insert(dd, &d->node_digest, d);
		return true;
	}
	if (e->time > d->time || (e->time == d->time && e->uid > d->uid)) {
		d->time = e->time;
		d->uid = e->uid;
		return true;
	}
	return false;
}

int clog_insert(clog_t *cl, const clog_entry_t *e)
{
	if (!cl || !e || !e->raw || e->size < CLOG_ENTRY_BASE || e->size > CLOG_MAX_ENTRY_SIZE ||
	    entry_size_at(e->raw) != e->size)
		return -EINVAL;
	/* read the bytes again: the ring takes them, not the caller's fields */
	clog_entry_t v;
	if (entry_parse(e->raw, e->size, false, &v) < 0)
		return -EINVAL;
	if (!dedup_accept(cl->dedup, &v))
		return 0;
	ring_append(cl, v.raw, v.size);
	return 1;
}

int clog_add(clog_t *cl, const char *node, const char *ident, const char *tag, uint32_t pid,
	     uint8_t priority, uint32_t time, const char *msg, GBytes **ret_entry)
{
	if (!cl)
		return -EINVAL;
	uint8_t buf[CLOG_MAX_ENTRY_SIZE];
	int size = clog_entry_pack(buf, sizeof(buf), node, ident, tag, cl->uid + 1, pid, priority,
				   time, msg);
	if (size < 0)
		return size;
	cl->uid++;
	clog_entry_t e;
	int r = clog_entry_decode(buf, (size_t)size, &e);
	g_assert(r == 0); /* the packer's output is a valid LOG payload */
	if (ret_entry)
		*ret_entry = g_bytes_new(buf, (gsize)size);
	return clog_insert(cl, &e);
}

/* --- walking ------------------------------------------------------------- */

static void iter_init_raw(clog_iter_t *it, const uint8_t *ring, uint32_t size)
{
	uint32_t cpos = get_le32(ring + RING_CPOS);
	*it = (clog_iter_t){.ring = ring, .size = size, .pos = cpos, .head = cpos};
}

void clog_iter_init(clog_iter_t *it, const clog_t *cl)
{
	iter_init_raw(it, cl->buf, cl->size);
}

int clog_iter_next(clog_iter_t *it, clog_entry_t *ret)
{
	if (it->error)
		return it->error;
	uint32_t pos = it->pos;
	/* the original's bound: an older entry starting within one maximal
	 * entry after the newest may have been overwritten by it */
	if (!pos || !(pos <= it->head || pos > it->head + CLOG_MAX_ENTRY_SIZE)) {
		it->pos = 0;
		return 0;
	}
	clog_entry_t e;
	int r = ring_entry(it->ring, it->size, pos, &e);
	if (r == 0 && it->succ) {
		if (pos < it->succ) {
			/* written just before its newer neighbour */
			if (e.next != it->succ)
				r = -EPROTO;
		} else if (pos > it->succ && it->succ == CLOG_HEADER_SIZE && !it->wrapped) {
			it->wrapped = true; /* from the start back to the end */
		} else {
			r = -EPROTO;
		}
	}
	if (r < 0) {
		it->error = r;
		it->pos = 0;
		return r;
	}
	/* the original's other stop: prev points forward but not past the
	 * newest entry, i.e. into space written since */
	if (e.prev == 0 || (pos < e.prev && e.prev <= it->head))
		it->pos = 0;
	else
		it->pos = e.prev;
	it->succ = pos;
	*ret = e;
	return 1;
}

/* --- JSON ---------------------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* msg as a JSON reader of the original's output sees it: the sanitiser
 * wrote " as \" and other characters as \uXXXX, and the original prints
 * msg between quotes as it is.  Any other backslash stands for itself
 * (the original leaves it alone and so prints invalid JSON). */
static char *msg_text(const char *s)
{
	GString *o = g_string_sized_new(strlen(s) + 1);
	while (*s) {
		if (s[0] == '\\' && s[1] == '"') {
			g_string_append_c(o, '"');
			s += 2;
			continue;
		}
		if (s[0] == '\\' && s[1] == 'u') {
			gunichar u = 0;
			int k = 0;
			for (; k < 4; k++) {
				int h = hex_value(s[2 + k]); /* stops at the NUL */
				if (h < 0)
					break;
				u = u * 16 + (gunichar)h;
			}
			if (k == 4) {
				if (u == 0 || (u >= 0xd800 && u <= 0xdfff))
					u = 0xfffd;
				g_string_append_unichar(o, u);
				s += 6;
				continue;
			}
		}
		g_string_append_c(o, *s++);
	}
	char *text = g_utf8_make_valid(o->str, (gssize)o->len);
	g_string_free(o, TRUE);
	return text;
}

static void member_int(JsonBuilder *b, const char *name, gint64 v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

/* node, ident and tag travel unescaped and unchecked: make them UTF-8 */
static void member_str(JsonBuilder *b, const char *name, const char *v)
{
	g_autofree char *valid = g_utf8_make_valid(v, -1);
	json_builder_set_member_name(b, name);
	json_builder_add_string_value(b, valid);
}

static char *entry_json(JsonGenerator *gen, const clog_entry_t *e)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *msg = msg_text(e->msg);
	json_builder_begin_object(b);
	member_int(b, "uid", e->uid);
	member_int(b, "time", e->time);
	member_int(b, "pri", e->priority);
	member_str(b, "tag", e->tag);
	member_int(b, "pid", e->pid);
	member_str(b, "node", e->node);
	member_str(b, "user", e->ident);
	json_builder_set_member_name(b, "msg");
	json_builder_add_string_value(b, msg);
	json_builder_end_object(b);
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	return json_generator_to_data(gen, NULL);
}

char *clog_dump_json(const clog_t *cl, const char *user, unsigned max)
{
	bool filter = user && user[0];
	uint64_t want = filter ? clog_digest(user, strlen(user) + 1) : 0;
	g_autoptr(JsonGenerator) gen = json_generator_new();
	/* the original's framing: one entry per line */
	GString *out = g_string_new("{\n\"data\": [\n");
	clog_iter_t it;
	clog_entry_t e;
	unsigned n = 0;
	clog_iter_init(&it, cl);
	while (n < max && clog_iter_next(&it, &e) > 0) {
		if (filter && e.ident_digest != want)
			continue;
		g_autofree char *one = entry_json(gen, &e);
		if (n)
			g_string_append(out, ",\n");
		g_string_append(out, one);
		n++;
	}
	if (n)
		g_string_append_c(out, '\n');
	g_string_append(out, "]\n}\n");
	return g_string_free(out, FALSE);
}

/* --- sort, state, merge -------------------------------------------------- */

/* (time, node digest, uid), compared as unsigned numbers */
static gint key_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
	const clog_entry_t *x = a, *y = b;
	(void)unused;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->node_digest != y->node_digest)
		return x->node_digest < y->node_digest ? -1 : 1;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return 0;
}

static gboolean append_one(gpointer key, gpointer value, gpointer data)
{
	const clog_entry_t *e = value;
	(void)key;
	ring_append(data, e->raw, e->size);
	return FALSE;
}

/* Rewrite @cl's ring with its entries oldest first (the original's
 * clog_sort).  Of entries with equal keys the one walked last stays. */
static void ring_sort(clog_t *cl)
{
	g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(clog_entry_t));
	clog_iter_t it;
	clog_entry_t e;
	clog_iter_init(&it, cl);
	while (clog_iter_next(&it, &e) > 0)
		g_array_append_val(all, e);
	GTree *tree = g_tree_new_full(key_cmp, NULL, NULL, NULL);
	for (guint i = 0; i < all->len; i++) {
		clog_entry_t *p = &g_array_index(all, clog_entry_t, i);
		g_tree_insert(tree, p, p);
	}
	clog_t *res = ring_alloc(cl->size);
	g_tree_foreach(tree, append_one, res);
	g_tree_destroy(tree);
	/* keep the filter and the uid counter: only the ring changes */
	g_hash_table_unref(res->dedup);
	res->dedup = g_hash_table_ref(cl->dedup);
	ring_take(cl, res);
}

GBytes *clog_state_encode(clog_t *cl)
{
	if (ring_cpos(cl))
		ring_sort(cl);
	return g_bytes_new(cl->buf, cl->size);
}

int clog_state_decode(const uint8_t *buf, size_t len, clog_t **ret)
{
	if (!buf || !ret || len < CLOG_HEADER_SIZE)
		return -EINVAL;
	uint32_t size = get_le32(buf + RING_SIZE);
	if (size != len || size < CLOG_MIN_SIZE || size > CLOG_MAX_SIZE || size % CLOG_ALIGN)
		return -EINVAL;
	clog_iter_t it;
	clog_entry_t e;
	int r;
	iter_init_raw(&it, buf, size);
	while ((r = clog_iter_next(&it, &e)) > 0)
		;
	if (r < 0)
		return r;
	clog_t *cl = ring_alloc(size);
	memcpy(cl->buf, buf, size);
	*ret = cl;
	return 0;
}

int clog_merge(clog_t *cl, clog_t *const *logs, size_t count, size_t local_index)
{
	if (!cl || !logs || local_index >= count)
		return -EINVAL;
	g_autofree clog_iter_t *its = g_new0(clog_iter_t, count);
	g_autofree clog_entry_t *cur = g_new0(clog_entry_t, count);
	g_autofree bool *live = g_new0(bool, count);
	for (size_t i = 0; i < count; i++) {
		const clog_t *src = i == local_index ? cl : logs[i];
		if (!src)
			continue;
		clog_iter_init(&its[i], src);
		live[i] = clog_iter_next(&its[i], &cur[i]) > 0;
	}
	g_autoptr(GPtrArray) taken = g_ptr_array_new_with_free_func(g_free);
	GTree *seen = g_tree_new_full(key_cmp, NULL, NULL, NULL);
	size_t bytes = 0;
	for (;;) {
		/* the latest time across the logs; on a tie the lowest slot */
		size_t found = count;
		for (size_t i = 0; i < count; i++) {
			if (live[i] && (found == count || cur[i].time > cur[found].time))
				found = i;
		}
		if (found == count)
			break;
		const clog_entry_t *e = &cur[found];
		if (!g_tree_lookup(seen, e)) {
			clog_entry_t *copy = g_memdup2(e, sizeof(*e));
			g_ptr_array_add(taken, copy);
			g_tree_insert(seen, copy, copy);
			bytes += align_up(e->size);
			if (bytes >= CLOG_MERGE_LIMIT)
				break;
		}
		live[found] = clog_iter_next(&its[found], &cur[found]) > 0;
	}
	clog_t *res = ring_alloc(CLOG_DEFAULT_SIZE);
	g_tree_foreach(seen, append_one, res);
	g_tree_destroy(seen);
	for (guint i = 0; i < taken->len; i++)
		(void)dedup_accept(res->dedup, taken->pdata[i]);
	ring_take(cl, res);
	return (int)taken->len;
}
