/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * simbus.c: the simulated CPG bus (see simbus.h).
 */
#include "config.h"

#include <errno.h>

#include <glib.h>
#include <string.h>

#include "simbus.h"

typedef struct event {
	bool confchg;
	uint32_t nodeid, pid; /* sender */
	GBytes *msg;
	dfsm_member_t members[SIMBUS_MAX_NODES];
	size_t n_members, n_joined;
	bool to[SIMBUS_MAX_NODES]; /* the members when it was sent */
} event_t;

struct simbus {
	size_t n;
	dfsm_t *d[SIMBUS_MAX_NODES];
	bool member[SIMBUS_MAX_NODES];
	GQueue events;
	unsigned sent;
};

uint32_t simbus_nodeid(size_t i)
{
	return (uint32_t)(i + 1);
}

uint32_t simbus_pid(size_t i)
{
	return 1000 + (uint32_t)i;
}

simbus_t *simbus_new(size_t n)
{
	g_assert_cmpuint(n, <=, SIMBUS_MAX_NODES);
	simbus_t *b = g_new0(simbus_t, 1);
	b->n = n;
	g_queue_init(&b->events);
	return b;
}

static void event_free(gpointer p)
{
	event_t *e = p;
	if (e->msg)
		g_bytes_unref(e->msg);
	g_free(e);
}

void simbus_free(simbus_t *b)
{
	g_queue_clear_full(&b->events, event_free);
	g_free(b);
}

void simbus_attach(simbus_t *b, size_t i, dfsm_t *d)
{
	b->d[i] = d;
}

int simbus_send(simbus_t *b, size_t i, const struct iovec *iov, unsigned n_iov)
{
	if (!b->member[i])
		return -ENOTCONN; /* CPG: only a joined process multicasts */
	GByteArray *a = g_byte_array_new();
	for (unsigned k = 0; k < n_iov; k++)
		g_byte_array_append(a, iov[k].iov_base, (guint)iov[k].iov_len);
	event_t *e = g_new0(event_t, 1);
	e->nodeid = simbus_nodeid(i);
	e->pid = simbus_pid(i);
	e->msg = g_byte_array_free_to_bytes(a);
	memcpy(e->to, b->member, sizeof(e->to));
	g_queue_push_tail(&b->events, e);
	b->sent++;
	return 0;
}

void simbus_membership(simbus_t *b, const bool *in)
{
	event_t *e = g_new0(event_t, 1);
	e->confchg = true;
	for (size_t i = 0; i < b->n; i++) {
		if (in[i]) {
			e->members[e->n_members++] =
				(dfsm_member_t){simbus_nodeid(i), simbus_pid(i)};
			if (!b->member[i])
				e->n_joined++;
		}
		/* old and new members hear of it */
		e->to[i] = in[i] || b->member[i];
		b->member[i] = in[i];
	}
	g_queue_push_tail(&b->events, e);
}

void simbus_all(simbus_t *b, bool on)
{
	bool in[SIMBUS_MAX_NODES];
	for (size_t i = 0; i < b->n; i++)
		in[i] = on;
	simbus_membership(b, in);
}

bool simbus_step(simbus_t *b)
{
	event_t *e = g_queue_pop_head(&b->events);
	if (!e)
		return false;
	for (size_t i = 0; i < b->n; i++) {
		if (!e->to[i] || !b->d[i])
			continue;
		if (e->confchg) {
			dfsm_confchg(b->d[i], e->members, e->n_members, e->n_joined);
		} else {
			gsize len;
			const uint8_t *m = g_bytes_get_data(e->msg, &len);
			dfsm_deliver(b->d[i], e->nodeid, e->pid, m, len);
		}
	}
	event_free(e);
	return true;
}

void simbus_run(simbus_t *b)
{
	unsigned guard = 0;
	while (simbus_step(b))
		g_assert_cmpuint(++guard, <, 1000000);
}

unsigned simbus_sent(const simbus_t *b)
{
	return b->sent;
}
