#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-fs.py: one pmxcfs node (local mode) side by side with tmpfs.

For 1,000 files of 1 KiB: create+write, read, stat, readdir, rename,
unlink; one 1 MiB file written in 4 KiB chunks and in one chunk (the
median of five); and the bytes the daemon wrote to disk (/proc/PID/io
write_bytes) per phase and in all.  The same operations, in the same
run, on:
- tests/bench/fuse-floor, a FUSE server that answers every request at
  once from memory with pmxcfs's kernel settings: the floor that FUSE's
  round trips set on the machine (skipped if it is not built);
- the original pmxcfs in local mode, if PMXCFS_ORIGINAL names its binary.
Prints figures, asserts nothing.  Needs root.

    tests/bench/bench-fs.py [--data-dir DIR]   (database on DIR's disk; default /var/tmp)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fs"))
from harness import TOP_BUILDDIR, Node, wait_for  # noqa: E402

N = 1000
MIB_RUNS = 5
KiB = b"x" * 1024


def io_written(pid):
    if pid is None:
        return 0
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def phases(root):
    d = os.path.join(root, "bench")
    os.mkdir(d)
    names = [os.path.join(d, "f%04d.cfg" % i) for i in range(N)]

    # os.open/os.read/os.close: the system calls a C or Perl program makes
    # (Python's open() adds an isatty ioctl, one more daemon round trip)
    def create_write():
        for p in names:
            fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
            os.write(fd, KiB)
            os.close(fd)

    def read():
        for p in names:
            fd = os.open(p, os.O_RDONLY)
            os.read(fd, 65536)
            os.close(fd)

    def stat():
        for p in names:
            os.stat(p)

    def readdir():
        for _ in range(100):
            os.listdir(d)

    def rename():
        for p in names:
            os.rename(p, p + ".new")

    def unlink():
        for p in names:
            os.unlink(p + ".new")

    def mib_chunks():
        fd = os.open(os.path.join(root, "big"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
        chunk = b"y" * 4096
        for _ in range(256):
            os.write(fd, chunk)
        os.close(fd)

    def mib_once():
        with open(os.path.join(root, "big2"), "wb") as f:
            f.write(b"z" * 1048576)

    # (name, operations, function, runs): a phase of one file is one
    # sample of a noisy machine, so it runs MIB_RUNS times (the same file
    # rewritten) and the median is taken
    return [("create+write 1 KiB", N, create_write, 1), ("read 1 KiB", N, read, 1),
            ("read 1 KiB again", N, read, 1), ("stat", N, stat, 1), ("stat again", N, stat, 1),
            ("readdir of 1,000 (x100)", 100, readdir, 1),
            ("rename", N, rename, 1), ("unlink", N, unlink, 1),
            ("1 MiB in 4 KiB chunks", 1, mib_chunks, MIB_RUNS),
            ("1 MiB in one write", 1, mib_once, MIB_RUNS)]


def run(root, pid):
    """[(name, operations, seconds, bytes the daemon wrote)]: for a phase
    of several runs, the median time and the mean bytes."""
    out = []
    for name, n, fn, runs in phases(root):
        w0 = io_written(pid)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out.append((name, n, sorted(times)[runs // 2], (io_written(pid) - w0) // runs))
    return out


def run_original():
    """(the phases on the original pmxcfs in local mode, None) or (None,
    why not).  The original mounts /etc/pve and keeps its database in
    /var/lib/pve-cluster, so it runs in a node of the cluster harness,
    which gives it those paths of its own (as in test-mixed); the phases
    run inside that node."""
    sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
    import pmxcfs_cluster as pc
    from cluster import Cluster
    why_not = pc.original_skip_reason()
    if why_not:
        return None, why_not
    with Cluster(1, wait=False) as c:
        n = c.nodes[0]
        proc = pc.start_original(n, extra=["-l"])
        wait_for(lambda: pc.serving(n) or not proc.alive(), 30, "the original to mount")
        if not proc.alive():
            return None, "the original did not start"
        r = n.run([sys.executable, os.path.abspath(__file__), "--phases-only", n.mount_dir],
                  timeout=600)
        if r.returncode != 0:
            return None, "the phases failed in the original's node: " + r.stderr.strip()[-300:]
        return [tuple(x) for x in json.loads(r.stdout)], None


FLOOR = os.path.join(TOP_BUILDDIR, "tests", "bench", "fuse-floor")


def run_floor():
    """(the phases on a fuse-floor mount, None) or (None, why not)."""
    if not os.access(FLOOR, os.X_OK):
        return None, "no " + FLOOR
    mnt = tempfile.mkdtemp(prefix="pmxcfs-bench-floor-")
    p = subprocess.Popen([FLOOR, mnt], stdout=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != b"mounted":
            raise RuntimeError("fuse-floor did not mount")
        return run(mnt, None), None
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            subprocess.call(["umount", "-l", mnt])
            p.kill()
            p.wait()
        os.rmdir(mnt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/var/tmp")
    ap.add_argument("--phases-only", metavar="DIR",
                    help="run the phases on DIR and print them as JSON (used inside a node)")
    args = ap.parse_args()
    if args.phases_only:
        json.dump(run(args.phases_only, None), sys.stdout)
        return 0
    if os.geteuid() != 0:
        print("bench-fs needs root")
        return 1
    base = tempfile.mkdtemp(prefix="pmxcfs-bench-", dir=args.data_dir)
    node = Node(base=base)
    tmpfs = tempfile.mkdtemp(prefix="pmxcfs-bench-tmpfs-")
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs])
    try:
        node.args += ["-l"]
        node.start()
        w_start = io_written(node.pid)
        ours = run(node.mnt, node.pid)
        w_total = io_written(node.pid) - w_start
        theirs = run(tmpfs, None)
        columns = [run_floor(), run_original()]
    finally:
        node.cleanup()
        subprocess.call(["umount", tmpfs])
        os.rmdir(tmpfs)
    print("pmxcfs (local mode, database in %s) vs tmpfs; %d files of 1 KiB" % (args.data_dir, N))
    for label, (rows, why_not) in zip(("FUSE floor", "original"), columns):
        if rows is None:
            print("(%s: %s)" % (label, why_not))
    floor, original = [rows or [(name, n, None, 0) for name, n, _, _ in ours]
                       for rows, _ in columns]

    def fig(n, dt):
        if dt is None:
            return "-"
        return "%.0f/s" % (n / dt) if n > 1 else "%.2f ms" % (dt * 1e3)

    print("%-26s %12s %12s %12s %12s %8s %8s %14s" % (
        "operation", "pmxcfs", "original", "FUSE floor", "tmpfs", "vs orig", "vs tmpfs",
        "pmxcfs disk"))
    for (name, n, dt, w), (_, _, dt2, _), (_, _, dt3, _), (_, _, dt4, _) in zip(
            ours, theirs, floor, original):
        print("%-26s %12s %12s %12s %12s %8s %7.2fx %11.2f MiB" % (
            name, fig(n, dt), fig(n, dt4), fig(n, dt3), fig(n, dt2),
            "%.2fx" % (dt4 / dt) if dt4 else "-", dt2 / dt, w / 1048576))
    print("%-26s %12s %12s %12s %12s %8s %8s %11.2f MiB" % (
        "bytes written to disk", "", "", "", "", "", "", w_total / 1048576))
    print("vs orig, vs tmpfs: their time over pmxcfs's (above 1: pmxcfs is faster); "
          "FUSE floor: %s (the round trips alone); original: PMXCFS_ORIGINAL in local mode, "
          "in a node of the cluster harness" % FLOOR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
