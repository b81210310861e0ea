#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""gen-dcdb-seeds.py: write the seed scripts of fuzz-dcdb.

The script language is described at the top of tests/fuzz/fuzz-dcdb.c;
this file builds valid scripts of it: joins with a state exchange and an
update transfer, changes of every kind, a verification round, locks, a
fake leader, fakes that misbehave.  The seeds are committed in
tests/fuzz/corpus/dcdb/ (their names start with "seed-"); run this again
after a change of the language:

    tests/fuzz/gen-dcdb-seeds.py [DIR]      # default: the corpus directory

To follow what a seed does: FUZZ_DCDB_TRACE=1 tests/fuzz/fuzz-dcdb FILE
(in a build directory).
"""
import os
import struct
import sys

# as in fuzz-dcdb.c: known_paths, the real nodes, the fakes
KNOWN_PATHS = [
    "corosync.conf", "priv", "priv/lock", "priv/lock/a", "nodes", "nodes/n1",
    "nodes/n1/qemu-server", "nodes/n1/qemu-server/100.conf", "nodes/n1/lxc",
    "nodes/n1/lxc/100.conf", "storage.cfg", "a", "a/b", "/a/../b", "", "priv/lock/b",
    "nodes/n2", "nodes/n2/qemu-server", "nodes/n2/qemu-server/100.conf", "nodes/n2/lxc",
    "nodes/n2/lxc/101.conf", "nodes/n1/qemu-server/101.conf", "priv/lock/a/x",
    "priv/authkey.key", "user.cfg", "b", "a/b/c", "/", "//a//b/", "./a", "a/.",
    "nodes/n1/openvz/102.conf",
]
A, B = 0, 1                      # (2, 102), (3, 103)
F1, F4, F1B, F2B = 0, 1, 2, 3    # (1, 101), (4, 104), (1, 201), (2, 202)

# dcdb subtypes and DFSM types (cluster.md §1.3, §2.2)
WRITE, MKDIR, DELETE, RENAME, CREATE, MTIME, UNLOCK_REQUEST, UNLOCK = range(1, 9)
SYNC_START, STATE, UPDATE, UPDATE_COMPLETE, VERIFY_REQUEST, VERIFY = range(1, 7)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def string(s):
    if s in KNOWN_PATHS:
        return bytes([0xE0 + KNOWN_PATHS.index(s)])
    b = s.encode()
    assert len(b) < 0xE0
    return bytes([len(b)]) + b


def change(sub, path, to="", data=b"", off=0, fl=0):
    """MSG"""
    if isinstance(data, str):
        data = data.encode()
    return bytes([sub - 1, fl]) + u32(off) + string(path) + string(to) + u16(len(data)) + data


class Script:
    def __init__(self):
        self.b = bytearray()

    def op(self, code, a, rest=b""):
        self.b += bytes([code, a]) + rest
        return self

    def join(self, n):
        return self.op(0, n)

    def leave(self, n, refused=False):
        return self.op(1, n, bytes([1 if refused else 0]))

    def fakes(self, mask):
        return self.op(2, mask)

    def step(self, k=255):
        return self.op(3, k)

    def raw(self, f, data):
        return self.op(4, f, u16(len(data)) + data)

    def state(self, f, t, payload=b"", time=0, epoch=None, version=None):
        fl = (1 if epoch is not None else 0) | (2 if version is not None else 0)
        rest = bytes([t, fl]) + u32(time)
        if epoch is not None:
            rest += b"".join(u32(v) for v in epoch)
        if version is not None:
            rest += u32(version)
        return self.op(5, f, rest + u16(len(payload)) + payload)

    def normal(self, f, sub, count, time, payload):
        return self.op(6, f, bytes([sub]) + u16(count) + u32(time) + u16(len(payload)) + payload)

    def dcdb(self, f, count, time, msg):
        return self.op(7, f, u16(count) + u32(time) + msg)

    def local(self, n, msg):
        return self.op(8, n, msg)

    def unlock(self, n, path, fl=0):
        return self.op(9, n, string(path) + bytes([fl]))

    def tick(self, n):
        return self.op(10, n)

    def quorate(self, n, v):
        return self.op(11, n, bytes([v]))

    def clock(self, v):
        return self.op(12, v)

    def copy(self, f, n, fl=0):
        return self.op(13, f | n << 2, bytes([fl]))

    def tree(self, f, n, fl=0, k=0):
        return self.op(14, f | n << 2, bytes([fl, k]))

    def verify(self, f, n, fl=0):
        return self.op(15, f | n << 2, bytes([fl]))

    def sendfail(self, n, k=0):
        return self.op(16, n, bytes([k]))

    def dbfail(self, n, skip=0, k=0):
        return self.op(17, n, bytes([skip, k]))


def populate(s, n):
    """a few entries, made on node n"""
    s.local(n, change(MKDIR, "nodes"))
    s.local(n, change(MKDIR, "nodes/n1"))
    s.local(n, change(MKDIR, "nodes/n1/qemu-server"))
    s.local(n, change(CREATE, "nodes/n1/qemu-server/100.conf"))
    s.local(n, change(WRITE, "nodes/n1/qemu-server/100.conf", data="memory: 512\n"))
    s.local(n, change(CREATE, "storage.cfg"))
    s.local(n, change(WRITE, "storage.cfg", data="dir: local\n\tpath /var/lib/vz\n"))
    return s.step()


def seeds():
    out = {}

    # one node alone: SYNCED at once, its changes apply
    s = Script().join(A).step()
    populate(s, A)
    out["seed-alone"] = s

    # A has data, B joins empty: SYNC_START from A (the lowest), two
    # STATEs, A leads and sends its entries, B commits; then B writes
    s = Script().join(A).step()
    populate(s, A)
    s.join(B).step()
    s.local(B, change(WRITE, "storage.cfg", data="dir: other\n", fl=1)).step()
    out["seed-join-update"] = s

    # both in sync, then every kind of change from both, interleaved
    s = Script().join(A).join(B).step()
    s.local(A, change(CREATE, "a"))
    s.local(B, change(MKDIR, "nodes"))
    s.step(1)
    s.local(A, change(WRITE, "a", data="x" * 40, off=10))
    s.local(B, change(WRITE, "a", data="", off=3, fl=1))   # truncate to 3
    s.local(A, change(MTIME, "a", off=12345))
    s.local(B, change(RENAME, "a", to="storage.cfg"))
    s.local(A, change(CREATE, "corosync.conf"))
    s.local(A, change(WRITE, "corosync.conf", data="totem {}\n"))
    s.step()
    s.local(B, change(DELETE, "storage.cfg"))
    s.local(A, change(DELETE, "nodes"))
    s.local(A, change(RENAME, "/a/../b", to="c"))           # refused by the encoder
    s.step()
    out["seed-changes"] = s

    # changes sent while the exchange runs are queued and applied after it
    s = Script().join(A).step()
    populate(s, A)
    s.join(B).step(0)                                          # the confchg only
    s.local(A, change(CREATE, "a"))
    s.local(B, change(CREATE, "a/b"))
    s.local(B, change(MKDIR, "priv"))
    s.step()
    out["seed-queued"] = s

    # a verification round: A (the lowest) asks, both answer, equal
    s = Script().join(A).join(B).step()
    populate(s, B)
    s.tick(A).step().tick(A).step()
    out["seed-verify"] = s

    # a lock: made, asked to unlock too early, expired, unlocked
    s = Script().join(A).join(B).step()
    s.local(B, change(MKDIR, "priv"))
    s.local(B, change(MKDIR, "priv/lock"))
    s.local(B, change(MKDIR, "priv/lock/a"))
    s.step()
    s.unlock(B, "priv/lock/a").step()
    s.clock(40).unlock(B, "priv/lock/a").step()                # 160 s later
    s.local(A, change(UNLOCK, "priv/lock/a", fl=2)).step()
    out["seed-lock"] = s

    # B leaves, both change, B comes back: a second exchange
    s = Script().join(A).join(B).step()
    populate(s, A)
    s.leave(B).step()
    s.local(A, change(CREATE, "a")).local(B, change(CREATE, "a/b")).step()
    s.join(B).step()
    s.quorate(B, 0).local(A, change(WRITE, "a", data="q")).step()
    out["seed-rejoin"] = s

    # a fake (1, 101) is the lowest: it starts the exchange, its state
    # equals A's so it leads (the first in order); B joins and gets A's
    # entries from the fake
    s = Script().fakes(1).join(A).step()
    s.state(F1, SYNC_START).step()
    s.copy(F1, A).step()
    populate(s, A)
    s.join(B).step()
    s.state(F1, SYNC_START).step()
    s.copy(F1, A).step()
    s.tree(F1, A).step()
    s.local(B, change(CREATE, "a")).step()
    s.state(F1, VERIFY_REQUEST, struct.pack("<Q", 1)).verify(F1, A).step()
    out["seed-fake-leader"] = s

    # the fake claims a newer tree than it then sends: B cannot commit
    s = Script().fakes(1).join(A).join(B).step()
    s.state(F1, SYNC_START).step()
    s.copy(F1, A, fl=1).step()
    s.tree(F1, A, fl=1, k=0).step()
    out["seed-fake-bad-tree"] = s

    # a fake in the group sending changes, then garbage: each piece makes
    # both real nodes leave; they join again and resync with the fake
    s = Script().join(A).join(B).step()
    populate(s, A)
    s.fakes(2).step()                                          # (4, 104) joins
    s.copy(F4, A).step()
    s.dcdb(F4, 1, 1700000000, change(CREATE, "a"))
    s.dcdb(F4, 2, 1700000000, change(WRITE, "a", data="from a fake"))
    s.dcdb(F4, 3, 1700000000, change(UNLOCK_REQUEST, "priv/lock/a"))
    s.step()
    in_sync = [lambda: s.raw(F4, b"\x00" * 10),                       # too short
               lambda: s.normal(F4, 9, 4, 0, b""),                     # unknown subtype
               lambda: s.normal(F4, WRITE, 5, 0, b"\x01\x02\x03"),     # bad payload
               lambda: s.state(F4, VERIFY, b"\x01" * 39)]               # bad length
    for bad in in_sync:
        bad()
        s.step().join(A).join(B).step().copy(F4, A).step()
    # during the exchange, instead of the fake's state
    in_exchange = [lambda: s.state(F4, 7, b""),                        # unknown type
                   lambda: s.state(F4, STATE, b"\x01" * 40),           # bad index
                   lambda: s.state(F4, SYNC_START, version=2)]         # newer protocol
    for bad in in_exchange:
        s.step().join(A).join(B).fakes(0).fakes(2).step()
        bad()
        s.step()
    out["seed-fake-garbage"] = s

    # corosync refuses what A sends: its change is never applied (the
    # result says so), it leaves and joins again; a database write fails
    # on B: B stops for good
    s = Script().join(A).join(B).step()
    populate(s, A)
    s.sendfail(A).local(A, change(CREATE, "b")).step()
    s.leave(A, refused=True).step().join(A).step()
    s.dbfail(B).local(A, change(CREATE, "user.cfg")).step()
    s.join(B).step()
    out["seed-failures"] = s

    # A leads but cannot send all its entries: B's commit fails
    s = Script().join(A).step()
    populate(s, A)
    s.join(B).step(0).step(0)                                  # confchg, SYNC_START
    s.step(0).sendfail(A, 1).step()                            # A's state, then B's: 2 updates lost
    out["seed-lost-updates"] = s

    # what a fake sends that no node can apply: refused alike everywhere
    s = Script().join(A).join(B).fakes(2).step()
    s.copy(F4, A).step()
    s.dcdb(F4, 1, 0, change(RENAME, "/a/../b", to="c"))
    s.dcdb(F4, 2, 0, change(CREATE, "a", fl=0x80, to="x", data="d"))
    s.dcdb(F4, 3, 0, change(UNLOCK, "priv/lock/../a"))
    s.step()
    out["seed-fake-refused"] = s

    # B waits for A's entries when a malformed UPDATE comes first
    s = Script().join(A).step()
    populate(s, A)
    s.fakes(2).step().copy(F4, A).step()                       # (4, 104) agrees with A
    s.join(B).step(0).step(0)                                  # confchg, SYNC_START
    s.copy(F4, A).state(F4, UPDATE, b"\x00" * 20).step()
    out["seed-fake-bad-update"] = s

    # a join while changes wait in the queue: they are sent again
    s = Script().join(A).join(B).step()
    s.fakes(1).step()
    s.local(A, change(CREATE, "a")).local(B, change(CREATE, "storage.cfg")).step()
    s.fakes(3).step()                                          # (4, 104) joins too
    s.state(F1, SYNC_START).step()
    s.copy(F1, A).copy(F4, A).step()
    s.tree(F1, A).step()
    out["seed-fake-resend"] = s
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "dcdb")
    os.makedirs(out_dir, exist_ok=True)
    for name, s in sorted(seeds().items()):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(bytes(s.b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
