#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-mixed.py: our pmxcfs in one cluster with the original.

Runs only when PMXCFS_ORIGINAL names an original pmxcfs binary (built from
the pve-cluster sources, see tests/cluster/README.md); prints a SKIP
otherwise.  Two clusters of three nodes, each node with corosync in its own
namespaces; the original runs with its fixed paths bound to the node's own
(pmxcfs_cluster.start_original).

Cluster A: node1 original, node2 ours, node3 original (an original leads
ties and decides lock expiry):

* every node's .members shows all three online with their addresses;
* a write on each node (empty, small, 300 KiB, a name with spaces and
  UTF-8) is on every node with the same content, size and mtime; mkdir,
  unlink and rename across implementations; afterwards every config.db
  has the same version and checksum (`cfsctl verify` reads the original's
  database too) and every mount shows the same tree (modes, owners,
  sizes, mtimes);
* truncate, utime, rename onto a file, 1 MiB files from each kind; a
  file over 1 MiB fails alike;
* corosync.conf written (and renamed onto) on either kind: every node's
  host file follows, corosync reloads, .members shows the new version;
* an original and ours create the same paths and VMIDs at once: one
  winner each, the loser gets EEXIST; the guest lists agree, also after
  guests moved between the nodes' directories; 8 writers on two kinds;
* locks: held on one kind, refused on the other; utime(0) before expiry
  is EACCES everywhere; with PMXCFS_MIXED_SLOW=1, an expired lock (120 s)
  is removed by the original when ours asks;
* status group: `cfsctl kv set` on ours is read through the original's IPC
  under our node's name and the other way round (delete, 32 KiB values,
  tasklist too); RRD data both ways; cluster-log entries (long ones,
  UTF-8, other priority and user) both ways with all fields equal; an
  entry made on an isolated original is merged into ours when it rejoins;
  two wrapped rings merge into the same log on every node;
* a partition with ours in the minority, then with an original in it:
  writes refused there, the majority writes, everything converges;
* a stale node of ours applies what the originals removed and renamed,
  and an empty one catches up from them while an original writes on;
* a node changes its daemon and keeps its config.db: node3 original ->
  ours, then node2 ours -> original; all three restarted at once.

Cluster B: node1 ours, node2 and node3 original (ours is the lowest node,
so it leads ties, decides lock expiry and starts the checksum rounds):

* ours asks for a checksum round every 2 s (--verify-interval): the
  originals compare our checksum with theirs and report success;
* a lock held by an original stays while it is renewed; once expired it
  is removed on every node when another original asks (ours sends the
  UNLOCK);
* an original with an empty database catches up from ours while ours
  writes on, and then a stale original applies what ours removed and
  renamed while the other original writes on; keys set meanwhile reach
  both.

Cluster C (if libfaketime is installed): node1 original, its clock 600
times faster, node2 ours: the original's hourly checksum rounds come every
6 s, and ours answers them.

Needs root, corosync, unshare, nsenter, nft; skipped otherwise.
"""

import glob
import json
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmxcfs_cluster as pc  # noqa: E402
import cluster  # noqa: E402
from cluster import Cluster, wait_for  # noqa: E402

BOUND = 60
LOCK_TIMEOUT = 3      # ours; the original's is fixed at 120 s
EXTRA = ["--lock-timeout", str(LOCK_TIMEOUT), "--rejoin-delay", "1"]
VERIFY = 2            # seconds between our checksum rounds in cluster B (the original: 1 h)

state = {}
STEPS, step = cluster.steps()


def start_cluster(kinds, extra=()):
    """A cluster whose node i runs kinds[i] ("orig" or "ours")."""
    c = Cluster(len(kinds), wait=False)
    c.wait_quorate(c.nodes, BOUND)
    c.kinds = {n.name: kind for n, kind in zip(c.nodes, kinds)}
    c.extra = list(extra)
    for n in c.nodes:
        restart(c, n)
    pc.wait_serving(c.nodes, BOUND)
    pc.wait_converged(c.nodes, BOUND)
    return c


def restart(c, node):
    if c.kinds[node.name] == "orig":
        return pc.start_original(node)
    return pc.start(node, EXTRA + c.extra)


class writer:
    """For the length of a with block, node writes files <prefix>-<n> in
    batches of 10, one after another (at most BOUND seconds); .writes
    and .results hold every operation and its result."""

    def __init__(self, node, prefix="during"):
        self.node, self.prefix = node, prefix
        self.writes, self.results, self.error = [], [], None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        deadline = time.monotonic() + BOUND
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                n = len(self.writes)
                batch = [["write", "%s-%04d" % (self.prefix, i), "d%d" % i]
                         for i in range(n, n + 10)]
                self.results += pc.ops(self.node, batch)
                self.writes += batch
        except Exception as e:       # raised in __exit__
            self.error = e

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: self.writes or self.error, BOUND, "the first writes")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error
        return False

    def check(self, node):
        """Every write succeeded and node reads them all."""
        assert self.results == [{"ok": len(w[2])} for w in self.writes], self.results
        got = pc.ops(node, [["read", w[1]] for w in self.writes])
        assert got == [{"ok": w[2]} for w in self.writes], "%s misses writes" % node.name


def log_count(node, text):
    """How many lines of the node's daemon log contain text."""
    with open(os.path.join(node.log_dir, "pmxcfs.log"), errors="replace") as f:
        return sum(1 for line in f if text in line)


def label(c, node):
    return "%s (%s)" % (node.name, c.kinds[node.name])


def guest_ids(node):
    return sorted(json.loads(pc.read(node, ".vmlist")).get("ids", {}).items())


def trees_equal(c):
    """Every node shows the same tree through its mount: names, modes,
    owners, sizes and mtimes (the symlinks to the node's own directory
    differ by design and are left out)."""
    trees = {}
    for n in c.nodes:
        t = pc.op(n, "tree", "")["ok"]
        trees[label(c, n)] = {k: v for k, v in t.items()
                              if k not in ("local", "qemu-server", "lxc", "openvz")}
    first = list(trees.values())[0]
    for k, t in trees.items():
        if t != first:
            diff = [(p, t.get(p), first.get(p)) for p in sorted(set(t) | set(first))
                    if t.get(p) != first.get(p)][:20]
            raise AssertionError("the tree of %s differs from %s's: %s" % (
                k, list(trees)[0], diff))
    return len(first)


def log_entries(node):
    """Every cluster-log entry (all its fields, sorted keys), newest first."""
    d = pc.clusterlog(node)
    return None if d is None else [sorted(e.items()) for e in d]


# --- cluster A: original, ours, original ------------------------------------------

@step()
def a_serving():
    t = time.monotonic()
    state["a"] = start_cluster(["orig", "ours", "orig"])
    return "serving and converged after %.1fs" % (time.monotonic() - t)


@step(needs=("a",))
def a_members_online_with_addresses():
    c = state["a"]
    want = {n.name: (1, n.addr) for n in c.nodes}
    for n in c.nodes:
        wait_for(lambda: pc.online(n) == want, BOUND, "%s shows %s" % (label(c, n), want),
                 interval=0.2)
        m = pc.members(n)
        assert m["nodename"] == n.name, m
        assert m["cluster"]["name"] == c.prefix and m["cluster"]["quorate"] == 1, m
        ids = {k: v["id"] for k, v in m["nodelist"].items()}
        assert ids == {x.name: x.nodeid for x in c.nodes}, (label(c, n), ids)
    return "all online with addresses and ids on all three"


@step(needs=("a",))
def a_writes_everywhere():
    c = state["a"]
    for i, w in enumerate(c.nodes):
        small = "from-%s.cfg" % w.name
        big = "big-%s.raw" % w.name
        files = {small: "written on %s\n" % w.name * (i + 1),
                 big: "".join("%s line %06d\n" % (w.name, j) for j in range(300 * 1024 // 18)),
                 "empty-%s" % w.name: "",
                 "name with spaces and \u00fcml\u00e4uts %s.txt" % w.name: w.name}
        for path, text in files.items():
            pc.write_ok(w, path, text)
        for n in c.nodes:
            for path, text in files.items():
                wait_for(lambda: pc.read(n, path) == text, BOUND,
                         "%s of %s on %s" % (path, label(c, w), label(c, n)), interval=0.1)
        for path in files:
            stats = {n.name: pc.op(n, "stat", path)["ok"] for n in c.nodes}
            assert len(set(map(tuple, stats.values()))) == 1, "%s: size/mtime differ: %s" % (
                path, stats)
    o1, ours, o3 = c.nodes
    assert pc.ops(o1, [["mkdir", "dir"], ["write", "dir/a", "A"]]) == [{"ok": None},
                                                                       {"ok": 1}]
    wait_for(lambda: pc.op(ours, "exists", "dir/a") == {"ok": True}, BOUND, "dir/a on ours")
    assert pc.op(ours, "unlink", "from-node1.cfg") == {"ok": None}
    assert pc.op(ours, "rename", "dir/a", "dir/b") == {"ok": None}
    wait_for(lambda: pc.op(o3, "exists", "dir/b") == {"ok": True}, BOUND, "dir/b on node3")
    assert pc.op(o3, "rename", "dir/b", "dir/c") == {"ok": None}
    for n in c.nodes:
        wait_for(lambda: pc.ops(n, [["exists", "from-node1.cfg"], ["read", "dir/c"],
                                    ["exists", "dir/b"]]) ==
                 [{"ok": False}, {"ok": "A"}, {"ok": False}], BOUND,
                 "unlink and renames on " + label(c, n))
    secs, s = pc.wait_converged(c.nodes, BOUND)
    shown = trees_equal(c)
    return "content, size and mtime equal; databases equal (version %d, %d entries); the " \
        "trees shown equal (%d paths)" % (s["version"], s["entries"], shown)


@step(needs=("a",))
def a_truncate_utime_rename_limits():
    c = state["a"]
    o1, ours, o3 = c.nodes
    mib = 1024 * 1024
    for w in (o1, ours):
        p = "ops-%s" % w.name
        big = ("%s " % w.name) * (mib // 6) + "x" * (mib % 6)
        assert len(big) == mib
        res = pc.ops(w, [["write", p + "-a", "0123456789" * 10], ["truncate", p + "-a", 15],
                         ["write", p + "-b", "short"], ["truncate", p + "-b", 12],
                         ["write", p + "-c", "c"], ["utime", p + "-c", 1234567890],
                         ["write", p + "-d", "d"], ["write", p + "-e", "e"],
                         ["rename", p + "-d", p + "-e"],
                         ["write", p + "-mib", big], ["write", p + "-over", big + "y"]])
        assert res[:10] == [{"ok": 100}, {"ok": None}, {"ok": 5}, {"ok": None}, {"ok": 1},
                            {"ok": None}, {"ok": 1}, {"ok": 1}, {"ok": None}, {"ok": mib}], (
                                label(c, w), res)
        assert "errno" in res[10], "%s: a file over 1 MiB: %s" % (label(c, w), res[10])
        want = [{"ok": "0123456789" + "01234"}, {"ok": "short" + "\0" * 7},
                {"ok": [1, 1234567890]}, {"ok": False}, {"ok": "d"}, {"ok": big}]
        batch = [["read", p + "-a"], ["read", p + "-b"], ["stat", p + "-c"],
                 ["exists", p + "-d"], ["read", p + "-e"], ["read", p + "-mib"]]
        for n in c.nodes:
            wait_for(lambda: pc.ops(n, batch) == want, BOUND,
                     "the operations of %s on %s" % (label(c, w), label(c, n)), interval=0.2)
        stats = {label(c, n): pc.ops(n, [["stat", p + x] for x in ("-a", "-b", "-e", "-mib")])
                 for n in c.nodes}
        assert len({json.dumps(x) for x in stats.values()}) == 1, stats
        # what the refused file holds afterwards (every node the same)
        sizes = {pc.op(n, "stat", p + "-over")["ok"][0] for n in c.nodes}
        assert len(sizes) == 1, sizes
        state.setdefault("over", {})[c.kinds[w.name]] = (res[10]["errno"], sizes.pop())
    pc.wait_converged(c.nodes, BOUND)
    over = state["over"]
    assert over["orig"][0] == over["ours"][0], "a file over 1 MiB: errno %s on the original, " \
        "%s on ours" % (over["orig"][0], over["ours"][0])
    return ("truncate, utime, rename over a file, 1 MiB files both ways; over 1 MiB: errno %d, "
            "%d bytes kept by the original, %d by ours" % (over["ours"][0], over["orig"][1],
                                                           over["ours"][1]))


@step(needs=("a",))
def a_corosync_conf_both_ways():
    c = state["a"]
    o1, ours, o3 = c.nodes
    # a plain write, then the temporary file and rename that PVE uses
    for version, w, how in ((2, ours, "write"), (3, o1, "write"), (4, o3, "atomic"),
                            (5, ours, "atomic")):
        old = pc.read(w, "corosync.conf")
        new = re.sub(r"config_version: *\d+", "config_version: %d" % version, old)
        assert new != old, old
        assert pc.op(w, how, "corosync.conf", new) == {"ok": len(new)}
        for n in c.nodes:
            host = os.path.join(n.dir, "etc-corosync", "corosync.conf")
            wait_for(lambda: open(host).read() == new, BOUND,
                     "version %d of %s in the host file of %s" % (version, label(c, w),
                                                                 label(c, n)), interval=0.2)
        # the writer's node asks corosync to reload; the cluster stays whole
        wait_for(lambda: "config_version (u64) = %d" % version in
                 w.run(["corosync-cmapctl", "totem.config_version"]).stdout, BOUND,
                 "corosync of %s reloaded to version %d" % (label(c, w), version))
        c.wait_quorate(c.nodes, BOUND)
        for n in c.nodes:
            wait_for(lambda: (pc.members(n) or {}).get("cluster", {}).get("version") == version,
                     BOUND, "cluster version %d in .members of %s" % (version, label(c, n)),
                     interval=0.2)
    pc.wait_converged(c.nodes, BOUND)
    return ("written and renamed onto by ours and by originals: every host file, every "
            "corosync and .members follow")


@step(needs=("a",))
def a_concurrent_creates_one_winner():
    c = state["a"]
    orig, ours = c.nodes[0], c.nodes[1]
    pc.ops(orig, [["mkdir", "race"]])
    wait_for(lambda: pc.op(ours, "exists", "race") == {"ok": True}, BOUND, "race/ on ours")
    paths = ["race/f%03d" % i for i in range(60)]
    ra, rb = pc.race([orig, ours], [[["create", p, "o"] for p in paths],
                                    [["create", p, "u"] for p in paths]])
    wins = {"orig": 0, "ours": 0}
    for p, x, y in zip(paths, ra, rb):
        assert ("ok" in x) != ("ok" in y), "%s: %s on the original, %s on ours" % (p, x, y)
        loser = y if "ok" in x else x
        assert loser == {"errno": 17}, "%s: the loser got %s, not EEXIST" % (p, loser)
        wins["orig" if "ok" in x else "ours"] += 1
    for n in (orig, ours):
        pc.ops(n, [["mkdir", "nodes"], ["mkdir", "nodes/" + n.name],
                   ["mkdir", "nodes/%s/qemu-server" % n.name]])
    for n in (orig, ours):
        wait_for(lambda: all(pc.op(n, "exists", "nodes/%s/qemu-server" % x.name) ==
                             {"ok": True} for x in (orig, ours)), BOUND, "guest dirs")
    vmids = range(1000, 1040)
    ra, rb = pc.race([orig, ours], [[["create", "nodes/%s/qemu-server/%d.conf" % (n.name, v),
                                      "x"] for v in vmids] for n in (orig, ours)])
    for v, x, y in zip(vmids, ra, rb):
        assert ("ok" in x) != ("ok" in y), "VMID %d: %s on the original, %s on ours" % (v, x, y)
    pc.wait_converged(c.nodes, BOUND)
    lists = {label(c, n): guest_ids(n) for n in c.nodes}
    assert len({json.dumps(x) for x in lists.values()}) == 1, "guest lists differ: %s" % lists
    assert len(lists[label(c, orig)]) == len(vmids)
    # a guest moved to the other node's directory (a migration), both ways
    for mover, vmid in ((ours, 1000), (orig, 1001)):
        have = json.loads(pc.read(mover, ".vmlist"))["ids"][str(vmid)]["node"]
        other = ours if have == orig.name else orig
        r = pc.op(mover, "rename", "nodes/%s/qemu-server/%d.conf" % (have, vmid),
                  "nodes/%s/qemu-server/%d.conf" % (other.name, vmid))
        assert r == {"ok": None}, (label(c, mover), vmid, r)
        for n in c.nodes:
            wait_for(lambda: json.loads(pc.read(n, ".vmlist"))["ids"].get(str(vmid), {}).get(
                "node") == other.name, BOUND, "VM %d on %s in the list of %s" % (
                    vmid, other.name, label(c, n)), interval=0.1)
    pc.wait_converged(c.nodes, BOUND)
    lists = {label(c, n): guest_ids(n) for n in c.nodes}
    assert len({json.dumps(x) for x in lists.values()}) == 1, "guest lists differ: %s" % lists
    # the contents: whoever won a path, every node reads the same
    contents = [pc.ops(n, [["read", p] for p in paths]) for n in c.nodes]
    assert contents[0] == contents[1] == contents[2]
    return ("paths won: %d by the original, %d by ours; every VMID once; lists agree, also "
            "after moves both ways" % (wins["orig"], wins["ours"]))


@step(needs=("a",))
def a_pipelined_writers_on_both_kinds():
    c = state["a"]
    o1, ours, o3 = c.nodes
    # 4 writers on an original and 4 on ours at once, atomic writes (a
    # temporary file, then rename) as PVE does them
    writers = [o1] * 4 + [ours] * 4
    batches = [[["atomic", "pipe-%d-%d" % (w, i), "%s.%d.%d" % (n.name, w, i)]
                for i in range(20)] for w, n in enumerate(writers)]
    res = pc.race(writers, batches)
    for w, (n, r) in enumerate(zip(writers, res)):
        want = [{"ok": len("%s.%d.%d" % (n.name, w, i))} for i in range(20)]
        assert r == want, (label(c, n), w, r)
    pc.wait_converged(c.nodes, BOUND)
    for n in c.nodes:
        names = pc.op(n, "listdir", "")["ok"]
        assert sum(1 for x in names if x.startswith("pipe-")) == 160, label(c, n)
        assert not any(".tmp." in x for x in names), "temporary files left on " + label(c, n)
    got = [pc.ops(n, [["read", "pipe-%d-%d" % (w, i)] for w in range(8) for i in range(20)])
           for n in c.nodes]
    assert got[0] == got[1] == got[2]
    return "160 atomic writes from 8 writers on two kinds, on every node"


@step(needs=("a",))
def a_locks_across_kinds():
    c = state["a"]
    o1, ours, o3 = c.nodes
    pc.ops(o1, [["mkdir", "priv"], ["mkdir", "priv/lock"]])
    for n in c.nodes:
        wait_for(lambda: pc.op(n, "exists", "priv/lock") == {"ok": True}, BOUND, "priv/lock")
    for holder, others in ((ours, (o1, o3)), (o3, (o1, ours))):
        lock = "priv/lock/held-by-" + holder.name
        assert pc.op(holder, "mkdir", lock) == {"ok": None}
        for n in others:
            assert pc.op(n, "mkdir", lock) == {"errno": 17}, label(c, n)
        # not expired (the lowest node, an original, decides: 120 s)
        for n in others:
            assert pc.op(n, "utime", lock, 0) == {"errno": 13}, label(c, n)
        for n in c.nodes:
            assert pc.op(n, "exists", lock) == {"ok": True}, label(c, n)
        assert pc.op(holder, "rmdir", lock) == {"ok": None}
        for n in c.nodes:
            wait_for(lambda: pc.op(n, "exists", lock) == {"ok": False}, BOUND,
                     "%s released on %s" % (lock, label(c, n)))
    pc.wait_converged(c.nodes, BOUND)
    return "held by ours and by an original: EEXIST and EACCES on the others; released"


@step(needs=("a",))
def a_expired_lock_released_by_original():
    """The lowest node, an original, removes an expired lock when ours
    asks; its expiry is fixed at 120 s, so this runs only on request."""
    if not os.environ.get("PMXCFS_MIXED_SLOW"):
        return "SKIP the original's locks expire after 120 s: PMXCFS_MIXED_SLOW=1 waits"
    c = state["a"]
    o1, ours, o3 = c.nodes
    lock = "priv/lock/slow"
    pc.ops(o3, [["mkdir", "priv"], ["mkdir", "priv/lock"]])     # if not there yet
    assert pc.op(o3, "mkdir", lock) == {"ok": None}
    wait_for(lambda: pc.op(ours, "exists", lock) == {"ok": True}, BOUND, "the lock on ours")
    t = time.monotonic()

    def released():
        r = pc.op(ours, "utime", lock, 0)
        assert r in ({"errno": 13}, {"errno": 2}), r
        return all(pc.op(n, "exists", lock) == {"ok": False} for n in c.nodes)
    wait_for(released, 120 + BOUND, "the expired lock removed on every node", interval=2)
    took = time.monotonic() - t
    assert took > 118, "released after %.1fs, before it expired" % took
    pc.wait_converged(c.nodes, BOUND)
    return "asked by ours, removed everywhere %.1fs after it was taken" % took


@step(needs=("a",))
def a_status_keys_both_ways():
    c = state["a"]
    o1, ours, o3 = c.nodes
    for setter in (ours, o1):
        key, value = "kv/mixed-" + setter.name, "set on " + label(c, setter)
        assert pc.cfsctl(setter, "kv", "set", key, value)[0] == 0
        for n in c.nodes:
            wait_for(lambda: pc.kv_get(n, key, setter.name) == value, BOUND,
                     "%s of %s on %s" % (key, label(c, setter), label(c, n)), interval=0.1)
        assert pc.cfsctl(setter, "kv", "set", key)[0] == 0      # delete
        for n in c.nodes:
            wait_for(lambda: pc.kv_get(n, key, setter.name) is None, BOUND,
                     "%s deleted on %s" % (key, label(c, n)), interval=0.1)
    # the largest value (32 KiB, its NUL included: cfsctl stores one, as
    # PVE does) and a tasklist, both ways
    for setter in (ours, o3):
        big = ("%s " % setter.name) * (32767 // 6) + "x" * (32767 % 6)
        assert pc.cfsctl(setter, "kv", "set", "kv/big", big)[0] == 0
        assert pc.cfsctl(setter, "kv", "set", "tasklist", '[{"upid":"%s"}]' % setter.name)[0] == 0
        for n in c.nodes:
            wait_for(lambda: pc.kv_get(n, "kv/big", setter.name) == big, BOUND,
                     "32 KiB of %s on %s" % (label(c, setter), label(c, n)), interval=0.1)
            wait_for(lambda: pc.kv_get(n, "tasklist", setter.name) == '[{"upid":"%s"}]' %
                     setter.name, BOUND, "tasklist of %s on %s" % (label(c, setter), label(c, n)),
                     interval=0.1)
    now = int(time.time())
    lines = []
    for setter in (ours, o3):
        # uptime, sublevel, time, then the 12 values of the pve2 node format
        line = "pve2-node/%s:1000:0:%d:0.5:2:0.1:0.01:1000:500:0:0:100:50:10:20" % (
            setter.name, now)
        key, value = line.split(":", 1)
        assert pc.cfsctl(setter, "kv", "set", "rrd/" + key, value)[0] == 0
        lines.append(line)
    for n in c.nodes:
        for line in lines:
            wait_for(lambda: line in (pc.cfsctl(n, "rrd")[1] or ""), BOUND,
                     "%s in the rrd dump of %s" % (line, label(c, n)), interval=0.1)
    dumps = {label(c, n): sorted(x for x in pc.cfsctl(n, "rrd")[1].splitlines()
                                 if x in lines) for n in c.nodes}
    assert len({json.dumps(x) for x in dumps.values()}) == 1, dumps
    return "kv set/delete, 32 KiB values, tasklist and rrd data both ways"


@step(needs=("a",))
def a_cluster_log_both_ways():
    c = state["a"]
    o1, ours, o3 = c.nodes
    msgs, odd_msgs = [], []
    for setter in (ours, o1):
        msg = "entry from %s at %d" % (label(c, setter), time.time())
        assert pc.cfsctl(setter, "log", "add", "-t", "mixed", msg)[0] == 0
        msgs.append(msg)
        # a long one, one with UTF-8 and a tab, another priority and user
        long = "long entry of %s: " % setter.name + "0123456789" * 60
        odd = "odd entry of %s: \u00e4\u00f6\u00fc \u20ac\ttab" % setter.name
        assert pc.cfsctl(setter, "log", "add", long)[0] == 0
        assert pc.cfsctl(setter, "log", "add", "-p", "3", "--user", "mixed@pve", "-t",
                         "odd-tag", odd)[0] == 0
        odd_msgs.append((setter, odd))
    for n in c.nodes:
        for msg in msgs:
            wait_for(lambda: pc.log_has(n, msg), BOUND, "%r on %s" % (msg, label(c, n)),
                     interval=0.1)
    # the long and odd ones: the same entries everywhere (what the sender
    # sanitised is what every node keeps: a tab is "#009")
    for setter, odd in odd_msgs:
        for n in c.nodes:
            wait_for(lambda: [e["msg"] for e in pc.clusterlog(n) if e["node"] == setter.name
                              and e["tag"] == "odd-tag"] == [odd.replace("\t", "#009")], BOUND,
                     "the odd entry of %s on %s" % (label(c, setter), label(c, n)),
                     interval=0.1)
    entries = {}

    def equal():
        entries.update({label(c, n): log_entries(n) for n in c.nodes})
        return len({json.dumps(x) for x in entries.values()}) == 1
    try:
        wait_for(equal, BOUND, "equal cluster logs", interval=0.2)
    except cluster.Timeout:
        raise AssertionError("cluster logs differ: %s" % json.dumps(entries, indent=1)) from None
    return "entries of ours and of an original on all three, equal"


@step(needs=("a",))
def a_isolated_original_log_merges():
    c = state["a"]
    o1, ours, o3 = c.nodes
    c.isolate(o3)
    c.wait_inquorate([o3], BOUND)
    want = {o1.name: (1, o1.addr), ours.name: (1, ours.addr), o3.name: (0, o3.addr)}
    wait_for(lambda: pc.online(ours) == want, BOUND, "node3 offline on ours", interval=0.2)
    away = "logged on %s while isolated" % label(c, o3)
    here = "logged on %s while node3 was away" % label(c, ours)
    assert pc.cfsctl(o3, "log", "add", away)[0] == 0
    assert pc.cfsctl(ours, "log", "add", here)[0] == 0
    assert not pc.log_has(ours, away) and not pc.log_has(o3, here)
    c.heal()
    c.wait_quorate(c.nodes, BOUND)
    t = time.monotonic()
    for n in c.nodes:
        for msg in (away, here):
            wait_for(lambda: pc.log_has(n, msg), BOUND, "%r on %s" % (msg, label(c, n)),
                     interval=0.1)
    took = time.monotonic() - t
    logs = {}

    def equal():
        logs.update({label(c, n): log_entries(n) for n in c.nodes})
        return len({json.dumps(x) for x in logs.values()}) == 1
    try:
        wait_for(equal, BOUND, "equal cluster logs", interval=0.2)
    except cluster.Timeout:
        raise AssertionError("cluster logs differ: %s" % json.dumps(logs, indent=1)) from None
    return "merged both ways %.1fs after quorum; %d entries, equal on all" % (
        took, len(logs[label(c, ours)]))


@step(needs=("a",))
def a_full_logs_merge_alike():
    """Rings that have wrapped (over 128 KiB of entries on each side of a
    partition), merged when it heals: every node keeps the same entries."""
    c = state["a"]
    o1, ours, o3 = c.nodes
    c.isolate(o3)
    c.wait_inquorate([o3], BOUND)
    wait_for(lambda: pc.online(ours)[o3.name][0] == 0, BOUND, "node3 offline on ours",
             interval=0.2)
    script = 'for i in $(seq %d); do %s --mount %s log add -t fill "%s $i %s" || exit 1; done'
    pad = "p" * 3000     # about 3 KiB an entry: 60 more than fill a ring
    for n in (ours, o3):
        r = n.run(["sh", "-c", script % (60, pc.CFSCTL, n.mount_dir, "fill of " + n.name, pad)],
                  timeout=300)
        assert r.returncode == 0, (label(c, n), r.stderr)
    c.heal()
    c.wait_quorate(c.nodes, BOUND)
    rings = {}

    def equal():
        for n in c.nodes:
            rc, out = pc.cfsctl(n, "--json", "log", "-n", "5000")
            rings[label(c, n)] = json.loads(out)["data"] if rc == 0 else None
        return None not in rings.values() and len({json.dumps(x) for x in rings.values()}) == 1
    try:
        wait_for(equal, BOUND, "the same merged log on every node", interval=0.5)
    except cluster.Timeout:
        for k, v in rings.items():
            print("# %s: %s entries, newest %s, oldest %s" % (
                k, len(v or []), (v or [None])[0], (v or [None])[-1]))
        raise AssertionError("the merged logs differ") from None
    entries = rings[label(c, ours)]
    kinds = {e["node"] for e in entries if e["tag"] == "fill"}
    assert kinds == {ours.name, o3.name}, kinds
    return "%d entries after the merge, equal on all three" % len(entries)


@step(needs=("a",))
def a_partitions_converge():
    c = state["a"]
    o1, ours, o3 = c.nodes
    notes = []
    for minority in (ours, o1):
        majority = [n for n in c.nodes if n is not minority]
        c.partition([[n.name for n in majority], [minority.name]])
        wait_for(lambda: (pc.members(minority) or {}).get("cluster", {}).get("quorate") == 0,
                 BOUND, "%s inquorate" % label(c, minority), interval=0.2)
        assert pc.op(minority, "write", "minority-" + minority.name, "m") == {"errno": 13}
        acked = []
        for i in range(10):
            p = "majority-%s-%d" % (minority.name, i)
            w = majority[i % 2]
            wait_for(lambda: "ok" in pc.op(w, "write", p, str(i)), BOUND,
                     "write %s on %s" % (p, label(c, w)), interval=0.2)
            acked.append(p)
        c.heal()
        t = time.monotonic()
        wait_for(lambda: pc.serving(minority, [n.name for n in c.nodes]), BOUND,
                 "%s back" % label(c, minority), interval=0.2)
        pc.wait_converged(c.nodes, BOUND)
        for n in c.nodes:
            got = pc.ops(n, [["read", p] for p in acked] +
                         [["exists", "minority-" + minority.name]])
            assert got == [{"ok": str(i)} for i in range(10)] + [{"ok": False}], (
                label(c, n), got)
        notes.append("%s in the minority: converged %.1fs after healing" % (
            c.kinds[minority.name], time.monotonic() - t))
    return "; ".join(notes)


@step(needs=("a",))
def a_empty_ours_catches_up_from_originals():
    c = state["a"]
    o1, ours, o3 = c.nodes
    ours.stop_daemon()
    want = {o1.name: (1, o1.addr), ours.name: (0, ours.addr), o3.name: (1, o3.addr)}
    for n in (o1, o3):
        wait_for(lambda: pc.online(n) == want, BOUND, "ours offline on " + label(c, n),
                 interval=0.2)
    # a stale node of ours: what the originals remove and rename meanwhile
    # must go on ours too
    gone = ["pipe-0-%d" % i for i in range(10)]
    res = pc.ops(o1, [["unlink", p] for p in gone] + [["unlink", "dir/c"], ["rmdir", "dir"],
                                                       ["rename", "race/f000", "race/moved"]])
    assert res == [{"ok": None}] * (len(gone) + 3), res
    restart(c, ours)
    pc.wait_serving(c.nodes, BOUND)
    pc.wait_converged(c.nodes, BOUND)
    got = pc.ops(ours, [["exists", p] for p in gone + ["dir", "race/f000", "race/moved"]])
    assert got == [{"ok": False}] * (len(gone) + 2) + [{"ok": True}], got
    # then an empty one
    ours.stop_daemon()
    ours.wipe_data()
    pc.ops(o1, [["write", "while-ours-away-%d" % i, "w%d" % i] for i in range(20)])
    assert pc.cfsctl(o3, "kv", "set", "kv/while-away", "set on node3")[0] == 0
    t = time.monotonic()
    with writer(o1) as during:       # an original writes on while ours joins
        restart(c, ours)
        pc.wait_serving(c.nodes, BOUND)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    took = time.monotonic() - t
    during.check(ours)
    assert pc.read(ours, "while-ours-away-19") == "w19"
    assert pc.read(ours, "big-node1.raw") == pc.read(o1, "big-node1.raw")
    wait_for(lambda: pc.kv_get(ours, "kv/while-away", o3.name) == "set on node3", BOUND,
             "the key node3 set while ours was away, on ours", interval=0.1)
    shown = trees_equal(c)
    return "equal (version %d, %d entries, %d paths shown alike) %.1fs after the start; %d " \
        "writes of an original meanwhile" % (s["version"], s["entries"], shown, took,
                                             len(during.writes))


@step(needs=("a",))
def a_switch_implementations():
    """A node changes its daemon and keeps its database: node3 goes from
    the original to ours, then node2 from ours to the original (what
    replacing the original on a running cluster does)."""
    c = state["a"]
    notes = []
    for node, kind in ((c.nodes[2], "ours"), (c.nodes[1], "orig")):
        node.stop_daemon()
        pc.write_ok(c.nodes[0], "before-switch-of-" + node.name, "b")
        c.kinds[node.name] = kind
        t = time.monotonic()
        restart(c, node)
        pc.wait_serving(c.nodes, BOUND)
        secs, s = pc.wait_converged(c.nodes, BOUND)
        assert pc.read(node, "before-switch-of-" + node.name) == "b"
        pc.write_ok(node, "after-switch-of-" + node.name, label(c, node))
        for n in c.nodes:
            wait_for(lambda: pc.read(n, "after-switch-of-" + node.name) == label(c, node),
                     BOUND, "the write of %s on %s" % (label(c, node), label(c, n)))
        notes.append("%s equal %.1fs after it started" % (label(c, node), time.monotonic() - t))
    pc.wait_converged(c.nodes, BOUND)
    trees_equal(c)
    return "; ".join(notes)


@step(needs=("a",))
def a_restart_all_at_once():
    c = state["a"]
    for n in c.nodes:
        n.stop_daemon()
    t = time.monotonic()
    for n in c.nodes:
        restart(c, n)
    pc.wait_serving(c.nodes, BOUND)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    trees_equal(c)
    return "all three restarted at once, serving and equal after %.1fs" % (time.monotonic() - t)


@step()
def a_close():
    """Cluster A goes (also after a failed step), before B starts."""
    c = state.get("a")
    if c is None:
        return "SKIP cluster A was not started"
    pc.stop_all(c)
    state["reports"] = pc.sanitizer_reports(c)
    c.failed = c.failed or bool(os.environ.get("CLUSTER_KEEP_LOGS"))
    c.close()


# --- cluster B: ours, original, original -----------------------------------------

@step()
def b_serving():
    t = time.monotonic()
    state["b"] = start_cluster(["ours", "orig", "orig"], ["--verify-interval", str(VERIFY)])
    return "serving and converged after %.1fs" % (time.monotonic() - t)


@step(needs=("b",))
def b_verify_rounds_of_ours():
    """Ours, the lowest node, asks for a checksum round every VERIFY
    seconds; every node compares the requester's checksum with its own (a
    mismatch would make it leave and resync)."""
    c = state["b"]
    ours, o2, o3 = c.nodes
    pc.write_ok(o2, "verified", "v")
    pc.wait_converged(c.nodes, BOUND)
    before = {n.name: log_count(n, "data verification successful") for n in (o2, o3)}
    for n in (o2, o3):
        wait_for(lambda: log_count(n, "data verification successful") >= before[n.name] + 2,
                 BOUND, "two verification rounds passed on " + label(c, n), interval=0.5)
    for n in c.nodes:
        assert log_count(n, "wrong checksum") == 0, label(c, n)
    return "two rounds of ours passed on both originals; no wrong checksum"


@step(needs=("b",))
def b_expired_lock_released_by_ours():
    c = state["b"]
    ours, o2, o3 = c.nodes
    pc.ops(o2, [["mkdir", "priv"], ["mkdir", "priv/lock"]])
    for n in c.nodes:
        wait_for(lambda: pc.op(n, "exists", "priv/lock") == {"ok": True}, BOUND, "priv/lock")
    lock = "priv/lock/vm-100"
    assert pc.op(o2, "mkdir", lock) == {"ok": None}
    for n in c.nodes:
        wait_for(lambda: pc.op(n, "exists", lock) == {"ok": True}, BOUND,
                 "the lock on " + label(c, n))
    assert pc.op(ours, "mkdir", lock) == {"errno": 17}
    # renewed by its holder (utime to now) while another node asks: it stays
    t = time.monotonic()
    renewals = 0
    while time.monotonic() - t < 2 * LOCK_TIMEOUT:
        assert pc.op(o2, "utime", lock, int(time.time())) == {"ok": None}
        renewals += 1
        assert pc.op(o3, "utime", lock, 0) == {"errno": 13}
        wait_for(lambda: pc.op(o3, "stat", lock)["ok"] == pc.op(o2, "stat", lock)["ok"],
                 BOUND, "the renewal on node3", interval=0.1)
        for n in c.nodes:
            assert pc.op(n, "exists", lock) == {"ok": True}, "renewed lock gone on " + \
                label(c, n)
    t = time.monotonic()

    def released():
        pc.op(o3, "utime", lock, 0)
        return all(pc.op(n, "exists", lock) == {"ok": False} for n in c.nodes)
    wait_for(released, BOUND, "the expired lock removed on every node", interval=0.5)
    took = time.monotonic() - t
    assert took >= LOCK_TIMEOUT - 1.5, "released after %.1fs, before it expired" % took
    ra, rb = pc.race([o2, ours], [[["mkdir", lock]]] * 2)
    assert ("ok" in ra[0]) != ("ok" in rb[0]), (ra, rb)
    pc.wait_converged(c.nodes, BOUND)
    return ("kept through %d renewals; then asked by an original, removed everywhere %.1fs "
            "after the first request" % (renewals, took))


@step(needs=("b",))
def b_empty_original_catches_up_from_ours():
    """An empty original takes the tree from ours while ours writes on; then
    a stale original applies what ours removed and renamed while it was
    away.  Ours always writes beside one original: a daemon alone beside
    running corosyncs takes no writes (docs/compatibility.md)."""
    c = state["b"]
    ours, o2, o3 = c.nodes
    assert pc.ops(ours, [["write", "remove-later", "r"], ["write", "move-later", "m"],
                         ["mkdir", "rmdir-later"]]) == [{"ok": 1}, {"ok": 1}, {"ok": None}]
    pc.wait_converged(c.nodes, BOUND)
    o3.stop_daemon()
    wait_for(lambda: pc.serving(ours, [ours.name, o2.name]), BOUND, "ours beside node2",
             interval=0.2)
    res = pc.ops(ours, [["write", "only-ours-%d" % i, "v%d" % i] for i in range(50)])
    assert res == [{"ok": len("v%d" % i)} for i in range(50)], res
    big = "".join("ours %010d\n" % j for j in range(1024 * 1024 // 16))
    res = pc.ops(ours, [["write", "only-ours-big", big], ["write", "only-ours-empty", ""],
                        ["mkdir", "only-ours-dir"], ["write", "only-ours-dir/f", "f"]])
    assert res == [{"ok": len(big)}, {"ok": 0}, {"ok": None}, {"ok": 1}], res
    assert pc.cfsctl(ours, "kv", "set", "kv/while-away", "set on ours")[0] == 0
    o3.wipe_data()
    t = time.monotonic()
    with writer(ours) as during:     # ours writes on while the original joins
        restart(c, o3)
        pc.wait_serving(c.nodes, BOUND, online=[n.name for n in c.nodes])
    pc.wait_converged(c.nodes, BOUND)
    empty = time.monotonic() - t
    assert pc.ops(o3, [["read", "only-ours-49"], ["read", "only-ours-big"],
                       ["read", "only-ours-empty"], ["read", "only-ours-dir/f"]]) == [
        {"ok": "v49"}, {"ok": big}, {"ok": ""}, {"ok": "f"}]
    during.check(o3)
    wait_for(lambda: pc.kv_get(o3, "kv/while-away", ours.name) == "set on ours", BOUND,
             "the key ours set while node3 was away, on node3", interval=0.1)
    # what o2 (stale) holds and ours removes meanwhile
    o2.stop_daemon()
    wait_for(lambda: pc.serving(ours, [ours.name, o3.name]), BOUND, "ours beside node3",
             interval=0.2)
    res = pc.ops(ours, [["unlink", "remove-later"], ["rename", "move-later", "moved"],
                        ["rmdir", "rmdir-later"]])
    assert res == [{"ok": None}] * 3, res
    t = time.monotonic()
    with writer(o3, "during-stale") as during2:    # an original writes on meanwhile
        restart(c, o2)
        pc.wait_serving(c.nodes, BOUND)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    stale = time.monotonic() - t
    during2.check(o2)
    assert pc.read(o2, "only-ours-49") == "v49"
    assert pc.ops(o2, [["exists", p] for p in ("remove-later", "move-later", "rmdir-later",
                                               "moved")]) == [{"ok": False}] * 3 + [{"ok": True}]
    return "empty original equal after %.1fs (%d writes of ours meanwhile), stale original " \
        "after %.1fs (%d writes of an original meanwhile; version %d)" % (
            empty, len(during.writes), stale, len(during2.writes), s["version"])


@step(needs=("b",))
def b_writes_after_catch_up():
    c = state["b"]
    for w in c.nodes:
        path = "after-%s" % w.name
        pc.write_ok(w, path, label(c, w))
        for n in c.nodes:
            wait_for(lambda: pc.read(n, path) == label(c, w), BOUND,
                     "%s on %s" % (path, label(c, n)), interval=0.1)
    secs, s = pc.wait_converged(c.nodes, BOUND)
    return "databases equal (version %d); the trees shown equal (%d paths)" % (
        s["version"], trees_equal(c))


@step()
def c_verify_rounds_of_an_original():
    """An original as the lowest node asks for the checksum rounds, and
    ours answers them.  Its period is fixed at an hour, so its clock runs
    600 times faster (libfaketime; skipped without it): a round every 6 s."""
    fake = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not fake:
        return "SKIP libfaketime is not installed (the original's rounds are hourly)"
    if "b" in state:
        pc.stop_all(state["b"])
        state["reports"] = state.get("reports", []) + pc.sanitizer_reports(state["b"])
        state.pop("b").close()
    c = state["c"] = Cluster(2, wait=False)
    c.wait_quorate(c.nodes, BOUND)
    c.kinds = {c.nodes[0].name: "orig", c.nodes[1].name: "ours"}
    orig, ours = c.nodes
    pc.start_original(orig, env={"LD_PRELOAD": fake[0], "FAKETIME": "+0 x600"})
    pc.start(ours, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    pc.write_ok(ours, "verified", "v")
    pc.wait_converged(c.nodes, BOUND)
    # with the fast clock its loop now and then sleeps past a due round
    # until something arrives (one run in five without this): a status
    # message from ours every half second wakes it

    def rounds_passed():
        pc.cfsctl(ours, "kv", "set", "kv/wake", str(time.monotonic()))
        return all(log_count(n, "data verification successful") >= 2 for n in c.nodes)
    wait_for(rounds_passed, BOUND, "two verification rounds passed on both", interval=0.5)
    for n in c.nodes:
        assert log_count(n, "wrong checksum") == 0, label(c, n)
    # with its clock faked it does not finish its SIGTERM teardown in time
    orig.stop_daemon(sig=signal.SIGKILL)
    return "two rounds of the original passed on ours and on itself"


@step()
def no_sanitizer_reports():
    reports = state.get("reports", [])
    for key in ("b", "c"):
        c = state.get(key)
        if c is not None:
            pc.stop_all(c)
            reports += pc.sanitizer_reports(c)
    assert not reports, "\n".join(reports[:40])


if __name__ == "__main__":
    sys.exit(cluster.run_steps(STEPS, state, pc.original_skip_reason))
