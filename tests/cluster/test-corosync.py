#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""test-corosync.py: the cluster harness itself, with real corosync.

Three nodes reach quorum; each node's corosync-quorumtool talks to its own
corosync (and, as a negative control, finds none where no corosync runs);
a 2|1 partition takes quorum from the minority while the majority keeps
it; healing brings all three back; kill -9 of one corosync leaves the
other two quorate; restarting it brings it back; SIGSTOP of one corosync
is a failure too and SIGCONT heals it; a five-node cluster started beside
the running three-node one reaches quorum with the same node names and
addresses and neither run sees the other.  The command line entry tears
down on `stop` and on SIGTERM, and its children die with it on SIGKILL.
After the clusters are closed nothing of them may be left: no process,
namespace, interface, mount or directory.

Needs root, corosync, unshare, nsenter and nft; skipped otherwise.  The
steps build on each other: after a failed step the later ones that need
its cluster are skipped, and the clean-up check still runs.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # the source tree may be read-only
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import Cluster, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BOUND = 60          # seconds any one transition may take (2-6 s when idle; a
                    # thawed corosync under load was seen to need about 30 s)

state = {}          # the clusters, shared by the steps
STEPS, step = cluster.steps()


def sampled_wait(c, done, watch, what, timeout=BOUND):
    """Wait for done(); meanwhile every node in watch must stay quorate
    (a view that cannot be read, while corosync reconfigures, is no
    answer and is not counted).  Returns the number of samples taken."""
    samples = [0]

    def cond():
        for n in watch:
            q = n.quorum()
            if q is not None:
                samples[0] += 1
                assert q["quorate"], "%s lost quorum while it should not: %s" % (n.name, q)
        return done()
    wait_for(cond, timeout, what, interval=0.1)
    return samples[0]


@step()
def three_nodes_quorate():
    t = time.monotonic()
    c = state["c3"] = Cluster(3, wait=False)
    c.wait_quorate(c.nodes, BOUND)
    for n in c.nodes:
        q = n.quorum()
        assert q["quorate"] and q["members"] == [1, 2, 3], (n.name, q)
    return "quorate after %.1fs" % (time.monotonic() - t)


@step(needs=("c3",))
def each_node_its_own_corosync():
    c = state["c3"]
    for n in c.nodes:
        q = n.quorum()
        assert q["nodeid"] == n.nodeid, "%s talks to the corosync of node %s" % (n.name, q)
        assert n.run(["hostname"], check=True).stdout.strip() == n.name
        pid = n.run(["cat", "/run/corosync.pid"], check=True).stdout.strip()
        assert pid == str(n.proc("corosync").pid), (n.name, pid, n.proc("corosync"))
        r = n.run(["corosync-cmapctl", "-g", "totem.cluster_name"], check=True)
        assert r.stdout.strip().endswith("= " + c.prefix), r.stdout
    # negative control: the bridge namespace has no corosync; the same
    # tool there must not find one
    r = subprocess.run(["nsenter", "-t", str(c.bridge_holder.pid), "--net", "--",
                        "corosync-quorumtool", "-s"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    # the host's namespaces see none of it
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert c.prefix not in host, host
    with open("/proc/self/mountinfo") as f:
        assert c.base not in f.read()


@step(needs=("c3",))
def partition_2_1():
    c = state["c3"]
    n1, n2, n3 = c.nodes
    t = time.monotonic()
    c.partition([[n1, n2], [n3]])

    def minority_lost():
        q3 = n3.quorum()
        return q3 is not None and not q3["quorate"]
    samples = sampled_wait(c, minority_lost, [n1, n2], "node3 to lose quorum")
    lost = time.monotonic() - t
    c.wait_quorate([n1, n2], BOUND)
    c.wait_inquorate([n3], BOUND)
    assert n3.quorum()["members"] == [3], n3.quorum()
    return "minority inquorate after %.1fs, majority quorate in all %d samples" % (lost, samples)


@step(needs=("c3",))
def heal():
    c = state["c3"]
    t = time.monotonic()
    c.heal()
    c.wait_quorate(c.nodes, BOUND)
    return "3 members after %.1fs" % (time.monotonic() - t)


@step(needs=("c3",))
def kill9_one_corosync():
    c = state["c3"]
    n1, n2, n3 = c.nodes
    t = time.monotonic()
    c.kill9(n3, "corosync")
    assert n3.quorum() is None

    def two_members():
        return all(q and q["members"] == [1, 2] for q in (n1.quorum(), n2.quorum()))
    samples = sampled_wait(c, two_members, [n1, n2], "node1 and node2 to drop node3")
    c.wait_quorate([n1, n2], BOUND)
    return "2 members after %.1fs, quorate in all %d samples" % (time.monotonic() - t, samples)


@step(needs=("c3",))
def restart_corosync():
    c = state["c3"]
    t = time.monotonic()
    c.restart_corosync("node3")
    c.wait_quorate(c.nodes, BOUND)
    return "3 members after %.1fs" % (time.monotonic() - t)


@step(needs=("c3",))
def sigstop_sigcont():
    c = state["c3"]
    n1, n2, n3 = c.nodes
    t = time.monotonic()
    c.stop(n2, "corosync")
    c.wait_quorate([n1, n3], BOUND)
    stopped = time.monotonic() - t
    c.cont(n2, "corosync")
    c.wait_quorate(c.nodes, BOUND)
    return "frozen node dropped after %.1fs, back %.1fs after SIGCONT" % (
        stopped, time.monotonic() - t - stopped)


@step(needs=("c3",))
def five_nodes_beside_three():
    t = time.monotonic()
    c5 = state["c5"] = Cluster(5, wait=False)
    c5.wait_quorate(c5.nodes, BOUND)
    took = time.monotonic() - t
    # same names and addresses, different runs: neither sees the other
    c3 = state["c3"]
    assert c3.prefix != c5.prefix
    c3.wait_quorate(c3.nodes, BOUND)
    for n in c5.nodes:
        q = n.quorum()
        assert q["members"] == [1, 2, 3, 4, 5] and q["nodeid"] == n.nodeid, (n.name, q)
    return "5 nodes quorate after %.1fs" % took


@step(needs=("c3",))
def daemon_hook():
    """start_daemon/stop_daemon with the built pmxcfs: each node's mount is
    private to it, and both daemons serve IPC under the same name "pve2"
    (abstract sockets are per network namespace)."""
    if not os.access(cluster.PMXCFS, os.X_OK):
        return "SKIP no built daemon at %s" % cluster.PMXCFS
    c = state["c3"]
    n1, n2 = c.nodes[:2]
    daemons = [n.start_daemon() for n in (n1, n2)]
    try:
        for n, d in zip((n1, n2), daemons):
            wait_for(lambda: not d.alive() or
                     n.run(["mountpoint", "-q", n.mount_dir]).returncode == 0,
                     BOUND, "pmxcfs on %s to mount" % n.name)
            assert d.alive(), open(d.log).read()
        assert n2.run(["mountpoint", "-q", n1.mount_dir]).returncode != 0
        with open("/proc/self/mountinfo") as f:
            assert c.base not in f.read()
        for n in (n1, n2):
            r = n.run(["cat", os.path.join(n.mount_dir, ".members")], check=True)
            assert '"nodename" : "%s"' % n.name in r.stdout or \
                '"nodename": "%s"' % n.name in r.stdout, r.stdout
    finally:
        rcs = [n.stop_daemon(d.pid) for n, d in zip((n1, n2), daemons)]
    assert rcs == [0, 0], (rcs, [open(d.log).read()[-2000:] for d in daemons])
    assert os.listdir(n1.data_dir)
    n1.wipe_data()
    assert os.listdir(n1.data_dir) == []


def _cli_start(extra):
    """Start the command line entry; returns (proc, prefix, holder pids, base)."""
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "cluster.py"), "--nodes", "3"] +
                         extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    buf = b""
    deadline = time.monotonic() + BOUND
    while not re.search(rb"\nstop:[^\n]*\n", buf):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            p.kill()
            p.wait()
            raise AssertionError("cluster.py did not come up: %r" % buf)
        chunk = os.read(p.stdout.fileno(), 4096)     # unbuffered: select stays true
        if not chunk:
            raise AssertionError("cluster.py exited %s: %r" % (p.wait(), buf))
        buf += chunk
    out = [buf.decode()]
    text = "".join(out)
    prefix = re.search(r"^cluster (pc[0-9a-f]+):", text, re.M).group(1)
    base = re.search(r"files in (\S+)", text).group(1)
    pids = [int(x) for x in re.findall(r"nsenter -t (\d+) ", text)]
    assert len(set(pids)) == 3, text
    ns = set()
    for pid in pids:
        for kind in ("net", "mnt", "uts"):
            ns.add(os.readlink("/proc/%d/ns/%s" % (pid, kind)))
    return p, prefix, ns, base, text


def _cli_gone(prefix, ns, base):
    def gone():
        for path in os.listdir("/proc"):
            if path.isdigit():
                for kind in ("net", "mnt", "uts"):
                    try:
                        if os.readlink("/proc/%s/ns/%s" % (path, kind)) in ns:
                            return False
                    except OSError:
                        pass
        return True
    wait_for(gone, 15, "the namespaces of %s to go away" % prefix)
    assert prefix not in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                        text=True).stdout


@step()
def cli_shell_stop():
    p, prefix, ns, base, text = _cli_start(["--shell"])
    try:
        assert "enter: nsenter -t" in text, text
        out, _ = p.communicate("status\nstop\n", timeout=BOUND)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, out)
    assert out.count(" quorate ") == 3, out
    assert "stopped and removed" in out, out
    _cli_gone(prefix, ns, base)
    assert not os.path.exists(base), base


@step()
def cli_sigterm():
    p, prefix, ns, base, _ = _cli_start([])
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=BOUND)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + signal.SIGTERM, (p.returncode, out)
    _cli_gone(prefix, ns, base)
    assert not os.path.exists(base), base


@step()
def cli_sigkill_children_follow():
    # the harness cannot clean up after SIGKILL; PR_SET_PDEATHSIG makes
    # the kernel kill corosync and the holders, and the namespaces go
    p, prefix, ns, base, _ = _cli_start([])
    p.kill()
    p.communicate(timeout=BOUND)
    _cli_gone(prefix, ns, base)
    # only the temp dir is left in this case; it is this run's own
    assert base.startswith("/") and prefix in base
    subprocess.run(["rm", "-rf", "--one-file-system", base], check=True)


def _cmdline(entry):
    """The command line of the process in '... held by /proc/PID/ns/x'."""
    try:
        pid = entry.split(" held by /proc/")[1].split("/")[0]
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return "?"


@step()
def nothing_left():
    clusters = cluster.created
    assert clusters, "no cluster was started"
    for c in clusters:
        c.close()
    for c in clusters:
        # processes killed by the teardown may take a moment to leave the
        # kernel (their namespaces go with them): a bounded wait
        left = []

        def gone():
            left[:] = c.leftovers()
            return not left
        try:
            wait_for(gone, 10, "the leftovers of %s to go" % c.prefix, interval=0.1)
        except cluster.Timeout:
            pass
        assert not left, "left behind by %s:\n  %s" % (c.prefix, "\n  ".join(
            left + ["%s: %s" % (x.split(" held by ")[-1], _cmdline(x)) for x in left
                    if " held by " in x]))
    return "%s closed, nothing left" % " ".join(c.prefix for c in clusters)


if __name__ == "__main__":
    sys.exit(cluster.run_steps(STEPS, state, cluster.skip_reason))
