#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-cluster.py: our pmxcfs on 3 nodes with real corosync (knet,
crypto) in namespaces on this machine; the figures of issue 5.

  create+write of 1 KiB files, 1 writer and 8 writers (on node1)
  rename and unlink of those files
  1 MiB written in 4 KiB chunks, and in one chunk

The catch-up of an empty node, convergence after a partition and idle
disk writes are in bench-cluster-sync.py.  The original's figures on this
kind of machine are printed beside ours, and, if PMXCFS_ORIGINAL names an
original pmxcfs binary (tests/cluster/README.md), the original measured
in the same run on a cluster of its own.  Needs root and corosync (skips
otherwise).  BENCH_FILES changes the number of files.  Prints a table;
asserts nothing.
"""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import pmxcfs_cluster as pc  # noqa: E402
from cluster import Cluster  # noqa: E402

NODE_SCRIPT = os.path.join(HERE, "bench-cluster-node.py")
N = int(os.environ.get("BENCH_FILES", "2000"))
CHUNK_RUNS = 5

ORIGINAL = {   # cluster.md / issue 5: 3 nodes in namespaces, knet
    "create+write, 1 writer": "581/s",
    "create+write, 8 writers": "876/s",
    "rename": "1,337/s",
    "1 MiB in 4 KiB chunks": "3.1 s",
}


def run(node, *args, timeout=600):
    """bench-cluster-node.py inside node: its JSON result."""
    return pc.run_script(node, NODE_SCRIPT, *args, timeout=timeout)


def rate(r):
    return "%.0f/s" % (r["ops"] / r["seconds"])


def measure(start):
    """The figures on a new 3-node cluster whose daemons start(node)
    starts: [(name, figure, note)]."""
    rows = []
    with Cluster(3, wait=False) as c:
        c.wait_quorate(c.nodes, 60)
        for n in c.nodes:
            start(n)
        pc.wait_serving(c.nodes, 60)
        n1 = c.nodes[0]
        procs = [n.proc(name).pid for n in c.nodes for name in ("corosync", "pmxcfs")]

        def cpu():
            """CPU seconds so far: (the three corosyncs, the three pmxcfs)."""
            t = [pc.cpu_seconds(p) for p in procs]
            return sum(t[0::2]), sum(t[1::2])

        def timed(*args):
            """run() and the CPU the daemons spent meanwhile, as a note."""
            c0, p0 = cpu()
            r = run(n1, *args)
            c1, p1 = cpu()
            return r, "%.1fs wall; CPU: corosyncs %.1fs, pmxcfs %.1fs" % (
                r["seconds"], c1 - c0, p1 - p0)

        r, note = timed("create", N, 1)
        rows.append(("create+write, 1 writer", rate(r), "%d files; %s" % (r["ops"], note)))
        r = run(n1, "rename", N)
        rows.append(("rename", rate(r), ""))
        r = run(n1, "unlink", N)
        rows.append(("unlink", rate(r), ""))
        r, note = timed("create", N, 8)
        rows.append(("create+write, 8 writers", rate(r), "%d files; %s" % (r["ops"], note)))
        run(n1, "rename", N)
        run(n1, "unlink", N)
        # one file's time is one sample of a noisy machine: five, each
        # split into the writes and the close (the commit on all nodes)
        for name, chunk in (("1 MiB in 4 KiB chunks", 4096), ("1 MiB in one chunk", 1 << 20)):
            rs = sorted((run(n1, "chunks", 1 << 20, chunk) for _ in range(CHUNK_RUNS)),
                        key=lambda r: r["seconds"])
            mid = rs[len(rs) // 2]
            rows.append((name, "%.1f ms" % (mid["seconds"] * 1000),
                         "median of %d (%.1f-%.1f ms); its writes %.1f ms, its close %.1f ms" % (
                             len(rs), rs[0]["seconds"] * 1000, rs[-1]["seconds"] * 1000,
                             mid["writes"] * 1000, mid["close"] * 1000)))
    return rows


def main():
    reason = pc.skip_reason()
    if reason:
        print("bench-cluster: skipped: " + reason)
        return 0
    ours = measure(pc.start)
    # the original on the same machine in the same run, when it is there
    # (PMXCFS_ORIGINAL, as for test-mixed.py): the fair comparison
    theirs, why_not = None, pc.original_skip_reason()
    if why_not is None:
        theirs = dict((name, (fig, note)) for name, fig, note in measure(pc.start_original))
    print("%-26s %10s %14s %12s  %s" % ("bench-cluster (3 nodes)", "ours", "original now",
                                         "original", "notes: ours; the original now"))
    for name, fig, note in ours:
        now, now_note = theirs.get(name, ("", "")) if theirs else ("-", "")
        print("%-26s %10s %14s %12s  %s" % (name, fig, now, ORIGINAL.get(name, ""),
                                             note + ("; " + now_note if now_note else "")))
    if theirs is None:
        print("original now: not measured (%s); original: the issue's figures, "
              "another day" % why_not)
    else:
        print("original now: %s in this run; original: the issue's figures, another day"
              % pc.ORIGINAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
