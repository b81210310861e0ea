#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-faults.py: the fault suite.  Our pmxcfs on real corosync clusters,
a write workload on every node, one fault at a time, and a check of what
the clients were told against what the nodes hold afterwards.

Each run of a scenario:

1. starts a writer on every node (workload.py, inside the node): creates,
   overwrites and renames of its own files and takes and releases of its
   own cluster locks (mkdir/rmdir under priv/lock), each recorded with its
   result and CLOCK_MONOTONIC times in a history (JSON lines, kept with the
   logs);
2. injects one fault while they write, holds it until a condition shows
   it took effect (the others went on writing, corosync saw the node go,
   ...), and heals it;
3. stops the writers and checks:
   * nothing acknowledged is lost: the final state of every name on every
     node is one the history allows (the last acknowledged write of it,
     or, after an operation whose result is unknown or an error, either
     outcome); no other name exists;
   * no write is acknowledged in a minority: on a node that corosync
     reported inquorate, no operation started after that and ended before
     the heal succeeded (and at least one was tried);
   * every node's database reaches the same version and checksum (`cfsctl
     verify`, as test-replication), within a bound, and the time from the
     heal is measured;
   * no node's database version ever goes down (sampled all along; a node
     whose database was replaced on purpose starts a new series);
   * every daemon still runs, and a write on each node reaches all.

Scenarios (each FAULTS_REPEATS times, default 1; the node hit rotates):
partitions 2|1 on 3 nodes, 3|2 and 4|1 (one node isolated) on 5, a bridge
(node2 sees node1 and node3, they do not see each other), flapping
partitions, kill -9 of one pmxcfs, of one corosync and of all pmxcfs at
once, SIGSTOP of one pmxcfs and of one corosync past the token timeout,
a cold start of every node, a full disk under one node's database, and a
damaged database on one node.  The table at the end gives, per scenario,
the runs, the writes acknowledged, the writes lost (must be 0) and the
time to converge after the heal.

Environment: FAULTS_REPEATS (runs per scenario), FAULTS_ONLY (a comma
list of scenario names to run), FAULTS_SEED (the writers' and the
flapping's random seed; printed), FAULTS_INTERVAL_MS (pause between a
writer's operations, default 25; doubled on 5 nodes), FAULTS_DEBUG (the
daemons log at debug level).  Needs root, corosync, unshare, nsenter,
nft; skipped otherwise.
"""

import json
import os
import random
import signal
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pmxcfs_cluster as pc  # noqa: E402
import cluster  # noqa: E402
from cluster import Cluster, Timeout, wait_for  # noqa: E402

REPEATS = int(os.environ.get("FAULTS_REPEATS", "1"))
ONLY = [s for s in os.environ.get("FAULTS_ONLY", "").split(",") if s]
SEED = int(os.environ.get("FAULTS_SEED", str(random.randrange(1 << 30))))
INTERVAL_MS = int(os.environ.get("FAULTS_INTERVAL_MS", "25"))
BOUND = 120          # seconds any wait for the cluster may take (a loaded 2-core machine)
EXTRA = ["--rejoin-delay", "1"] + (["-d"] if os.environ.get("FAULTS_DEBUG") else [])
WORKLOAD = os.path.join(HERE, "workload.py")
ABSENT, DIR = None, "<dir>"

state = {}
STEPS, step = cluster.steps()
results = []         # (scenario, acked, lost, convergence seconds) per run
rng = random.Random(SEED)


# --- the clusters ---------------------------------------------------------------

def interval(size):
    """The writers' pause in ms: FAULTS_INTERVAL_MS, doubled on 5 nodes."""
    return INTERVAL_MS * (2 if size >= 5 else 1)


def get_cluster(size):
    """The healthy cluster of this size, made when first needed (the other
    size is closed first: 2 cores do not run both)."""
    key = "c%d" % size
    if key in state:
        return state[key]
    for other in [k for k in ("c3", "c5") if k in state]:
        close_cluster(other)
    # five nodes (five corosyncs, daemons and writers on 2 cores, under a
    # sanitizer too) lost corosync's token again and again while it
    # synchronised after a heal, and once it never became whole in 120 s:
    # a longer token there, and writers half as fast (interval())
    c = Cluster(size, token=2000 if size >= 5 else 1000, wait=False)
    state[key] = c
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:
        pc.start(n, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    wait_for(lambda: pc.ops(c.nodes[0], [["mkdir", "priv"], ["mkdir", "priv/lock"]])[-1]
             in ({"ok": None}, {"errno": 17}), BOUND, "priv/lock", interval=0.2)
    converge(c, time.monotonic())
    return c


def close_cluster(key, failed=False):
    c = state.pop(key)
    pc.stop_all(c)
    state.setdefault("reports", []).extend(pc.sanitizer_reports(c))
    c.failed = c.failed or failed or bool(os.environ.get("CLUSTER_KEEP_LOGS"))
    if c.failed:
        # the databases go with the logs (read inside the node: a tmpfs
        # may be mounted over a data directory there)
        for n in c.nodes:
            n.run("cp %s/config.db %s/config.db 2>/dev/null" % (n.data_dir, n.log_dir))
    c.close()
    if c.keep_dir:
        print("# logs and histories of %s kept in %s" % (c.prefix, c.keep_dir))


def summary(node):
    """The node's database summary, read inside the node (a tmpfs may be
    mounted over its data directory there), or None."""
    r = node.run([pc.CFSCTL, "--json", "verify", os.path.join(node.data_dir, "config.db")],
                 timeout=60)
    if r.returncode != 0:
        return None
    d = json.loads(r.stdout)
    d.pop("file", None)
    return d


def converge(c, since, versions=None):
    """Until every node's database is the same; seconds since `since`."""
    last = {}

    def same():
        for n in c.nodes:
            last[n.name] = s = summary(n)
            if versions is not None:
                versions.sample(n, s)
        vals = list(last.values())
        return vals[0] is not None and all(v == vals[0] for v in vals)
    try:
        wait_for(same, BOUND, "the same database on every node", interval=0.2)
    except Timeout:
        raise Timeout("not converged after %ds: %s" % (BOUND, last)) from None
    return time.monotonic() - since


def daemon(n):
    return n.procs.get("pmxcfs")


# --- histories ----------------------------------------------------------------------

class History:
    """One writer's history file, read as it grows."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.ops = {}        # seq -> op with t0, and t1 and ok/errno once ended
        self.ended = False

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break        # not complete yet (or cut by a kill)
                    self.offset += len(line)
                    rec = json.loads(line)
                    if "inv" in rec:
                        op = dict(rec)
                        op["t0"] = op.pop("t")
                        self.ops[op.pop("inv")] = op
                    elif "seq" in rec:
                        op = self.ops[rec["seq"]]
                        op["t1"] = rec["t"]
                        op["ok"] = "ok" in rec
                        if "errno" in rec:
                            op["errno"] = rec["errno"]
                    elif "end" in rec:
                        self.ended = True
        except FileNotFoundError:
            pass
        return self

    def acked(self, since=0.0):
        return sum(1 for o in self.ops.values() if o.get("ok") and o["t0"] >= since)

    def tried(self, since=0.0):
        return sum(1 for o in self.ops.values() if "t1" in o and o["t0"] >= since)


class Versions:
    """Database versions sampled per node; they must never go down."""

    def __init__(self):
        self.series = {}     # node name -> [(t, version)]
        self.lock = threading.Lock()

    def sample(self, node, s):
        if s is None:
            return
        with self.lock:
            self.series.setdefault(node.name, []).append((time.monotonic(), s["version"]))

    def restart(self, node):
        """The node's database was replaced on purpose: a new series."""
        with self.lock:
            self.series.setdefault(node.name, []).append(("restart", None))

    def check(self):
        bad = []
        with self.lock:
            for name, seq in self.series.items():
                hi = 0
                for t, v in seq:
                    if t == "restart":
                        hi = 0
                    else:
                        if v < hi:
                            bad.append("%s: version %d after %d (t=%.1f)" % (name, v, hi, t))
                        hi = max(hi, v)
        return bad


class Poller(threading.Thread):
    """Samples every node's database version about once a second."""

    def __init__(self, c, versions):
        super().__init__(daemon=True)
        self.c, self.versions = c, versions
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for n in self.c.nodes:
                try:
                    self.versions.sample(n, summary(n))
                except Exception:       # a node being restarted: no sample
                    pass
            self.stop.wait(1.0)         # the sampling period, not a synchronisation


# --- one run of a scenario ------------------------------------------------------

class Run:
    def __init__(self, c, runid, victim):
        self.c = c
        self.runid = runid
        self.rundir = "faults-" + runid
        self.victim = victim             # the node the fault hits (if one)
        self.histories = {}
        self.minority = {}               # node name -> (since, until)
        # node name -> [(from, to)]: the node was cut off from the others and
        # corosync may not have noticed yet (see check_histories)
        self.cutoff = {}
        self.versions = Versions()
        self.poller = Poller(c, self.versions)
        self.notes = []

    def start(self):
        n1 = self.c.nodes[0]
        # a daemon restarted by the last run's clean-up may not be mounted
        # yet: a mkdir then went into the directory under the mount point
        pc.wait_serving(self.c.nodes, BOUND)
        tries = []                       # what each mkdir answered, for the report

        def made():
            tries.append(pc.op(n1, "mkdir", self.rundir))
            return tries[-1] in ({"ok": None}, {"errno": 17})
        wait_for(made, BOUND, "mkdir " + self.rundir, interval=0.2)
        for n in self.c.nodes:
            try:
                wait_for(lambda: pc.op(n, "exists", self.rundir) == {"ok": True}, BOUND,
                         "%s on %s" % (self.rundir, n.name), interval=0.1)
            except Timeout:
                self.c.failed = True     # keep every node's logs
                raise AssertionError("%s missing on %s after mkdir on %s answered %s; "
                                     "exists on each node now: %s" % (
                                         self.rundir, n.name, n1.name, tries[-3:],
                                         {m.name: pc.op(m, "exists", self.rundir)
                                          for m in self.c.nodes}))
        self.poller.start()
        for i, n in enumerate(self.c.nodes):
            path = os.path.join(n.log_dir, "history-%s.jsonl" % self.runid)
            self.histories[n.name] = History(path)
            n.start("workload", [sys.executable, WORKLOAD, n.mount_dir, self.rundir, n.name,
                                 path, self.stopfile(n), str(SEED + i),
                                 str(interval(len(self.c.nodes)))])
        self.t_start = time.monotonic()
        self.wait_acked(self.c.nodes, 5, self.t_start, "the writers started")

    def stopfile(self, n):
        return os.path.join(n.dir, "stop-" + self.runid)

    def hist(self, n):
        return self.histories[n.name].poll()

    def wait_acked(self, nodes, k, since, what, timeout=BOUND):
        """Until each node in nodes had k writes acknowledged that began
        after since."""
        self._wait(nodes, k, lambda n: self.hist(n).acked(since), timeout,
                   "%s: %d writes acknowledged" % (what, k))

    def wait_tried(self, nodes, k, since, what, timeout=BOUND):
        self._wait(nodes, k, lambda n: self.hist(n).tried(since), timeout,
                   "%s: %d operations ended" % (what, k))

    def _wait(self, nodes, k, count, timeout, what):
        """Until count(n) >= k for each node; on a timeout, what each node
        has and where the writers that lag wait in the kernel."""
        try:
            wait_for(lambda: all(count(n) >= k for n in nodes), timeout, what, interval=0.1)
        except Timeout as e:
            have = {n.name: count(n) for n in nodes}
            lag = ["%s's writer: %s" % (n.name, n.procs["workload"].kernel_state())
                   for n in nodes if have[n.name] < k]
            raise Timeout("%s; have %s; %s" % (e, have, "; ".join(lag))) from None

    def stop(self):
        for n in self.c.nodes:
            open(self.stopfile(n), "w").close()
        for n in self.c.nodes:
            p = n.procs["workload"]
            # an operation may wait on a daemon that resyncs: bounded
            if p.wait(30) is None:
                self.notes.append("%s: writer killed" % n.name)
                p.terminate(5, signal.SIGKILL)

    def finish(self, t_heal):
        """After the heal: stop the writers, converge, check.  Returns
        (acknowledged, convergence seconds)."""
        self.stop()
        try:
            secs = converge(self.c, t_heal, self.versions)
        finally:
            self.poller.stop.set()
            self.poller.join(30)
        for n in self.c.nodes:
            d = daemon(n)
            assert d is not None and d.alive(), "%s: pmxcfs is not running (exit %s)" % (
                n.name, d.popen.returncode if d else None)
        acked = self.check_histories()
        self.check_writable()
        return acked, secs

    # --- the checks --------------------------------------------------------------
    def expected(self, unsure=lambda name, o: False):
        """name -> the set of states the history allows (ABSENT, DIR or
        the content); the number of acknowledged writes; anomalies.  An
        operation for which unsure() holds counts as unknown even if it
        was acknowledged."""
        allowed = {}
        acked = 0
        anomalies = []
        for name, h in self.histories.items():
            h.poll()
            for seq in sorted(h.ops):
                o = h.ops[seq]
                ok = o.get("ok", False)      # no end: unknown, as an error
                acked += ok
                ok = ok and not unsure(name, o)
                p = o["path"]
                cur = allowed.setdefault(p, {ABSENT})
                if o["op"] in ("create", "overwrite"):
                    if ok:
                        allowed[p] = {o["data"]}
                    else:
                        # a create is two messages (CREATE, then the
                        # content at close): it may stop after the first
                        cur |= {o["data"], ""} if o["op"] == "create" else {o["data"]}
                elif o["op"] == "rename":
                    src = cur - {ABSENT}
                    dst = allowed.setdefault(o["to"], {ABSENT})
                    if ok:
                        if not src:
                            anomalies.append("%s: rename of %s succeeded, but it cannot "
                                             "exist" % (name, p))
                        allowed[o["to"]] = src or set(cur)
                        allowed[p] = {ABSENT}
                    else:
                        dst |= src
                        cur.add(ABSENT)
                elif o["op"] == "lock":
                    if ok:
                        allowed[p] = {DIR}
                    else:
                        cur.add(DIR)
                elif o["op"] == "unlock":
                    if ok:
                        allowed[p] = {ABSENT}
                    else:
                        cur.add(ABSENT)
        return allowed, acked, anomalies

    def observed(self, n):
        """name -> state on node n, read through its mount."""
        ls = pc.ops(n, [["listdir", self.rundir], ["listdir", "priv/lock"]])
        assert all("ok" in x for x in ls), "%s: %s" % (n.name, ls)
        files = ["%s/%s" % (self.rundir, x) for x in ls[0]["ok"]]
        prefix = "%s-" % os.path.basename(self.rundir)
        locks = ["priv/lock/" + x for x in ls[1]["ok"] if x.startswith(prefix)]
        got = pc.ops(n, [["read", f] for f in files] + [["listdir", lk] for lk in locks])
        out = {}
        for f, g in zip(files, got):
            assert "ok" in g, "%s: read %s: %s" % (n.name, f, g)
            out[f] = g["ok"]
        for lk, g in zip(locks, got[len(files):]):
            assert "ok" in g, "%s: listdir %s: %s" % (n.name, lk, g)
            out[lk] = DIR
        return out

    def compare(self, allowed, observed):
        """The names whose state on some node the history does not allow,
        and what is wrong (per node)."""
        lost, problems = set(), []
        for node, obs in observed.items():
            for p in sorted(set(allowed) | set(obs)):
                have = obs.get(p, ABSENT)
                if p not in allowed:
                    problems.append("%s: %s exists, no writer made it" % (node, p))
                elif have not in allowed[p]:
                    lost.add(p)
                    problems.append("%s: %s is %s; the history allows %s" % (
                        node, p, short(have), sorted(short(a) for a in allowed[p])))
        return lost, problems

    def cut_off(self, node, start, end):
        self.cutoff.setdefault(node.name, []).append((start, end))

    def in_cutoff(self, name, o):
        """Was operation o of node `name` in flight while that node was cut
        off and before its corosync had formed a new membership?"""
        return any(o["t0"] < end and o.get("t1", float("inf")) > start
                   for start, end in self.cutoff.get(name, []))

    def check_histories(self):
        allowed, acked, problems = self.expected()
        observed = {n.name: self.observed(n) for n in self.c.nodes}
        lost, wrong = self.compare(allowed, observed)
        self.lost, self.acked = len(lost), acked     # for the table, also on a failure
        if wrong and self.cutoff:
            # What a node sends just before it is cut off (a partition, its
            # corosync stopped) can be delivered to it alone.  The original
            # acknowledges it there and loses it when the node takes the
            # others' tree; ours waits for a quorum's word (docs/cluster.md,
            # "Confirmed writes"), so such a loss fails the run too.  Say
            # whether it was of that kind, for whoever reads the failure.
            relaxed, _, _ = self.expected(self.in_cutoff)
            _, wrong2 = self.compare(relaxed, observed)
            if not wrong2:
                wrong.append("every lost write was in flight while its writer was cut off: "
                             "a write confirmed by no quorum was acknowledged")
        problems += wrong
        for name, (since, until) in self.minority.items():
            h = self.histories[name]
            inside = [o for o in h.ops.values() if o["t0"] >= since and "t1" in o and
                      o["t1"] <= until]
            for o in inside:
                if o.get("ok"):
                    problems.append("%s: %s %s acknowledged in a minority (%.2fs after it "
                                    "was inquorate)" % (name, o["op"], o["path"],
                                                        o["t0"] - since))
            if not inside:
                problems.append("%s: no operation tried while in a minority (the check "
                                "would be empty)" % name)
        problems += self.versions.check()
        assert not problems, "%d problems:\n  %s" % (len(problems), "\n  ".join(problems[:30]))
        return acked

    def check_writable(self):
        """Every node takes a write again, and it reaches every node."""
        pc.wait_serving(self.c.nodes, BOUND)
        for n in self.c.nodes:
            p = "%s/after-%s" % (self.rundir, n.name)
            wait_for(lambda: "ok" in pc.op(n, "write", p, n.name), BOUND,
                     "a write on %s after the heal" % n.name, interval=0.2)
        for n in self.c.nodes:
            wait_for(lambda: pc.ops(n, [["exists", "%s/after-%s" % (self.rundir, m.name)]
                                        for m in self.c.nodes]) ==
                     [{"ok": True}] * len(self.c.nodes), BOUND,
                     "every node's write on " + n.name, interval=0.2)


def short(v):
    if v is ABSENT:
        return "absent"
    if v == DIR or len(v) < 40:
        return repr(v)
    return repr(v[:40] + "...")


# --- the faults ------------------------------------------------------------------
# Each gets the run, injects its fault while the writers write, holds it
# until a condition shows it took effect, heals, and returns the heal time.

def partition(run, minority):
    c = run.c
    majority = [n for n in c.nodes if n not in minority]
    t_cut = time.monotonic()
    c.partition([majority, minority])
    c.wait_inquorate(minority, BOUND)
    since = time.monotonic()
    for n in minority:
        run.cut_off(n, t_cut, since)
    # the majority goes on; the minority keeps trying (and must fail)
    run.wait_acked(majority, 10, since, "the majority during the partition")
    run.wait_tried(minority, 3, since, "the minority during the partition")
    t = time.monotonic()
    c.heal()
    for n in minority:
        run.minority[n.name] = (since, t)
    c.wait_quorate(c.nodes, BOUND)
    return t


def fault_partition_2_1(run):
    return partition(run, [run.victim])


def fault_partition_3_2(run):
    i = run.c.nodes.index(run.victim)
    return partition(run, [run.victim, run.c.nodes[(i + 1) % len(run.c.nodes)]])


def fault_isolated_node(run):
    return partition(run, [run.victim])


def fault_bridge(run):
    """node2 sees node1 and node3; node1 and node3 do not see each other."""
    c = run.c
    n1, n2, n3 = c.nodes[:3]
    since = time.monotonic()
    c.block(n1, n3)
    # until corosync reacted (some node's membership is not all three);
    # then for BRIDGE_HOLD seconds.  corosync does not settle on such a
    # network: the side with node2 forms a new ring every 2 s and never
    # finishes its synchronisation, so the writes there wait (and are
    # answered after the heal); nothing here can wait for their progress.
    wait_for(lambda: any((n.quorum() or {}).get("members") != [1, 2, 3] for n in c.nodes),
             BOUND, "a membership change after the bridge", interval=0.2)
    hold(BRIDGE_HOLD)
    t = time.monotonic()
    run.notes.append("writes acknowledged during the bridge: %s" % ", ".join(
        "%s %d" % (n.name, run.hist(n).acked(since)) for n in c.nodes))
    c.heal()
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:        # who ends up on which side is corosync's choice
        run.cut_off(n, since, time.monotonic())
    return t


BRIDGE_HOLD = 5


def fault_flapping(run):
    """Five partitions of random shape in a row, each held for a random
    0.3 to 3 s (some shorter than corosync's token timeout, some longer),
    with 0.3 to 2 s of healed network between them."""
    c = run.c
    shapes = []
    for _ in range(5):
        a = rng.choice(c.nodes)
        if rng.random() < 0.5:
            shapes.append([[a], [n for n in c.nodes if n is not a]])
        else:
            b = rng.choice([n for n in c.nodes if n is not a])
            shapes.append([[a, b], [n for n in c.nodes if n not in (a, b)]])
    t_first = time.monotonic()
    for groups in shapes:
        c.partition(groups)
        hold(rng.uniform(0.3, 3.0))
        c.heal()
        hold(rng.uniform(0.3, 2.0))
    # Healed spells shorter than corosync's token and consensus (3.6 s)
    # leave its memberships behind the network, so while the flapping
    # lasts any node, on either side of a shape, may be cut off from the
    # members it still counts: every node is in the cut-off window from the
    # first cut until corosync can have noticed the last heal.  (Marking
    # only the smaller side of each shape missed losses of that kind.)
    for n in c.nodes:
        run.cut_off(n, t_first, time.monotonic() + 4.0)
    t = time.monotonic()
    c.wait_quorate(c.nodes, BOUND)
    return t


def hold(seconds):
    """Keep the network as it is for this long: the length of a fault, not
    a synchronisation (nothing waits for anything here)."""
    time.sleep(seconds)


def others(run):
    return [n for n in run.c.nodes if n is not run.victim]


def fault_kill9_pmxcfs(run):
    x = run.victim
    x.stop_daemon(sig=signal.SIGKILL)
    since = time.monotonic()
    run.wait_acked(others(run), 10, since, "the others with one pmxcfs killed")
    t = time.monotonic()
    pc.start(x, EXTRA)
    return t


def fault_kill9_corosync(run):
    c, x = run.c, run.victim
    c.kill9(x, "corosync")
    c.wait_quorate(others(run), BOUND)
    since = time.monotonic()
    run.wait_acked(others(run), 10, since, "the others with one corosync killed")
    t = time.monotonic()
    x.start_corosync()
    c.wait_quorate(c.nodes, BOUND)
    return t


def fault_kill9_all_pmxcfs(run):
    t_kill = time.monotonic()
    procs = [n.procs["pmxcfs"] for n in run.c.nodes]
    for p in procs:
        p.send(signal.SIGKILL)
    for n, p in zip(run.c.nodes, procs):
        # a daemon that cannot end leaves its mount hung: say where it is
        assert p.wait(10) is not None, "%s: pmxcfs did not end after SIGKILL: %s" % (
            n.name, p.kernel_state())
    since = time.monotonic()
    run.wait_tried(run.c.nodes, 3, since, "the writers with no pmxcfs")
    t = time.monotonic()
    for n in run.c.nodes:
        pc.start(n, EXTRA)
    pc.wait_serving(run.c.nodes, BOUND)
    for n in run.c.nodes:            # as in the cold start
        run.cut_off(n, t_kill, time.monotonic())
    return t


def fault_sigstop_pmxcfs(run):
    c, x = run.c, run.victim
    c.stop(x, "pmxcfs")
    since = time.monotonic()
    try:
        run.wait_acked(others(run), 10, since, "the others with one pmxcfs stopped")
        # and past the token timeout (1.65 s here), as the corosync pause
        hold(max(0.0, since + 3.0 - time.monotonic()))
    finally:
        t = time.monotonic()
        c.cont(x, "pmxcfs")
    return t


def fault_sigstop_corosync(run):
    c, x = run.c, run.victim
    t_stop = time.monotonic()
    c.stop(x, "corosync")
    try:
        # past the token timeout: the others form a membership without it
        c.wait_quorate(others(run), BOUND)
        since = time.monotonic()
        run.wait_acked(others(run), 10, since, "the others with one corosync stopped")
    finally:
        t = time.monotonic()
        c.cont(x, "corosync")
    c.wait_quorate(c.nodes, BOUND)
    run.cut_off(x, t_stop, time.monotonic())
    return t


def fault_cold_start(run):
    """Every pmxcfs and every corosync stopped at once (SIGTERM to all,
    then the waits), then all started at once."""
    c = run.c
    t_stop = time.monotonic()
    for what in ("pmxcfs", "corosync"):
        procs = [n.procs[what] for n in c.nodes]
        for p in procs:
            p.send(signal.SIGTERM)
        for p in procs:
            p.terminate(10)          # a bounded wait, then SIGKILL
    since = time.monotonic()
    run.wait_tried(c.nodes, 3, since, "the writers with nothing running")
    t = time.monotonic()
    for n in c.nodes:
        n.start_corosync(wait=False)
    for n in c.nodes:
        pc.start(n, EXTRA)
    c.wait_quorate(c.nodes, BOUND)
    pc.wait_serving(c.nodes, BOUND)
    # until every daemon is back in the group, a group of some of them
    # takes writes, and a node that comes later with a higher version
    # leads and wipes them (the leader rule's window, closed for our
    # daemons by their own quorum; docs/cluster.md): a loss there is
    # reported as of that kind
    for n in c.nodes:
        run.cut_off(n, t_stop, time.monotonic())
    return t


FULL_LOG = "the database cannot be written"
RESYNC_FAILED_LOG = "cannot take the leader's tree"


def fault_disk_full(run):
    """The victim's data directory becomes a small tmpfs (inside its mount
    namespace) holding its database; a filler takes the free space while
    everyone writes; then the filler goes."""
    c, x = run.c, run.victim
    x.stop_daemon()
    q = x.data_dir
    keep = os.path.join(x.dir, "db-outside")
    x.run("set -e; mkdir -p %s; cp -a %s/. %s/; mount -t tmpfs -o size=8m %s-full %s; "
          "cp -a %s/. %s/" % (keep, q, keep, c.prefix, q, keep, q), check=True)
    run.cleanup = lambda: restore_data_dir(x, keep)
    offset = log_size(x)
    pc.start(x, EXTRA)
    pc.wait_serving(c.nodes, BOUND)
    # the filler: dd stops at ENOSPC
    x.run("dd if=/dev/zero of=%s/filler bs=64k 2>/dev/null; sync" % q)
    since = time.monotonic()
    # the victim reports it and leaves the group; a rejoin while the disk is
    # still full fails to take the leader's tree (and leaves again); the
    # others go on meanwhile
    for line in (FULL_LOG, RESYNC_FAILED_LOG):
        wait_for(lambda: line in log_text(x, offset), BOUND,
                 "'%s' in %s's log" % (line, x.name), interval=0.2)
    run.wait_acked(others(run), 10, since, "the others while one disk is full")
    errs = [o.get("errno") for o in run.hist(x).ops.values()
            if o["t0"] >= since and "t1" in o and not o.get("ok")]
    assert errs, "%s: no write failed while its disk was full" % x.name
    run.notes.append("%s: %d failed writes (errno %s) while full" % (
        x.name, len(errs), sorted(set(errs))))
    t = time.monotonic()
    x.run(["rm", "-f", os.path.join(q, "filler")], check=True)
    # it recovers without a restart: its own writes are acknowledged again
    run.wait_acked([x], 3, t, "%s after its disk has space again" % x.name)
    assert daemon(x).alive()
    return t


def restore_data_dir(x, keep):
    """Back from the tmpfs to the node's own data directory."""
    x.stop_daemon()
    q = x.data_dir
    x.run("set -e; rm -rf %s/*; cp -a %s/. %s/; umount %s; rm -rf %s/*; cp -a %s/. %s/; "
          "rm -rf %s" % (keep, q, keep, q, q, keep, q, keep), check=True)
    pc.start(x, EXTRA)
    pc.wait_serving(x.cluster.nodes, BOUND)


def fault_damaged_database(run):
    """The victim stops; its database is overwritten with garbage; a start
    refuses it with a clear message; a start with --recover-damaged-db
    moves it aside and the node takes the tree from the others."""
    c, x = run.c, run.victim
    x.stop_daemon()
    db = os.path.join(x.data_dir, "config.db")
    garbage = bytes(random.Random(SEED).randrange(256) for _ in range(4096)) * 4
    with open(db, "wb") as f:
        f.write(garbage)
    since = time.monotonic()
    offset = log_size(x)
    p = pc.start(x, EXTRA)
    assert p.wait(60) == 255, "%s: pmxcfs on a damaged database: exit %s" % (
        x.name, p.popen.returncode)
    log = log_text(x, offset)
    assert "the database is damaged and was left as it is" in log, log[-2000:]
    assert "--recover-damaged-db" in log, log[-2000:]
    run.wait_acked(others(run), 5, since, "the others while one database is damaged")
    t = time.monotonic()
    run.versions.restart(x)
    pc.start(x, EXTRA + ["--recover-damaged-db"])
    pc.wait_serving(c.nodes, BOUND)
    aside = [f for f in os.listdir(x.data_dir) if f.startswith("config.db.damaged-")]
    assert any(open(os.path.join(x.data_dir, f), "rb").read() == garbage for f in aside), \
        "%s: the damaged database was not kept (%s)" % (x.name, aside)
    for f in aside:
        os.unlink(os.path.join(x.data_dir, f))    # the next runs look for theirs
    return t


def log_size(n):
    try:
        return os.path.getsize(os.path.join(n.log_dir, "pmxcfs.log"))
    except OSError:
        return 0


def log_text(n, offset):
    with open(os.path.join(n.log_dir, "pmxcfs.log"), errors="replace") as f:
        f.seek(offset)
        return f.read()


# (step name, table name, cluster size, fault)
SCENARIOS = [
    ("partition_2_1", "partition 2|1", 3, fault_partition_2_1),
    ("bridge", "bridge 1-2-3", 3, fault_bridge),
    ("flapping", "flapping partitions", 3, fault_flapping),
    ("kill9_pmxcfs", "kill -9 one pmxcfs", 3, fault_kill9_pmxcfs),
    ("kill9_corosync", "kill -9 one corosync", 3, fault_kill9_corosync),
    ("kill9_all_pmxcfs", "kill -9 every pmxcfs", 3, fault_kill9_all_pmxcfs),
    ("sigstop_pmxcfs", "SIGSTOP one pmxcfs", 3, fault_sigstop_pmxcfs),
    ("sigstop_corosync", "SIGSTOP one corosync", 3, fault_sigstop_corosync),
    ("cold_start", "cold start of all", 3, fault_cold_start),
    ("disk_full", "disk full on one node", 3, fault_disk_full),
    ("damaged_database", "damaged database", 3, fault_damaged_database),
    ("partition_3_2", "partition 3|2 (5 nodes)", 5, fault_partition_3_2),
    ("isolated_node", "one node isolated (5)", 5, fault_isolated_node),
]


def scenario_step(index, name, title, size, fault):
    def fn():
        if ONLY and name not in ONLY:
            return "SKIP not in FAULTS_ONLY"
        c = get_cluster(size)
        done = []
        try:
            for rep in range(REPEATS):
                victim = c.nodes[(index + rep) % size]
                run = Run(c, "%s-%d" % (name.replace("_", ""), rep), victim)
                run.cleanup = None
                run.start()
                try:
                    t_heal = fault(run)
                    acked, secs = run.finish(t_heal)
                except BaseException:
                    if getattr(run, "lost", 0):     # the table counts it too
                        results.append((title, run.acked, run.lost, None))
                    raise
                finally:
                    run.poller.stop.set()
                    if run.cleanup:
                        run.cleanup()
                results.append((title, acked, run.lost, secs))
                done.append("%d acked, %.1fs%s" % (acked, secs,
                                                   "; " + "; ".join(run.notes)
                                                   if run.notes else ""))
        except BaseException:
            close_cluster("c%d" % size, failed=True)
            raise
        return "%s: %s" % (title, " | ".join(done))
    fn.__name__ = name
    return fn


@step()
def checker_sees_a_lost_write():
    """The negative control: a run without a fault, then one acknowledged
    file is removed behind the writers' back; the check must name it."""
    if ONLY and "checker_sees_a_lost_write" not in ONLY:
        return "SKIP not in FAULTS_ONLY"
    c = get_cluster(3)
    run = Run(c, "control", None)
    run.start()
    run.wait_acked(c.nodes, 10, run.t_start, "the writers")
    run.stop()
    run.poller.stop.set()
    allowed, _, _ = run.expected()
    victim = sorted(p for p, a in allowed.items()
                    if len(a) == 1 and next(iter(a)) not in (ABSENT, DIR))[0]
    assert pc.op(c.nodes[1], "unlink", victim) == {"ok": None}
    converge(c, time.monotonic())
    try:
        run.check_histories()
    except AssertionError as e:
        assert "%s is absent;" % victim in str(e), e
        return "the check named %s" % victim
    raise AssertionError("the check did not see that %s was removed" % victim)


for i, s in enumerate(SCENARIOS):
    STEPS.append((scenario_step(i, *s), ()))


@step()
def no_sanitizer_reports():
    """The daemons' logs hold no ASan/UBSan/LeakSanitizer or valgrind
    report (the suite runs in the ASan build too)."""
    for key in [k for k in ("c3", "c5") if k in state]:
        close_cluster(key)
    reports = state.get("reports", [])
    assert not reports, "\n".join(reports[:40])


@step()
def fault_table():
    """The table of this run (docs/cluster.md shows one)."""
    if not results:
        return "SKIP no scenario ran"
    rows = {}
    for title, acked, lost, secs in results:
        r = rows.setdefault(title, [0, 0, 0, []])
        r[0] += 1
        r[1] += acked
        r[2] += lost
        if secs is not None:            # a failed run has no convergence time
            r[3].append(secs)
    print("# seed %d, %d run(s) per scenario, writers pausing %d ms (twice that on 5 nodes)"
          % (SEED, REPEATS, INTERVAL_MS))
    print("# | scenario | runs | writes acknowledged | writes lost | convergence after "
          "the heal, median (max) |")
    print("# |---|---|---|---|---|")
    for title, (runs, acked, lost, secs) in rows.items():
        conv = "%.1f s (%.1f s)" % (statistics.median(secs), max(secs)) if secs else "-"
        print("# | %s | %d | %d | %d | %s |" % (title, runs, acked, lost, conv))
    total_lost = sum(r[2] for r in rows.values())
    assert total_lost == 0, "%d writes lost" % total_lost
    return "%d runs, %d writes acknowledged, none lost" % (
        sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values()))

if __name__ == "__main__":
    sys.exit(cluster.run_steps(STEPS, state, pc.skip_reason))
