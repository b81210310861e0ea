#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-fs.py: one pmxcfs node on a real FUSE mount (core.md §1, §4).

Every operation with its errno, modes and owners, the generated files and
symlinks, locks, the page cache and its invalidation (with a negative
control), coalesced writes, the 1 MiB limit, a failed commit reported by
close(), read-only mode without quorum, start-up and shutdown, a second
instance, daemonizing, and durability across kill -9.  Needs root.
"""

import errno
import grp
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PMXCFS, Node, expect_errno, is_mounted, main, proc_stat,  # noqa: E402
                     read_file, test, wait_for, write_file)

WWW = grp.getgrnam("www-data").gr_gid
MiB = 1024 * 1024


def try_unlock(lock):
    """utime(lock, 0, 0): True once it removed the (expired) lock."""
    try:
        os.utime(lock, (0, 0))
        return True
    except OSError as e:
        assert e.errno == errno.EACCES, e
        return False


def mode(path):
    st = os.lstat(path)
    return stat.filemode(st.st_mode), st.st_uid, st.st_gid


@test
def modes_and_owners(n):
    n.start()
    os.makedirs(n.path("nodes/testnode1/priv/sub"), exist_ok=True)
    os.mkdir(n.path("dir"))
    write_file(n.path("file.cfg"), b"x")
    os.makedirs(n.path("priv"), exist_ok=True)
    write_file(n.path("priv/secret"), b"x")
    write_file(n.path("nodes/testnode1/priv/key"), b"x")
    write_file(n.path("dir/101.mount"), b"x")
    write_file(n.path("dir/vps.start"), b"x")
    write_file(n.path("dir/0101.mount"), b"x")
    expected = {
        "": "drwxr-xr-x",
        "dir": "drwxr-xr-x",
        "file.cfg": "-rw-r-----",
        "priv": "drwx------",
        "priv/secret": "-rw-------",
        "nodes/testnode1/priv": "drwx------",
        "nodes/testnode1/priv/sub": "drwx------",
        "nodes/testnode1/priv/key": "-rw-------",
        "dir/101.mount": "-rwxr-----",
        "dir/vps.start": "-rwxr-----",
        "dir/0101.mount": "-rw-r-----",
        "local": "lrwxr-xr-x",
        "qemu-server": "lrwxr-xr-x",
        ".version": "-r--r-----",
        ".members": "-r--r-----",
        ".vmlist": "-r--r-----",
        ".rrd": "-r--r-----",
        ".clusterlog": "-r--r-----",
        ".debug": "-rw-r-----",
    }
    for p, m in expected.items():
        got = mode(n.path(p))
        assert got == (m, 0, WWW), "%s: %r, expected %s root:www-data" % (p, got, m)
    st = os.stat(n.path("dir"))
    assert st.st_nlink == 2
    st = os.stat(n.path("file.cfg"))
    assert st.st_nlink == 1 and st.st_size == 1
    # chmod/chown accept only what is presented
    os.chmod(n.path("file.cfg"), 0o640)
    expect_errno(errno.EPERM, os.chmod, n.path("file.cfg"), 0o644)
    os.chmod(n.path("priv/secret"), 0o600)
    expect_errno(errno.EPERM, os.chmod, n.path("priv/secret"), 0o640)
    os.chmod(n.path("dir"), 0o640)  # directories too, as the original
    os.chown(n.path("file.cfg"), 0, WWW)
    os.chown(n.path("file.cfg"), -1, -1)
    expect_errno(errno.EPERM, os.chown, n.path("file.cfg"), 1, -1)
    expect_errno(errno.EPERM, os.chown, n.path("file.cfg"), -1, 0)
    assert mode(n.path("file.cfg"))[0] == "-rw-r-----"


@test
def file_operations(n):
    n.start()
    p = n.path("a.cfg")
    write_file(p, b"hello\n")
    assert read_file(p) == b"hello\n"
    with open(p, "ab") as f:
        f.write(b"more\n")
    assert read_file(p) == b"hello\nmore\n"
    with open(p, "r+b") as f:
        f.seek(2)
        f.write(b"XY")
    assert read_file(p) == b"heXYo\nmore\n"
    os.truncate(p, 3)
    assert read_file(p) == b"heX"
    os.truncate(p, 6)
    assert read_file(p) == b"heX\0\0\0"
    # O_EXCL on an existing file
    expect_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    # mknod of a regular file works, of a FIFO not
    os.mknod(n.path("node"), 0o640 | stat.S_IFREG)
    assert os.path.isfile(n.path("node"))
    expect_errno(errno.ENOSYS, os.mknod, n.path("fifo"), 0o640 | stat.S_IFIFO)
    expect_errno(errno.ENOSYS, os.symlink, "a.cfg", n.path("sym"))
    expect_errno(errno.EPERM, os.link, p, n.path("hard"))
    expect_errno(errno.EOPNOTSUPP, os.setxattr, p, "user.x", b"1")
    expect_errno(errno.EOPNOTSUPP, os.getxattr, p, "user.x")
    # fsync is fine
    fd = os.open(p, os.O_WRONLY)
    os.write(fd, b"Z")
    os.fsync(fd)
    os.close(fd)
    assert read_file(p)[:1] == b"Z"
    # unlink
    os.unlink(p)
    expect_errno(errno.ENOENT, os.stat, p)
    expect_errno(errno.ENOENT, os.unlink, p)
    expect_errno(errno.ENOENT, open, n.path("missing/x"), "w")
    write_file(n.path("y" * 255), b"ok")
    assert read_file(n.path("y" * 255)) == b"ok"


@test
def directory_operations(n):
    n.start()
    os.mkdir(n.path("d"))
    expect_errno(errno.EEXIST, os.mkdir, n.path("d"))
    write_file(n.path("d/f"), b"1")
    expect_errno(errno.ENOTEMPTY, os.rmdir, n.path("d"))
    expect_errno(errno.ENOTDIR, os.rmdir, n.path("d/f"))
    expect_errno(errno.EISDIR, os.unlink, n.path("d"))
    expect_errno(errno.ENOTDIR, os.mkdir, n.path("d/f/x"))
    names = set(os.listdir(n.path()))
    assert {"local", "qemu-server", "lxc", "openvz", ".version", ".members", ".vmlist",
            ".rrd", ".clusterlog", ".debug", "d", "nodes"} <= names, names
    # a big directory lists every name once
    os.mkdir(n.path("big"))
    for i in range(1500):
        write_file(n.path("big/f%04d" % i), b"")
    lst = os.listdir(n.path("big"))
    assert len(lst) == 1500 and len(set(lst)) == 1500
    with os.scandir(n.path("big")) as it:
        kinds = {e.is_file() for e in it}
    assert kinds == {True}
    os.unlink(n.path("d/f"))
    os.rmdir(n.path("d"))
    assert not os.path.exists(n.path("d"))
    # the root's own entries cannot be removed, renamed or created over
    expect_errno(errno.EACCES, os.unlink, n.path(".version"))
    expect_errno(errno.EACCES, os.unlink, n.path("local"))
    expect_errno(errno.EEXIST, os.mkdir, n.path(".members"))
    write_file(n.path("x.cfg"), b"1")
    expect_errno(errno.EACCES, os.rename, n.path("x.cfg"), n.path(".version"))
    expect_errno(errno.EACCES, os.rename, n.path(".vmlist"), n.path("y.cfg"))
    expect_errno(errno.EBUSY, os.rmdir, n.mnt)


@test
def rename_semantics(n):
    n.start()
    write_file(n.path("a"), b"A")
    write_file(n.path("b"), b"B")
    ino = os.stat(n.path("a")).st_ino
    os.rename(n.path("a"), n.path("b"))
    assert read_file(n.path("b")) == b"A"
    assert os.stat(n.path("b")).st_ino == ino
    assert not os.path.exists(n.path("a"))
    os.mkdir(n.path("d1"))
    os.mkdir(n.path("d2"))
    os.rename(n.path("d1"), n.path("d3"))  # empty directories move
    write_file(n.path("d3/f"), b"")
    expect_errno(errno.ENOTEMPTY, os.rename, n.path("d3"), n.path("d4"))
    assert os.path.isdir(n.path("d2"))  # the original drops it from memory
    os.rename(n.path("b"), n.path("d3/b"))
    assert read_file(n.path("d3/b")) == b"A"
    # temp file + rename, as PVE::Tools::file_set_contents does
    write_file(n.path("cfg.tmp.123"), b"new\n")
    write_file(n.path("cfg"), b"old\n")
    os.rename(n.path("cfg.tmp.123"), n.path("cfg"))
    assert read_file(n.path("cfg")) == b"new\n"


@test
def times_and_statfs(n):
    n.start()
    write_file(n.path("f"), b"x")
    os.utime(n.path("f"), (5, 1000))
    assert os.stat(n.path("f")).st_mtime == 1000
    os.utime(n.path("f"))
    assert abs(os.stat(n.path("f")).st_mtime - time.time()) < 5
    expect_errno(errno.EACCES, os.utime, n.path(".version"), (1, 1))
    expect_errno(errno.EACCES, os.utime, n.mnt, (1, 1))
    sv = os.statvfs(n.mnt)
    assert sv.f_bsize == 4096 and sv.f_blocks == 32768, sv
    assert sv.f_files == 262144 and sv.f_namemax == 256, sv
    free = sv.f_bfree
    write_file(n.path("g"), b"\0" * 8192)
    assert os.statvfs(n.mnt).f_bfree == free - 2
    assert os.stat(n.path("g")).st_blocks == 16  # 512-byte units: du is right


@test
def file_size_limit(n):
    n.start()
    fd = os.open(n.path("big"), os.O_CREAT | os.O_WRONLY, 0o640)
    assert os.write(fd, b"\1" * (MiB + 1)) == MiB  # short write at the limit
    expect_errno(errno.EFBIG, os.write, fd, b"x")
    os.close(fd)
    assert os.stat(n.path("big")).st_size == MiB
    expect_errno(errno.EFBIG, os.truncate, n.path("big"), MiB + 1)
    write_file(n.path("exact"), b"\2" * MiB)
    assert read_file(n.path("exact")) == b"\2" * MiB


@test
def truncate_then_read_zeros(n):
    # the original stores NULL content here and crashes on the next read
    n.start()
    write_file(n.path("empty"), b"")
    os.truncate(n.path("empty"), 100)
    assert read_file(n.path("empty")) == b"\0" * 100
    n.stop()
    n.start()
    assert read_file(n.path("empty")) == b"\0" * 100


@test
def generated_files(n):
    n.start()
    ver = json.loads(read_file(n.path(".version")))
    keys = list(ver)
    assert keys[:4] == ["starttime", "clinfo", "vmlist", "corosync.conf"], keys
    assert keys[-2:] == ["mapping/usb.cfg", "kvstore"], keys
    assert len(keys) == 3 + 43 + 1
    assert ver["kvstore"] == {"testnode1": {}}
    assert abs(ver["starttime"] - time.time()) < 60
    members = json.loads(read_file(n.path(".members")))
    assert members == {"nodename": "testnode1", "version": 0}, members
    assert json.loads(read_file(n.path(".vmlist"))) == {"version": ver["vmlist"]}
    log = json.loads(read_file(n.path(".clusterlog")))
    assert log["data"][0]["msg"] == "starting cluster log", log
    assert log["data"][0]["user"] == "root" and log["data"][0]["tag"] == "cluster"
    assert read_file(n.path(".rrd")) == b""
    # always current: a change shows at once, with no cache in the way
    before = ver["storage.cfg"]
    write_file(n.path("storage.cfg"), b"dir: local\n")
    assert json.loads(read_file(n.path(".version")))["storage.cfg"] == before + 2
    write_file(n.path("nodes/testnode1/qemu-server/100.conf"), b"memory: 512\n")
    write_file(n.path("nodes/testnode1/lxc/200.conf"), b"memory: 512\n")
    vml = json.loads(read_file(n.path(".vmlist")))
    assert vml["ids"]["100"]["type"] == "qemu" and vml["ids"]["100"]["node"] == "testnode1"
    assert vml["ids"]["200"]["type"] == "lxc"
    assert os.stat(n.path(".vmlist")).st_size == len(read_file(n.path(".vmlist")))
    # VMID uniqueness through the filesystem
    os.makedirs(n.path("nodes/other/qemu-server"))
    expect_errno(errno.EEXIST, write_file, n.path("nodes/other/qemu-server/100.conf"), b"")
    expect_errno(errno.EEXIST, write_file, n.path("nodes/testnode1/lxc/100.conf"), b"")
    # generated files are read-only
    expect_errno(errno.EACCES, write_file, n.path(".version"), b"x")
    expect_errno(errno.EIO, os.truncate, n.path(".members"), 0)


@test
def debug_switch(n):
    n.start()
    assert read_file(n.path(".debug")) == b"0\n"
    write_file(n.path(".debug"), b"1\n")
    assert read_file(n.path(".debug")) == b"1\n"
    wait_for(lambda: "enable debug mode" in n.log(), 5, "the debug log line")
    write_file(n.path(".debug"), b"0\n")
    assert read_file(n.path(".debug")) == b"0\n"
    expect_errno(errno.EIO, write_file, n.path(".debug"), b"x\n")
    expect_errno(errno.EIO, write_file, n.path(".debug"), b"1")
    fd = os.open(n.path(".debug"), os.O_WRONLY)
    expect_errno(errno.EIO, os.pwrite, fd, b"1\n", 1)
    os.close(fd)


@test
def symlinks(n):
    n.start()
    assert os.readlink(n.path("local")) == "nodes/testnode1"
    assert os.readlink(n.path("qemu-server")) == "nodes/testnode1/qemu-server"
    assert os.readlink(n.path("lxc")) == "nodes/testnode1/lxc"
    assert os.readlink(n.path("openvz")) == "nodes/testnode1/openvz"
    assert os.lstat(n.path("local")).st_size == len("nodes/testnode1")
    write_file(n.path("local/x.cfg"), b"via link\n")
    assert read_file(n.path("nodes/testnode1/x.cfg")) == b"via link\n"
    write_file(n.path("qemu-server/101.conf"), b"cores: 1\n")
    assert os.path.exists(n.path("nodes/testnode1/qemu-server/101.conf"))


def start_with_lock(n, name):
    """start with a 1 s lock lifetime and take lock @name; its path"""
    n.args += ["--lock-timeout", "1"]
    n.start()
    os.makedirs(n.path("priv/lock"), exist_ok=True)
    lock = n.path("priv/lock", name)
    os.mkdir(lock)
    return lock


@test
def locks(n):
    lock = start_with_lock(n, "mylock")
    expect_errno(errno.EEXIST, os.mkdir, lock)
    # a fresh lock: the unlock request fails EACCES
    expect_errno(errno.EACCES, os.utime, lock, (0, 0))
    # the holder refreshes it
    os.utime(lock, (time.time(), time.time()))
    # after the lifetime, the unlock request removes it
    wait_for(lambda: try_unlock(lock), 10, "the lock to expire")
    assert not os.path.exists(lock)
    os.mkdir(lock)  # taken again
    expect_errno(errno.EACCES, os.rename, lock, n.path("priv/lock/other"))
    os.rmdir(lock)


@test
def page_cache_serves_reads(n):
    n.start(extra=("-f", "-d"))
    write_file(n.path("cached.cfg"), b"content\n" * 100)
    read_file(n.path("cached.cfg"))

    def reads():
        return n.log().count("read inode")
    before = reads()
    # positive control: the counter sees reads (the first one after writing
    # a partial page must ask the daemon)
    assert before >= 1, "no read was logged at all"
    for _ in range(20):
        assert read_file(n.path("cached.cfg")) == b"content\n" * 100
    assert reads() == before, "reads of an unchanged file reached the daemon"
    # a change through the mount is visible at once
    write_file(n.path("cached.cfg"), b"changed\n")
    assert read_file(n.path("cached.cfg")) == b"changed\n"


def expired_lock_vanishes(n):
    lock = start_with_lock(n, "l")
    assert os.path.isdir(lock)  # the kernel now caches the entry
    wait_for(lambda: try_unlock(lock), 10, "the lock to expire")
    return os.path.exists(lock)


@test
def invalidation_of_a_change_the_kernel_did_not_make(n):
    # removing an expired lock is a change the kernel did not ask for: only
    # the daemon's invalidation makes it disappear from the kernel's cache
    assert expired_lock_vanishes(n) is False


@test
def invalidation_negative_control(n):
    # the same without invalidations: the kernel keeps showing the lock
    n.args += ["--test-no-invalidate"]
    assert expired_lock_vanishes(n) is True


@test
def coalesced_writes(n):
    n.start()
    counter = lambda: json.loads(read_file(n.path(".version")))["datacenter.cfg"]  # noqa: E731
    before = counter()
    fd = os.open(n.path("datacenter.cfg"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
    for i in range(256):
        os.write(fd, bytes([i % 256]) * 4096)
    # readers see the bytes before the commit
    assert os.stat(n.path("datacenter.cfg")).st_size == MiB
    os.close(fd)
    # create + one commit: two changes (the original makes 257)
    assert counter() == before + 2, (before, counter())
    data = read_file(n.path("datacenter.cfg"))
    assert len(data) == MiB and data[4096 * 255] == 255
    # open(O_TRUNC) + write + close of an existing file: one change
    before = counter()
    write_file(n.path("datacenter.cfg"), b"keyboard: en-us\n")
    assert counter() == before + 1
    assert read_file(n.path("datacenter.cfg")) == b"keyboard: en-us\n"
    n.stop()
    n.start()
    assert read_file(n.path("datacenter.cfg")) == b"keyboard: en-us\n"


@test
def unlinked_while_open(n):
    n.start()
    write_file(n.path("f"), b"still here\n")
    fd = os.open(n.path("f"), os.O_RDWR)
    os.unlink(n.path("f"))
    assert os.pread(fd, 100, 0) == b"still here\n"
    os.fstat(fd)
    os.write(fd, b"dropped")
    os.close(fd)
    assert not os.path.exists(n.path("f"))
    assert not [x for x in os.listdir(n.mnt) if x.startswith(".fuse_hidden")]


@test
def failed_commit_is_reported_by_close(n):
    # the database directory on a 1 MiB tmpfs: commits fail once it is full
    os.makedirs(n.data)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", n.data])
    try:
        # ballast that the "administrator" removes later to free space
        ballast = os.path.join(n.data, "ballast")
        write_file(ballast, b"\0" * 400 * 1024)
        n.start()
        chunk = os.urandom(200 * 1024)
        failed = None
        for i in range(40):
            try:
                write_file(n.path("f%d" % i), chunk)
            except OSError as e:
                failed = (i, e.errno)
                break
        assert failed is not None, "the tmpfs never filled up"
        assert failed[1] in (errno.ENOSPC, errno.EIO), failed
        i = failed[0]
        # nothing half-written is shown
        assert read_file(n.path("f%d" % i)) == b""
        # space comes back: writes work again, without a restart
        os.unlink(ballast)

        def write_ok():
            try:
                write_file(n.path("again"), b"after the disk recovered\n")
                return True
            except OSError:
                return False
        wait_for(write_ok, 10, "a write to succeed after freeing space")
        n.stop()
        n.start()
        assert read_file(n.path("again")) == b"after the disk recovered\n"
    finally:
        n.stop()
        subprocess.call(["umount", "-l", n.data])


@test
def read_only_without_quorum(n):
    # a corosync.conf in the database means cluster mode; until the
    # replication issue lands, cluster mode is "not quorate".  The node name
    # is an address literal so that it resolves without touching /etc/hosts.
    n.nodename = "192.0.2.10"
    n.start()
    write_file(n.path("corosync.conf"), b"totem {\n config_version: 1\n}\n")
    write_file(n.path("keep.cfg"), b"kept\n")
    os.mkdir(n.path("dir"))
    n.stop()
    n.start()
    assert "cluster mode" in n.log()
    p = n.path("keep.cfg")
    assert read_file(p) == b"kept\n"
    assert mode(p)[0] == "-r--r-----"
    assert mode(n.path("dir"))[0] == "dr-xr-xr-x"
    assert mode(n.path("local"))[0] == "lr-xr-xr-x"
    expect_errno(errno.EACCES, write_file, n.path("new.cfg"), b"")
    expect_errno(errno.EACCES, write_file, p, b"x")
    fd = os.open(p, os.O_WRONLY)  # opening works, the write fails
    expect_errno(errno.EACCES, os.write, fd, b"x")
    os.close(fd)
    expect_errno(errno.EACCES, os.truncate, p, 0)
    expect_errno(errno.EACCES, os.mkdir, n.path("d2"))
    expect_errno(errno.EACCES, os.rmdir, n.path("dir"))
    expect_errno(errno.EACCES, os.unlink, p)
    expect_errno(errno.EACCES, os.rename, p, n.path("x"))
    expect_errno(errno.EACCES, os.utime, p, (1, 1))
    # still working: listing, statfs, no-op chmod, .debug
    os.listdir(n.mnt)
    os.statvfs(n.mnt)
    os.chmod(p, 0o640)
    write_file(n.path(".debug"), b"1\n")
    assert read_file(n.path(".debug")) == b"1\n"
    assert read_file(p) == b"kept\n"


@test
def cluster_mode_needs_a_node_address(n):
    n.start()
    write_file(n.path("corosync.conf"), b"totem {\n}\n")
    n.stop()
    n.nodename = "localhost"  # resolves to loopback only
    n.start(wait=False)
    rc = n.proc.wait(20)
    assert rc == 255, rc
    assert ("Unable to resolve node name 'localhost' to a non-loopback IP address - "
            "missing entry in '/etc/hosts' or DNS?") in n.log()
    n.proc = None
    assert not is_mounted(n.mnt)


@test
def second_instance_refused(n):
    n.start()
    other = Node(base=n.base)
    rc = subprocess.call(other.cmdline(["-f", "--wait-lock", "1"]),
                         stdout=subprocess.DEVNULL, stderr=open(n.base + "/log2", "w"),
                         timeout=30)
    assert rc == 255, rc
    msg = open(n.base + "/log2").read()
    assert "unable to acquire pmxcfs lock: another instance is running (pid %d)" % n.pid in msg
    assert is_mounted(n.mnt) and read_file(n.path(".debug")) == b"0\n"


@test
def sigterm_unmounts_and_keeps_everything(n):
    n.start()
    assert not os.path.exists(os.path.join(n.run, "cfs-restart-flag"))
    assert open(n.pidfile).read() == "%d\n" % n.pid
    for i in range(50):
        write_file(n.path("f%d.cfg" % i), b"data %d\n" % i)
    fd = os.open(n.path("open.cfg"), os.O_CREAT | os.O_WRONLY, 0o640)
    os.write(fd, b"written, not yet closed\n")
    rc = n.stop()
    assert rc == 0, rc
    try:
        os.close(fd)
    except OSError as e:
        assert e.errno == errno.ENOTCONN, e
    assert not is_mounted(n.mnt)
    assert os.path.exists(os.path.join(n.run, "cfs-restart-flag"))
    assert not os.path.exists(n.pidfile)
    assert "exit proxmox configuration filesystem (0)" in n.log()
    n.start()
    assert not os.path.exists(os.path.join(n.run, "cfs-restart-flag"))
    for i in range(50):
        assert read_file(n.path("f%d.cfg" % i)) == b"data %d\n" % i
    assert read_file(n.path("open.cfg")) == b"written, not yet closed\n"
    st = os.stat(os.path.join(n.data, "config.db"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    # SIGHUP stops it too (as the original; there is nothing to reload)
    assert n.stop(signal.SIGHUP) == 0


@test
def daemonizes_once_serving(n):
    rc = subprocess.call(n.cmdline(), stdout=subprocess.DEVNULL,
                         stderr=open(n.logfile, "a"), timeout=30)
    assert rc == 0, n.log()
    # the parent exits only once the tree is served
    assert is_mounted(n.mnt)
    assert read_file(n.path(".debug")) == b"0\n"
    pid = int(open(n.pidfile).read())
    assert pid != os.getpid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "the daemon to exit")
    assert not is_mounted(n.mnt)


@test
def bad_options(n):
    r = subprocess.run([PMXCFS, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 1 and "option parsing failed" in r.stderr, r
    r = subprocess.run([PMXCFS, "extra"], capture_output=True, text=True)
    assert r.returncode == 255 and "too many arguments" in r.stderr, r
    r = subprocess.run([PMXCFS, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--foreground" in r.stdout and "--local" in r.stdout, r
    assert "--recover-damaged-db" in r.stdout, r
    r = subprocess.run([PMXCFS, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pmxcfs "), r


def damaged_files(n):
    """The data dir's config.db* files: name -> content."""
    return {f: read_file(os.path.join(n.data, f)) for f in sorted(os.listdir(n.data))
            if f.startswith("config.db")}


def database_with_wal(n):
    """A real database of many pages and a WAL that holds the last changes
    (the daemon was killed before a checkpoint); returns (config.db,
    config.db-wal)."""
    n.start()
    os.mkdir(n.path("dir"))
    for i in range(100):
        write_file(n.path("dir/f%d.cfg" % i), b"%d\n" % i * 300)
    assert n.stop() == 0      # checkpointed: the file holds all of it
    n.start()
    write_file(n.path("dir/last.cfg"), b"in the WAL only\n")
    n.kill9()
    subprocess.call(["umount", "-l", n.mnt])
    db = os.path.join(n.data, "config.db")
    assert os.path.getsize(db + "-wal") > 0, "no WAL after kill -9"
    return db, db + "-wal"


def refused_start(n, extra=()):
    n.start(extra=("-f",) + tuple(extra), wait=False)
    rc = n.proc.wait(20)
    n.proc = None
    assert rc == 255, rc
    assert not is_mounted(n.mnt)


@test
def damaged_database_refused(n):
    os.makedirs(n.data)
    db = os.path.join(n.data, "config.db")
    write_file(db, b"this is not a database" * 100)
    write_file(db + "-wal", b"a WAL that must stay as it is")
    refused_start(n)
    log = n.log()
    assert "memdb_open failed - unable to open database" in log
    assert "not a database" in log
    assert "the database is damaged and was left as it is" in log, log
    assert "start with --recover-damaged-db to move it aside" in log, log
    assert read_file(db) == b"this is not a database" * 100
    # sqlite deletes a WAL when it closes the last connection: not here
    assert read_file(db + "-wal") == b"a WAL that must stay as it is"


@test
def damaged_database_recovered_with_the_option(n):
    db, wal = database_with_wal(n)
    # overwrite the file: what the WAL does not hold is lost to sqlite
    write_file(db, b"\xde\xad" * (os.path.getsize(db) // 2))
    before = damaged_files(n)
    refused_start(n)
    assert "the database is damaged" in n.log()
    after = damaged_files(n)
    assert {k: v for k, v in after.items() if k != "config.db-shm"} == \
        {k: v for k, v in before.items() if k != "config.db-shm"}, "the refusal changed a file"
    # with the option: moved aside (every byte kept), a new database
    offset = len(n.log())
    n.start(extra=("-f", "--recover-damaged-db"))
    log = n.log()[offset:]
    assert "crit: database '%s' is damaged" % db in log, log
    assert "--recover-damaged-db: moved it to '%s.damaged-" % db in log, log
    assert "(with its -wal and -shm files) and starting with a new database" in log, log
    aside = [f for f in os.listdir(n.data) if f.startswith("config.db.damaged-")]
    name = [f for f in aside if re.fullmatch(r"config\.db\.damaged-\d{8}T\d{6}Z", f)]
    assert len(name) == 1, aside
    name = name[0]
    assert sorted(aside) == sorted(name + k[len("config.db"):] for k in after), (aside, after)
    assert read_file(os.path.join(n.data, name)) == before["config.db"]
    assert read_file(os.path.join(n.data, name + "-wal")) == before["config.db-wal"]
    # a new, empty tree that works and lasts
    assert not os.path.exists(n.path("dir"))
    assert os.path.isdir(n.path("nodes/testnode1"))
    write_file(n.path("new.cfg"), b"after the recovery\n")
    assert n.stop() == 0
    n.start()
    assert read_file(n.path("new.cfg")) == b"after the recovery\n"


@test
def damaged_rows_recovered_and_other_errors_left_alone(n):
    n.start()
    write_file(n.path("a.cfg"), b"a\n")
    assert n.stop() == 0
    db = os.path.join(n.data, "config.db")
    # a valid sqlite file whose tree fails the checks (no version row)
    r = subprocess.run(["sqlite3", db, "DELETE FROM tree WHERE inode = 0;"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    good = read_file(db)
    refused_start(n)
    assert "'__version__' row (inode 0) is missing" in n.log()
    assert read_file(db) == good
    n.start(extra=("-f", "--recover-damaged-db"))
    assert not os.path.exists(n.path("a.cfg"))
    aside = [f for f in os.listdir(n.data)
             if re.fullmatch(r"config\.db\.damaged-\d{8}T\d{6}Z", f)]
    assert [read_file(os.path.join(n.data, f)) for f in aside] == [good], aside
    assert n.stop() == 0
    # an error that is not damage (here: config.db is a directory) is
    # never moved aside, option or not
    shutil.rmtree(n.data)
    os.makedirs(os.path.join(n.data, "config.db"))
    offset = len(n.log())
    refused_start(n, ["--recover-damaged-db"])
    log = n.log()[offset:]
    assert "memdb_open failed - unable to open database" in log, log
    assert "not damage of its content: left as it is" in log, log
    assert os.path.isdir(os.path.join(n.data, "config.db"))
    assert not [f for f in os.listdir(n.data) if "damaged" in f]


WRITER = r"""
import os, sys, zlib
mnt, logpath = sys.argv[1], sys.argv[2]
log = open(logpath, "a", buffering=1)
i = 0
while True:
    body = os.urandom(64 + (i * 977) % 20000)
    data = b"%08d %08x\n" % (len(body), zlib.crc32(body)) + body
    name = os.path.join(mnt, "burst", "f%06d" % i)
    try:
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
        for k in range(0, len(data), 4096):
            os.write(fd, data[k:k + 4096])
        os.close(fd)
    except OSError:
        break
    log.write("%d\n" % i)
    i += 1
"""


def guard_of(pid):
    """The mount guard (pmxcfs/guard.h) among pid's children: its pid."""
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            kids += [int(k) for k in f.read().split()]
    guards = [k for k in kids if open("/proc/%d/comm" % k).read().strip() == "pmxcfs-guard"]
    assert len(guards) == 1, "children of pmxcfs %d: %s" % (pid, kids)
    return guards[0]


def ended(pid):
    """Gone, or a zombie nobody reaps (pid 1 of a container may not)."""
    fields = proc_stat("/proc/%d/stat" % pid)
    return fields is None or fields[0] in ("Z", "X")


GUARD_LOG = "died without unmounting: its FUSE connection"


@test
def mount_guard(n):
    """A daemon killed with kill -9 leaves a mount that fails at once: its
    guard process aborts the FUSE connection (without it a helper thread
    blocked in the kernel could keep the process, and so the mount, hung
    for ever).  A clean stop ends the guard first, with nothing aborted."""
    n.start()
    guard = guard_of(n.pid)
    assert n.stop() == 0
    assert ended(guard), "the guard outlived a clean stop"
    assert GUARD_LOG not in n.log()
    n.start()
    guard = guard_of(n.pid)
    n.kill9()
    wait_for(lambda: GUARD_LOG in n.log(), 30, "the guard's log line")
    wait_for(lambda: ended(guard), 10, "the guard to end")
    expect_errno(errno.ENOTCONN, os.stat, n.path(".version"))
    subprocess.call(["umount", "-l", n.mnt])


@test
def durability_across_kill_9(n):
    n.start()
    os.mkdir(n.path("burst"))
    donelog = os.path.join(n.base, "acknowledged")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, n.mnt, donelog])
    wait_for(lambda: os.path.exists(donelog) and
             len(open(donelog).read().split()) >= 300, 60, "300 acknowledged writes")
    n.kill9()
    writer.wait(30)
    acked = [int(x) for x in open(donelog).read().split()]
    n.start()
    for i in acked:
        data = read_file(n.path("burst", "f%06d" % i))
        head, body = data[:18], data[18:]
        assert int(head[:8]) == len(body), i
    # no file holds partial content: each is empty or complete
    import zlib
    for name in os.listdir(n.path("burst")):
        data = read_file(n.path("burst", name))
        if not data:
            continue
        head, body = data[:18], data[18:]
        assert int(head[:8]) == len(body), name
        assert int(head[9:17], 16) == zlib.crc32(body), name
    assert len(acked) >= 300


if __name__ == "__main__":
    sys.exit(main())
