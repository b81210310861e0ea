#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-cfsctl.py: cfsctl and libcfs against a running pmxcfs.  Needs root."""

import grp
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOP_BUILDDIR, main, read_file, test, write_file  # noqa: E402

CFSCTL = os.path.join(TOP_BUILDDIR, "tools", "cfsctl")
WWW = grp.getgrnam("www-data").gr_gid


def cfsctl(n, *args, stdin=b"", user=None, service=None):
    def become():
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
    cmd = [CFSCTL, "--service", service or n.ipc_name, "--mount", n.mnt] + list(args)
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


if __name__ == "__main__":
    sys.exit(main())
