#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""workload.py: one node's writer for the fault suite (test-faults.py).

Runs inside a node (started with nsenter by the harness) and writes to the
node's tree until a stop file appears, recording every operation in a
history: one JSON line when it starts ({"inv": seq, ...}) and one when it
ends ({"seq": seq, "ok": true} or {"seq": seq, "errno": n}), each with
CLOCK_MONOTONIC seconds, which every namespace shares.  An operation with
a start line and no end line was cut off (the writer was killed): its
result is unknown.

Every name it touches is its own (the node's name is in it), so the
expected final state of each name follows from this history alone:

  create    RUNDIR/<node>-<k>, new k: open(O_CREAT|O_EXCL), write, close
  overwrite one of its files: open(O_WRONLY|O_TRUNC), write, close
  rename    one of its files to RUNDIR/<node>-<k>, new k
  lock      mkdir priv/lock/<RUN>-<node>-<j>       (taking a cluster lock)
  unlock    rmdir of one of its locks               (releasing it)

Each content is unique: "<node> <name> <seq>\\n" and some padding.

usage: workload.py MOUNT RUNDIR NODE HISTORY STOPFILE SEED INTERVAL_MS
"""

import errno
import json
import os
import random
import sys
import time


def content(node, name, seq, rng):
    return ("%s %s %d\n" % (node, name, seq) + "x" * rng.randrange(0, 300)).encode()


def write(path, data, create):
    """open, write, close; every step's error is the operation's."""
    flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if create else os.O_TRUNC)
    fd = os.open(path, flags, 0o640)
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(errno.EIO, "short write")
    except OSError:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    os.close(fd)      # the change is committed here; its error counts


def main():
    mount, rundir, node, history, stopfile, seed, interval = sys.argv[1:8]
    rng = random.Random(int(seed))
    interval = int(interval) / 1000.0
    run = os.path.basename(rundir)
    files = []        # names that may exist (every create is kept, ok or not)
    locks = []        # lock names that may be held
    k = 0
    seq = 0
    out = open(history, "a", buffering=1)

    def record(**kw):
        out.write(json.dumps(kw, separators=(",", ":")) + "\n")

    while not os.path.exists(stopfile):
        seq += 1
        r = rng.random()
        if not files or r < 0.30:
            k += 1
            name = "%s/%s-%d" % (rundir, node, k)
            op = {"op": "create", "path": name,
                  "data": content(node, name, seq, rng).decode()}
        elif r < 0.60:
            name = rng.choice(files)
            op = {"op": "overwrite", "path": name,
                  "data": content(node, name, seq, rng).decode()}
        elif r < 0.75:
            k += 1
            op = {"op": "rename", "path": rng.choice(files),
                  "to": "%s/%s-%d" % (rundir, node, k)}
        elif r < 0.88 or not locks:
            k += 1
            op = {"op": "lock", "path": "priv/lock/%s-%s-%d" % (run, node, k)}
        else:
            op = {"op": "unlock", "path": rng.choice(locks)}
        record(inv=seq, t=time.monotonic(), **op)
        try:
            p = os.path.join(mount, op["path"])
            if op["op"] in ("create", "overwrite"):
                write(p, op["data"].encode(), op["op"] == "create")
            elif op["op"] == "rename":
                os.rename(p, os.path.join(mount, op["to"]))
            elif op["op"] == "lock":
                os.mkdir(p)
            else:
                os.rmdir(p)
            res = {"ok": True}
        except OSError as e:
            res = {"errno": e.errno}
        record(seq=seq, t=time.monotonic(), **res)
        ok = "ok" in res
        # what may exist now: kept loosely (an uncertain create stays a
        # candidate); the test's checker works out what must exist
        if op["op"] == "create":
            files.append(op["path"])
        elif op["op"] == "rename":
            files.append(op["to"])
            if ok:
                files.remove(op["path"])
        elif op["op"] == "lock":
            locks.append(op["path"])
        elif op["op"] == "unlock" and ok:
            locks.remove(op["path"])
        if len(files) > 40:          # keep the working set small
            files.pop(rng.randrange(len(files)))
        time.sleep(interval)         # pacing of the load, not a synchronisation
    record(end=seq, t=time.monotonic())
    out.close()


if __name__ == "__main__":
    main()
