#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-cluster-node.py: the timed part of bench-cluster.py and
bench-cluster-sync.py, run inside a node.
Usage: bench-cluster-node.py MOUNT TEST [ARGS]; prints JSON.

  create N WRITERS   N files of 1 KiB, written by WRITERS processes at once
                     (each open(O_CREAT|O_EXCL), write, close)
  rename N           rename the N files of `create`
  unlink N           unlink them
  chunks SIZE CHUNK  one file of SIZE bytes written CHUNK bytes at a time
                     (also the time of the writes and of the close apart)
  fill N SIZE        N files of SIZE bytes in 100 directories (the writes
                     during a partition in bench-cluster-sync.py)
"""

import json
import os
import sys
import time

KIB = b"x" * 1024


def writer(d, lo, hi):
    for i in range(lo, hi):
        fd = os.open(os.path.join(d, "f%06d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, KIB)
        os.close(fd)


def main():
    mount, test = sys.argv[1], sys.argv[2]
    args = [int(x) for x in sys.argv[3:]]
    d = os.path.join(mount, "bench")
    out = {}
    if test == "create":
        n, writers = args
        os.makedirs(d, exist_ok=True)
        t = time.monotonic()
        pids = []
        per = n // writers
        for w in range(writers):
            pid = os.fork()
            if pid == 0:
                try:
                    writer(d, w * per, (w + 1) * per)
                    os._exit(0)
                except OSError as e:
                    print("writer %d: %s" % (w, e), file=sys.stderr)
                    os._exit(1)
            pids.append(pid)
        bad = sum(1 for p in pids if os.waitpid(p, 0)[1] != 0)
        out = {"seconds": time.monotonic() - t, "ops": per * writers, "failed_writers": bad}
    elif test == "rename":
        n, = args
        t = time.monotonic()
        for i in range(n):
            os.rename(os.path.join(d, "f%06d" % i), os.path.join(d, "r%06d" % i))
        out = {"seconds": time.monotonic() - t, "ops": n}
    elif test == "unlink":
        n, = args
        t = time.monotonic()
        for i in range(n):
            os.unlink(os.path.join(d, "r%06d" % i))
        out = {"seconds": time.monotonic() - t, "ops": n}
    elif test == "chunks":
        size, chunk = args
        buf = b"y" * chunk
        p = os.path.join(mount, "big-%d" % chunk)
        t = time.monotonic()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        for _ in range(size // chunk):
            os.write(fd, buf)
        t1 = time.monotonic()
        os.close(fd)
        t2 = time.monotonic()
        out = {"seconds": t2 - t, "ops": 1, "writes": t1 - t, "close": t2 - t1}
    elif test == "fill":
        n, size = args
        data = b"z" * size
        t = time.monotonic()
        for j in range(100):
            os.makedirs(os.path.join(mount, "fill", "d%02d" % j), exist_ok=True)
        for i in range(n):
            fd = os.open(os.path.join(mount, "fill", "d%02d" % (i % 100), "f%06d" % i),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            os.write(fd, data)
            os.close(fd)
        out = {"seconds": time.monotonic() - t, "ops": n}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
