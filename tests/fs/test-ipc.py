#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-ipc.py: the pve2 IPC service of a running pmxcfs (cluster.md §4).

Every request code with good and malformed input, as root, as a www-data
client and as another user, through libqb (tests/fs/ipc-client).  Needs root.
"""

import errno
import grp
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ipc, main, read_file, test, write_file  # noqa: E402

WWW = grp.getgrnam("www-data").gr_gid
AS_WWW = (WWW, WWW)       # www-data: read only
AS_NOBODY = (65534, 65534)


def req(code, payload=b""):
    """a whole request as PVE::IPCC builds it"""
    return struct.pack("<iiii", code, 0, 16 + len(payload), 0) + payload


def name_field(s):
    return s.encode() + b"\0" * (256 - len(s))


@test
def versions_members_guests(n):
    n.start()
    err, data = ipc(n, 1)
    assert err == 0, err
    v = json.loads(data)
    assert v == json.loads(read_file(n.path(".version")))
    err, data = ipc(n, 2)
    assert err == 0 and json.loads(data) == {"nodename": "testnode1", "version": 0}
    write_file(n.path("nodes/testnode1/qemu-server/100.conf"), b"name: a\n")
    err, data = ipc(n, 3)
    assert err == 0 and json.loads(data)["ids"]["100"]["type"] == "qemu"
    # these take no payload
    for code in (1, 2, 3, 10):
        assert ipc(n, code, b"x")[0] == -errno.EINVAL, code


@test
def get_config(n):
    n.start()
    write_file(n.path("storage.cfg"), b"dir: local\n")
    os.makedirs(n.path("priv"), exist_ok=True)
    write_file(n.path("priv/secret"), b"s3cret")
    write_file(n.path("empty"), b"")
    assert ipc(n, 6, b"storage.cfg\0") == (0, b"dir: local\n")
    assert ipc(n, 6, b"//storage.cfg\0") == (0, b"dir: local\n")
    assert ipc(n, 6, b"empty\0") == (0, b"")
    assert ipc(n, 6, b"priv/secret\0") == (0, b"s3cret")
    assert ipc(n, 6, b"nope\0")[0] == -errno.ENOENT
    assert ipc(n, 6, b"nodes\0")[0] == -errno.ENOENT  # a directory
    assert ipc(n, 6, b"storage.cfg")[0] == -errno.EINVAL  # no NUL
    assert ipc(n, 6, b"")[0] == -errno.EINVAL
    assert ipc(n, 6, b"a\0b\0")[0] == -errno.EINVAL
    # www-data reads, but not private files
    assert ipc(n, 6, b"storage.cfg\0", user=AS_WWW) == (0, b"dir: local\n")
    assert ipc(n, 6, b"priv/secret\0", user=AS_WWW)[0] == -errno.EPERM
    assert ipc(n, 6, b"nodes/testnode1/priv\0", user=AS_WWW)[0] == -errno.EPERM


@test
def permissions(n):
    n.start()
    r = ipc(n, 1, user=AS_NOBODY)
    assert r[0] == "refused", r
    assert "connection from bad user 65534" in n.log()
    assert ipc(n, 1, user=AS_WWW)[0] == 0
    assert ipc(n, 4, name_field("kv/x") + b"1\0", user=AS_WWW)[0] == -errno.EPERM
    assert ipc(n, 7, bytes([6, 5, 4]) + b"root\0tag\0msg\0", user=AS_WWW)[0] == -errno.EPERM
    # root with another group is not root
    assert ipc(n, 1, user=(0, 65534))[0] == "refused"


@test
def status_store(n):
    n.start()
    assert ipc(n, 4, name_field("kv/foo") + b"bar\0") == (0, b"")
    assert ipc(n, 5, name_field("kv/foo") + name_field("")) == (0, b"bar\0")
    assert ipc(n, 5, name_field("kv/foo") + name_field("testnode1")) == (0, b"bar\0")
    assert ipc(n, 5, name_field("kv/foo") + name_field("othernode"))[0] == -errno.ENOENT
    assert ipc(n, 5, name_field("kv/none") + name_field(""))[0] == -errno.ENOENT
    ver = json.loads(ipc(n, 1)[1])["kvstore"]["testnode1"]
    assert ver == {"kv/foo": 0}, ver
    ipc(n, 4, name_field("kv/foo") + b"baz\0")
    assert json.loads(ipc(n, 1)[1])["kvstore"]["testnode1"] == {"kv/foo": 1}
    assert ipc(n, 4, name_field("kv/foo")) == (0, b"")  # delete
    assert ipc(n, 5, name_field("kv/foo") + name_field(""))[0] == -errno.ENOENT
    assert ipc(n, 4, name_field("kv/big") + b"x" * 32769)[0] == -errno.EFBIG
    assert ipc(n, 4, name_field("kv/max") + b"x" * 32768)[0] == 0
    assert ipc(n, 4, b"short")[0] == -errno.EINVAL
    assert ipc(n, 4, b"x" * 256 + b"v")[0] == -errno.EINVAL  # name without NUL
    assert ipc(n, 5, name_field("kv/foo"))[0] == -errno.EINVAL
    # rrd and nodeip are not key/value entries
    assert ipc(n, 4, name_field("rrd/pve2-node/testnode1") + b"1:2:3\0") == (0, b"")
    assert ipc(n, 5, name_field("rrd/pve2-node/testnode1") + name_field(""))[0] == -errno.ENOENT
    err, dump = ipc(n, 10)
    assert err == 0 and dump == b"pve2-node/testnode1:1:2:3\n\0", dump
    assert read_file(n.path(".rrd")) == b"pve2-node/testnode1:1:2:3\n"
    assert ipc(n, 4, name_field("rrd/x") + b"no nul")[0] == -errno.EINVAL
    assert ipc(n, 4, name_field("nodeip") + b"192.0.2.1\0") == (0, b"")


@test
def cluster_log(n):
    n.start()
    msg = b'quote " and \\ backslash and newline\n'
    assert ipc(n, 7, bytes([5, 10, 5]) + b"alice@pam\0task\0" + msg + b"\0") == (0, b"")
    assert ipc(n, 7, bytes([9, 5, 5]) + b"root\0task\0not logged\0") == (0, b"")
    err, data = ipc(n, 8, struct.pack("<IIII", 0, 0, 0, 0) + b"\0")
    log = json.loads(data)["data"]
    # msg as the original stores and shows it (cluster.md §3.10): the quote
    # reads back, a control character becomes #NNN, a backslash stays
    shown = 'quote " and \\ backslash and newline#010'
    assert log[0]["user"] == "alice@pam" and log[0]["msg"] == shown, log[0]
    assert log[0]["pri"] == 5 and log[0]["tag"] == "task" and log[0]["node"] == "testnode1"
    assert log[-1]["msg"] == "starting cluster log"
    assert not [e for e in log if e["msg"] == "not logged"]
    err, data = ipc(n, 8, struct.pack("<IIII", 0, 0, 0, 0) + b"alice@pam\0")
    assert [e["user"] for e in json.loads(data)["data"]] == ["alice@pam"]
    err, data = ipc(n, 8, struct.pack("<IIII", 1, 0, 0, 0) + b"\0")
    assert len(json.loads(data)["data"]) == 1
    assert json.loads(read_file(n.path(".clusterlog")))["data"][0]["user"] == "alice@pam"
    # malformed
    assert ipc(n, 7, bytes([5, 10, 5]) + b"alice@pam\0task\0")[0] == -errno.EINVAL
    assert ipc(n, 7, bytes([5, 3, 5]) + b"alice@pam\0task\0m\0")[0] == -errno.EINVAL
    assert ipc(n, 7, bytes([5, 0, 0]) + b"\0")[0] == -errno.EINVAL
    assert ipc(n, 7, bytes([5, 5, 5]) + b"root\0task\0msg")[0] == -errno.EINVAL
    assert ipc(n, 8, b"\0" * 16)[0] == -errno.EINVAL


@test
def guest_config_properties(n):
    n.start()
    write_file(n.path("nodes/testnode1/qemu-server/100.conf"),
               b"name: web\ncores: 2\ntags: a;b\n\n[snap1]\nname: old\n")
    write_file(n.path("nodes/testnode1/lxc/200.conf"), b"hostname: ct\nname:\n")
    write_file(n.path("nodes/testnode1/qemu-server/300.conf"), b"")
    err, data = ipc(n, 11, struct.pack("<I", 100) + b"name\0")
    assert err == 0 and json.loads(data) == {"100": {"name": "web"}}, data
    err, data = ipc(n, 11, struct.pack("<I", 0) + b"name\0")
    assert json.loads(data) == {"100": {"name": "web"}}, data
    err, data = ipc(n, 13, struct.pack("<IB", 0, 2) + b"cores\0hostname\0")
    assert json.loads(data) == {"100": {"cores": "2"}, "200": {"hostname": "ct"}}, data
    assert ipc(n, 11, struct.pack("<I", 999) + b"name\0")[0] == -errno.ENOENT
    assert ipc(n, 11, struct.pack("<I", 300) + b"name\0")[0] == -errno.EIO
    assert ipc(n, 11, struct.pack("<I", 50) + b"name\0")[0] == -errno.EINVAL
    assert ipc(n, 11, struct.pack("<I", 100) + b"\0")[0] == -errno.EINVAL
    assert ipc(n, 13, struct.pack("<IB", 0, 0))[0] == -errno.EINVAL
    assert ipc(n, 13, struct.pack("<IB", 0, 2) + b"cores\0")[0] == -errno.EINVAL
    assert ipc(n, 13, struct.pack("<IB", 0, 1) + b"Cores\0")[0] == -errno.EINVAL
    assert ipc(n, 13, struct.pack("<IB", 0, 1) + b"cores\0x")[0] == -errno.EINVAL


@test
def verify_token(n):
    n.start()
    os.makedirs(n.path("priv"), exist_ok=True)
    assert ipc(n, 12, b"root@pam!t1 secret\0")[0] == -errno.ENOENT  # no file
    write_file(n.path("priv/token.cfg"), b"root@pam!t1 secret\nuser@pve!t2 other\n")
    assert ipc(n, 12, b"root@pam!t1 secret\0") == (0, b"")
    assert ipc(n, 12, b"user@pve!t2 other\0") == (0, b"")
    assert ipc(n, 12, b"root@pam!t1 secre\0")[0] == -errno.ENOENT
    assert ipc(n, 12, b"root@pam!t1 secret\nx\0")[0] == -errno.EINVAL
    assert ipc(n, 12, b"\0")[0] == -errno.EINVAL
    assert ipc(n, 12, b"a\0b\0")[0] == -errno.EINVAL


@test
def malformed_requests(n):
    n.start()
    assert ipc(n, None, raw=req(9))[0] == -errno.ECHRNG
    assert ipc(n, None, raw=req(77, b"abc"))[0] == -errno.ECHRNG
    assert ipc(n, None, raw=req(-1))[0] == -errno.ECHRNG
    # a size field that disagrees with what arrived
    bad = struct.pack("<iiii", 1, 0, 999, 0)
    assert ipc(n, None, raw=bad)[0] == -errno.EINVAL
    bad = struct.pack("<iiii", 6, 0, 10, 0) + b"storage.cfg\0"
    assert ipc(n, None, raw=bad)[0] == -errno.EINVAL
    assert "bad request" in n.log()
    # random garbage: answered, never a crash
    rnd = random.Random(1)
    for i in range(300):
        code = rnd.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, rnd.randint(-5, 40)])
        payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
        size = 16 + len(payload) if rnd.random() < 0.8 else rnd.randint(0, 1000)
        r = ipc(n, None, raw=struct.pack("<iiii", code, 0, size, 0) + payload)
        assert isinstance(r[0], int), r
    assert ipc(n, 1)[0] == 0


if __name__ == "__main__":
    sys.exit(main())
