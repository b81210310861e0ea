# SPDX-License-Identifier: AGPL-3.0-or-later
"""harness.py: run a real pmxcfs on a temporary mount point, and a tiny
TAP test runner.

Every test gets its own directory (mount point, data, run dir, pid file),
a daemon started by pid and stopped by pid, and a teardown that always runs:
SIGTERM, then SIGKILL after a bounded wait, then a lazy unmount if the mount
is still there.  Waits poll a condition with a deadline; none sleeps blindly.
A failing test prints the daemon's log.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PMXCFS = os.environ.get("PMXCFS", os.path.join(TOP_BUILDDIR, "pmxcfs", "pmxcfs"))
# e.g. PMXCFS_WRAPPER="valgrind --error-exitcode=99 --leak-check=full"
WRAPPER = os.environ.get("PMXCFS_WRAPPER", "").split()


class Timeout(AssertionError):
    pass


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Poll cond() until it is true; fail with a message after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Timeout("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_stat(path):
    """The fields of a /proc/.../stat file after the command name (state
    first), or None if it is gone."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return True
    return False


class Node:
    """One pmxcfs daemon on a private mount point."""

    def __init__(self, base=None, nodename="testnode1", args=()):
        self.base = base or tempfile.mkdtemp(prefix="pmxcfs-fs-")
        self.mnt = os.path.join(self.base, "mnt")
        self.data = os.path.join(self.base, "data")
        self.run = os.path.join(self.base, "run")
        self.pidfile = os.path.join(self.base, "pmxcfs.pid")
        self.logfile = os.path.join(self.base, "log")
        self.nodename = nodename
        self.args = list(args)
        # a private IPC service name: the default "pve2" is one abstract
        # socket per network namespace, shared with any real pmxcfs
        self.ipc_name = "pmxcfs-test-%d-%s" % (os.getpid(), os.path.basename(self.base))
        self.proc = None
        self.pid = None

    def cmdline(self, extra=()):
        return WRAPPER + [PMXCFS, "--mount", self.mnt, "--data-dir", self.data, "--run-dir", self.run,
                "--pid-file", self.pidfile, "--nodename", self.nodename,
                "--ipc-name", self.ipc_name,
                "--corosync-conf", os.path.join(self.base, "no-corosync.conf")] + \
            self.args + list(extra)

    def start(self, extra=("-f",), wait=True):
        """Start in the foreground (default) and wait until mounted."""
        offset = len(self.log())
        log = open(self.logfile, "a")
        self.proc = subprocess.Popen(self.cmdline(extra), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.pid = self.proc.pid
        if wait:
            wait_for(lambda: self.proc.poll() is not None or
                     ("serving" in self.log()[offset:] and is_mounted(self.mnt)),
                     60 if WRAPPER else 10, "the daemon to mount")
            if self.proc.poll() is not None:
                raise AssertionError("pmxcfs exited with %d:\n%s" % (self.proc.returncode,
                                                                     self.log()))
        return self

    def log(self):
        try:
            with open(self.logfile) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop the daemon we started; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("pmxcfs did not stop within %ds" % timeout)
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def cleanup(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop()
        except Exception:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        if is_mounted(self.mnt):
            subprocess.call(["umount", "-l", self.mnt])
        shutil.rmtree(self.base, ignore_errors=True)


IPC_CLIENT = os.path.join(TOP_BUILDDIR, "tests", "fs", "ipc-client")


def ipc(node, code, payload=b"", raw=None, user=None):
    """One request to node's IPC service: (error, data), or ("refused", errno).
    raw: the whole request (header included) instead of code + payload.
    user: (uid, gid) to send as."""
    args = [IPC_CLIENT, "--raw", node.ipc_name] if raw is not None else \
        [IPC_CLIENT, node.ipc_name, str(code)]

    def become():
        if user:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
    r = subprocess.run(args, input=raw if raw is not None else payload, capture_output=True,
                       preexec_fn=become if user else None, timeout=30)
    head, _, data = r.stdout.partition(b"\n")
    words = head.split()
    if not words or words[0] != b"error":
        return ("refused", head.decode(errors="replace"))
    assert int(words[2]) == len(data), (head, len(data))
    return int(words[1]), data


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def expect_errno(err, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as e:
        if e.errno != err:
            raise AssertionError("%s%r: expected %s, got %s" % (
                getattr(fn, "__name__", fn), args, errno.errorcode[err],
                errno.errorcode.get(e.errno, e.errno)))
        return
    raise AssertionError("%s%r: expected %s, but it succeeded" % (
        getattr(fn, "__name__", fn), args, errno.errorcode[err]))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def main():
    """Run every @test (or those named on the command line) and print TAP."""
    if os.geteuid() != 0:
        print("1..0 # SKIP the filesystem tests need root (FUSE mounts)")
        return 0
    if not os.path.exists("/dev/fuse"):
        print("1..0 # SKIP no /dev/fuse")
        return 0
    wanted = sys.argv[1:]
    tests = [t for t in TESTS if not wanted or t.__name__ in wanted]
    print("1..%d" % len(tests))
    failed = 0
    for i, t in enumerate(tests, 1):
        node = None
        t0 = time.monotonic()
        try:
            node = Node()
            t(node)
            # a clean stop must be clean: sanitizers and valgrind report
            # errors and leaks through the exit status
            rc = node.stop()
            if rc not in (None, 0):
                raise AssertionError("pmxcfs exited with status %d on SIGTERM" % rc)
            print("ok %d %s  # %.2fs" % (i, t.__name__, time.monotonic() - t0))
        except Exception:
            failed += 1
            print("not ok %d %s" % (i, t.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            if node is not None:
                for line in node.log().splitlines()[-40:]:
                    print("# log: " + line)
        finally:
            if node is not None:
                node.cleanup()
        sys.stdout.flush()
    return 1 if failed else 0
