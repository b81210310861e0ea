# SPDX-License-Identifier: AGPL-3.0-or-later
"""pmxcfs_cluster.py: our pmxcfs on the nodes of a harness cluster.

Helpers the replication tests, the benchmark and the demo share: start the
daemon on nodes and wait until it serves, run batches of filesystem
operations inside a node (fsops.py), read a node's database summary
(cfsctl verify), wait for every node to hold the same tree, and a TAP step
runner.
"""

import json
import os
import re
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
from cluster import PMXCFS, Timeout, wait_for  # noqa: E402,F401

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", os.path.join(HERE, "..", ".."))
CFSCTL = os.environ.get("CFSCTL", os.path.join(TOP_BUILDDIR, "tools", "cfsctl"))
FSOPS = os.path.join(HERE, "fsops.py")
# an original pmxcfs to run on some nodes (a mixed cluster), if set
ORIGINAL = os.environ.get("PMXCFS_ORIGINAL")


# e.g. PMXCFS_WRAPPER="valgrind --error-exitcode=99 --leak-check=full"
WRAPPER = os.environ.get("PMXCFS_WRAPPER", "").split()


def start(node, extra=(), binary=None):
    """Start pmxcfs on node (foreground, debug off), under PMXCFS_WRAPPER."""
    return node.start_daemon(WRAPPER + node.pmxcfs_argv(binary=binary, extra=list(extra)))


def ops(node, batch, timeout=120, stop_on_error=False, barrier=None):
    """Run a batch of fsops.py operations inside node; the result list."""
    argv = [sys.executable, FSOPS, node.mount_dir] + (["--stop-on-error"] if stop_on_error
                                                      else [])
    if barrier:
        argv += ["--barrier", barrier]
    r = node.run(argv, input=json.dumps(batch), timeout=timeout)
    if r.returncode != 0:
        raise cluster.HarnessError("%s: fsops failed: %s" % (node.name, r.stderr.strip()))
    return json.loads(r.stdout)


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
    """Lines of the daemons' logs on c's nodes where a sanitizer spoke."""
    out = []
    for n in c.nodes:
        path = os.path.join(n.log_dir, "pmxcfs.log")
        try:
            with open(path, errors="replace") as f:
                out += ["%s: %s" % (n.name, line.rstrip()) for line in f
                        if any(re.search(m, line) for m in SANITIZER_MARKS)]
        except OSError:
            pass
    return out


# --- a TAP runner for steps that share clusters ------------------------------

def run_steps(steps, state, skip_reason):
    """steps: (fn, needs) pairs; a step runs only when every key in needs
    is in state and that key's setup did not fail.  A failed step marks the
    keys it set up as broken (state["broken"] holds them)."""
    reason = skip_reason()
    if reason:
        print("1..0 # SKIP " + reason)
        return 0
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
            for c in cluster.created:
                if not c.closed:
                    c.failed = True
                    for n in c.nodes:
                        for line in n.tail_logs(12).splitlines():
                            print("# %s: %s" % (n.name, line))
        sys.stdout.flush()
    for c in cluster.created:
        if os.environ.get("CLUSTER_KEEP_LOGS"):
            c.failed = True          # keep every node's logs, failed or not
        c.close()
        if c.keep_dir:
            print("# logs of %s kept in %s" % (c.prefix, c.keep_dir))
    print("# total %.1fs" % (time.monotonic() - t_all))
    return 1 if failed else 0


def skip_reason():
    if os.geteuid() != 0:
        return "needs root"
    missing = cluster.missing_tools()
    if missing:
        return "missing tools: " + ", ".join(missing)
    if not os.access(PMXCFS, os.X_OK):
        return "no pmxcfs binary at " + PMXCFS
    if not os.access(CFSCTL, os.X_OK):
        return "no cfsctl binary at " + CFSCTL
    r = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return "cannot create namespaces: %s" % r.stderr.strip()
    return None
