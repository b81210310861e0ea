/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-kvstore.c: libFuzzer target for the status group as a whole: one
 * node's kvstore (pmxcfs/kvstore.c on the DFSM engine, with its status)
 * fed a script of what its peers could send.
 *
 * The input is a sequence of events, each a one-byte opcode and its bytes:
 *
 *   0 members:  1 byte of member bits (bit i = node i + 1; we are node 1),
 *               1 byte n_joined
 *   1 raw:      sender (1 byte), length (1 byte), that many bytes as the
 *               whole message
 *   2 normal:   sender, subtype (1 byte), length (2 bytes LE), payload
 *   3 state:    sender, type 1..6 (1 byte), length (2 bytes LE), payload,
 *               sent with the epoch of the current sync (so it gets past the
 *               epoch filter); a zero length with type 2 (STATE) sends a
 *               valid ring built from the following byte's log entries
 *   4 set:      key length, key, value length (2 bytes LE), value: a local
 *               SET_STATUS
 *   5 log:      priority, message length, message: a local LOG_CLUSTER_MSG
 *
 * Our own multicasts are delivered back to us in order, as CPG does, so
 * the engine goes through whole state exchanges.  Nodes 1-3 are in the
 * nodelist, node 4 is not.
 *
 * Checks besides "no crash, no read outside a buffer" (ASan): every message
 * the node sends decodes with our own decoders (the header; UPDATE with
 * kvstore_update_decode; LOG with clog_entry_decode; STATE with
 * clog_state_decode), and the generated JSON texts (.members, .clusterlog)
 * stay valid JSON in UTF-8 whatever the peers sent.
 *
 * Build and run: docs/fuzzing.md; `make check` replays
 * tests/fuzz/corpus/kvstore/.
 */
#include "config.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clog.h"
#include "constants.h"
#include "dfsm-proto.h"
#include "kvstore.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define OUR_NODEID 1u
#define OUR_PID    100u
#define MAX_EVENTS 256

typedef struct world {
	GQueue loop;        /* GBytes we sent, not yet delivered back */
	dfsm_epoch_t epoch; /* of the last SYNC_START seen */
	bool have_epoch;
} world_t;

static const uint8_t *take(const uint8_t **p, const uint8_t *end, size_t n)
{
	if ((size_t)(end - *p) < n)
		return NULL;
	const uint8_t *r = *p;
	*p += n;
	return r;
}

static int on_send(void *ud, const struct iovec *iov, unsigned n)
{
	world_t *w = ud;
	GByteArray *a = g_byte_array_new();
	for (unsigned i = 0; i < n; i++)
		g_byte_array_append(a, iov[i].iov_base, (guint)iov[i].iov_len);
	dfsm_msg_t m;
	CHECK(dfsm_msg_decode(a->data, a->len, &m) == 0);
	if (m.type == DFSM_MSG_NORMAL && m.subtype == KVSTORE_MSG_UPDATE) {
		kvstore_update_t u;
		CHECK(kvstore_update_decode(m.payload, m.payload_len, &u) == 0);
	} else if (m.type == DFSM_MSG_NORMAL && m.subtype == KVSTORE_MSG_LOG) {
		clog_entry_t e;
		CHECK(clog_entry_decode(m.payload, m.payload_len, &e) == 0);
	} else if (m.type == DFSM_MSG_STATE) {
		clog_t *cl = NULL;
		CHECK(clog_state_decode(m.payload, m.payload_len, &cl) == 0);
		clog_free(cl);
	}
	g_queue_push_tail(&w->loop, g_byte_array_free_to_bytes(a));
	return 0;
}

static void on_log(void *ud, int level, const char *msg)
{
}

static void log_quietly(const char *domain, GLogLevelFlags level, const char *msg, gpointer data)
{
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
		fprintf(stderr, "fuzz-kvstore: %s: %s\n", domain ? domain : "", msg);
}

static void deliver(dfsm_t *d, world_t *w, uint32_t nodeid, uint32_t pid, const uint8_t *msg,
		    size_t len)
{
	dfsm_msg_t m;
	if (dfsm_msg_decode(msg, len, &m) == 0 && m.type == DFSM_MSG_SYNC_START) {
		w->epoch = m.epoch;
		w->have_epoch = true;
	}
	dfsm_deliver(d, nodeid, pid, msg, len);
}

static void flush(dfsm_t *d, world_t *w)
{
	GBytes *b;
	while ((b = g_queue_pop_head(&w->loop))) {
		gsize len;
		const uint8_t *p = g_bytes_get_data(b, &len);
		deliver(d, w, OUR_NODEID, OUR_PID, p, len);
		g_bytes_unref(b);
	}
}

static uint32_t pid_of(uint32_t nodeid)
{
	return nodeid == OUR_NODEID ? OUR_PID : 200 + nodeid;
}

/* who a scripted message claims to come from: never this very process
 * (CPG only delivers our own messages as ours), but node 1 with another
 * pid, an earlier daemon of ours, is a possible sender */
static uint32_t sender_pid(uint32_t nodeid)
{
	return nodeid == OUR_NODEID ? OUR_PID + 1 : pid_of(nodeid);
}

static void check_texts(status_t *st)
{
	char *texts[2] = {status_members_json(st), status_clusterlog_json(st, 0, NULL)};
	for (int i = 0; i < 2; i++) {
		if (getenv("FUZZ_VERBOSE")) /* to see how deep a seed gets */
			fputs(texts[i], stderr);
		CHECK(g_utf8_validate(texts[i], -1, NULL));
		JsonParser *p = json_parser_new();
		CHECK(json_parser_load_from_data(p, texts[i], -1, NULL));
		g_object_unref(p);
		g_free(texts[i]);
	}
	g_free(status_rrd_text(st)); /* built, for ASan; not JSON, no rule to check */
}

/* a valid ring with @n entries of peer @nodeid, as its STATE payload */
static GBytes *peer_ring(uint32_t nodeid, unsigned n)
{
	clog_t *cl = clog_new(0);
	char node[16];
	g_snprintf(node, sizeof(node), "node%u", nodeid);
	for (unsigned i = 0; i < n; i++) {
		char msg[32];
		g_snprintf(msg, sizeof(msg), "entry %u", i);
		(void)clog_add(cl, node, "root@pam", "fuzz", 1000 + nodeid, 6, 1000 + i, msg, NULL);
	}
	GBytes *b = clog_state_encode(cl);
	clog_free(cl);
	return b;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* peers' bad input is logged as warnings: expected, and quiet; a
	 * critical is a bug (GLib's checks) and aborts */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_default_handler(log_quietly, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	world_t w = {0};
	g_queue_init(&w.loop);
	status_t *st = status_new("node1", NULL);
	status_node_t nodes[3] = {{"node1", 1, 1}, {"node2", 2, 1}, {"node3", 3, 1}};
	status_set_cluster_info(st, "fuzz", 1, nodes, 3);
	status_set_node_ip(st, "node1", "192.0.2.1");
	kvstore_hooks_t hooks = {.send = on_send, .log = on_log};
	kvstore_t *kv = kvstore_new(st, OUR_NODEID, OUR_PID, &hooks, &w);
	dfsm_t *d = kvstore_dfsm(kv);
	CHECK(dfsm_restart(d) == 0);

	const uint8_t *p = data, *end = data + size;
	for (int ev = 0; ev < MAX_EVENTS && p < end; ev++) {
		uint8_t op = *p++ % 6;
		const uint8_t *b;
		if (op == 0) {
			if (!(b = take(&p, end, 2)))
				break;
			dfsm_member_t m[8];
			size_t n = 0;
			for (uint32_t i = 0; i < 4; i++)
				if (b[0] & (1u << i))
					m[n++] = (dfsm_member_t){i + 1, pid_of(i + 1)};
			if (DFSM_MODE_IS_ERROR(dfsm_mode(d)))
				(void)dfsm_restart(d); /* what the glue does before joining */
			dfsm_confchg(d, m, n, b[1] % (n + 1));
		} else if (op == 1) {
			if (!(b = take(&p, end, 2)))
				break;
			uint32_t from = b[0] % 4 + 1;
			const uint8_t *msg = take(&p, end, b[1]);
			if (!msg)
				break;
			uint8_t *copy = g_memdup2(msg, b[1]);
			deliver(d, &w, from, sender_pid(from), copy, b[1]);
			g_free(copy);
		} else if (op == 2 || op == 3) {
			if (!(b = take(&p, end, 4)))
				break;
			uint32_t from = b[0] % 4 + 1;
			size_t len = (size_t)b[2] | (size_t)b[3] << 8;
			const uint8_t *payload = NULL;
			GBytes *ring = NULL;
			if (op == 3 && b[1] % 6 + 1 == DFSM_MSG_STATE && len == 0) {
				const uint8_t *k = take(&p, end, 1);
				ring = peer_ring(from, k ? *k : 0);
				gsize rl;
				payload = g_bytes_get_data(ring, &rl);
				len = rl;
			} else if (!(payload = take(&p, end, len))) {
				break;
			}
			dfsm_msg_t m = {.protocol_version = KVSTORE_PROTOCOL_VERSION,
					.time = 1000,
					.payload = payload,
					.payload_len = len};
			if (op == 2) {
				m.type = DFSM_MSG_NORMAL;
				m.subtype = b[1];
				m.count = (uint64_t)ev + 1;
			} else {
				m.type = (uint16_t)(b[1] % 6 + 1);
				m.epoch = w.epoch;
			}
			GByteArray *a = g_byte_array_new();
			if (dfsm_msg_encode(a, &m) == 0) {
				uint8_t *copy = g_memdup2(a->data, a->len);
				deliver(d, &w, from, sender_pid(from), copy, a->len);
				g_free(copy);
			}
			g_byte_array_unref(a);
			if (ring)
				g_bytes_unref(ring);
		} else if (op == 4) {
			if (!(b = take(&p, end, 1)))
				break;
			const uint8_t *key = take(&p, end, b[0]);
			const uint8_t *vl = take(&p, end, 2);
			if (!key || !vl)
				break;
			size_t len = (size_t)vl[0] | (size_t)vl[1] << 8;
			const uint8_t *value = take(&p, end, len);
			if (!value)
				break;
			char *k = g_strndup((const char *)key, b[0]);
			(void)status_kv_set(st, k, value, len);
			g_free(k);
		} else {
			if (!(b = take(&p, end, 2)))
				break;
			const uint8_t *msg = take(&p, end, b[1]);
			if (!msg)
				break;
			char *m = g_strndup((const char *)msg, b[1]);
			(void)status_clog_add(st, "node1", "root@pam", "fuzz", 1, b[0] % 9,
					      2000000000, m);
			g_free(m);
		}
		flush(d, &w);
	}
	check_texts(st);
	kv = kvstore_free(kv);
	g_queue_clear_full(&w.loop, (GDestroyNotify)g_bytes_unref);
	status_free(st);
	return 0;
}
