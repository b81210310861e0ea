# SPDX-License-Identifier: AGPL-3.0-or-later
"""pmxcfs_cluster.py: our pmxcfs on the nodes of a harness cluster.

Helpers the replication tests, the benchmark and the demo share: start the
daemon on nodes and wait until it serves, run batches of filesystem
operations inside a node (fsops.py), read a node's database summary
(cfsctl verify), wait for every node to hold the same tree, and find
sanitizer reports in the daemons' logs.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
from cluster import PMXCFS, Timeout, wait_for  # noqa: E402,F401

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", os.path.join(HERE, "..", ".."))
CFSCTL = os.environ.get("CFSCTL", os.path.join(TOP_BUILDDIR, "tools", "cfsctl"))
FSOPS = os.path.join(HERE, "fsops.py")
# an original pmxcfs to run on some nodes (a mixed cluster), if set; made
# absolute, since commands in a node start in /
ORIGINAL = os.environ.get("PMXCFS_ORIGINAL") and os.path.abspath(os.environ["PMXCFS_ORIGINAL"])


# e.g. PMXCFS_WRAPPER="valgrind --error-exitcode=99 --leak-check=full"
WRAPPER = os.environ.get("PMXCFS_WRAPPER", "").split()


def start(node, extra=(), binary=None):
    """Start pmxcfs on node (foreground, debug off), under PMXCFS_WRAPPER."""
    return node.start_daemon(WRAPPER + node.pmxcfs_argv(binary=binary, extra=list(extra)))


def _original_root(node):
    """Give node the fixed paths the original uses, once per node.

    The original takes no path options: it mounts /etc/pve, keeps its
    database in /var/lib/pve-cluster and creates both if missing.  /run is
    already the node's own; /etc and /var/lib are the host's, so each gets
    an overlay inside the node (its upper layer in the node's directory,
    so nothing is created on the host), and the node's binds that the
    overlay hides (/etc/hosts, /etc/corosync, /var/lib/corosync) are made
    again on top.  /var/lib/pve-cluster is the node's data_dir, so the
    database is where summary() reads it.  The node's mount_dir becomes a
    bind of /etc/pve in the same peer group (the /etc overlay is made
    shared): the FUSE mount the original makes on /etc/pve, and its
    unmount, appear there too, so every helper reads the tree at
    mount_dir whichever daemon runs."""
    if getattr(node, "original_root", False):
        return
    q = shlex.quote
    script = ["set -e"]
    for target, binds in (("/etc", (("hosts", "/etc/hosts"),
                                    ("etc-corosync", "/etc/corosync"))),
                          ("/var/lib", (("var-lib-corosync", "/var/lib/corosync"),))):
        layer = os.path.join(node.dir, "overlay" + target.replace("/", "-"))
        for sub in ("upper", "work"):
            os.makedirs(os.path.join(layer, sub), exist_ok=True)
        script.append("mount -t overlay %s-overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
            node.cluster.prefix, target, q(os.path.join(layer, "upper")),
            q(os.path.join(layer, "work")), target))
        script += ["mount --bind %s %s" % (q(os.path.join(node.dir, src)), dst)
                   for src, dst in binds]
    script += ["mkdir -p /etc/pve /var/lib/pve-cluster /var/lib/rrdcached/db",
               "mount --bind %s /var/lib/pve-cluster" % q(node.data_dir),
               "mount --make-shared /etc",
               "mount --bind /etc/pve %s" % q(node.mount_dir)]
    node.run(["sh", "-c", "\n".join(script)], check=True)
    node.original_root = True


def start_original(node, debug=False, env=None, extra=()):
    """Start the original pmxcfs (PMXCFS_ORIGINAL) on node, in the
    foreground (-f), with its fixed paths bound to the node's own (see
    _original_root); node name and address come from the node's hostname
    and /etc/hosts, as in a real cluster.  Like start(), a Proc named
    "pmxcfs": stop_daemon, stop_all, serving and summary work the same.
    env: variables added to the environment; extra: more options (["-l"]:
    local mode)."""
    if not ORIGINAL:
        raise cluster.HarnessError("PMXCFS_ORIGINAL is not set")
    _original_root(node)
    return node.start_daemon([ORIGINAL, "-f"] + (["-d"] if debug else []) + list(extra),
                             env=dict(os.environ, **env) if env else None)


def original_skip_reason():
    """Why the mixed tests cannot run here, or None."""
    if not ORIGINAL:
        return "PMXCFS_ORIGINAL not set"
    if not os.access(ORIGINAL, os.X_OK):
        return "PMXCFS_ORIGINAL (%s) is not executable" % ORIGINAL
    return skip_reason()


def stop_all(c):
    """Stop (SIGTERM, bounded) every pmxcfs still running on c's nodes."""
    for n in c.nodes:
        p = n.procs.get("pmxcfs")
        if p is not None and p.alive():
            n.stop_daemon(p)


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = cluster.proc_stat("/proc/%d/stat" % pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_script(node, script, *args, input=None, timeout=120):
    """Run a Python script of ours inside node with its mount dir and args
    (stdin: input); the JSON it prints."""
    argv = [sys.executable, script, node.mount_dir] + [str(a) for a in args]
    r = node.run(argv, input=input, timeout=timeout)
    if r.returncode != 0:
        raise cluster.HarnessError("%s: %s %s failed: %s" % (
            node.name, os.path.basename(script), " ".join(map(str, args)), r.stderr.strip()))
    return json.loads(r.stdout)


def ops(node, batch, timeout=120, stop_on_error=False, barrier=None):
    """Run a batch of fsops.py operations inside node; the result list."""
    args = (["--stop-on-error"] if stop_on_error else []) + (["--barrier", barrier]
                                                              if barrier else [])
    return run_script(node, FSOPS, *args, input=json.dumps(batch), timeout=timeout)


def op(node, *one):
    """One operation: its result dict ({"ok": ...} or {"errno": n})."""
    return ops(node, [list(one)])[0]


def read(node, path):
    r = op(node, "read", path)
    return r.get("ok")


def members(node):
    """The node's .members JSON, or None while it cannot be read."""
    r = op(node, "read", ".members")
    if "ok" not in r:
        return None
    try:
        return json.loads(r["ok"])
    except ValueError:
        return None


def serving(node, want_online=None):
    """Mounted, and (if want_online is a list of names) shows exactly those
    nodes online and is quorate."""
    if not os.path.exists(node.data_dir):
        return False
    m = members(node)
    if m is None:
        return False
    if want_online is None:
        return True
    nl = m.get("nodelist", {})
    online = sorted(k for k, v in nl.items() if v.get("online"))
    return online == sorted(want_online) and m.get("cluster", {}).get("quorate") == 1


def wait_serving(nodes, timeout=60, online=None):
    online = online if online is not None else [n.name for n in nodes]
    for n in nodes:
        wait_for(lambda: serving(n, online), timeout, "%s serving with %s online" % (n.name, online),
                 interval=0.2)


def cfsctl(node, *args, timeout=30):
    """cfsctl inside node (it reaches that node's daemon by IPC, ours or
    the original): (exit status, stdout)."""
    r = node.run([CFSCTL, "--mount", node.mount_dir] + list(args), timeout=timeout)
    return r.returncode, r.stdout


def kv_get(node, key, of):
    """The value of key that node holds under the name of node of, or None."""
    rc, out = cfsctl(node, "kv", "get", key, of)
    return out.rstrip("\n") if rc == 0 else None


def online(node):
    """{name: (online, ip)} from the node's .members, or None."""
    m = members(node)
    if not m:
        return None
    return {k: (v.get("online"), v.get("ip")) for k, v in m.get("nodelist", {}).items()}


def clusterlog(node):
    """The entries of the node's .clusterlog, or None."""
    r = op(node, "read", ".clusterlog")
    if "ok" not in r:
        return None
    return json.loads(r["ok"])["data"]


def log_has(node, msg):
    d = clusterlog(node)
    return d is not None and any(e["msg"] == msg for e in d)


def summary(node):
    """{version, entries, bytes, checksum} of the node's database (read
    only, the daemon may run)."""
    r = subprocess.run([CFSCTL, "--json", "verify", os.path.join(node.data_dir, "config.db")],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None
    d = json.loads(r.stdout)
    d.pop("file", None)
    return d


def wait_converged(nodes, timeout=60):
    """Wait until every node's database has the same version and checksum;
    returns (seconds, summary)."""
    t = time.monotonic()
    last = {}

    def same():
        for n in nodes:
            last[n.name] = summary(n)
        vals = list(last.values())
        return vals[0] is not None and all(v == vals[0] for v in vals)
    try:
        wait_for(same, timeout, "the same database on %s" % [n.name for n in nodes],
                 interval=0.2)
    except Timeout:
        raise Timeout("not converged after %ss: %s" % (timeout, last))
    return time.monotonic() - t, last[nodes[0].name]


def race(nodes, batches, timeout=120):
    """Run one batch per node, all starting at once (a barrier in a
    temporary directory); the result lists, in node order."""
    import tempfile
    import threading
    out = [None] * len(nodes)
    errors = []
    with tempfile.TemporaryDirectory(prefix="pmxcfs-race-") as d:
        def go(i):
            try:
                out[i] = ops(nodes[i], batches[i], timeout=timeout, barrier=d)
            except Exception as e:      # reported below
                errors.append(e)
        ts = [threading.Thread(target=go, args=(i,)) for i in range(len(nodes))]
        for t in ts:
            t.start()
        try:
            wait_for(lambda: errors or len([f for f in os.listdir(d)
                                            if f.startswith("ready.")]) == len(nodes),
                     60, "every racer ready")
        finally:
            open(os.path.join(d, "go"), "w").close()
            for t in ts:
                t.join()
    if errors:
        raise errors[0]
    return out


def write_ok(node, path, text):
    r = op(node, "write", path, text)
    assert r == {"ok": len(text)}, "%s: write %s: %s" % (node.name, path, r)


SANITIZER_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer", "==ERROR:",
                   "are definitely lost", "Invalid read", "Invalid write",
                   "uninitialised", "Conditional jump")


def sanitizer_reports(c):
    """Where a sanitizer spoke in the daemons' logs on c's nodes: one line
    per report.  The lines that follow a report's first (its access, the
    stacks of the access, the free and the allocation, its summary) are
    joined to it with " | ", so that the first line of a failure message
    says where it happened."""
    out = []
    for n in c.nodes:
        path = os.path.join(n.log_dir, "pmxcfs.log")
        try:
            with open(path, errors="replace") as f:
                lines = [line.rstrip() for line in f]
        except OSError:
            continue
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not any(re.search(m, line) for m in SANITIZER_MARKS):
                continue
            parts = [line]
            if "==ERROR:" in line:
                frames = 0
                while i < len(lines) and not lines[i].startswith("==") and len(parts) < 80:
                    t = lines[i].strip()
                    i += 1
                    if re.match(r"#\d+ ", t):
                        frames += 1
                        if frames > 10:
                            continue
                        # "#3 0x55.. in fn /path/file.c:12" -> "#3 fn file.c:12"
                        t = re.sub(r"^(#\d+) 0x[0-9a-f]+ in ", r"\1 ", t)
                        t = re.sub(r" /\S*/", " ", t)
                    elif t:
                        frames = 0
                    else:
                        continue
                    if t.startswith("Shadow bytes"):
                        while i < len(lines) and not lines[i].startswith("=="):
                            i += 1
                        break
                    parts.append(t)
            out.append("%s: %s" % (n.name, " | ".join(parts)))
    return out


def skip_reason():
    """Why the pmxcfs cluster tests cannot run here, or None."""
    reason = cluster.skip_reason()
    if reason:
        return reason
    if not os.access(PMXCFS, os.X_OK):
        return "no pmxcfs binary at " + PMXCFS
    if not os.access(CFSCTL, os.X_OK):
        return "no cfsctl binary at " + CFSCTL
    return None
