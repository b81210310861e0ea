#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-status.py: the status group (pve_kvstore_v1) on a real cluster.

Three nodes with corosync and our pmxcfs.  What is checked, in order:

* every node's .members shows every node online with the address it
  announced (each node only knows its own at start);
* a key set on one node (IPC SET_STATUS, `cfsctl kv set`) is read on every
  other node under the setter's name, and its deletion too; RRD data of
  one node is in every node's .rrd;
* a cluster-log entry made on one node is in every node's .clusterlog;
* an entry logged on an isolated node reaches the others when it rejoins
  (the rings are exchanged and merged), and every node ends with the same
  log;
* "online" is membership of the status group: a stopped daemon is offline
  on the others while corosync still counts its node, and online again
  once restarted; a key set while it was away reaches it (every member
  sends its keys again after a membership change);
* no sanitizer report in the daemons' logs.

Needs root, corosync, unshare, nsenter, nft; skipped otherwise.
"""

import errno
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmxcfs_cluster as pc  # noqa: E402
import cluster  # noqa: E402
from cluster import Cluster, wait_for  # noqa: E402

BOUND = 60
EXTRA = ["--rejoin-delay", "1"]

state = {}
STEPS, step = cluster.steps()


def c3():
    return state["c3"]


@step()
def three_nodes_online_with_addresses():
    c = state["c3"] = Cluster(3, wait=False)
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:
        pc.start(n, EXTRA)
    want = {n.name: (1, n.addr) for n in c.nodes}
    for n in c.nodes:
        wait_for(lambda: pc.online(n) == want, BOUND, "%s shows %s" % (n.name, want),
                 interval=0.2)
    return "every node online with its address on every node"


@step(needs=("c3",))
def keys_reach_every_node():
    c = c3()
    a, b, d = c.nodes
    assert pc.cfsctl(a, "kv", "set", "kv/test", "from node1")[0] == 0
    assert pc.cfsctl(b, "kv", "set", "tasklist", "[]")[0] == 0
    for n in c.nodes:
        wait_for(lambda: pc.kv_get(n, "kv/test", a.name) == "from node1", BOUND,
                 "kv/test of node1 on " + n.name, interval=0.1)
        wait_for(lambda: pc.kv_get(n, "tasklist", b.name) == "[]", BOUND,
                 "tasklist of node2 on " + n.name, interval=0.1)
    # under the setter's name only
    assert pc.kv_get(d, "kv/test", d.name) is None
    assert pc.cfsctl(a, "kv", "set", "kv/test")[0] == 0          # delete
    for n in c.nodes:
        wait_for(lambda: pc.kv_get(n, "kv/test", a.name) is None, BOUND,
                 "kv/test deleted on " + n.name, interval=0.1)
    # RRD data of one node in everyone's dump
    line = "pve2-node/%s:%d:0.5:1" % (d.name, int(time.time()))
    key, value = line.split(":", 1)
    assert pc.cfsctl(d, "kv", "set", "rrd/" + key, value)[0] == 0
    for n in c.nodes:
        wait_for(lambda: line in (pc.cfsctl(n, "rrd")[1] or ""), BOUND, "rrd on " + n.name,
                 interval=0.1)
    return "kv, tasklist, delete and rrd on all three"


@step(needs=("c3",))
def cluster_log_everywhere():
    c = c3()
    msg = "entry from %s at %d" % (c.nodes[1].name, time.time())
    assert pc.cfsctl(c.nodes[1], "log", "add", "-t", "test", msg)[0] == 0
    for n in c.nodes:
        wait_for(lambda: pc.log_has(n, msg), BOUND, "log entry on " + n.name, interval=0.1)
    return "a log entry of node2 on all three"


@step(needs=("c3",))
def isolated_log_merges_on_rejoin():
    c = c3()
    a, b, d = c.nodes
    c.isolate(d)
    c.wait_inquorate([d], BOUND)
    want = {a.name: (1, a.addr), b.name: (1, b.addr), d.name: (0, d.addr)}
    wait_for(lambda: pc.online(a) == want, BOUND, "node3 offline on node1", interval=0.2)
    msg = "logged on %s while isolated" % d.name
    assert pc.cfsctl(d, "log", "add", msg)[0] == 0
    assert pc.log_has(d, msg)
    assert not pc.log_has(a, msg)
    c.heal()
    c.wait_quorate(c.nodes, BOUND)
    t = time.monotonic()
    for n in c.nodes:
        wait_for(lambda: pc.log_has(n, msg), BOUND, "merged entry on " + n.name, interval=0.1)
    took = time.monotonic() - t
    # every node ends with the same log
    wait_for(lambda: len({json.dumps(pc.clusterlog(n)) for n in c.nodes}) == 1, BOUND,
             "equal cluster logs", interval=0.2)
    return "merged %.1fs after quorum came back; logs equal" % took


@step(needs=("c3",))
def online_is_the_daemon():
    c = c3()
    a, b, d = c.nodes
    c.stop_daemon(d)
    want = {a.name: (1, a.addr), b.name: (1, b.addr), d.name: (0, d.addr)}
    wait_for(lambda: pc.online(a) == want, BOUND, "node3 offline while its corosync runs",
             interval=0.2)
    assert c.node(d).quorum()["quorate"], "node3's corosync should still count"
    assert pc.cfsctl(a, "kv", "set", "kv/while-away", "set while node3 was down")[0] == 0
    pc.start(d, EXTRA)
    want = {n.name: (1, n.addr) for n in c.nodes}
    for n in c.nodes:
        wait_for(lambda: pc.online(n) == want, BOUND, "all online on " + n.name, interval=0.2)
    wait_for(lambda: pc.kv_get(d, "kv/while-away", a.name) == "set while node3 was down", BOUND,
             "the key set while away on node3", interval=0.1)
    return "offline while stopped, online after; keys sent again"


def mode(node, path):
    """path's st_mode as the node's mount shows it (0 when it cannot)."""
    r = pc.op(node, "tree", "")
    return r.get("ok", {}).get(path, [0])[0]


@step(needs=("c3",))
def a_daemon_alone_refuses_writes():
    """corosync's quorum counts corosyncs: with two daemons stopped, the
    third is quorate by that count, but what it wrote alone would be lost
    when a node with a newer database comes back and leads.  Writes also
    need a quorum of the daemons' group: EACCES and read-only modes until
    one is back."""
    c = c3()
    a, b, d = c.nodes
    assert pc.op(a, "write", "before-alone", "x") == {"ok": 1}
    c.stop_daemon(b)
    c.stop_daemon(d)
    wait_for(lambda: (pc.online(a) or {}).get(b.name, (1,))[0] == 0 and
             pc.online(a)[d.name][0] == 0, BOUND, "node2 and node3 offline", interval=0.2)
    assert c.node(a).quorum()["quorate"], "corosync should still be quorate"
    assert pc.op(a, "write", "alone", "x") == {"errno": errno.EACCES}
    assert pc.op(a, "read", "before-alone") == {"ok": "x"}
    # the modes say so too (no write bits), as without corosync's quorum
    wait_for(lambda: mode(a, "before-alone") & 0o222 == 0, BOUND,
             "read-only modes while alone", interval=0.2)
    pc.start(b, EXTRA)
    wait_for(lambda: pc.op(a, "write", "with-two", "y") == {"ok": 1}, BOUND,
             "writes with two daemons", interval=0.2)
    wait_for(lambda: mode(a, "before-alone") & 0o200, BOUND, "writable modes with two daemons",
             interval=0.2)
    pc.start(d, EXTRA)
    want = {n.name: (1, n.addr) for n in c.nodes}
    for n in c.nodes:
        wait_for(lambda: pc.online(n) == want, BOUND, "all online on " + n.name, interval=0.2)
    return "EACCES and read-only modes alone beside quorate corosyncs; writes again with two " \
        "daemons"


@step(needs=("c3",))
def no_sanitizer_reports():
    c = c3()
    pc.stop_all(c)
    reports = pc.sanitizer_reports(c)
    assert not reports, "\n".join(reports[:40])


if __name__ == "__main__":
    sys.exit(cluster.run_steps(STEPS, state, pc.skip_reason))
