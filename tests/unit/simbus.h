/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * simbus.h: a simulated CPG bus for tests of DFSM engines in one process.
 *
 * One FIFO of events (membership changes and multicasts); each event goes
 * to every member of the configuration it was sent in, in the same order
 * everywhere: CPG's agreed order and virtual synchrony.  Node i has nodeid
 * i + 1 and pid 1000 + i.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dfsm.h"

#define SIMBUS_MAX_NODES 8

typedef struct simbus simbus_t;

simbus_t *simbus_new(size_t n);
void simbus_free(simbus_t *b);
/* the engine of node @i (the bus does not own it) */
void simbus_attach(simbus_t *b, size_t i, dfsm_t *d);
uint32_t simbus_nodeid(size_t i);
uint32_t simbus_pid(size_t i);
/* what node @i multicasts (the `send` callback of its engine); -ENOTCONN
 * while it is not a member, as the glue answers when not joined */
int simbus_send(simbus_t *b, size_t i, const struct iovec *iov, unsigned n_iov);
/* a new configuration: @in[i] says who is a member now */
void simbus_membership(simbus_t *b, const bool *in);
void simbus_all(simbus_t *b, bool on);
/* deliver until nothing is left */
void simbus_run(simbus_t *b);
/* deliver the next event to every node it goes to; false if none is left */
bool simbus_step(simbus_t *b);
unsigned simbus_sent(const simbus_t *b);
