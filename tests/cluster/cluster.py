#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""cluster.py: N cluster nodes on one machine, each with a real corosync.

What it builds (all names start with a random per-run prefix such as
"pc3f9a", so two runs never collide):

    bridge namespace (net)          node namespaces (net + mount + uts)
    +----------------------+        +--------------------------------+
    | <p>-br  (bridge)     |        | hostname nodeN                 |
    |   <p>-Nh  ==veth==   | -----> | <p>-Nn  10.98.0.N/24           |
    |   ...                |        | corosync -f -c /etc/corosync/… |
    +----------------------+        | private /etc/corosync, /run,   |
                                    | /var/lib/corosync, /dev/shm …  |
                                    +--------------------------------+

DESIGN

* Namespaces are held by processes, not by names.  Each namespace is created
  by `unshare` running a holder (`sleep infinity`) that the harness started;
  everything else enters it with `nsenter -t <holder pid>`.  Nothing is
  created in /run/netns, no interface ever exists in the host's network
  namespace (veth pairs are created inside the bridge namespace and one end
  is moved into the node), and the node's bind mounts live only in its own
  mount namespace (propagation private).  A namespace disappears when the
  last process in it exits, taking its veths, nftables rules and mounts
  with it; so teardown is "stop every process we started, by pid".
* Every child gets PR_SET_PDEATHSIG=SIGKILL and its own process group: if
  the harness itself is killed with SIGKILL, the kernel kills corosync and
  the holders, and the namespaces go away; Ctrl-C on a terminal reaches only
  the harness, which then tears down in order.  Only the temporary directory
  is left behind in that case.
* Each node has a directory <base>/<node>/ whose subdirectories are bound
  over /etc/corosync, /var/lib/corosync, /var/log/corosync and /run inside
  the node (so /run/corosync, corosync's lock file /run/corosync.pid and a
  pmxcfs's /run/pve-cluster are private), a file bound over /etc/hosts
  (every node name resolves to its cluster address), and a fresh tmpfs on
  /dev/shm (libqb's IPC ring buffers).  libqb's IPC sockets are abstract
  unix sockets, which are per network namespace, so corosync-quorumtool run
  inside a node talks to that node's corosync and to no other.
* corosync: knet transport, crypto_cipher aes256 + crypto_hash sha256 with a
  key generated per run, token 1000 ms, a nodelist (nodeid, name,
  ring0_addr), votequorum.  It runs in the foreground (-f); stderr goes to
  <base>/<node>/log/corosync.stderr and its log file to
  /var/log/corosync/corosync.log inside the node.
* Partitions use nftables inside the nodes: a table "inet harness" with a
  set of blocked source addresses, dropped in the input hook.  Dropping on
  input only (on both sides) keeps the sender's sendmsg() from failing with
  EPERM, so knet sees plain packet loss, as on a real broken network.
* Waits poll a condition against a deadline (wait_for); nothing sleeps a
  fixed time to synchronise.  Teardown runs from the context manager, from
  atexit and from SIGTERM/SIGINT/SIGHUP handlers, with those signals blocked
  while it runs; every wait in it is bounded.
* When a run fails (an exception leaves the `with`, or cluster.failed is
  set), each node's logs and configuration (not the key) are copied to
  $CLUSTER_LOG_DIR (default: the temp dir)/pmxcfs-cluster-logs-<prefix>/,
  and the path is printed.

Usage:

    with Cluster(3) as c:
        c.wait_quorate(c.nodes)
        c.partition([["node1", "node2"], ["node3"]])
        ...

or from a shell: python3 tests/cluster/cluster.py --nodes 3 --shell
"""

import argparse
import atexit
import ctypes
import fcntl
import glob
import os
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SUBNET = "10.98.0."       # every run has its own bridge namespace: no clash
NODE_PREFIX = "node"
HOLDER = ["sh", "-c", "echo ready && exec sleep infinity"]
COROSYNC_CONF = "/etc/corosync/corosync.conf"   # as seen inside a node
# tools that must exist for the harness to work at all
REQUIRED_TOOLS = ("corosync", "corosync-quorumtool", "corosync-cmapctl", "corosync-keygen",
                  "unshare", "nsenter", "ip", "nft", "mount")
# the host directories that a node's own directories are bound over
BIND_DIRS = (("etc-corosync", "/etc/corosync"),
             ("var-lib-corosync", "/var/lib/corosync"),
             ("var-log-corosync", "/var/log/corosync"),
             ("run", "/run"))

# the paths, Timeout and wait_for of the single-node harness
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fs"))
from harness import PMXCFS, Timeout, proc_stat, wait_for  # noqa: E402,F401

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class HarnessError(RuntimeError):
    pass


# corosync, ip, nft and nsenter live in sbin, which a user's PATH may lack
for _d in ("/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":" + _d


def missing_tools():
    """The tools this harness needs that are not on PATH (for a SKIP)."""
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


def _child_setup(parent):
    """preexec_fn: own process group, and die with the harness."""
    os.setpgid(0, 0)
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:      # the harness died before prctl
        os._exit(1)


def _spawn(argv, **kw):
    parent = os.getpid()
    return subprocess.Popen(argv, preexec_fn=lambda: _child_setup(parent),
                            stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)


def _ns_ids(pid):
    ids = {}
    for ns in ("net", "mnt", "uts"):
        try:
            ids[ns] = os.readlink("/proc/%d/ns/%s" % (pid, ns))
        except OSError:
            pass
    return ids


class Proc:
    """A process the harness started inside a node (or a holder)."""

    def __init__(self, node, name, popen, log=None):
        self.node = node
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log = log
        self.stopped = False      # SIGSTOPped by us

    def alive(self):
        return self.popen.poll() is None

    def send(self, sig):
        """Signal it if it is still ours (not reaped, so the pid is not reused)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            return True
        return False

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout=5.0, sig=signal.SIGTERM):
        """sig, a bounded wait, then SIGKILL; returns the exit status."""
        if self.stopped:
            self.send(signal.SIGCONT)
            self.stopped = False
        if self.send(sig):
            if self.wait(timeout) is None:
                self.send(signal.SIGKILL)
                self.wait(10)
        return self.popen.returncode

    def kernel_state(self):
        """Each thread's state and kernel stack (where a process that does
        not end is stuck), on one line."""
        return task_states(self.pid)

    def __repr__(self):
        return "<%s pid %d on %s>" % (self.name, self.pid, self.node.name if self.node else "-")


def task_states(pid):
    """For each thread of pid "TID STATE: frame < frame ...", joined by " | "."""
    out = []
    for task in sorted(glob.glob("/proc/%d/task/*" % pid)):
        fields = proc_stat(os.path.join(task, "stat"))
        try:
            with open(os.path.join(task, "stack")) as f:
                frames = [ln.split()[-1] for ln in f.read().splitlines() if ln.strip()]
        except OSError:
            continue
        if fields:
            out.append("%s %s: %s" % (os.path.basename(task), fields[0], " < ".join(frames[:8])))
    return " | ".join(out) or "gone"


class Node:
    """One node: namespaces, a directory, a corosync, maybe daemons."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.nodeid = index
        self.name = "%s%d" % (NODE_PREFIX, index)
        self.addr = SUBNET + str(index)
        self.dir = os.path.join(cluster.base, self.name)
        self.veth_br = "%s-%dh" % (cluster.prefix, index)   # in the bridge namespace
        self.veth = "%s-%dn" % (cluster.prefix, index)      # in the node
        self.holder = None
        self.ns = {}
        self.procs = {}          # name -> the latest Proc of that name
        self.blocked = set()     # source addresses dropped on input
        # paths as the node sees them (they are also valid from the host)
        self.data_dir = os.path.join(self.dir, "data")
        self.run_dir = os.path.join(self.dir, "run", "pve-cluster")
        self.mount_dir = os.path.join(self.dir, "pve")
        self.log_dir = os.path.join(self.dir, "log")
        self.corosync_log = os.path.join(self.dir, "var-log-corosync", "corosync.log")

    # --- entering the node -------------------------------------------------
    @property
    def pid(self):
        """The pid holding the node's namespaces (for nsenter -t)."""
        return self.holder.pid

    def nsenter(self):
        return ["nsenter", "-t", str(self.pid), "--net", "--mount", "--uts", "--"]

    def shell_command(self):
        return "nsenter -t %d --net --mount --uts bash" % self.pid

    def run(self, argv, check=False, timeout=30, input=None):
        """Run argv inside the node and wait: a CompletedProcess (text)."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        r = subprocess.run(self.nsenter() + list(argv), capture_output=True, text=True,
                           input=input, timeout=timeout, stdin=None if input is not None
                           else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise HarnessError("%s: %s exited with %d: %s" % (
                self.name, " ".join(argv), r.returncode, (r.stderr or r.stdout).strip()))
        return r

    def start(self, name, argv, env=None, log=None):
        """Start argv inside the node as a tracked process named name.
        Output goes to <node>/log/<name>.log (or log).  Returns the Proc."""
        old = self.procs.get(name)
        if old is not None and old.alive():
            raise HarnessError("%s: %s is already running (pid %d)" % (self.name, name, old.pid))
        log = log or os.path.join(self.log_dir, name + ".log")
        with open(log, "ab") as f:
            f.write(("--- %s start: %s\n" % (time.strftime("%H:%M:%S"),
                                             " ".join(map(shlex.quote, argv)))).encode())
            f.flush()
            p = _spawn(self.nsenter() + list(argv), stdout=f, stderr=subprocess.STDOUT,
                       env=env)
        proc = Proc(self, name, p, log)
        self.procs[name] = proc
        self.cluster.procs.append(proc)
        return proc

    def proc(self, name):
        p = self.procs.get(name)
        if p is None:
            raise HarnessError("%s: no process named %r was started" % (self.name, name))
        return p

    def _find(self, what):
        """A Proc by name, Proc, or pid; only processes we started."""
        if isinstance(what, Proc):
            return what
        if isinstance(what, int):
            for p in self.cluster.procs:
                if p.pid == what and p.node is self:
                    return p
            raise HarnessError("%s: pid %d was not started by this harness" % (self.name, what))
        return self.proc(what)

    # --- signals -------------------------------------------------------------
    def kill9(self, what="corosync", timeout=10):
        p = self._find(what)
        p.send(signal.SIGKILL)
        p.wait(timeout)
        p.stopped = False
        if p.alive():
            raise HarnessError("%r survived SIGKILL for %ds: %s" % (p, timeout, p.kernel_state()))

    def stop(self, what="corosync"):
        """SIGSTOP (freeze) a process; cont() resumes it."""
        p = self._find(what)
        if p.send(signal.SIGSTOP):
            p.stopped = True

    def cont(self, what="corosync"):
        p = self._find(what)
        p.send(signal.SIGCONT)
        p.stopped = False

    # --- corosync --------------------------------------------------------------
    def start_corosync(self, wait=True, timeout=60):
        p = self.start("corosync", ["corosync", "-f", "-c", COROSYNC_CONF],
                       log=os.path.join(self.log_dir, "corosync.stderr"))
        if wait:
            self.wait_corosync(timeout)
        return p

    def wait_corosync(self, timeout=60):
        """Until corosync answers IPC (quorate or not)."""
        p = self.proc("corosync")

        def up():
            if not p.alive():
                raise HarnessError("%s: corosync exited with %s:\n%s" % (
                    self.name, p.popen.returncode, self.tail_logs()))
            return self.quorum() is not None
        wait_for(up, timeout, "corosync on %s to answer" % self.name)

    def stop_corosync(self, timeout=10):
        """SIGTERM (a clean leave), a bounded wait, then SIGKILL."""
        p = self.procs.get("corosync")
        return p.terminate(timeout) if p else None

    def restart_corosync(self, wait=True, timeout=60):
        self.stop_corosync()
        return self.start_corosync(wait, timeout)

    def quorum(self):
        """This node's view, from corosync-quorumtool inside the node:
        {"nodeid": int, "quorate": bool, "members": [nodeid, ...]},
        or None when its corosync does not answer."""
        try:
            r = self.run(["corosync-quorumtool", "-s", "-p", "-oi"], timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode not in (0, 2):
            return None
        return parse_quorumtool(r.stdout, r.returncode)

    # --- a user-supplied daemon (pmxcfs) ---------------------------------------
    def pmxcfs_argv(self, binary=None, extra=()):
        """The command line of a pmxcfs for this node: every path private."""
        return [binary or PMXCFS, "-f", "--nodename", self.name, "--mount", self.mount_dir,
                "--data-dir", self.data_dir, "--run-dir", self.run_dir,
                "--pid-file", os.path.join(self.dir, "run", "pve-cluster.pid"),
                "--corosync-conf", COROSYNC_CONF, "--ipc-name", "pve2"] + list(extra)

    def start_daemon(self, argv=None, name="pmxcfs", env=None):
        """Start a daemon inside the node (default: pmxcfs_argv()).  Returns
        the Proc (its .pid, .log).  Waiting for readiness is the caller's."""
        return self.start(name, argv or self.pmxcfs_argv(), env=env)

    def stop_daemon(self, what="pmxcfs", sig=signal.SIGTERM, timeout=10):
        """Stop a daemon we started (by name, Proc or pid): sig, a bounded
        wait, SIGKILL.  Returns its exit status (negative: killed by signal)."""
        return self._find(what).terminate(timeout, sig)

    def wipe_data(self):
        """Empty the node's data dir (the daemon must not be running)."""
        for p in self.procs.values():
            if p.alive() and p.name != "corosync":
                raise HarnessError("%s: wipe_data while %r is running" % (self.name, p))
        # the directory itself stays: it may be bound inside the node
        for name in os.listdir(self.data_dir):
            path = os.path.join(self.data_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    # --- logs ------------------------------------------------------------------
    def tail_logs(self, lines=30):
        out = []
        for path in [self.corosync_log] + sorted(glob.glob(os.path.join(self.log_dir, "*"))):
            try:
                with open(path, errors="replace") as f:
                    text = f.read().splitlines()[-lines:]
            except OSError:
                continue
            out += ["== %s" % path] + text
        return "\n".join(out)

    def __repr__(self):
        return "<node %s id %d %s>" % (self.name, self.nodeid, self.addr)


def parse_quorumtool(text, rc):
    """Parse `corosync-quorumtool -s -p` output (see corosync-quorumtool(8))."""
    info = {"quorate": rc == 0, "nodeid": None, "members": []}
    in_members = False
    for line in text.splitlines():
        if line.startswith("Node ID:"):
            info["nodeid"] = int(line.split(":", 1)[1].strip(), 0)
        elif line.startswith("Quorate:"):
            info["quorate"] = line.split(":", 1)[1].strip() == "Yes"
        elif line.startswith("Membership information"):
            in_members = True
        elif in_members:
            words = line.split()
            if words and words[0].isdigit():
                info["members"].append(int(words[0]))
    info["members"].sort()
    return info


_open_clusters = []      # not yet closed: closed by atexit
created = []             # every Cluster of this process (for leftover checks)
_machine_lock = None     # the open lock file once this process holds it
LOCK_PATH = "/run/lock/pmxcfs-cluster-tests.lock"


def _one_cluster_test_at_a_time(timeout=1800):
    """Hold the machine's lock for cluster tests until this process ends.
    Two cluster tests at once on a small machine (make -j2 check) starve
    corosync: its first membership did not finish in 15 s under a sanitizer
    build, and token losses re-form memberships in the middle of steps.
    CLUSTER_PARALLEL=1 skips it; processes started by the holder (the
    command line run by test-corosync) inherit it through the environment."""
    global _machine_lock
    if _machine_lock is not None or os.environ.get("CLUSTER_PARALLEL") or \
            os.environ.get("PMXCFS_CLUSTER_LOCK_HOLDER"):
        return
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    f = open(LOCK_PATH, "a")
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not told:
                print("waiting for another cluster test to end (%s)" % LOCK_PATH,
                      file=sys.stderr, flush=True)
                told = True
            if time.monotonic() > deadline:
                f.close()
                raise HarnessError("another cluster test held %s for %d s" % (LOCK_PATH, timeout))
            time.sleep(0.2)      # polling the lock, with a bound
    _machine_lock = f
    os.environ["PMXCFS_CLUSTER_LOCK_HOLDER"] = str(os.getpid())
_handlers_installed = False


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def _install_handlers():
    """SIGTERM/SIGHUP raise SystemExit, SIGINT KeyboardInterrupt, so the
    `with` blocks and atexit run the teardown."""
    global _handlers_installed
    if _handlers_installed:
        return
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
        if signal.getsignal(signal.SIGINT) is signal.SIG_DFL:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:      # not the main thread: rely on atexit and `with`
        return
    atexit.register(_close_all)
    _handlers_installed = True


def _close_all():
    for c in list(reversed(_open_clusters)):
        c.close()


class Cluster:
    """N nodes with corosync.  Use as a context manager, or call close()."""

    def __init__(self, n=3, token=1000, start=True, wait=True, debug=False, timeout=30):
        if os.geteuid() != 0:
            raise HarnessError("the cluster harness needs root")
        self.prefix = "pc" + secrets.token_hex(2)
        self.token = token
        self.debug = debug
        self.failed = False      # set by a test that failed: keep the logs
        self.keep = False        # keep the logs anyway
        self.closed = False
        self.procs = []          # every Proc we started, holders included
        self.ns_ids = []         # namespace ids ("net:[...]") we created
        self.bridge_holder = None
        self.bridge = self.prefix + "-br"
        self.keep_dir = None
        self.pmxcfs = False      # the command line's --pmxcfs
        self.nodes = []
        _one_cluster_test_at_a_time()
        _install_handlers()
        _open_clusters.append(self)
        created.append(self)
        self.base = tempfile.mkdtemp(prefix="pmxcfs-cluster-%s-" % self.prefix)
        try:
            for bad in ("/run", "/etc", "/var/lib/corosync", "/var/log/corosync", "/dev/shm"):
                if (self.base + "/").startswith(bad + "/"):
                    raise HarnessError("temp dir %s would be hidden by a bind mount" % self.base)
            self.nodes = [Node(self, i) for i in range(1, n + 1)]
            self._setup()
            if start:
                for node in self.nodes:
                    node.start_corosync(wait=False)
                for node in self.nodes:
                    node.wait_corosync()
                if wait:
                    self.wait_quorate(self.nodes, timeout)
        except BaseException as e:
            self.failed = isinstance(e, Exception)
            self.close()
            raise

    # --- set-up ------------------------------------------------------------------
    def _holder(self, name, flags):
        p = _spawn(["unshare"] + flags + ["--"] + HOLDER, stdout=subprocess.PIPE)
        proc = Proc(None, name, p)
        self.procs.append(proc)
        ready, _, _ = select.select([p.stdout], [], [], 10)
        line = p.stdout.readline() if ready else b""
        p.stdout.close()
        if line != b"ready\n":
            raise HarnessError("unshare for %s did not start (exit %s)" % (name, p.poll()))
        mine, theirs = _ns_ids(os.getpid()), _ns_ids(p.pid)
        for ns in ("net", "mnt", "uts") if "--mount" in flags else ("net",):
            if theirs.get(ns) is None or theirs[ns] == mine.get(ns):
                raise HarnessError("%s is not in a namespace of its own (%s)" % (name, ns))
            self.ns_ids.append(theirs[ns])
        return proc

    def _in_bridge(self, argv, input=None):
        r = subprocess.run(["nsenter", "-t", str(self.bridge_holder.pid), "--net", "--"] + argv,
                           input=input, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError("bridge namespace: %s: %s" % (" ".join(argv), r.stderr.strip()))
        return r

    def _setup(self):
        key = os.path.join(self.base, "authkey")
        r = subprocess.run(["corosync-keygen", "-k", key], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0:
            raise HarnessError("corosync-keygen: " + r.stderr.strip())
        conf = self.corosync_conf()
        hosts = "127.0.0.1 localhost\n" + "".join(
            "%s %s\n" % (n.addr, n.name) for n in self.nodes)

        self.bridge_holder = self._holder("bridge", ["--net"])
        self._in_bridge(["ip", "-batch", "-"], input="link set lo up\n"
                        "link add %s type bridge\nlink set %s up\n" % (self.bridge, self.bridge))
        for node in self.nodes:
            self._setup_node(node, conf, hosts, key)

    def _setup_node(self, node, conf, hosts, key):
        for sub, _ in BIND_DIRS:
            os.makedirs(os.path.join(node.dir, sub))
        for d in (node.log_dir, node.data_dir, node.mount_dir,
                  os.path.join(node.dir, "run", "corosync")):
            os.makedirs(d, exist_ok=True)
        etc = os.path.join(node.dir, "etc-corosync")
        with open(os.path.join(etc, "corosync.conf"), "w") as f:
            f.write(conf)
        shutil.copyfile(key, os.path.join(etc, "authkey"))
        os.chmod(os.path.join(etc, "authkey"), 0o400)
        with open(os.path.join(node.dir, "hosts"), "w") as f:
            f.write(hosts)

        node.holder = self._holder(node.name, ["--net", "--mount", "--uts",
                                               "--propagation", "private"])
        node.holder.node = node
        node.ns = _ns_ids(node.pid)
        self._in_bridge(["ip", "-batch", "-"], input=(
            "link add %s type veth peer name %s\n"
            "link set %s netns %d\n"
            "link set %s master %s up\n") % (node.veth_br, node.veth, node.veth, node.pid,
                                             node.veth_br, self.bridge))
        q = shlex.quote
        script = ["set -e",
                  "echo %s > /proc/sys/kernel/hostname" % q(node.name),
                  "ip link set lo up",
                  "ip addr add %s/24 dev %s" % (node.addr, node.veth),
                  "ip link set %s up" % node.veth,
                  "mount --make-rprivate /"]
        for sub, target in BIND_DIRS:
            script.append("mount --bind %s %s" % (q(os.path.join(node.dir, sub)), target))
        script += ["mount --bind %s /etc/hosts" % q(os.path.join(node.dir, "hosts")),
                   "mount -t tmpfs -o size=64m,mode=1777 %s-shm /dev/shm" % self.prefix,
                   "nft -f - <<'EOF'\n%sEOF" % NFT_TABLE]
        node.run(["sh", "-c", "\n".join(script)], check=True)

    def corosync_conf(self):
        nodes = "".join(
            "\tnode {\n\t\tnodeid: %d\n\t\tname: %s\n\t\tquorum_votes: 1\n"
            "\t\tring0_addr: %s\n\t}\n" % (n.nodeid, n.name, n.addr) for n in self.nodes)
        return COROSYNC_CONF_TEMPLATE % {"cluster": self.prefix, "token": self.token,
                                         "nodes": nodes,
                                         "debug": "on" if self.debug else "off"}

    # --- lookup ------------------------------------------------------------------
    def node(self, which):
        """A Node from a Node, a name ("node2") or a nodeid (2 or "2")."""
        if isinstance(which, Node):
            return which
        if isinstance(which, str) and which.isdigit():
            which = int(which)
        for n in self.nodes:
            if which in (n.name, n.nodeid):
                return n
        raise KeyError("no node %r in this cluster" % (which,))

    def _nodes(self, which):
        return [self.node(w) for w in (self.nodes if which is None else which)]

    # --- quorum ------------------------------------------------------------------
    def wait_quorate(self, nodes=None, timeout=30, members=None):
        """Until every node in nodes is quorate and sees exactly members
        (default: the nodeids of nodes; False: any) in its membership."""
        nodes = self._nodes(nodes)
        want = sorted(n.nodeid for n in nodes) if members is None else \
            (sorted(self.node(m).nodeid for m in members) if members else None)
        last = {}

        def ok():
            for n in nodes:
                q = last[n.name] = n.quorum()
                if not q or not q["quorate"] or (want is not None and q["members"] != want):
                    return False
            return True
        try:
            wait_for(ok, timeout, "quorum", interval=0.1)
        except Timeout as e:
            raise Timeout("%s: %s quorate with members %s; last seen: %s" % (
                e, [n.name for n in nodes], want, last)) from None

    def wait_inquorate(self, nodes=None, timeout=30):
        """Until every node in nodes answers and is not quorate."""
        nodes = self._nodes(nodes)
        last = {}

        def ok():
            for n in nodes:
                q = last[n.name] = n.quorum()
                if not q or q["quorate"]:
                    return False
            return True
        try:
            wait_for(ok, timeout, "loss of quorum", interval=0.1)
        except Timeout as e:
            raise Timeout("%s: %s inquorate; last seen: %s" % (
                e, [n.name for n in nodes], last)) from None

    # --- the network -------------------------------------------------------------
    def _apply_blocks(self, nodes):
        for n in nodes:
            script = "flush set inet harness blocked\n"
            if n.blocked:
                script += "add element inet harness blocked { %s }\n" % ", ".join(
                    sorted(n.blocked))
            n.run(["nft", "-f", "-"], input=script, check=True)

    def block(self, src, dst, both=True):
        """Drop what src sends to dst (and dst to src if both)."""
        src, dst = self.node(src), self.node(dst)
        dst.blocked.add(src.addr)
        if both:
            src.blocked.add(dst.addr)
        self._apply_blocks([src, dst])

    def partition(self, groups):
        """Split the network into groups (lists of nodes or names); every
        node must be in exactly one group.  Traffic between groups is
        dropped in both directions; inside a group it flows."""
        groups = [[self.node(w) for w in g] for g in groups]
        seen = [n for g in groups for n in g]
        if sorted(n.nodeid for n in seen) != sorted(n.nodeid for n in self.nodes):
            raise ValueError("partition: every node exactly once, got %s" % (
                [[n.name for n in g] for g in groups]))
        for g in groups:
            for n in g:
                n.blocked = {m.addr for m in self.nodes if m not in g}
        self._apply_blocks(self.nodes)

    def isolate(self, node):
        node = self.node(node)
        self.partition([[node], [n for n in self.nodes if n is not node]])

    def heal(self):
        for n in self.nodes:
            n.blocked = set()
        self._apply_blocks(self.nodes)

    # --- per-node shortcuts --------------------------------------------------------
    def run(self, node, argv, **kw):
        return self.node(node).run(argv, **kw)

    def kill9(self, node, what="corosync"):
        self.node(node).kill9(what)

    def stop(self, node, what="corosync"):
        self.node(node).stop(what)

    def cont(self, node, what="corosync"):
        self.node(node).cont(what)

    def restart_corosync(self, node, wait=True):
        return self.node(node).restart_corosync(wait)

    def start_daemon(self, node, argv=None, name="pmxcfs", env=None):
        return self.node(node).start_daemon(argv, name, env)

    def stop_daemon(self, node, what="pmxcfs", sig=signal.SIGTERM, timeout=10):
        return self.node(node).stop_daemon(what, sig, timeout)

    def wipe_data(self, node):
        self.node(node).wipe_data()

    # --- teardown ------------------------------------------------------------------
    def keep_logs(self):
        """Copy every node's logs and configuration (not the key) out of
        the temp dir; returns the directory."""
        if self.keep_dir:
            return self.keep_dir
        root = os.environ.get("CLUSTER_LOG_DIR") or tempfile.gettempdir()
        os.makedirs(root, exist_ok=True)
        dest = tempfile.mkdtemp(prefix="pmxcfs-cluster-logs-%s-" % self.prefix, dir=root)
        for n in self.nodes:
            nd = os.path.join(dest, n.name)
            os.makedirs(nd, exist_ok=True)
            for src in glob.glob(os.path.join(n.log_dir, "*")) + glob.glob(
                    os.path.join(n.dir, "var-log-corosync", "*")) + [
                    os.path.join(n.dir, "etc-corosync", "corosync.conf")]:
                if os.path.isfile(src):
                    shutil.copy(src, nd)
        self.keep_dir = dest
        return dest

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # an error keeps the logs; a stop by signal (SystemExit,
        # KeyboardInterrupt) is the normal end of an interactive run
        if exc_type is not None and issubclass(exc_type, Exception):
            self.failed = True
        self.close()
        return False

    def close(self):
        """Stop everything we started, by pid; idempotent and bounded."""
        if self.closed:
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _TEARDOWN_SIGNALS)
        try:
            self._teardown()
        finally:
            self.closed = True
            if self in _open_clusters:
                _open_clusters.remove(self)
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _teardown(self):
        holders = [p for p in self.procs if p.node is None or p is p.node.holder]
        workers = [p for p in self.procs if p not in holders]
        # thaw what we froze, ask everything to stop, then force it
        for p in workers:
            if p.stopped:
                p.send(signal.SIGCONT)
            p.send(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in workers:
            p.wait(max(0.0, deadline - time.monotonic()))
        for p in workers + holders:
            p.send(signal.SIGKILL)
        for p in workers + holders:
            if p.wait(10) is None:
                print("cluster %s: %r did not die" % (self.prefix, p), file=sys.stderr)
        if self.failed or self.keep:
            try:
                print("cluster %s: logs kept in %s" % (self.prefix, self.keep_logs()),
                      file=sys.stderr)
            except OSError as e:
                print("cluster %s: could not keep logs: %s" % (self.prefix, e), file=sys.stderr)
        shutil.rmtree(self.base, ignore_errors=True)

    def leftovers(self):
        """Everything of this run that still exists (empty after close()):
        live processes, namespaces still held by any process, and host
        interfaces, named namespaces, mounts or directories with our prefix."""
        left = ["process %r" % p for p in self.procs if p.alive()]
        ours = set(self.ns_ids)
        if ours:
            for path in glob.glob("/proc/[0-9]*/ns/*"):
                try:
                    if os.readlink(path) in ours:
                        left.append("namespace %s held by %s" % (os.readlink(path), path))
                except OSError:
                    pass
        r = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True)
        left += ["host link: " + line for line in r.stdout.splitlines() if self.prefix in line]
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        left += ["netns: " + line for line in r.stdout.splitlines() if self.prefix in line]
        with open("/proc/self/mountinfo") as f:
            left += ["mount: " + line.strip() for line in f
                     if self.prefix in line or self.base in line]
        if os.path.exists(self.base):
            left.append("directory " + self.base)
        return left


NFT_TABLE = """table inet harness {
	set blocked {
		type ipv4_addr
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @blocked drop
	}
}
"""

COROSYNC_CONF_TEMPLATE = """\
# written by tests/cluster/cluster.py for one test run
totem {
	version: 2
	cluster_name: %(cluster)s
	config_version: 1
	transport: knet
	crypto_cipher: aes256
	crypto_hash: sha256
	token: %(token)d
	ip_version: ipv4
	interface {
		linknumber: 0
	}
}

nodelist {
%(nodes)s}

quorum {
	provider: corosync_votequorum
}

logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	timestamp: hires
	debug: %(debug)s
}
"""


# --- command line: a cluster to play with -------------------------------------

# --- a TAP runner for test steps that share clusters --------------------------

def steps():
    """A list of steps and the decorator that fills it:
        STEPS, step = cluster.steps()
        @step(needs=("c3",))
        def ...: return a note, "SKIP why", or raise"""
    found = []

    def step(needs=()):
        def add(fn):
            found.append((fn, needs))
            return fn
        return add
    return found, step


def skip_reason():
    """Why clusters cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the cluster tests need root (namespaces, mounts)"
    missing = missing_tools()
    if missing:
        return "missing %s (tools/install-deps)" % " ".join(missing)
    r = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return "cannot create namespaces: %s" % r.stderr.strip()
    return None


def run_steps(steps, state, skip_reason):
    """steps: (fn, needs) pairs; a step runs only when every key in needs
    is in state and that key's setup did not fail.  A failed step marks the
    keys it set up as broken (state["broken"] holds them)."""
    reason = skip_reason()
    if reason:
        print("1..0 # SKIP " + reason)
        return 0
    _one_cluster_test_at_a_time()    # before the first step: its times exclude the wait
    print("1..%d" % len(steps))
    sys.stdout.flush()
    failed = 0
    broken = state.setdefault("broken", set())
    t_all = time.monotonic()
    for i, (fn, needs) in enumerate(steps, 1):
        name = fn.__name__
        if any(k not in state or k in broken for k in needs):
            print("ok %d %s # SKIP needs %s, which an earlier step could not give" % (
                i, name, ", ".join(needs)))
            continue
        before = set(state)
        t0 = time.monotonic()
        try:
            note = fn()
            if note and note.startswith("SKIP "):
                print("ok %d %s # %s" % (i, name, note))
            else:
                print("ok %d %s  # %.1fs%s" % (i, name, time.monotonic() - t0,
                                               "; " + note if note else ""))
        except Exception:
            failed += 1
            broken.update(set(state) - before - {"broken"})
            broken.update(needs)
            print("not ok %d %s  # %.1fs" % (i, name, time.monotonic() - t0))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            for c in created:
                if not c.closed:
                    c.failed = True
                    for n in c.nodes:
                        for line in n.tail_logs(12).splitlines():
                            print("# %s: %s" % (n.name, line))
        sys.stdout.flush()
    for c in created:
        if os.environ.get("CLUSTER_KEEP_LOGS"):
            c.failed = True          # keep every node's logs, failed or not
        c.close()
        if c.keep_dir:
            print("# logs of %s kept in %s" % (c.prefix, c.keep_dir))
    print("# total %.1fs" % (time.monotonic() - t_all))
    return 1 if failed else 0



SHELL_HELP = """commands:
  status                      quorum as each node sees it
  partition A,B C ...         split into groups (node names or ids)
  isolate N / heal            cut one node off / remove every block
  kill9 N | freeze N | thaw N SIGKILL / SIGSTOP / SIGCONT corosync on N
  restart N                   restart corosync on N
  run N CMD...                run a command inside node N
  ls N [PATH] / cat N PATH    with --pmxcfs: list / read in node N's tree
  write N PATH TEXT...        with --pmxcfs: write a file on node N
  pmxcfs N stop|start|kill9   with --pmxcfs: stop, start or kill -9 its pmxcfs
  stop                        tear everything down and exit (also Ctrl-C, EOF)"""


def _print_status(c):
    for n in c.nodes:
        q = n.quorum()
        if q is None:
            print("  %-6s corosync not answering" % n.name)
        else:
            print("  %-6s %-10s members %s" % (n.name, "quorate" if q["quorate"] else "INQUORATE",
                                              q["members"]))


def _shell(c):
    print(SHELL_HELP)
    while True:
        try:
            line = input("cluster> ")
        except EOFError:
            print()
            return
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        try:
            if cmd in ("stop", "quit", "exit") and not args:
                return
            elif cmd == "status":
                _print_status(c)
            elif cmd == "partition":
                c.partition([g.split(",") for g in args])
            elif cmd == "isolate":
                c.isolate(args[0])
            elif cmd == "heal":
                c.heal()
            elif cmd in ("kill9", "freeze", "thaw"):
                {"kill9": c.kill9, "freeze": c.stop, "thaw": c.cont}[cmd](args[0])
            elif cmd == "restart":
                c.restart_corosync(args[0])
            elif cmd == "run":
                r = c.run(args[0], args[1:])
                sys.stdout.write(r.stdout + r.stderr)
            elif cmd in ("ls", "cat", "write") and c.pmxcfs:
                n = c.node(args[0])
                path = os.path.join(n.mount_dir, args[1] if len(args) > 1 else "")
                if cmd == "write":
                    r = n.run(["sh", "-c", 'printf "%s\\n" "$2" > "$1"', "-", path,
                               " ".join(args[2:])])
                else:
                    r = n.run(["ls", "-la", path] if cmd == "ls" else ["cat", path])
                sys.stdout.write(r.stdout + r.stderr)
            elif cmd == "pmxcfs" and c.pmxcfs:
                n = c.node(args[0])
                if args[1] == "start":
                    n.start_daemon()
                else:
                    n.stop_daemon(sig=signal.SIGKILL if args[1] == "kill9" else signal.SIGTERM)
            elif cmd == "help":
                print(SHELL_HELP)
            else:
                print("unknown command %r (help)" % cmd)
        except (KeyError, IndexError, ValueError, HarnessError, Timeout) as e:
            print("error: %s" % e)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Start N corosync nodes in namespaces.")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--shell", action="store_true",
                    help="read commands from stdin (status, partition, ... stop)")
    ap.add_argument("--debug", action="store_true", help="corosync debug logging")
    ap.add_argument("--keep-logs", action="store_true", help="keep the logs on exit")
    ap.add_argument("--pmxcfs", action="store_true",
                    help="start our pmxcfs on every node (TOP_BUILDDIR or PMXCFS names it)")
    args = ap.parse_args(argv)
    missing = missing_tools()
    if missing:
        print("missing tools: %s (tools/install-deps)" % " ".join(missing), file=sys.stderr)
        return 1
    # the command line (tools/demo-cluster) is no test: it may run for hours
    # and must not hold the test lock; tests that start it hold it already
    os.environ.setdefault("CLUSTER_PARALLEL", "1")
    t0 = time.monotonic()
    with Cluster(args.nodes, debug=args.debug) as c:
        c.keep = args.keep_logs
        c.pmxcfs = args.pmxcfs
        print("cluster %s: %d nodes quorate after %.1fs; files in %s" % (
            c.prefix, len(c.nodes), time.monotonic() - t0, c.base))
        if args.pmxcfs:
            import pmxcfs_cluster
            for n in c.nodes:
                n.start_daemon()
            pmxcfs_cluster.wait_serving(c.nodes, 60)
            print("pmxcfs serves each node's tree at <node dir>/pve inside the node "
                  "(%.1fs)" % (time.monotonic() - t0))
        for n in c.nodes:
            print("  %-6s %-12s enter: %s" % (n.name, n.addr, n.shell_command()))
            if args.pmxcfs:
                print("         tree: %s ls %s" % (" ".join(n.nsenter()), n.mount_dir))
        print("  e.g.  %s corosync-quorumtool -s" % " ".join(c.nodes[0].nsenter()))
        if args.pmxcfs and args.shell:
            print("  try:  write node1 hello.txt hi  /  cat node2 hello.txt  /  "
                  "cat node3 .members")
        print("stop: %s (or kill %d)" % ("type 'stop', Ctrl-D or Ctrl-C" if args.shell
                                        else "Ctrl-C", os.getpid()))
        sys.stdout.flush()
        try:
            if args.shell:
                _shell(c)
            else:
                while True:
                    signal.pause()
        except KeyboardInterrupt:
            print()
    print("cluster %s: stopped and removed" % c.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
