/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-dcdb.c: libFuzzer target for the dcdb engine as a whole (dcdb.c on
 * dfsm.c on memdb, with real sqlite files): the input is a script of CPG
 * events, not one message.
 *
 * Two real nodes, A = (nodeid 2, pid 102) and B = (3, 103), each a dcdb_t
 * on its own memdb, share a simulated CPG bus (one FIFO: every event goes
 * to the real nodes that were members when it was sent, in the same order
 * everywhere, as CPG's agreed order and virtual synchrony promise).  Four
 * fake members, (1, 101), (4, 104), (1, 201) and (2, 202), exist only as
 * senders of what the script makes up: the nodeid 1 ones are lower than
 * both real nodes (then the script must send SYNC_START), (2, 202) shares
 * A's nodeid.  The real nodes' own messages are never made up: only their
 * engines send as them.
 *
 * The script is a sequence of operations, each an opcode byte (taken
 * modulo 18) and at least one argument byte; n is a real node (byte & 1),
 * f a fake (byte & 3), fn both in one byte (f = fn & 3, n = fn >> 2 & 1);
 * integers are little-endian; a missing byte reads as 0.
 *
 *    0 JOIN n          restart n's engine and join (a confchg to all)
 *    1 LEAVE n v       n leaves the group (a confchg; n sees itself go);
 *                      v&1: first dfsm_leave(), as when corosync refuses
 *                      what n sends for too long
 *    2 FAKES m         the fake members become the bits 0-3 of m
 *    3 STEP k          deliver k+1 events of the bus (k = 255: all)
 *    4 RAW f len16 b   f sends the bytes b as they are
 *    5 STATE f t fl time32 [epoch 16 bytes if fl&1] [version32 if fl&2]
 *        len16 b       a state header of type t (0-255) and the payload b;
 *                      the epoch is the current one (of the last state
 *                      message a real node sent, or of the last SYNC_START),
 *                      or for a SYNC_START a new one of f
 *    6 NORMAL f sub count16 time32 len16 b   a NORMAL header and payload b
 *    7 DCDB f count16 time32 MSG             a NORMAL dcdb change (encoded;
 *                      what the encoder refuses is laid out by hand)
 *    8 LOCAL n MSG     dcdb_send() on n (a change made on that node)
 *    9 UNLOCK n STR fl dcdb_send_unlock_request() with the record checksum
 *                      of the path on n (fl&1: one byte wrong)
 *   10 TICK n          the hourly verification timer of n
 *   11 QUORATE n v     n is quorate iff v&1 (all are at the start)
 *   12 CLOCK v         the lock clock advances by 4v seconds
 *   13 COPY fn fl      STATE with n's index (fl&1: version + 1, fl&2:
 *                      mtime + 1, fl&4: one digest byte wrong)
 *   14 TREE fn fl k    UPDATE of every entry of n as a leader sends them
 *                      (fl&1: all but the k-th), then UPDATE_COMPLETE
 *                      (unless fl&2)
 *   15 VERIFY fn fl    VERIFY with the last request's id + fl/2 and n's
 *                      checksum (fl&1: one byte wrong)
 *   16 SENDFAIL n k    the next k%4+1 sends of n fail (-ECOMM)
 *   17 DBFAIL n s k    after s%8 more database writes of n, k%4+1 fail (-EIO)
 *
 *   MSG = sub fl off32 STR(path) STR(to) len16 data: a change of subtype
 *   sub%8+1 with only the fields its subtype carries (fl&0x80: all of
 *   them, which the encoder refuses), fl&1 truncate, off the offset or
 *   mtime; UNLOCK and UNLOCK_REQUEST carry the record checksum of the
 *   path on node (fl>>1)&1 (fl&4: one byte wrong).
 *   STR = len8 bytes (up to a NUL); len8 >= 0xe0 names one of the paths
 *   in `known_paths` instead.
 *
 * After the script the bus is run dry.  Beyond "no crash, no sanitizer
 * report, no GLib critical":
 *
 * - every message a real node sends decodes with our own decoders
 *   (header, and the payload of its type), and every SYNC_START carries
 *   the sender's epoch;
 * - every change sent through dcdb_send() gets exactly one result, by the
 *   time its dcdb is freed at the latest;
 * - each node's database, opened again, gives the index the node had in
 *   memory;
 * - if no fake ever took part and no node got a message of its own while
 *   it waited for the leader's updates (the original's protocol orders
 *   those differently on synced and unsynced nodes, so they may diverge
 *   until the next verification), then whenever the bus is empty after an
 *   operation and at the end, two members in mode SYNCED with empty queues
 *   hold the same index; and no verification finds different checksums.
 *
 * The databases live in a private directory on /dev/shm (or $TMPDIR),
 * made at start and removed at exit; each input starts from the same
 * empty database (copied from a template made once, so the root's mtime
 * is the same for every input).  A failed check aborts with a message.
 * With FUZZ_DCDB_TRACE set in the environment, the engines' log lines go
 * to stderr (to follow a script: tests/fuzz/fuzz-dcdb FILE).
 * tests/fuzz/gen-dcdb-seeds.py writes the seeds of the corpus.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcdb.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define N_REAL     2
#define N_FAKE     4
#define N_MEMBERS  (N_REAL + N_FAKE + 1)
#define MAX_OPS    1024
#define MAX_EVENTS 200000 /* deliveries per input: more is a message storm */

static const dfsm_member_t real_id[N_REAL] = {{2, 102}, {3, 103}};
static const dfsm_member_t fake_id[N_FAKE] = {{1, 101}, {4, 104}, {1, 201}, {2, 202}};

static const char *const known_paths[32] = {
	"corosync.conf",
	"priv",
	"priv/lock",
	"priv/lock/a",
	"nodes",
	"nodes/n1",
	"nodes/n1/qemu-server",
	"nodes/n1/qemu-server/100.conf",
	"nodes/n1/lxc",
	"nodes/n1/lxc/100.conf",
	"storage.cfg",
	"a",
	"a/b",
	"/a/../b",
	"",
	"priv/lock/b",
	"nodes/n2",
	"nodes/n2/qemu-server",
	"nodes/n2/qemu-server/100.conf",
	"nodes/n2/lxc",
	"nodes/n2/lxc/101.conf",
	"nodes/n1/qemu-server/101.conf",
	"priv/lock/a/x",
	"priv/authkey.key",
	"user.cfg",
	"b",
	"a/b/c",
	"/",
	"//a//b/",
	"./a",
	"a/.",
	"nodes/n1/openvz/102.conf",
};

typedef struct real {
	const dfsm_member_t *id;
	char *path; /* its config.db */
	memdb_t *mdb;
	dcdb_t *db;
	bool joined; /* in the bus's membership */
	bool quorate;
	unsigned fail_sends; /* so many next sends fail */
	unsigned gen;        /* joins so far: events of an older membership skip it */
	GHashTable *pending; /* counts of dcdb_send() still without a result */
} real_t;

typedef struct event {
	bool confchg;
	uint32_t nodeid, pid; /* sender */
	GBytes *msg;
	dfsm_member_t members[N_MEMBERS];
	size_t n_members, n_joined;
	bool to[N_REAL];
	unsigned gen[N_REAL];
} event_t;

static struct {
	char *dir;
	char *template_db;
	uint8_t *template;
	size_t template_len;
	real_t r[N_REAL];
	unsigned fakes; /* bit i: fake i is a member */
	dfsm_member_t members[N_MEMBERS];
	size_t n_members;
	GQueue events;
	size_t delivered;
	dfsm_epoch_t epoch; /* the current one: see op STATE */
	uint32_t fake_epochs;
	uint64_t csum_id; /* of the last VERIFY_REQUEST sent (by anyone) */
	bool tainted;     /* convergence is not promised (see the header) */
	bool trace;       /* FUZZ_DCDB_TRACE set: the engines' log lines on stderr */
} S;

static uint64_t fuzz_now;

static uint64_t fuzz_clock(void)
{
	return fuzz_now;
}

/* --- the script's bytes ---------------------------------------------------- */

typedef struct reader {
	const uint8_t *p;
	size_t n;
} reader_t;

static uint8_t u8(reader_t *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint16_t u16(reader_t *r)
{
	uint16_t lo = u8(r);
	return (uint16_t)(lo | (uint16_t)u8(r) << 8);
}

static uint32_t u32(reader_t *r)
{
	uint32_t lo = u16(r);
	return lo | (uint32_t)u16(r) << 16;
}

/* up to @want bytes (fewer at the end of the input) */
static const uint8_t *take(reader_t *r, size_t want, size_t *got)
{
	const uint8_t *p = r->p;
	*got = want < r->n ? want : r->n;
	r->p += *got;
	r->n -= *got;
	return p;
}

/* STR: a new string */
static char *str(reader_t *r)
{
	uint8_t len = u8(r);
	if (len >= 0xe0)
		return g_strdup(known_paths[len - 0xe0]);
	size_t n;
	const uint8_t *p = take(r, len, &n);
	return g_strndup((const char *)p, n);
}

/* --- the bus ------------------------------------------------------------------ */

static void event_free(gpointer p)
{
	event_t *e = p;
	if (e->msg)
		g_bytes_unref(e->msg);
	g_free(e);
}

/* to every real node in the group now */
static void bus_push(uint32_t nodeid, uint32_t pid, GBytes *msg)
{
	event_t *e = g_new0(event_t, 1);
	e->nodeid = nodeid;
	e->pid = pid;
	e->msg = msg;
	for (size_t i = 0; i < N_REAL; i++) {
		e->to[i] = S.r[i].joined;
		e->gen[i] = S.r[i].gen;
	}
	g_queue_push_tail(&S.events, e);
}

static bool is_member(const dfsm_member_t *list, size_t n, const dfsm_member_t *m)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i].nodeid == m->nodeid && list[i].pid == m->pid)
			return true;
	}
	return false;
}

/* the membership changed: a confchg to the old and the new members */
static void bus_membership(void)
{
	event_t *e = g_new0(event_t, 1);
	e->confchg = true;
	for (size_t i = 0; i < N_FAKE; i++) {
		if (S.fakes & (1u << i))
			e->members[e->n_members++] = fake_id[i];
	}
	for (size_t i = 0; i < N_REAL; i++) {
		if (S.r[i].joined)
			e->members[e->n_members++] = *S.r[i].id;
	}
	for (size_t i = 0; i < e->n_members; i++) {
		if (!is_member(S.members, S.n_members, &e->members[i]))
			e->n_joined++;
	}
	for (size_t i = 0; i < N_REAL; i++) {
		e->to[i] = S.r[i].joined || is_member(S.members, S.n_members, S.r[i].id);
		e->gen[i] = S.r[i].gen;
	}
	memcpy(S.members, e->members, sizeof(S.members));
	S.n_members = e->n_members;
	g_queue_push_tail(&S.events, e);
}

/* --- the real nodes ------------------------------------------------------- */

static void check_sent(const real_t *x, const uint8_t *b, size_t n)
{
	dfsm_msg_t m;
	CHECK(dfsm_msg_decode(b, n, &m) == 0);
	CHECK(m.protocol_version == DCDB_PROTOCOL_VERSION && m.reserved == 0);
	dcdb_msg_t dm;
	memdb_index_view_t v;
	dcdb_update_t u;
	uint64_t id;
	const uint8_t *csum;
	switch (m.type) {
	case DFSM_MSG_NORMAL:
		CHECK(dcdb_msg_decode(m.subtype, m.payload, m.payload_len, &dm) == 0);
		break;
	case DFSM_MSG_SYNC_START:
		CHECK(m.payload_len == 0);
		CHECK(m.epoch.nodeid == x->id->nodeid && m.epoch.pid == x->id->pid);
		break;
	case DFSM_MSG_STATE:
		CHECK(dcdb_state_decode(m.payload, m.payload_len, &v) == 0);
		break;
	case DFSM_MSG_UPDATE:
		CHECK(dcdb_update_decode(m.payload, m.payload_len, &u) == 0);
		break;
	case DFSM_MSG_UPDATE_COMPLETE:
		CHECK(m.payload_len == 0);
		break;
	case DFSM_MSG_VERIFY_REQUEST:
		CHECK(dfsm_verify_request_decode(m.payload, m.payload_len, &id) == 0);
		S.csum_id = id;
		break;
	case DFSM_MSG_VERIFY:
		CHECK(dfsm_verify_decode(m.payload, m.payload_len, &id, &csum) == 0);
		break;
	default:
		CHECK(!"a message of an unknown type");
	}
	if (m.type != DFSM_MSG_NORMAL)
		S.epoch = m.epoch;
}

static int h_send(void *ud, const struct iovec *iov, unsigned n)
{
	real_t *x = ud;
	if (!x->joined)
		return -ENOTCONN; /* as the glue: not joined */
	if (x->fail_sends) {
		x->fail_sends--;
		return -ECOMM; /* as the glue when corosync refuses */
	}
	GByteArray *a = g_byte_array_new();
	for (unsigned i = 0; i < n; i++)
		g_byte_array_append(a, iov[i].iov_base, (guint)iov[i].iov_len);
	check_sent(x, a->data, a->len);
	bus_push(x->id->nodeid, x->id->pid, g_byte_array_free_to_bytes(a));
	return 0;
}

static bool h_quorate(void *ud)
{
	real_t *x = ud;
	return x->quorate;
}

static void h_result(void *ud, uint64_t count, int result)
{
	real_t *x = ud;
	CHECK(g_hash_table_remove(x->pending, &count)); /* one result, for a change sent */
	CHECK(result > -4096);
}

static void h_conf(void *ud, bool ours)
{
	(void)ud;
	(void)ours;
}

static void h_log(void *ud, int level, const char *msg)
{
	real_t *x = ud;
	if (S.trace)
		fprintf(stderr, "node %u: <%d> %s\n", x->id->nodeid, level, msg);
	if (!S.tainted && g_str_has_prefix(msg, "wrong checksum")) {
		fprintf(stderr, "fuzz-dcdb: %s\n", msg);
		CHECK(!"two real nodes diverged");
	}
}

static const dcdb_hooks_t hooks = {
	.send = h_send,
	.quorate = h_quorate,
	.result = h_result,
	.corosync_conf_changed = h_conf,
	.log = h_log,
};

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

static void remove_db(const char *path)
{
	g_autofree char *wal = g_strconcat(path, "-wal", NULL);
	g_autofree char *shm = g_strconcat(path, "-shm", NULL);
	(void)g_unlink(path);
	(void)g_unlink(wal);
	(void)g_unlink(shm);
}

static memdb_t *open_db(const char *path)
{
	memdb_options_t o = {.clock = fuzz_clock};
	memdb_t *m = NULL;
	g_autofree char *err = NULL;
	if (memdb_open(path, &o, &m, &err) < 0) {
		fprintf(stderr, "fuzz-dcdb: memdb_open: %s\n", err);
		abort();
	}
	return m;
}

/* the node's database and engine, on its first join */
static void real_start(real_t *x)
{
	remove_db(x->path);
	write_file(x->path, S.template, S.template_len);
	x->mdb = open_db(x->path);
	x->db = dcdb_new(x->mdb, x->id->nodeid, x->id->pid, &hooks, x);
}

static void real_join(real_t *x)
{
	if (x->joined)
		return;
	if (!x->db)
		real_start(x);
	if (dfsm_restart(dcdb_dfsm(x->db)) < 0)
		return; /* ERROR or VERSION_ERROR: it never comes back */
	x->gen++;
	x->joined = true;
	bus_membership();
}

static void real_leave(real_t *x)
{
	if (!x->joined)
		return;
	x->joined = false;
	bus_membership();
}

/* what the glue does after each dispatch: an engine in an error mode
 * leaves the group (and joins again when the script says so) */
static void leave_errors(void)
{
	for (size_t i = 0; i < N_REAL; i++) {
		real_t *x = &S.r[i];
		if (x->joined && DFSM_MODE_IS_ERROR(dfsm_mode(dcdb_dfsm(x->db)))) {
			dfsm_abort_results(dcdb_dfsm(x->db));
			real_leave(x);
		}
	}
}

static bool bus_step(void)
{
	event_t *e = g_queue_pop_head(&S.events);
	if (!e)
		return false;
	CHECK(++S.delivered < MAX_EVENTS);
	dfsm_msg_t m;
	gsize len = 0;
	const uint8_t *b = e->msg ? g_bytes_get_data(e->msg, &len) : NULL;
	bool normal = !e->confchg && dfsm_base_decode(b, len, &m) == 0 && m.type == DFSM_MSG_NORMAL;
	for (size_t i = 0; i < N_REAL; i++) {
		real_t *x = &S.r[i];
		if (!e->to[i] || !x->db || e->gen[i] != x->gen)
			continue;
		dfsm_t *d = dcdb_dfsm(x->db);
		if (e->confchg) {
			dfsm_confchg(d, e->members, e->n_members, e->n_joined);
			continue;
		}
		/* its own change while it waits for the leader: applied later
		 * here than on the synced nodes (see the header) */
		if (normal && dfsm_mode(d) == DFSM_MODE_UPDATE && e->nodeid == x->id->nodeid &&
		    e->pid == x->id->pid)
			S.tainted = true;
		dfsm_deliver(d, e->nodeid, e->pid, b, len);
	}
	event_free(e);
	leave_errors();
	return true;
}

/* --- what the script makes the fakes send ----------------------------------- */

static void fake_send(const dfsm_member_t *f, const uint8_t *p, size_t n)
{
	S.tainted = true;
	bus_push(f->nodeid, f->pid, g_bytes_new(p, n));
}

/* a state message of @type (any value) with the current epoch */
static void fake_state(const dfsm_member_t *f, uint16_t type, const dfsm_epoch_t *epoch,
		       uint32_t version, uint32_t time, const uint8_t *p, size_t n)
{
	dfsm_msg_t m = {.type = DFSM_MSG_SYNC_START,
			.protocol_version = version,
			.time = time,
			.epoch = *epoch};
	uint8_t hdr[DFSM_STATE_HEADER_LEN];
	CHECK(dfsm_header_encode(&m, hdr) == DFSM_STATE_HEADER_LEN);
	hdr[0] = (uint8_t)type; /* the type field, whatever the type */
	hdr[1] = (uint8_t)(type >> 8);
	g_autoptr(GByteArray) a = g_byte_array_new();
	g_byte_array_append(a, hdr, sizeof(hdr));
	if (n)
		g_byte_array_append(a, p, (guint)n);
	fake_send(f, a->data, a->len);
}

static void fake_normal(const dfsm_member_t *f, uint16_t subtype, uint64_t count, uint32_t time,
			const uint8_t *p, size_t n)
{
	dfsm_msg_t m = {.type = DFSM_MSG_NORMAL,
			.subtype = subtype,
			.protocol_version = DCDB_PROTOCOL_VERSION,
			.time = time,
			.count = count,
			.payload = p,
			.payload_len = n};
	g_autoptr(GByteArray) a = g_byte_array_new();
	CHECK(dfsm_msg_encode(a, &m) == 0);
	fake_send(f, a->data, a->len);
}

/* the record checksum of @path on node @x (zeros if it has none) */
static void record_csum(real_t *x, const char *path, uint8_t out[MEMDB_CSUM_LEN])
{
	memset(out, 0, MEMDB_CSUM_LEN);
	const memdb_entry_t *e = x->mdb ? memdb_lookup(x->mdb, path) : NULL;
	if (e)
		memdb_record_checksum(e, out);
}

/* MSG: a change, with the fields its subtype carries (see the header) */
typedef struct change {
	dcdb_msg_t m; /* data points into the input */
	char *path;
	char *to;
	uint8_t csum[MEMDB_CSUM_LEN];
} change_t;

static void change_read(reader_t *r, change_t *c)
{
	uint16_t subtype = (uint16_t)(u8(r) % 8 + 1);
	uint8_t fl = u8(r);
	uint32_t off = u32(r);
	c->path = str(r);
	c->to = str(r);
	size_t n;
	const uint8_t *data = take(r, u16(r), &n);
	record_csum(&S.r[(fl >> 1) & 1], c->path, c->csum);
	if (fl & 4)
		c->csum[0] ^= 1;
	bool all = fl & 0x80;
	c->m = (dcdb_msg_t){.subtype = subtype, .path = c->path};
	if (all || subtype == DCDB_MSG_RENAME)
		c->m.to = c->to;
	if (all || subtype == DCDB_MSG_WRITE) {
		c->m.data = n ? data : NULL;
		c->m.size = (uint32_t)n;
		c->m.flags = fl & 1 ? DCDB_FLAG_TRUNCATE : 0;
	}
	if (all || subtype == DCDB_MSG_WRITE || subtype == DCDB_MSG_MTIME)
		c->m.offset = off;
	if (subtype == DCDB_MSG_UNLOCK || subtype == DCDB_MSG_UNLOCK_REQUEST)
		c->m.csum = c->csum;
}

static void put_u32(GByteArray *a, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	g_byte_array_append(a, b, 4);
}

/* the payload layout of @m (cluster.md §2.2) without the encoder's rules */
static void lay_out(GByteArray *a, const dcdb_msg_t *m)
{
	if (m->csum) {
		g_byte_array_append(a, m->csum, MEMDB_CSUM_LEN);
		g_byte_array_append(a, (const guint8 *)m->path, (guint)strlen(m->path) + 1);
		return;
	}
	size_t pl = strlen(m->path) + 1, tl = m->to ? strlen(m->to) + 1 : 0;
	put_u32(a, m->size);
	put_u32(a, m->offset);
	put_u32(a, (uint32_t)pl);
	put_u32(a, (uint32_t)tl);
	put_u32(a, m->flags);
	g_byte_array_append(a, (const guint8 *)m->path, (guint)pl);
	if (m->to)
		g_byte_array_append(a, (const guint8 *)m->to, (guint)tl);
	if (m->size)
		g_byte_array_append(a, m->data, m->size);
}

static void change_clear(change_t *c)
{
	g_free(c->path);
	g_free(c->to);
}

/* COPY: a STATE with node @x's index */
static void op_copy(const dfsm_member_t *f, real_t *x, uint8_t fl)
{
	if (!x->mdb)
		return;
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(x->mdb, &len);
	if (fl & 1)
		idx[0]++; /* the version's low byte */
	if (fl & 2)
		idx[20]++; /* the mtime's */
	if (fl & 4)
		idx[len - 1] ^= 1; /* the last digest */
	fake_state(f, DFSM_MSG_STATE, &S.epoch, DCDB_PROTOCOL_VERSION, 0, idx, len);
}

/* TREE: node @x's entries as the leader sends them */
static void op_tree(const dfsm_member_t *f, real_t *x, uint8_t fl, uint8_t skip)
{
	if (!x->mdb)
		return;
	size_t len;
	g_autofree uint8_t *idx = memdb_encode_index(x->mdb, &len);
	memdb_index_view_t v;
	CHECK(memdb_index_parse(idx, len, &v) == 0);
	for (uint32_t i = 0; i < v.size; i++) {
		if ((fl & 1) && i == skip)
			continue;
		const memdb_entry_t *e = memdb_get(x->mdb, memdb_index_inode(&v, i));
		CHECK(e != NULL);
		g_autoptr(GByteArray) a = g_byte_array_new();
		CHECK(dcdb_update_encode_entry(a, e) == 0);
		fake_state(f, DFSM_MSG_UPDATE, &S.epoch, DCDB_PROTOCOL_VERSION, 0, a->data, a->len);
	}
	if (!(fl & 2))
		fake_state(f, DFSM_MSG_UPDATE_COMPLETE, &S.epoch, DCDB_PROTOCOL_VERSION, 0, NULL,
			   0);
}

/* VERIFY: node @x's checksum for the last request */
static void op_verify(const dfsm_member_t *f, real_t *x, uint8_t fl)
{
	if (!x->mdb)
		return;
	uint8_t csum[MEMDB_CSUM_LEN];
	memdb_tree_checksum(x->mdb, csum);
	if (fl & 1)
		csum[0] ^= 1;
	uint8_t v[DFSM_VERIFY_LEN];
	dfsm_verify_encode(v, S.csum_id + (fl >> 1), csum);
	fake_state(f, DFSM_MSG_VERIFY, &S.epoch, DCDB_PROTOCOL_VERSION, 0, v, sizeof(v));
}

/* STATE f t fl time32 [epoch] [version32] len16 b */
static void op_state(const dfsm_member_t *f, reader_t *r)
{
	uint16_t type = u8(r);
	uint8_t fl = u8(r);
	uint32_t time = u32(r);
	dfsm_epoch_t epoch = S.epoch;
	if (fl & 1) {
		epoch.epoch = u32(r);
		epoch.time = u32(r);
		epoch.nodeid = u32(r);
		epoch.pid = u32(r);
	} else if (type == DFSM_MSG_SYNC_START) {
		epoch = (dfsm_epoch_t){++S.fake_epochs, time, f->nodeid, f->pid};
	}
	uint32_t version = fl & 2 ? u32(r) : DCDB_PROTOCOL_VERSION;
	size_t n;
	const uint8_t *p = take(r, u16(r), &n);
	uint64_t id;
	if (type == DFSM_MSG_SYNC_START)
		S.epoch = epoch;
	else if (type == DFSM_MSG_VERIFY_REQUEST && dfsm_verify_request_decode(p, n, &id) == 0)
		S.csum_id = id;
	fake_state(f, type, &epoch, version, time, p, n);
}

/* with nothing left on the bus: two synced members hold the same tree
 * (unless the script tainted the run, see the header) */
static void check_converged(void)
{
	real_t *a = &S.r[0], *b = &S.r[1];
	if (S.tainted || !a->joined || !b->joined || !g_queue_is_empty(&S.events))
		return;
	dfsm_t *da = dcdb_dfsm(a->db), *db = dcdb_dfsm(b->db);
	if (dfsm_mode(da) != DFSM_MODE_SYNCED || dfsm_mode(db) != DFSM_MODE_SYNCED ||
	    dfsm_queued(da) != 0 || dfsm_queued(db) != 0)
		return;
	size_t la, lb;
	g_autofree uint8_t *ia = memdb_encode_index(a->mdb, &la);
	g_autofree uint8_t *ib = memdb_encode_index(b->mdb, &lb);
	CHECK(la == lb && memcmp(ia, ib, la) == 0);
}

static void run_op(reader_t *r)
{
	uint8_t op = u8(r) % 18;
	uint8_t a = u8(r);
	real_t *x = &S.r[a & 1];
	const dfsm_member_t *f = &fake_id[a & 3];
	size_t n;
	const uint8_t *p;
	change_t c = {0};
	switch (op) {
	case 0:
		real_join(x);
		break;
	case 1:
		if ((u8(r) & 1) && x->db)
			dfsm_leave(dcdb_dfsm(x->db));
		real_leave(x);
		break;
	case 2:
		S.fakes = a & 0xf;
		if (S.fakes)
			S.tainted = true;
		bus_membership();
		break;
	case 3:
		for (unsigned k = 0; (a == 255 || k <= a) && bus_step(); k++)
			;
		break;
	case 4:
		p = take(r, u16(r), &n);
		fake_send(f, p, n);
		break;
	case 5:
		op_state(f, r);
		break;
	case 6: {
		uint16_t subtype = u8(r);
		uint16_t count = u16(r);
		uint32_t time = u32(r);
		p = take(r, u16(r), &n);
		fake_normal(f, subtype, count, time, p, n);
		break;
	}
	case 7: {
		uint16_t count = u16(r);
		uint32_t time = u32(r);
		change_read(r, &c);
		g_autoptr(GByteArray) m = g_byte_array_new();
		if (dcdb_msg_encode(m, &c.m) < 0)
			lay_out(m, &c.m);
		fake_normal(f, c.m.subtype, count, time, m->data, m->len);
		break;
	}
	case 8:
		change_read(r, &c);
		if (x->db) {
			uint64_t count = 0;
			int ret = dcdb_send(x->db, &c.m, &count);
			CHECK(ret <= 0);
			if (ret == 0) {
				CHECK(!g_hash_table_contains(x->pending, &count));
				g_hash_table_add(x->pending, g_memdup2(&count, sizeof(count)));
			}
		}
		break;
	case 9: {
		g_autofree char *path = str(r);
		uint8_t fl = u8(r);
		uint8_t csum[MEMDB_CSUM_LEN];
		record_csum(x, path, csum);
		if (fl & 1)
			csum[0] ^= 1;
		if (x->db)
			CHECK(dcdb_send_unlock_request(x->db, path, csum) <= 0);
		break;
	}
	case 10:
		if (x->db)
			dfsm_verify_tick(dcdb_dfsm(x->db));
		break;
	case 11:
		x->quorate = u8(r) & 1;
		break;
	case 12:
		fuzz_now += 4u * a;
		break;
	case 13:
		op_copy(f, &S.r[(a >> 2) & 1], u8(r));
		break;
	case 14: {
		uint8_t fl = u8(r);
		op_tree(f, &S.r[(a >> 2) & 1], fl, u8(r));
		break;
	}
	case 15:
		op_verify(f, &S.r[(a >> 2) & 1], u8(r));
		break;
	case 16:
		x->fail_sends = u8(r) % 4 + 1;
		break;
	case 17: {
		uint8_t skip = u8(r);
		uint8_t k = u8(r);
		if (x->mdb)
			db_test_fail_after(memdb_database(x->mdb), skip % 8, k % 4 + 1);
		break;
	}
	}
	change_clear(&c);
	leave_errors();
	check_converged();
}

/* the end of a script: the checks that need the whole run */
static void finish(void)
{
	check_converged();
	for (size_t i = 0; i < N_REAL; i++) {
		real_t *x = &S.r[i];
		if (x->db) {
			size_t len, len2;
			db_test_fail_after(memdb_database(x->mdb), 0, 0);
			g_autofree uint8_t *idx = memdb_encode_index(x->mdb, &len);
			x->db = dcdb_free(x->db);
			CHECK(g_hash_table_size(x->pending) == 0); /* every result given */
			x->mdb = memdb_close(x->mdb);
			memdb_t *again = open_db(x->path);
			g_autofree uint8_t *idx2 = memdb_encode_index(again, &len2);
			memdb_close(again);
			CHECK(len == len2 && memcmp(idx, idx2, len) == 0);
			remove_db(x->path);
		}
		g_clear_pointer(&x->pending, g_hash_table_unref);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_now = 1000;
	S.fakes = 0;
	S.n_members = 0;
	S.delivered = 0;
	S.epoch = (dfsm_epoch_t){0};
	S.fake_epochs = 0;
	S.csum_id = 0;
	S.tainted = false;
	for (size_t i = 0; i < N_REAL; i++) {
		real_t *x = &S.r[i];
		x->joined = false;
		x->quorate = true;
		x->fail_sends = 0;
		x->gen = 0;
		x->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	}
	reader_t r = {data, size};
	for (unsigned ops = 0; r.n && ops < MAX_OPS; ops++)
		run_op(&r);
	while (bus_step())
		;
	finish();
	return 0;
}

/* --- set-up ---------------------------------------------------------------------- */

static void cleanup(void)
{
	for (size_t i = 0; i < N_REAL; i++)
		remove_db(S.r[i].path);
	remove_db(S.template_db);
	(void)g_rmdir(S.dir);
}

/* warnings (a guest list with duplicate VMIDs, ...) are expected here;
 * a critical is a bug */
static void log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
	(void)ud;
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) {
		fprintf(stderr, "fuzz-dcdb: %s: %s\n", domain ? domain : "", msg);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	g_log_set_default_handler(log_handler, NULL);
	S.trace = getenv("FUZZ_DCDB_TRACE") != NULL;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : g_get_tmp_dir();
	S.dir = g_build_filename(base, "fuzz-dcdb-XXXXXX", NULL);
	if (!g_mkdtemp(S.dir)) {
		fprintf(stderr, "fuzz-dcdb: cannot make a directory in %s\n", base);
		abort();
	}
	S.template_db = g_build_filename(S.dir, "template.db", NULL);
	for (size_t i = 0; i < N_REAL; i++) {
		S.r[i].id = &real_id[i];
		S.r[i].path = g_strdup_printf("%s/node%zu.db", S.dir, i);
	}
	atexit(cleanup);
	/* one empty database, the start of every node of every input */
	memdb_close(open_db(S.template_db));
	gsize len;
	g_autoptr(GError) err = NULL;
	if (!g_file_get_contents(S.template_db, (char **)&S.template, &len, &err)) {
		fprintf(stderr, "fuzz-dcdb: %s\n", err->message);
		abort();
	}
	S.template_len = len;
	remove_db(S.template_db);
	return 0;
}
