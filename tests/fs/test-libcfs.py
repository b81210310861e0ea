#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-libcfs.py: the version cache, file registry, locks and change watch
of libcfs against a running pmxcfs, driven through tests/fs/cfs-script.
Needs root."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOP_BUILDDIR, main, read_file, test, wait_for, write_file  # noqa: E402

SCRIPT = os.path.join(TOP_BUILDDIR, "tests", "fs", "cfs-script")


class Client:
    """One cfs-script process: one libcfs handle."""

    def __init__(self, n):
        self.p = subprocess.Popen([SCRIPT, n.ipc_name, n.mnt], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def __call__(self, *words):
        self.p.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "cfs-script died"
        out = {}
        for part in line.rstrip("\n").split(" "):
            k, _, v = part.partition("=")
            if k in out:
                out[k] += " " + part
            else:
                out[k] = v
        if "text" in out:
            out["text"] = line.rstrip("\n").split(" text=", 1)[1]
        if "err" in out:
            out["err"] = line.rstrip("\n").split(" err=", 1)[1]
        for k in ("rc", "parses", "requests", "version", "waited_ms", "starttime", "id"):
            if k in out:
                out[k] = int(out[k])
        return out

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


E_UNKNOWN_FILE = -10005
E_ALREADY = -10006
E_NO_WRITER = -10007
E_LOCK_TIMEOUT = -10002


@test
def cache_rule(n):
    n.start()
    write_file(n.path("storage.cfg"), b"dir: local\n\tpath /var/lib/vz\n")
    c = Client(n)
    assert c("register", "storage.cfg")["rc"] == 0
    assert c("register", "storage.cfg")["rc"] == E_ALREADY
    assert c("register", "not-observed.cfg")["rc"] == E_UNKNOWN_FILE

    # before any cfs_update the versions are unknown: every read parses
    r1 = c("read", "storage.cfg")
    r2 = c("read", "storage.cfg")
    assert r1["rc"] == 0 and r2["parses"] == r1["parses"] + 1
    assert r1["text"] == "dir: local\\n\\tpath /var/lib/vz\\n", r1

    assert c("update")["rc"] == 0
    base = c("read", "storage.cfg")
    # unchanged: neither fetched nor parsed, however often it is read
    for _ in range(20):
        r = c("read", "storage.cfg")
        assert r["parses"] == base["parses"] and r["requests"] == base["requests"], (base, r)
    u = c("update")
    r = c("read", "storage.cfg")
    assert r["parses"] == base["parses"], "an update without a change re-parsed"

    # a write by another process: the next update sees the new version
    write_file(n.path("storage.cfg"), b"dir: other\n")
    r = c("read", "storage.cfg")
    assert r["parses"] == base["parses"], "re-parsed before cfs_update saw the change"
    assert c("update")["rc"] == 0
    r = c("read", "storage.cfg")
    assert r["parses"] == base["parses"] + 1 and r["text"] == "dir: other\\n", r

    # rename onto it and an mtime change both move the version
    write_file(n.path("storage.cfg.new"), b"dir: third\n")
    os.rename(n.path("storage.cfg.new"), n.path("storage.cfg"))
    c("update")
    r2 = c("read", "storage.cfg")
    assert r2["parses"] == r["parses"] + 1 and r2["text"] == "dir: third\\n"
    os.utime(n.path("storage.cfg"), (1000, 1000))
    c("update")
    r3 = c("read", "storage.cfg")
    assert r3["parses"] == r2["parses"] + 1

    # a missing file is parsed (exists = 0), and cached like any other
    assert c("register", "vzdump.conf")["rc"] == 0
    c("update")
    m = c("read", "vzdump.conf")
    assert m["rc"] == 0 and m["text"] == "<missing>"
    m2 = c("read", "vzdump.conf")
    assert m2["parses"] == m["parses"] and m2["requests"] == m["requests"], (m, m2)
    # a file registered without a writer cannot be written
    assert c("register", "corosync.conf", "ro")["rc"] == 0
    assert c("write", "corosync.conf", "x")["rc"] == E_NO_WRITER
    assert not os.path.exists(n.path("corosync.conf"))
    c.close()
    assert u["rc"] == 0


@test
def cache_flushed_by_restart(n):
    """Only the new start time can make this read parse again: the file's
    change counter reads 1 after each start (the counters start from the
    load), so its cached version matches the new daemon's."""
    n.start()
    write_file(n.path("datacenter.cfg"), b"keyboard: de\n")
    n.stop()
    n.start()   # the counter of datacenter.cfg is 1 now
    c = Client(n)
    c("register", "datacenter.cfg", "dc")
    c("update")
    assert c("version", "datacenter.cfg")["version"] == 1
    first = c("read", "datacenter.cfg")
    assert first["text"] == "\\nkeyboard: de\\n", first
    assert c("read", "datacenter.cfg")["parses"] == first["parses"]  # cached
    t0 = c("starttime")["starttime"]
    n.stop()
    # the start time has a resolution of one second
    wait_for(lambda: int(time.time()) > t0, timeout=3, what="the next second")
    n.start()
    assert c("update")["rc"] == 0
    assert c("starttime")["starttime"] != t0
    assert c("version", "datacenter.cfg")["version"] == 1  # the same version
    r = c("read", "datacenter.cfg")
    assert r["parses"] == first["parses"] + 1, "a new daemon did not flush the cache"
    c.close()


@test
def guest_configs_by_guest_version(n):
    n.start()
    conf = n.path("nodes/testnode1/qemu-server/100.conf")
    write_file(conf, b"name: a\n")
    write_file(n.path("nodes/testnode1/qemu-server/101.conf"), b"name: b\n")
    c = Client(n)
    c("register", "/qemu-server/")
    c("update")
    v = c("version", "nodes/testnode1/qemu-server/100.conf")
    assert v["rc"] == 1 and v["version"] > 0, v
    # the node part is not compared (as PVE::Cluster)
    assert c("version", "nodes/other/qemu-server/100.conf")["version"] == v["version"]
    assert c("version", "nodes/testnode1/lxc/100.conf")["rc"] == E_UNKNOWN_FILE
    r1 = c("read", "nodes/testnode1/qemu-server/100.conf")
    r2 = c("read", "nodes/testnode1/qemu-server/100.conf")
    assert r1["text"] == "name: a\\n" and r2["parses"] == r1["parses"]
    # a write to another guest leaves this one cached
    write_file(n.path("nodes/testnode1/qemu-server/101.conf"), b"name: c\n")
    c("update")
    assert c("read", "nodes/testnode1/qemu-server/100.conf")["parses"] == r1["parses"]
    write_file(conf, b"name: z\n")
    c("update")
    r3 = c("read", "nodes/testnode1/qemu-server/100.conf")
    assert r3["parses"] == r1["parses"] + 1 and r3["text"] == "name: z\\n"
    c.close()


@test
def write_file_atomic(n):
    n.start()
    c = Client(n)
    c("register", "datacenter.cfg", "dc")
    c("update")
    assert c("set", "datacenter.cfg", "keyboard", "fr")["rc"] == 0
    assert read_file(n.path("datacenter.cfg")) == b"\nkeyboard: fr\n"
    assert c("set", "datacenter.cfg", "max_workers", "zero")["rc"] == -22
    assert c("set", "datacenter.cfg", "max_workers", "3")["rc"] == 0
    # the write dropped the cache entry: this process sees its own write
    r = c("read", "datacenter.cfg")
    assert r["text"] == "\\nkeyboard: fr\\nmax_workers: 3\\n", r
    # no temporary file stays behind
    assert [f for f in os.listdir(n.mnt) if ".tmp." in f] == []

    c("register", "storage.cfg", "section")
    write_file(n.path("storage.cfg"), b"dir: local\n    path /var/lib/vz\n    disable\n")
    r = c("read", "storage.cfg")
    assert r["text"] == "dir: local\\n\\tdisable\\n\\tpath /var/lib/vz\\n\\n", r
    # a raw writer, and a read-only (corosync.conf-like) refusal
    c("register", "user.cfg")
    assert c("write", "user.cfg", "user:root@pam:1:0:::\\n")["rc"] == 0
    assert read_file(n.path("user.cfg")) == b"user:root@pam:1:0:::\n"
    c.close()


@test
def write_file_reports_failure(n):
    n.start()
    c = Client(n)
    c("register", "user.cfg")
    r = c("writen", "user.cfg", 1024 * 1024 + 1)
    assert r["rc"] == -27, r  # EFBIG from the daemon, seen at write or close
    assert not os.path.exists(n.path("user.cfg"))
    assert [f for f in os.listdir(n.mnt) if ".tmp." in f] == []
    c.close()


@test
def locks_exclude(n):
    n.start()
    a, b = Client(n), Client(n)
    # a holds the lock for 1.5 s; b waits for it and gets it afterwards
    out = {}

    def hold():
        out["a"] = a("lock", "test-x", 10, 1500)
    t = threading.Thread(target=hold)
    t.start()
    wait_for(lambda: os.path.isdir(n.path("priv/lock/test-x")), what="a to hold the lock")
    rb = b("lock", "test-x", 10, 0)
    t.join()
    assert out["a"]["rc"] == 7 and rb["rc"] == 7, (out, rb)
    assert rb["waited_ms"] >= 500, rb  # it had to wait for a
    assert not os.path.exists(n.path("priv/lock/test-x")), "the lock was not released"

    # a lock that stays taken: timeout with the original's message
    os.makedirs(n.path("priv/lock/held"))
    t0 = time.monotonic()
    r = b("lock", "held", 2, 0)
    assert r["rc"] == E_LOCK_TIMEOUT, r
    assert r["err"] == "cfs-lock 'held' error: got lock request timeout", r
    assert 1.0 <= time.monotonic() - t0 < 5
    a.close()
    b.close()


@test
def locks_contended_by_processes(n):
    """Four processes increment a counter file under one lock; no update is
    lost."""
    n.start()
    write_file(n.path("counter"), b"0")
    code = ("import os, sys; p = sys.argv[1]; v = int(open(p).read()); "
            "t = p + '.tmp.%d' % os.getpid(); open(t, 'w').write(str(v + 1)); "
            "os.rename(t, p)")
    cfsctl = os.path.join(TOP_BUILDDIR, "tools", "cfsctl")
    loop = ("for i in 1 2 3 4 5; do \"$0\" --service \"$1\" --mount \"$2\" lock counter -- "
            "python3 -c \"$3\" \"$4\" || exit 1; done")
    ps = [subprocess.Popen(["sh", "-c", loop, cfsctl, n.ipc_name, n.mnt, code,
                            n.path("counter")]) for _ in range(4)]
    for p in ps:
        assert p.wait(timeout=120) == 0
    assert read_file(n.path("counter")) == b"20"


@test
def lock_expired_holder(n):
    """A holder past the lifetime (shortened to 2 s) is removed by the
    unlock request of a waiting client."""
    n.start(extra=("-f", "--lock-timeout", "2"))
    os.makedirs(n.path("priv/lock/stale"))
    c = Client(n)
    r = c("lock", "stale", 10, 0)
    assert r["rc"] == 7, r
    assert r["waited_ms"] >= 1000, r
    c.close()


@test
def watch_wakes_on_change(n):
    n.start()
    write_file(n.path("storage.cfg"), b"a")
    c = Client(n)
    # known version 0 of an existing file: answered at once
    r = c("watch", "storage.cfg", 0, 1000)
    assert r["rc"] == 1 and r["version"] > 0
    v = r["version"]
    # unchanged: times out
    t0 = time.monotonic()
    assert c("watch", "storage.cfg", v, 300)["rc"] == 0
    assert time.monotonic() - t0 >= 0.25
    # a change while the client waits wakes it
    timer = threading.Timer(0.3, write_file, (n.path("storage.cfg"), b"b"))
    timer.start()
    t0 = time.monotonic()
    r = c("watch", "storage.cfg", v, 10000)
    timer.join()
    assert r["rc"] == 1 and r["version"] > v, r
    assert time.monotonic() - t0 < 5
    # other files do not wake a file watch; the tree watch wakes for any
    v2 = r["version"]
    timer = threading.Timer(0.2, write_file, (n.path("other.cfg"), b"x"))
    timer.start()
    assert c("watch", "storage.cfg", v2, 600)["rc"] == 0
    timer.join()
    tv = c("watch", "-", 0, 1000)["version"]
    timer = threading.Timer(0.2, os.mkdir, (n.path("newdir"),))
    timer.start()
    r = c("watch", "-", tv, 10000)
    timer.join()
    assert r["rc"] == 1 and r["version"] > tv
    # deletion: the version becomes 0
    timer = threading.Timer(0.2, os.unlink, (n.path("storage.cfg"),))
    timer.start()
    r = c("watch", "storage.cfg", v2, 10000)
    timer.join()
    assert r["rc"] == 1 and r["version"] == 0, r
    c.close()


@test
def watch_lost_with_the_daemon(n):
    """A restart loses the watches: the read says so (-ENOTCONN), and a
    watch made again on the new daemon works."""
    n.start()
    write_file(n.path("storage.cfg"), b"a")
    c = Client(n)
    r = c("watchadd", "storage.cfg", 0)
    assert r["rc"] == 0 and r["version"] > 0
    v = r["version"]
    r = c("watchadd", "storage.cfg", v)
    wid = r["rc"]
    assert wid > 0, r
    assert c("watchread", 0)["rc"] == 0  # nothing yet
    write_file(n.path("storage.cfg"), b"b")
    r = c("watchread", 5000)
    assert r["rc"] == 1 and r["id"] == wid and r["version"] > v, r
    v = r["version"]
    assert c("watchadd", "storage.cfg", v)["rc"] > 0
    n.stop()
    r = c("watchread", 5000)
    assert r["rc"] == -107, r  # ENOTCONN
    n.start()
    # an ordinary request makes the new connection; watches made on it
    # then work (notices included)
    assert c("update")["rc"] == 0
    r = c("watchadd", "storage.cfg", 0)
    v = r["version"]
    wid = c("watchadd", "storage.cfg", v)["rc"]
    assert wid > 0
    write_file(n.path("storage.cfg"), b"c")
    r = c("watchread", 5000)
    assert r["rc"] == 1 and r["id"] == wid and r["version"] != v, r
    c.close()


@test
def watch_permissions_and_limits(n):
    n.start()
    from harness import ipc
    import grp
    www = grp.getgrnam("www-data").gr_gid
    req = (0).to_bytes(8, "little") + b"priv/shadow.cfg\0"
    assert ipc(n, 0x10001, req, user=(33, www))[0] == -1  # EPERM
    rc, data = ipc(n, 0x10001, (0).to_bytes(8, "little") + b"storage.cfg\0", user=(33, www))
    assert rc == 0 and len(data) == 12
    assert ipc(n, 0x10001, (0).to_bytes(8, "little") + b"../x\0")[0] == -22
    assert ipc(n, 0x10001, b"\0\0\0")[0] == -22
    assert ipc(n, 0x10002, (0).to_bytes(4, "little"))[0] == 0
    # the daemon is fine afterwards
    assert json.loads(ipc(n, 1)[1])["starttime"] > 0
    # 1,024 watches a connection, then ENOSPC
    write_file(n.path("storage.cfg"), b"a")
    c = Client(n)
    v = c("watchadd", "storage.cfg", 0)["version"]
    ids = [c("watchadd", "storage.cfg", v)["rc"] for _ in range(1024)]
    assert len(set(ids)) == 1024 and min(ids) > 0
    assert c("watchadd", "storage.cfg", v)["rc"] == -28
    # removing all of them makes room again
    assert c("watchremove", 0)["rc"] == 0
    assert c("watchadd", "storage.cfg", v)["rc"] > 0
    c.close()


if __name__ == "__main__":
    sys.exit(main())
