#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-replication.py: our pmxcfs on a real corosync cluster.

Three nodes (and five at the end), each with corosync and pmxcfs in its own
namespaces.  What is checked, in order:

* a write on any node is on every node with the same content and mtime, and
  afterwards every node's database has the same version and checksum;
* two nodes creating the same 60 paths at once: each path has exactly one
  winner, the other node gets EEXIST; the same for VMIDs (a guest config of
  the same VMID under two nodes' directories); the VM lists agree;
* locks across nodes: mkdir excludes other nodes while held; utime(0,0) on
  a lock that has not expired changes nothing (EACCES); once expired, the
  unlock request removes it on every node;
* quorum loss (2|1): the minority serves reads and refuses writes with
  EACCES, the majority goes on; after healing every node has every write
  the majority acknowledged;
* a node restarted with a stale database and one with an empty database
  catch up, each within a measured time;
* kill -9 of one daemon, and a restart of all daemons at once, converge;
* many writes in flight from one node (pipelined) all land, in order;
* a write is answered only once a quorum of daemons applied it, and gets
  EBUSY when none confirms it within the bound;
* five nodes: a write on the last is on all.

Needs root, corosync, unshare, nsenter, nft; skipped otherwise.  Steps on a
cluster whose set-up failed are skipped.  Writes are checked through the
mounts inside the nodes and through each node's database file.
"""

import errno
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmxcfs_cluster as pc  # noqa: E402
import cluster  # noqa: E402
from cluster import Cluster, wait_for  # noqa: E402

BOUND = 60           # seconds any convergence may take
LOCK_TIMEOUT = 3     # --lock-timeout of the daemons (the real one is 120 s)
STALL = 3            # --corosync-bound of the daemons, in seconds (the real one is 10);
                     # they raise it to twice corosync's token + consensus (about 7 s here)
EXTRA = ["--lock-timeout", str(LOCK_TIMEOUT), "--rejoin-delay", "1",
         "--corosync-bound", str(STALL * 1000)]

state = {}
STEPS, step = cluster.steps()


def c3():
    return state["c3"]


@step()
def three_nodes_serving():
    t = time.monotonic()
    c = state["c3"] = Cluster(3, wait=False)
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:
        pc.start(n, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    secs, _ = pc.wait_converged(c.nodes, BOUND)
    return "serving after %.1fs" % (time.monotonic() - t)


@step(needs=("c3",))
def write_on_any_node_is_everywhere():
    c = c3()
    for i, w in enumerate(c.nodes):
        path = "from-%s.cfg" % w.name
        text = "written on %s\n" % w.name * (i + 1)
        pc.write_ok(w, path, text)
        for n in c.nodes:
            wait_for(lambda: pc.read(n, path) == text, BOUND, "%s on %s" % (path, n.name),
                     interval=0.1)
        stats = [pc.op(n, "stat", path)["ok"] for n in c.nodes]
        assert all(s == stats[0] for s in stats), "size/mtime differ: %s" % stats
    # a change on one node, a delete on another, a rename on the third
    pc.ops(c.nodes[0], [["mkdir", "dir"], ["write", "dir/a", "A"]], stop_on_error=True)
    assert pc.op(c.nodes[1], "unlink", "from-node1.cfg") == {"ok": None}
    wait_for(lambda: pc.op(c.nodes[2], "exists", "dir/a") == {"ok": True}, BOUND, "dir/a")
    assert pc.op(c.nodes[2], "rename", "dir/a", "dir/b") == {"ok": None}
    for n in c.nodes:
        wait_for(lambda: pc.ops(n, [["exists", "from-node1.cfg"], ["read", "dir/b"]]) ==
                 [{"ok": False}, {"ok": "A"}], BOUND, "delete and rename on " + n.name)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    return "databases equal (version %d, %d entries) %.1fs after the last change" % (
        s["version"], s["entries"], secs)


@step(needs=("c3",))
def concurrent_creates_one_winner():
    c = c3()
    a, b = c.nodes[0], c.nodes[1]
    pc.ops(a, [["mkdir", "race"]])
    paths = ["race/f%03d" % i for i in range(60)]
    ra, rb = pc.race([a, b], [[["create", p, "a"] for p in paths],
                           [["create", p, "b"] for p in paths]])
    wins = {"a": 0, "b": 0}
    for p, x, y in zip(paths, ra, rb):
        okx, oky = "ok" in x, "ok" in y
        assert okx != oky, "%s: %s on %s, %s on %s" % (p, x, a.name, y, b.name)
        loser = y if okx else x
        assert loser == {"errno": 17}, "%s: the loser got %s, not EEXIST" % (p, loser)
        wins["a" if okx else "b"] += 1
    # VMIDs: the same VMID under two nodes' directories
    for n in (a, b):
        pc.ops(n, [["mkdir", "nodes"], ["mkdir", "nodes/" + n.name],
                   ["mkdir", "nodes/%s/qemu-server" % n.name]])
    vmids = range(1000, 1040)
    ra, rb = pc.race([a, b], [[["create", "nodes/%s/qemu-server/%d.conf" % (n.name, v), "x"]
                            for v in vmids] for n in (a, b)])
    for v, x, y in zip(vmids, ra, rb):
        assert ("ok" in x) != ("ok" in y), "VMID %d: %s and %s" % (v, x, y)
    pc.wait_converged(c.nodes, BOUND)
    lists = [pc.read(n, ".vmlist") for n in c.nodes]
    import json
    ids = [sorted(json.loads(x).get("ids", {}).items()) for x in lists]
    assert ids[0] == ids[1] == ids[2], "VM lists differ"
    assert len(ids[0]) == len(vmids), "%d VMs listed" % len(ids[0])
    return "paths won: %d by %s, %d by %s; every VMID once" % (wins["a"], a.name, wins["b"],
                                                                 b.name)


@step(needs=("c3",))
def locks_across_nodes():
    c = c3()
    n1, n2, n3 = c.nodes
    pc.ops(n1, [["mkdir", "priv"], ["mkdir", "priv/lock"]])
    wait_for(lambda: pc.op(n2, "exists", "priv/lock") == {"ok": True}, BOUND, "priv/lock")
    assert pc.op(n2, "mkdir", "priv/lock/vm-100") == {"ok": None}
    # held: nobody else gets it
    for n in (n1, n3):
        assert pc.op(n, "mkdir", "priv/lock/vm-100") == {"errno": 17}, n.name
    # not expired yet: the request changes nothing, the caller gets EACCES
    assert pc.op(n3, "utime", "priv/lock/vm-100", 0) == {"errno": 13}
    assert pc.op(n1, "exists", "priv/lock/vm-100") == {"ok": True}
    # expired: an unlock request from any node removes it everywhere
    t = time.monotonic()

    def released():
        pc.op(n3, "utime", "priv/lock/vm-100", 0)
        return all(pc.op(n, "exists", "priv/lock/vm-100") == {"ok": False} for n in c.nodes)
    wait_for(released, BOUND, "the expired lock removed", interval=0.5)
    took = time.monotonic() - t
    assert took >= LOCK_TIMEOUT - 1.5, "released after %.1fs, before it expired" % took
    # and free to take again, by exactly one of two
    ra, rb = pc.race([n1, n3], [[["mkdir", "priv/lock/vm-100"]]] * 2)
    assert ("ok" in ra[0]) != ("ok" in rb[0]), (ra, rb)
    return "expired lock removed %.1fs after the first request" % took


@step(needs=("c3",))
def minority_refuses_writes():
    c = c3()
    n1, n2, n3 = c.nodes
    pc.write_ok(n1, "before-partition", "x")
    pc.write_ok(n1, "renamed-meanwhile", "r")
    pc.wait_converged(c.nodes, BOUND)
    # node3's kernel knows the name (a lookup), and keeps it
    assert pc.read(n3, "renamed-meanwhile") == "r"
    c.partition([[n1.name, n2.name], [n3.name]])
    wait_for(lambda: (pc.members(n3) or {}).get("cluster", {}).get("quorate") == 0, BOUND,
             "node3 inquorate", interval=0.2)
    assert pc.op(n3, "write", "minority", "m") == {"errno": 13}
    assert pc.op(n3, "mkdir", "minority-dir") == {"errno": 13}
    assert pc.read(n3, "before-partition") == "x", "reads must still work"
    # the majority goes on (its membership may still be settling)
    acked = []
    for i in range(10):
        p = "majority-%d" % i
        wait_for(lambda: "ok" in pc.op(n1 if i % 2 else n2, "write", p, str(i)), BOUND,
                 "write %s in the majority" % p, interval=0.2)
        acked.append(p)
    assert pc.op(n1, "rename", "renamed-meanwhile", "renamed-to") == {"ok": None}
    c.heal()
    t = time.monotonic()
    wait_for(lambda: pc.serving(n3, [n.name for n in c.nodes]), BOUND, "node3 back",
             interval=0.2)
    secs, _ = pc.wait_converged(c.nodes, BOUND)
    for n in c.nodes:
        got = pc.ops(n, [["read", p] for p in acked] + [["exists", "minority"]])
        assert got == [{"ok": str(i)} for i in range(10)] + [{"ok": False}], (n.name, got)
    # the name node3's kernel had cached is gone with the resync: a write
    # to it must not land in the renamed file
    got = pc.ops(n3, [["exists", "renamed-meanwhile"], ["read", "renamed-to"],
                      ["write", "renamed-meanwhile", "stale"]])
    assert got[:2] == [{"ok": False}, {"ok": "r"}], got
    pc.wait_converged(c.nodes, BOUND)
    assert pc.read(n1, "renamed-to") == "r", "a write to the old name changed the renamed file"
    return "converged %.1fs after healing" % (time.monotonic() - t)


@step(needs=("c3",))
def stale_and_empty_nodes_catch_up():
    c = c3()
    n1, n2, n3 = c.nodes
    # stale: node2 is down while node1 writes
    n2.stop_daemon()
    wait_for(lambda: pc.serving(n1, [n1.name, n3.name]), BOUND, "node2 gone", interval=0.2)
    res = pc.ops(n1, [["write", "stale-%d" % i, "v%d" % i] for i in range(50)])
    assert res == [{"ok": len("v%d" % i)} for i in range(50)], res
    t = time.monotonic()
    pc.start(n2, EXTRA)
    stale, _ = pc.wait_converged(c.nodes, BOUND)
    stale = time.monotonic() - t
    # empty: node3's database is wiped
    n3.stop_daemon()
    n3.wipe_data()
    t = time.monotonic()
    pc.start(n3, EXTRA)
    pc.wait_converged(c.nodes, BOUND)
    empty = time.monotonic() - t
    assert pc.read(n3, "stale-49") == "v49"
    return "stale node equal after %.1fs, empty node after %.1fs" % (stale, empty)


@step(needs=("c3",))
def kill9_and_restart_all():
    c = c3()
    n1, n2, n3 = c.nodes
    n3.stop_daemon(sig=signal.SIGKILL)   # its stale mount is cleared by the next start
    pc.write_ok(n1, "after-kill", "k")
    pc.start(n3, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    pc.wait_converged(c.nodes, BOUND)
    assert pc.read(n3, "after-kill") == "k"
    # all at once
    for n in c.nodes:
        n.stop_daemon()
    t = time.monotonic()
    for n in c.nodes:
        pc.start(n, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    assert pc.read(n2, "after-kill") == "k"
    return "all restarted and equal after %.1fs" % (time.monotonic() - t)


@step(needs=("c3",))
def pipelined_writes_all_land():
    c = c3()
    n1 = c.nodes[0]
    # 8 writers on one node at once, 25 files each, then overwrites
    batches = [[["atomic", "pipe-%d-%d" % (w, i), "%d.%d" % (w, i)] for i in range(25)]
               for w in range(8)]
    res = pc.race([n1] * 8, batches)
    for w, r in enumerate(res):
        assert r == [{"ok": len("%d.%d" % (w, i))} for i in range(25)], (w, r)
    pc.wait_converged(c.nodes, BOUND)
    for n in c.nodes:
        names = pc.op(n, "listdir", "")["ok"]
        assert sum(1 for x in names if x.startswith("pipe-")) == 200, n.name
        assert not any(".tmp." in x for x in names), "temporary files left"
    return "200 atomic writes from 8 writers on every node"


def _write_in_thread(node, path, text):
    """Start a write on node in a thread; the dict gets "r" (its result)
    and "secs" when it is answered."""
    import threading
    out = {}

    def go():
        t = time.monotonic()
        try:
            out["r"] = pc.op(node, "write", path, text)
        except Exception as e:          # reported by the caller
            out["r"] = "%s: %s" % (type(e).__name__, e)
        out["secs"] = time.monotonic() - t
    threading.Thread(target=go, daemon=True).start()
    return out


def daemon_log(node):
    with open(os.path.join(node.log_dir, "pmxcfs.log"), errors="replace") as f:
        return f.read()


def daemon_bound(node):
    """The stall bound node's daemon says it uses, in seconds (None if it
    said none)."""
    said = re.findall(r"may deliver nothing for (\d+) ms", daemon_log(node))
    return int(said[-1]) / 1000 if said else None


@step(needs=("c3",))
def frozen_corosync_bounded():
    """The local corosync stopped (SIGSTOP): it takes messages but delivers
    nothing.  Changes waiting on it fail with EBUSY after the bound instead
    of hanging (and a parked create no longer blocks lookups in its
    directory); reads go on; after SIGCONT the node rejoins and converges,
    and every write acknowledged elsewhere meanwhile is there."""
    c = c3()
    a, b = c.nodes[0], c.nodes[1]
    c.stop(a)
    outs = [_write_in_thread(a, "frozen-%d" % i, "x" * 1000) for i in range(4)]
    wait_for(lambda: all("r" in o for o in outs), STALL + 60, "the writes answered",
             interval=0.1)
    results = {i: (o["r"], o["secs"]) for i, o in enumerate(outs)}
    for r, secs in results.values():
        assert r == {"errno": errno.EBUSY}, "a write under a frozen corosync: %s" % (r,)
    # the bound is raised to twice token + consensus (a membership change
    # delivers nothing that long): the daemon says which, and the first
    # write waited at least that long
    bound = daemon_bound(a)
    assert bound and bound > STALL, "no raised bound in the log: %s" % bound
    assert max(x[1] for x in results.values()) >= bound - 0.5, \
        "EBUSY before the bound of %.1fs: %s" % (bound, results)
    # reads go on, and new changes fail at once
    r = pc.op(a, "read", ".version")
    assert "ok" in r, "reading .version under a frozen corosync: %s" % (r,)
    t = time.monotonic()
    r = pc.op(a, "write", "frozen-late", "y")
    assert r == {"errno": errno.EBUSY}, "a write after the bound: %s" % (r,)
    late = time.monotonic() - t
    c.cont(a)
    c.wait_quorate(c.nodes, BOUND)
    pc.write_ok(b, "after-freeze", "acknowledged on node2")
    secs, _ = pc.wait_converged(c.nodes, BOUND)
    wait_for(lambda: pc.read(a, "after-freeze") == "acknowledged on node2", BOUND,
             "node1 has node2's write", interval=0.1)
    return "4 writes EBUSY after %.1fs (bound %.1fs, option %ds), a later one in %.2fs; " \
        "converged %.1fs after SIGCONT" % (max(x[1] for x in results.values()), bound, STALL,
                                           late, secs)


@step(needs=("c3",))
def writes_wait_for_a_quorum():
    """A write is answered only once daemons holding a quorum of votes have
    applied it (docs/cluster.md, "Confirmed writes"): with the daemons of
    node2 and node3 frozen (their corosyncs run, so node1 is quorate and
    its own change comes back to it at once), a write on node1 is not
    answered; once node2's daemon runs again it is, and node2 has it.
    With both frozen past the bound, the write gets EBUSY ("not known"),
    and it is on every node after they run again."""
    c = c3()
    a, b, d = c.nodes
    pc.write_ok(a, "confirm-me", "before")
    c.stop(b, "pmxcfs")
    c.stop(d, "pmxcfs")
    try:
        out = _write_in_thread(a, "confirm-me", "while the others sleep")
        # nothing may answer it while no other daemon can confirm: a bounded
        # look for a wrong answer, not a synchronisation
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and "r" not in out:
            time.sleep(0.05)
        assert "r" not in out, "answered without a confirmation: %s" % (out,)
    finally:
        c.cont(b, "pmxcfs")
    wait_for(lambda: "r" in out, BOUND, "the write answered once node2 confirms",
             interval=0.05)
    assert out["r"] == {"ok": len("while the others sleep")}, "the write: %s" % (out,)
    assert pc.read(b, "confirm-me") == "while the others sleep", "node2 lacks the write"
    waited = out["secs"]

    # no confirmation within the bound: EBUSY, and the change still lands
    # (an existing file: open(O_TRUNC), write and close are one change)
    pc.write_ok(a, "confirm-late", "before")
    c.stop(b, "pmxcfs")
    try:
        t0 = time.monotonic()
        out = _write_in_thread(a, "confirm-late", "unconfirmed")
        wait_for(lambda: "r" in out, BOUND, "the unconfirmed write answered", interval=0.1)
        late = time.monotonic() - t0
    finally:
        c.cont(b, "pmxcfs")
        c.cont(d, "pmxcfs")
    assert out["r"] == {"errno": errno.EBUSY}, "an unconfirmed write: %s" % (out,)
    bound = daemon_bound(a) or STALL
    assert late >= bound - 0.5, "EBUSY after %.1fs, before the bound of %.1fs" % (late, bound)
    assert "no quorum confirmed it within" in daemon_log(a), \
        "no log line for the unconfirmed write"
    pc.wait_converged(c.nodes, BOUND)
    for n in c.nodes:
        wait_for(lambda: pc.read(n, "confirm-late") == "unconfirmed", BOUND,
                 "%s has the unconfirmed write" % n.name, interval=0.1)
    return "answered %.1fs after the first write, once node2 ran again; unconfirmed: EBUSY " \
        "after %.1fs (bound %.1fs), on every node afterwards" % (waited, late, bound)


@step(needs=("c3",))
def sigterm_under_writes():
    """SIGTERM to a daemon while writers keep it busy: it exits 0 (no
    crash: a change parked while its teardown ran once outlived the mount
    and read freed memory, seen by ASan in the fault suite), every write
    it acknowledged is on the other nodes, and it serves again after a
    restart.  The writers write below a directory of the tree, so that
    what they try after the unmount fails instead of landing in the plain
    directory under the mount point.  Three rounds: the window was small."""
    import threading
    c = c3()
    a, b, d = c.nodes
    assert pc.op(a, "mkdir", "term") in ({"ok": None}, {"errno": errno.EEXIST})
    acked, refused = 0, {}
    for rnd in range(3):
        results = {}

        def writer(w):
            batch = [["write", "term/%d-%d-%d" % (rnd, w, i), "w%d.%d" % (w, i) * 20]
                     for i in range(400)]
            results[w] = (batch, pc.ops(a, batch, timeout=BOUND))
        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        # the first write's content on node2: its close() is answered
        # (or in the drain), so some acknowledged writes are there to check
        first = "term/%d-0-0" % rnd
        wait_for(lambda: pc.op(b, "read", first) == {"ok": "w0.0" * 20}, BOUND,
                 "the first write of round %d on node2" % rnd, interval=0.05)
        status = a.stop_daemon(timeout=30)
        for t in threads:
            t.join(BOUND)
        # a writer whose runner failed would drop its acknowledged writes
        # from the check below without a word
        assert len(results) == 4, "round %d: writers that reported: %s" % (rnd, sorted(results))
        assert status == 0, "round %d: pmxcfs exited with %s under writes: %s" % (
            rnd, status, pc.sanitizer_reports(c)[:1] or a.tail_logs())
        pc.start(a, EXTRA)
        pc.wait_serving(c.nodes, BOUND)
        pc.wait_converged(c.nodes, BOUND)
        want = {}
        for w, (batch, res) in sorted(results.items()):
            for (_, path, text), r in zip(batch, res):
                if "ok" in r:
                    want[path] = text
                else:
                    refused[r["errno"]] = refused.get(r["errno"], 0) + 1
        acked += len(want)
        paths = sorted(want)
        for n in (b, d):
            got = pc.ops(n, [["read", p] for p in paths], timeout=BOUND)
            for p, r in zip(paths, got):
                assert r == {"ok": want[p]}, "acknowledged write %s on %s: %s" % (p, n.name, r)
    assert acked > 0, "no write acknowledged before the SIGTERMs"
    return "3 rounds: %d writes acknowledged, all on every node; refused by errno: %s" % (
        acked, refused)


@step()
def five_nodes():
    c3_ = state.get("c3")
    if c3_ is not None:
        pc.stop_all(c3_)             # a sanitizer build reports leaks at exit
        state["reports"] = pc.sanitizer_reports(c3_)
        c3_.failed = c3_.failed or bool(os.environ.get("CLUSTER_KEEP_LOGS"))
        c3_.close()
    c = state["c5"] = Cluster(5, wait=False)
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:
        pc.start(n, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    pc.write_ok(c.nodes[4], "five", "5")
    for n in c.nodes:
        wait_for(lambda: pc.read(n, "five") == "5", BOUND, "five on " + n.name, interval=0.1)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    return "5 nodes equal (version %d)" % s["version"]


@step(needs=("c5",))
def no_sanitizer_reports():
    """In an ASan/UBSan build the daemons' logs hold no report (errors
    and leaks are printed there, at the latest when they exit)."""
    c = state["c5"]
    pc.stop_all(c)
    reports = state.get("reports", []) + pc.sanitizer_reports(c)
    assert not reports, "\n".join(reports[:40])


if __name__ == "__main__":
    sys.exit(cluster.run_steps(STEPS, state, pc.skip_reason))
