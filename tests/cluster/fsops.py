#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsops.py: filesystem operations run inside a cluster node, in batches.

The cluster tests start it with `nsenter` in a node: one process for many
operations, so a test does not pay a process start per file.  It reads a
JSON list of operations on stdin and prints a JSON list of results, one per
operation, each either {"ok": value} or {"errno": n}.  Paths are relative
to the mount point given as the first argument.

Operations (a list whose first item is the name):
  ["write", path, text]        open(O_WRONLY|O_CREAT|O_TRUNC), write, close
  ["atomic", path, text]       write path.tmp.<pid>, then rename (as PVE does)
  ["create", path, text]       open(O_CREAT|O_EXCL), write, close
  ["read", path]               the content, or errno
  ["stat", path]               [size, mtime]
  ["mkdir", path] ["rmdir", path] ["unlink", path] ["rename", from, to]
  ["utime", path, mtime]       utime(path, (mtime, mtime))
  ["truncate", path, size]     truncate(path, size)
  ["exists", path]             true/false
  ["listdir", path]            sorted names
  ["tree", path]               {relative path: [mode, uid, gid, size, mtime]} of
                               everything below path (stat, symlinks not
                               followed; names starting with "." skipped)
When the mount point is not mounted (the daemon not started yet, or
gone), every operation answers ENOTCONN instead of reaching the directory
below it.  With --stop-on-error the batch ends at the first failure.  With
--barrier DIR it creates DIR/ready.<pid> and waits (at most 60 s) for
DIR/go before the first operation, so that several nodes start together.
"""

import errno
import json
import os
import sys
import time


def write_all(fd, data):
    """write() until all is written: a short write is followed by another
    one, which reports the error (as a program's buffered write does)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run(mount, op):
    name, args = op[0], op[1:]
    p = os.path.join(mount, args[0]) if args else mount
    if name == "write" or name == "create":
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if name == "create" else os.O_TRUNC)
        fd = os.open(p, flags, 0o640)
        try:
            write_all(fd, args[1].encode())
        finally:
            os.close(fd)
        return len(args[1])
    if name == "atomic":
        tmp = "%s.tmp.%d" % (p, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            write_all(fd, args[1].encode())
        finally:
            os.close(fd)
        os.rename(tmp, p)
        return len(args[1])
    if name == "read":
        with open(p, "rb") as f:
            return f.read().decode(errors="replace")
    if name == "stat":
        st = os.stat(p)
        return [st.st_size, int(st.st_mtime)]
    if name == "mkdir":
        return os.mkdir(p)
    if name == "rmdir":
        return os.rmdir(p)
    if name == "unlink":
        return os.unlink(p)
    if name == "rename":
        return os.rename(p, os.path.join(mount, args[1]))
    if name == "utime":
        return os.utime(p, (args[1], args[1]))
    if name == "truncate":
        return os.truncate(p, args[1])
    if name == "exists":
        return os.path.exists(p)
    if name == "listdir":
        return sorted(os.listdir(p))
    if name == "tree":
        out = {}
        for top, dirs, files in os.walk(p):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for x in dirs + [f for f in files if not f.startswith(".")]:
                full = os.path.join(top, x)
                st = os.lstat(full)
                out[os.path.relpath(full, p)] = [st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                                 int(st.st_mtime)]
        return out
    raise ValueError("unknown operation %r" % name)


def main():
    mount = sys.argv[1]
    stop = "--stop-on-error" in sys.argv[2:]
    batch = json.load(sys.stdin)
    if "--barrier" in sys.argv[2:]:
        d = sys.argv[sys.argv.index("--barrier") + 1]
        open(os.path.join(d, "ready.%d" % os.getpid()), "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(d, "go")):
            if time.monotonic() > deadline:
                sys.exit("fsops: no go after 60 s")
            time.sleep(0.001)    # a spin on a barrier, not a synchronisation by time
    out = []
    # not mounted (the daemon not started yet, or gone): every operation
    # fails as on a dead mount, instead of going into the directory below
    if not os.path.ismount(mount):
        json.dump([{"errno": errno.ENOTCONN} for _ in batch], sys.stdout)
        return
    for op in batch:
        try:
            out.append({"ok": run(mount, op)})
        except OSError as e:
            out.append({"errno": e.errno})
            if stop:
                break
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
