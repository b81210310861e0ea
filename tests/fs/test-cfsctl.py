#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-cfsctl.py: cfsctl and libcfs against a running pmxcfs.  Needs root."""

import grp
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOP_BUILDDIR, main, read_file, test, wait_for, write_file  # noqa: E402

CFSCTL = os.path.join(TOP_BUILDDIR, "tools", "cfsctl")
WWW = grp.getgrnam("www-data").gr_gid


def cfsctl(n, *args, stdin=b"", user=None, service=None):
    def become():
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
    cmd = [CFSCTL, "--service", service or n.ipc_name, "--mount", n.mnt,
           "--data-dir", n.data] + list(args)
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60,
                       preexec_fn=become if user else None)
    return r.returncode, r.stdout, r.stderr


@test
def help_version_usage(n):
    r = subprocess.run([CFSCTL, "--help"], capture_output=True)
    assert r.returncode == 0 and b"Exit status" in r.stdout
    r = subprocess.run([CFSCTL, "--version"], capture_output=True)
    assert r.returncode == 0 and r.stdout.startswith(b"cfsctl ")
    assert subprocess.run([CFSCTL], capture_output=True).returncode == 1
    assert subprocess.run([CFSCTL, "frobnicate"], capture_output=True).returncode == 1
    assert subprocess.run([CFSCTL, "--bogus"], capture_output=True).returncode == 1


@test
def status_and_json_views(n):
    n.start()
    write_file(n.path("nodes/testnode1/qemu-server/100.conf"), b"name: a\ncores: 4\n")
    rc, out, err = cfsctl(n, "status")
    assert rc == 0 and b"node:      testnode1" in out and b"guests:    1" in out, (out, err)
    rc, out, _ = cfsctl(n, "--json", "status")
    st = json.loads(out)
    assert st["nodename"] == "testnode1" and st["guests"] == 1 and st["cluster"] is False
    rc, out, _ = cfsctl(n, "members")
    assert json.loads(out) == {"nodename": "testnode1", "version": 0}
    rc, out, _ = cfsctl(n, "versions")
    assert json.loads(out)["vmlist"] >= 1
    rc, out, _ = cfsctl(n, "guests")
    assert json.loads(out)["ids"]["100"]["node"] == "testnode1"
    rc, out, _ = cfsctl(n, "props", "100", "cores", "name")
    assert rc == 0 and json.loads(out) == {"100": {"cores": "4", "name": "a"}}
    rc, _, err = cfsctl(n, "props", "555", "name")
    assert rc == 2, err


@test
def kv_rrd_and_log(n):
    n.start()
    assert cfsctl(n, "kv", "set", "kv/test", "hello")[0] == 0
    rc, out, _ = cfsctl(n, "kv", "get", "kv/test")
    assert rc == 0 and out == b"hello\n"
    rc, out, _ = cfsctl(n, "kv", "get", "kv/test", "testnode1")
    assert out == b"hello\n"
    assert cfsctl(n, "kv", "set", "kv/test")[0] == 0
    assert cfsctl(n, "kv", "get", "kv/test")[0] == 2
    assert cfsctl(n, "kv", "frob")[0] == 1
    assert cfsctl(n, "kv", "set", "rrd/pve2-node/testnode1", "100:1:2")[0] == 0
    rc, out, _ = cfsctl(n, "rrd")
    assert rc == 0 and out == b"pve2-node/testnode1:100:1:2\n", out
    rc, out, _ = cfsctl(n, "log", "-n", "5")
    assert rc == 0 and b"starting cluster log" in out, out
    rc, out, _ = cfsctl(n, "--json", "log", "--user", "root")
    assert json.loads(out)["data"][0]["msg"] == "starting cluster log"
    rc, out, _ = cfsctl(n, "--json", "log", "--user", "nobody")
    assert json.loads(out)["data"] == []
    rc, _, err = cfsctl(n, "log", "add", "-p", "4", "-t", "backup", "--user", "admin@pve",
                        "job", "done")
    assert rc == 0, err
    rc, out, _ = cfsctl(n, "--json", "log", "-n", "1")
    e = json.loads(out)["data"][0]
    assert (e["msg"], e["tag"], e["user"], e["pri"]) == ("job done", "backup", "admin@pve", 4), e
    assert cfsctl(n, "log", "add", "-p", "9", "x")[0] == 1
    assert cfsctl(n, "log", "add")[0] == 1


@test
def read_and_write(n):
    n.start()
    data = b"dir: local\n\tpath /var/lib/vz\n"
    rc, _, err = cfsctl(n, "write", "storage.cfg", stdin=data)
    assert rc == 0, err
    assert read_file(n.path("storage.cfg")) == data
    rc, out, _ = cfsctl(n, "read", "storage.cfg")
    assert rc == 0 and out == data
    assert cfsctl(n, "read", "missing.cfg")[0] == 2
    assert [x for x in os.listdir(n.mnt) if ".tmp." in x] == []
    rc, _, err = cfsctl(n, "write", "no/such/dir.cfg", stdin=b"x")
    assert rc == 2, err


@test
def permissions_and_errors(n):
    n.start()
    os.makedirs(n.path("priv"), exist_ok=True)
    write_file(n.path("priv/secret"), b"x")
    www = (WWW, WWW)
    assert cfsctl(n, "status", user=www)[0] == 0
    assert cfsctl(n, "read", "priv/secret", user=www)[0] == 4
    assert cfsctl(n, "kv", "set", "kv/x", "1", user=www)[0] == 4
    rc, _, err = cfsctl(n, "status", user=(65534, 65534))
    assert rc == 4 and b"not permitted" in err, (rc, err)  # refused at connect
    rc, _, err = cfsctl(n, "status", service="pmxcfs-test-nobody-serves-this")
    assert rc == 3 and b"cfsctl: status:" in err, (rc, err)


@test
def lock_runs_a_command(n):
    n.start()
    rc, _, err = cfsctl(n, "lock", "t1", "--", "sh", "-c", "test -d \"$0\"/priv/lock/t1",
                        n.mnt)
    assert rc == 0, err  # the lock is held while the command runs
    assert not os.path.exists(n.path("priv/lock/t1"))  # and released after
    assert cfsctl(n, "lock", "t1", "--", "sh", "-c", "exit 3")[0] == 3
    assert not os.path.exists(n.path("priv/lock/t1"))
    os.makedirs(n.path("priv/lock/busy"))
    rc, _, err = cfsctl(n, "lock", "--timeout", "1", "busy", "--", "true")
    assert rc == 5 and b"cfs-lock 'busy' error: got lock request timeout" in err, (rc, err)
    assert cfsctl(n, "lock", "t1")[0] == 1
    assert cfsctl(n, "lock", "t1", "--", "/nonexistent/cmd")[0] == 127


@test
def watch_prints_changes(n):
    n.start()
    write_file(n.path("storage.cfg"), b"0")
    cmd = [CFSCTL, "--service", n.ipc_name, "watch", "--once", "--timeout", "20000",
           "storage.cfg"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    # change the file until the watcher has seen a change (it may start
    # watching after the first writes)
    i = 0

    def changed():
        nonlocal i
        i += 1
        write_file(n.path("storage.cfg"), b"%d" % i)
        return p.poll() is not None
    wait_for(changed, timeout=20, what="cfsctl watch to see a change", interval=0.1)
    out = p.stdout.read()
    assert p.returncode == 0, out
    path, version = out.split()
    assert path == b"storage.cfg" and int(version) > 0
    # nothing changes: it times out with status 5
    rc, out, _ = cfsctl(n, "watch", "--once", "--timeout", "200", "/")
    assert rc == 5 and out == b""


@test
def backup_verify_restore(n):
    n.start()
    for i in range(50):
        write_file(n.path("f%02d.cfg" % i), b"v1 %d\n" % i)
    backup = os.path.join(n.base, "backup.db")
    # a backup taken while another process writes is one consistent state
    stop = []

    def writer():
        j = 0
        while not stop:
            write_file(n.path("busy.cfg"), b"%d" % j)
            j += 1
    import threading
    t = threading.Thread(target=writer)
    t.start()
    try:
        rc, out, err = cfsctl(n, "--json", "backup", backup)
    finally:
        stop.append(1)
        t.join()
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["entries"] >= 51 and summary["version"] > 50
    rc, out, err = cfsctl(n, "--json", "verify", backup)
    assert rc == 0 and json.loads(out)["checksum"] == summary["checksum"], (out, err)
    rc, out, err = cfsctl(n, "verify")  # the live database
    assert rc == 0 and b"checksum:" in out, err

    # later changes, then restore the backup: the daemon must be stopped
    for i in range(50):
        write_file(n.path("f%02d.cfg" % i), b"v2\n")
    rc, _, err = cfsctl(n, "restore", backup)
    assert rc == 3 and b"stop it first" in err, (rc, err)
    n.stop()
    rc, _, err = cfsctl(n, "restore", backup)
    assert rc == 0, err
    assert os.path.exists(os.path.join(n.data, "config.db.before-restore"))
    n.start()
    for i in range(50):
        assert read_file(n.path("f%02d.cfg" % i)) == b"v1 %d\n" % i
    rc, out, _ = cfsctl(n, "--json", "verify")
    assert json.loads(out)["checksum"] == summary["checksum"]


@test
def verify_and_restore_refuse_damage(n):
    n.start()
    write_file(n.path("a.cfg"), b"a")
    good = os.path.join(n.base, "good.db")
    assert cfsctl(n, "backup", good)[0] == 0
    n.stop()
    live = os.path.join(n.data, "config.db")
    before = read_file(live)
    # not a database at all
    junk = os.path.join(n.base, "junk.db")
    write_file(junk, b"this is not sqlite" * 100)
    rc, _, err = cfsctl(n, "verify", junk)
    assert rc == 6, (rc, err)
    rc, _, err = cfsctl(n, "restore", junk)
    assert rc == 6 and b"not a usable database" in err, (rc, err)
    # a database whose rows break the tree (a file whose parent is missing)
    bad = os.path.join(n.base, "bad.db")
    subprocess.run(["cp", good, bad], check=True)
    subprocess.run(["sqlite3", bad, "UPDATE tree SET parent = 999999 WHERE name = 'a.cfg';"],
                   check=True)
    rc, _, err = cfsctl(n, "verify", bad)
    assert rc == 6 and b"parent" in err, (rc, err)
    assert cfsctl(n, "restore", bad)[0] == 6
    assert read_file(live) == before, "a refused restore changed the live database"
    assert cfsctl(n, "verify", os.path.join(n.base, "missing.db"))[0] == 2
    n.start()
    assert read_file(n.path("a.cfg")) == b"a"


if __name__ == "__main__":
    sys.exit(main())
