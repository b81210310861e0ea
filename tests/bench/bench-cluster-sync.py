#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-cluster-sync.py: how fast our pmxcfs nodes get back in step, and
what an idle cluster writes to disk; real corosync (knet, crypto) in
namespaces on this machine, as bench-cluster.py.

For each node count and database size (FILES files of 2 KiB, spread like
a real /etc/pve: top-level and priv/ files, nodes/<node>/ with
qemu-server/ and lxc/ guest configs, firewall/<vmid>.fw, and a nested
tree nested/aNN/bNN/ of 100 files per directory):

  seed      one config.db is written directly with sqlite in the daemon's
            schema (one row per entry, the __version__ row, the cluster's
            corosync.conf) and copied to every node, so all start equal
  catch-up  the last node's daemon is stopped, its database wiped, and
            the daemon started again: the time from the start until its
            database has the others' version and checksum
  heal      the network is split (2|1 for 3 nodes, 3|2 for 5); the
            majority writes HEAL files of 2 KiB through node1's mount;
            the network is healed: the time until corosync's membership
            is whole again, and until every database equals node1's
  idle      (once per node count, on its largest database) write_bytes of
            /proc/PID/io of each pmxcfs and corosync over IDLE seconds, per
            minute; a pmxcfs that wrote is traced with strace to say what

The default run (make bench) is 3 nodes x 10,000 files; BENCH_FULL=1 runs
3 and 5 nodes x 1,000, 10,000 and 50,000 files.  BENCH_SYNC_NODES and
BENCH_SYNC_FILES (comma lists), BENCH_HEAL_FILES (default 1000),
BENCH_IDLE_SECONDS (default 60; 0 skips) and BENCH_STRACE_SECONDS
(default 10) override.  Needs root and corosync (skips otherwise).  Each
row carries the 1-minute load average when it was measured: other work on
the machine shows there.  Prints tables; asserts nothing.
"""

import os
import re
import shutil
import sqlite3
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import pmxcfs_cluster as pc  # noqa: E402
from cluster import Cluster, wait_for  # noqa: E402

NODE_SCRIPT = os.path.join(HERE, "bench-cluster-node.py")
FULL = os.environ.get("BENCH_FULL", "") not in ("", "0")


def env_list(name, default):
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


NODES = env_list("BENCH_SYNC_NODES", "3,5" if FULL else "3")
SIZES = env_list("BENCH_SYNC_FILES", "1000,10000,50000" if FULL else "10000")
HEAL = int(os.environ.get("BENCH_HEAL_FILES", "1000"))
IDLE = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
STRACE = float(os.environ.get("BENCH_STRACE_SECONDS", "10"))
FILE_SIZE = 2048
WRITER = 1                      # the node id every seeded entry names

# the original's figure on this kind of machine (docs/cluster.md)
ORIGINAL_CATCHUP = "original: 1.8 s for 12,800 files (26 MB), 3 nodes"

# the exact DDL of pmxcfs/database.c (and of the original, core.md §3.2)
TREE_DDL = ("CREATE TABLE IF NOT EXISTS tree (  inode INTEGER PRIMARY KEY NOT NULL,  "
            "parent INTEGER NOT NULL CHECK(typeof(parent)=='integer'),  "
            "version INTEGER NOT NULL CHECK(typeof(version)=='integer'),  "
            "writer INTEGER NOT NULL CHECK(typeof(writer)=='integer'),  "
            "mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer'),  "
            "type INTEGER NOT NULL CHECK(typeof(type)=='integer'),  "
            "name TEXT NOT NULL,  data BLOB);")
TYPE_DIR, TYPE_REG = 4, 8

TOP_FILES = ("datacenter.cfg", "user.cfg", "storage.cfg", "domains.cfg", "authkey.pub",
             "pve-root-ca.pem", "pve-www.key", "vzdump.cron", "replication.cfg", "jobs.cfg",
             "ha/resources.cfg", "ha/groups.cfg", "ha/manager_status", "firewall/cluster.fw",
             "sdn/zones.cfg", "sdn/vnets.cfg", "priv/shadow.cfg", "priv/token.cfg",
             "priv/tfa.cfg", "priv/authkey.key", "priv/pve-root-ca.key", "priv/known_hosts")
NODE_FILES = ("pve-ssl.pem", "pve-ssl.key", "lrm_status", "ssh_known_hosts")
NODE_DIRS = ("qemu-server", "lxc", "openvz", "priv")
EMPTY_DIRS = ("priv/lock", "priv/acme", "priv/storage")


# --- the seeded database ------------------------------------------------------

def layout(files, names):
    """(directories, files): paths relative to the root, `files` files in
    all; every directory before its children."""
    fixed = list(TOP_FILES) + ["nodes/%s/%s" % (n, f) for n in names for f in NODE_FILES]
    paths = fixed[:files]
    rest = files - len(paths)
    guests, firewall = rest * 4 // 10, rest // 10
    for i in range(guests):                    # 3 VMs to 1 container, round robin
        kind = "lxc" if i % 4 == 3 else "qemu-server"
        paths.append("nodes/%s/%s/%d.conf" % (names[i % len(names)], kind, 100 + i))
    paths += ["firewall/%d.fw" % (100 + i) for i in range(firewall)]
    for i in range(rest - guests - firewall):
        leaf = i // 100
        paths.append("nested/a%02d/b%02d/f%06d.cfg" % (leaf // 100, leaf % 100, i))
    dirs = list(EMPTY_DIRS) + ["nodes/%s/%s" % (n, d) for n in names for d in NODE_DIRS]
    seen, ordered = set(), []
    for p, inclusive in [(d, 1) for d in dirs] + [(f, 0) for f in paths]:
        parts = p.split("/")
        for depth in range(1, len(parts) + inclusive):
            d = "/".join(parts[:depth])
            if d not in seen:
                seen.add(d)
                ordered.append(d)
    return ordered, paths


def content(path):
    """FILE_SIZE bytes that differ from file to file."""
    head = ("# %s\n" % path).encode()
    line = b"description: seeded by bench-cluster-sync.py\n"
    body = head + line * (FILE_SIZE // len(line) + 1)
    return body[:FILE_SIZE - 1] + b"\n"


def seed(db_path, files, names, corosync_conf):
    """Write a config.db holding corosync.conf and `files` files; returns
    the seconds it took."""
    t = time.monotonic()
    dirs, paths = layout(files, names)
    mtime = int(time.time())
    inode = {"": 0}
    rows = []

    def add(path, typ, data):
        parent, _, name = path.rpartition("/")
        ino = len(rows) + 1
        inode[path] = ino
        rows.append((ino, inode[parent], ino, WRITER, mtime, typ, name, data))
    add("corosync.conf", TYPE_REG, corosync_conf)
    for d in dirs:
        add(d, TYPE_DIR, None)
    for p in paths:
        add(p, TYPE_REG, content(p))
    rows.append((0, 0, len(rows), WRITER, mtime, TYPE_REG, "__version__", None))
    db = sqlite3.connect(db_path)
    with db:
        db.execute(TREE_DDL)
        db.executemany("INSERT INTO tree (inode, parent, version, writer, mtime, type, name, "
                       "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return time.monotonic() - t


# --- measuring ------------------------------------------------------------------

def loadavg():
    return os.getloadavg()[0]


def say(text):
    print("bench-cluster-sync: " + text, file=sys.stderr, flush=True)


def run_node(node, *args, timeout=1200):
    """bench-cluster-node.py inside node: its JSON result."""
    return pc.run_script(node, NODE_SCRIPT, *args, timeout=timeout)


def daemon_pids(c, name):
    return {n.name: n.proc(name).pid for n in c.nodes
            if name in n.procs and n.procs[name].alive()}


def cpu_now(c):
    """{pid: CPU seconds} of every running corosync and pmxcfs."""
    return {pid: pc.cpu_seconds(pid) for name in ("corosync", "pmxcfs")
            for pid in daemon_pids(c, name).values()}


def cpu_note(c, before):
    """The CPU the corosyncs and the pmxcfs spent since before."""
    after = cpu_now(c)
    spent = {}
    for name in ("corosync", "pmxcfs"):
        spent[name] = sum(after[p] - before.get(p, 0.0) for p in daemon_pids(c, name).values())
    return "CPU: corosyncs %.1f s, pmxcfs %.1f s" % (spent["corosync"], spent["pmxcfs"])


def db_version(node):
    """The __version__ row of the node's config.db (read only: cheap), or
    None while there is none."""
    path = os.path.join(node.data_dir, "config.db")
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=1)
        try:
            row = db.execute("SELECT version FROM tree WHERE inode = 0").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def wait_equal(nodes, ref, timeout, t0, what):
    """Poll until every node's database equals ref (summary()); the
    seconds from t0 to the poll that saw it.  Polls the cheap __version__
    row every 50 ms and confirms a match with the full summary (cfsctl
    verify, about 1 s for 50,000 files), which is not counted: a change
    is one transaction, so the version row moves with the whole tree."""
    seen = {}

    def equal():
        t = time.monotonic()
        if any(db_version(n) != ref["version"] for n in nodes):
            return False
        if all(pc.summary(n) == ref for n in nodes):
            seen["t"] = t
            return True
        return False
    wait_for(equal, timeout, what, interval=0.05)
    return seen["t"] - t0


def catch_up(c):
    """Wipe the last node and time its way back; a result dict."""
    node = c.nodes[-1]
    ref = pc.summary(c.nodes[0])
    node.stop_daemon()
    node.wipe_data()
    before = cpu_now(c)
    t0 = time.monotonic()
    pc.start(node)
    secs = wait_equal([node], ref, 900, t0, "%s caught up" % node.name)
    note = "%s; %s wrote %.1f MB" % (cpu_note(c, before), node.name,
                                     io_written(node.proc("pmxcfs").pid) / 1e6)
    return {"catchup": secs, "catchup_note": note,
            "entries": ref["entries"], "bytes": ref["bytes"]}


def split_heal(c, files):
    """Partition majority|minority, write files on node1, heal; a result dict."""
    k = len(c.nodes) // 2 + 1
    major, minor = c.nodes[:k], c.nodes[k:]
    c.partition([major, minor])
    c.wait_quorate(major, 60, members=major)
    c.wait_inquorate(minor, 60)
    w = run_node(c.nodes[0], "fill", files, FILE_SIZE)
    pc.wait_converged(major, 120)
    ref = pc.summary(c.nodes[0])
    want = sorted(n.nodeid for n in c.nodes)
    members = {}

    def whole():
        if "t" not in members:
            for n in minor:
                q = n.quorum()
                if not q or not q["quorate"] or q["members"] != want:
                    return False
            members["t"] = time.monotonic() - t0
        return True
    before = cpu_now(c)
    io0 = sum(io_written(n.proc("pmxcfs").pid) for n in minor)
    c.heal()
    t0 = time.monotonic()
    wait_for(whole, 120, "membership whole again", interval=0.05)
    secs = wait_equal(minor, ref, 300, t0, "%s equal to node1" % [n.name for n in minor])
    io1 = sum(io_written(n.proc("pmxcfs").pid) for n in minor)
    return {"split": "%d|%d" % (len(major), len(minor)), "members": members["t"],
            "equal": secs, "heal_note": "%d files written at %.0f/s while "
            "split; %s; the minority wrote %.1f MB" % (
                files, w["ops"] / max(w["seconds"], 1e-9), cpu_note(c, before),
                (io1 - io0) / 1e6)}


def io_written(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


STRACE_LINE = re.compile(r"^(?:\[pid\s+\d+\]\s+)?(\w+)\(\d+<([^>]*)>")


def who_writes(node, pid, seconds):
    """strace the process for `seconds`: {"syscall path": count} for the
    calls on files (not sockets, pipes, eventfds or /dev)."""
    argv = ["timeout", "-s", "INT", "%g" % seconds, "strace", "-f", "-y", "-qq", "-e",
            "trace=write,pwrite64,writev,pwritev,fsync,fdatasync", "-p", str(pid)]
    r = node.run(argv, timeout=seconds + 30)
    calls = {}
    for line in r.stderr.splitlines():
        m = STRACE_LINE.match(line)
        if m and m.group(2).startswith("/") and not m.group(2).startswith("/dev/"):
            key = "%s %s" % (m.group(1), m.group(2))
            calls[key] = calls.get(key, 0) + 1
    return calls


def idle(c, seconds):
    """write_bytes and CPU of every pmxcfs and corosync over `seconds` of
    an unchanged cluster; rows per node, and whether the tree stayed put."""
    procs = [(n, name, n.proc(name).pid) for n in c.nodes for name in ("pmxcfs", "corosync")]
    v0 = [pc.summary(n)["version"] for n in c.nodes]
    io0 = {pid: (io_written(pid), pc.cpu_seconds(pid)) for _, _, pid in procs}
    t0 = time.monotonic()
    time.sleep(seconds)         # the measurement window, not a synchronisation
    span = time.monotonic() - t0
    io1 = {pid: (io_written(pid), pc.cpu_seconds(pid)) for _, _, pid in procs}
    v1 = [pc.summary(n)["version"] for n in c.nodes]
    rows = {}
    for n, name, pid in procs:
        r = rows.setdefault(n.name, {"node": n.name})
        r[name] = (io1[pid][0] - io0[pid][0]) * 60.0 / span
        r[name + "_cpu"] = (io1[pid][1] - io0[pid][1]) * 60.0 / span
        if r[name] > 0 and STRACE > 0 and shutil.which("strace"):
            calls = who_writes(n, pid, STRACE)
            r[name + "_what"] = ", ".join("%s ×%d" % kv for kv in sorted(calls.items())) or \
                "nothing on files in %g s of strace" % STRACE
    return [rows[n.name] for n in c.nodes], v0 == v1, span


# --- the matrix -------------------------------------------------------------------

def one_cluster(k, files, with_idle):
    """k nodes, the database seeded with files; the measurements."""
    out = {"nodes": k, "files": files}
    with Cluster(k, wait=False) as c:
        c.wait_quorate(c.nodes, 60)
        with open(os.path.join(c.nodes[0].dir, "etc-corosync", "corosync.conf"), "rb") as f:
            conf = f.read()
        db = os.path.join(c.nodes[0].data_dir, "config.db")
        out["seed"] = seed(db, files, [n.name for n in c.nodes], conf)
        for n in c.nodes[1:]:
            shutil.copyfile(db, os.path.join(n.data_dir, "config.db"))
        t = time.monotonic()
        for n in c.nodes:
            pc.start(n)
        pc.wait_serving(c.nodes, 300)
        pc.wait_converged(c.nodes, 300)
        out["start"] = time.monotonic() - t
        say("%d nodes, %d files: seeded in %.1f s, serving and equal in %.1f s" % (
            k, files, out["seed"], out["start"]))
        out["load_catchup"] = loadavg()
        out.update(catch_up(c))
        say("catch-up %.2f s (%s)" % (out["catchup"], out["catchup_note"]))
        out["load_heal"] = loadavg()
        out.update(split_heal(c, HEAL))
        say("heal: members %.2f s, equal %.2f s (%s)" % (out["members"], out["equal"],
                                                        out["heal_note"]))
        if with_idle:
            say("idle for %g s" % IDLE)
            out["load_idle"] = loadavg()
            out["idle"], out["idle_unchanged"], out["idle_span"] = idle(c, IDLE)
        pc.stop_all(c)
    return out


def print_tables(results):
    print("bench-cluster-sync: catch-up of a wiped node, convergence after a heal "
          "(%d files of 2 KiB written by the majority while split)" % HEAL)
    print("%5s %7s %8s %7s %9s %6s %9s %9s %9s" % (
        "nodes", "files", "entries", "MB", "catch-up", "split", "members", "equal", "load"))
    for r in results:
        print("%5d %7s %8s %7.1f %8.2fs %6s %8.2fs %8.2fs %4.1f/%.1f" % (
            r["nodes"], "{:,}".format(r["files"]), "{:,}".format(r["entries"]),
            r["bytes"] / 1e6, r["catchup"], r["split"], r["members"], r["equal"],
            r["load_catchup"], r["load_heal"]))
    print("  catch-up: from starting the daemon on the wiped node until its database "
          "has the others' version and checksum; " + ORIGINAL_CATCHUP)
    print("  members / equal: from the heal until corosync's membership is whole / "
          "every database equals node1's")
    print("  load: 1-minute load average before catch-up and before the split")
    for r in results:
        print("  %d nodes, %s files: catch-up %s; heal: %s" % (
            r["nodes"], "{:,}".format(r["files"]), r["catchup_note"], r["heal_note"]))
    for r in results:
        if "idle" not in r:
            continue
        print()
        print("bench-cluster-sync: idle disk writes, %d nodes, %s files, %.0f s "
              "(tree unchanged: %s; load %.1f)" % (
                  r["nodes"], "{:,}".format(r["files"]), r["idle_span"],
                  "yes" if r["idle_unchanged"] else "NO", r["load_idle"]))
        print("%-7s %14s %16s %16s %18s" % ("node", "pmxcfs B/min", "corosync B/min",
                                            "pmxcfs CPU/min", "corosync CPU/min"))
        for i in r["idle"]:
            print("%-7s %14.0f %16.0f %15.2fs %17.2fs" % (
                i["node"], i["pmxcfs"], i["corosync"], i["pmxcfs_cpu"], i["corosync_cpu"]))
        for i in r["idle"]:
            for name in ("pmxcfs", "corosync"):
                if name + "_what" in i:
                    print("  %s %s wrote: %s" % (i["node"], name, i[name + "_what"]))


def main():
    reason = pc.skip_reason()
    if reason:
        print("bench-cluster-sync: skipped: " + reason)
        return 0
    if IDLE > 0 and STRACE > 0 and shutil.which("strace") is None:
        say("no strace: an idle writer will not be traced")
    results = []
    for k in NODES:
        for files in SIZES:
            results.append(one_cluster(k, files, IDLE > 0 and files == max(SIZES)))
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
