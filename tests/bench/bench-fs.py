#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-fs.py: one pmxcfs node (local mode) side by side with tmpfs.

For 1,000 files of 1 KiB: create+write, read, stat, readdir, rename,
unlink; one 1 MiB file written in 4 KiB chunks and in one chunk; and the
bytes the daemon wrote to disk (/proc/PID/io write_bytes) per phase and in
all.  The same operations on tests/bench/fuse-floor, a FUSE server that
answers every request at once from memory with pmxcfs's kernel settings,
give the floor that FUSE's round trips set on the machine (skipped if it
is not built).  Prints figures, asserts nothing.  Needs root.

    tests/bench/bench-fs.py [--data-dir DIR]   (database on DIR's disk; default /var/tmp)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fs"))
from harness import Node  # noqa: E402

N = 1000
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

    return [("create+write 1 KiB", N, create_write), ("read 1 KiB", N, read),
            ("read 1 KiB again", N, read), ("stat", N, stat), ("stat again", N, stat), ("readdir of 1,000 (x100)", 100, readdir),
            ("rename", N, rename), ("unlink", N, unlink),
            ("1 MiB in 4 KiB chunks", 1, mib_chunks), ("1 MiB in one write", 1, mib_once)]


def run(root, pid):
    out = []
    for name, n, fn in phases(root):
        w0 = io_written(pid)
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        out.append((name, n, dt, io_written(pid) - w0))
    return out


FLOOR = os.path.join(os.environ.get("TOP_BUILDDIR", os.path.join(HERE, "..", "..")),
                     "tests", "bench", "fuse-floor")


def run_floor():
    """The phases on a fuse-floor mount, or None without the binary."""
    if not os.access(FLOOR, os.X_OK):
        return None
    mnt = tempfile.mkdtemp(prefix="pmxcfs-bench-floor-")
    p = subprocess.Popen([FLOOR, mnt], stdout=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != b"mounted":
            raise RuntimeError("fuse-floor did not mount")
        return run(mnt, None)
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
    args = ap.parse_args()
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
        floor = run_floor()
    finally:
        node.cleanup()
        subprocess.call(["umount", tmpfs])
        os.rmdir(tmpfs)
    print("pmxcfs (local mode, database in %s) vs tmpfs; %d files of 1 KiB" % (args.data_dir, N))
    if floor is None:
        print("(no %s: the FUSE floor column is empty)" % FLOOR)
        floor = [(name, n, None, 0) for name, n, _, _ in ours]

    def fig(n, dt):
        if dt is None:
            return "-"
        return "%.0f/s" % (n / dt) if n > 1 else "%.2f ms" % (dt * 1e3)

    print("%-26s %12s %12s %12s %8s %14s" % ("operation", "pmxcfs", "FUSE floor", "tmpfs",
                                             "ratio", "pmxcfs disk"))
    for (name, n, dt, w), (_, _, dt2, _), (_, _, dt3, _) in zip(ours, theirs, floor):
        print("%-26s %12s %12s %12s %7.2fx %11.2f MiB" % (name, fig(n, dt), fig(n, dt3), fig(n, dt2),
                                                         dt2 / dt, w / 1048576))
    print("%-26s %12s %12s %12s %8s %11.2f MiB" % ("bytes written to disk", "", "", "", "",
                                                   w_total / 1048576))
    print("ratio: tmpfs's time over pmxcfs's; FUSE floor: %s (the round trips alone)" % FLOOR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
