#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""bench-ipc.py: IPC figures of one pmxcfs node (local mode).

Starts a daemon on a temporary mount point (tests/fs/harness.py), writes
--guests guest configs through the mount (nodes/<node>/qemu-server/<vmid>.conf,
about 1 KiB each: "key: value" lines, every 10th with a "lock:" line, every
3rd with a [snapshot] section whose lines must not be read) and a 4 KiB
file, then runs tests/bench/bench-ipc (libcfs) for the figures: round
trips/s of GET_FS_VERSION and GET_CONFIG, and ms per
GET_GUEST_CONFIG_PROPERTY call over all guests and for one.  Then it
changes 1% of the configs and measures the first call again.  Prints
figures, asserts nothing.  Needs root.

    tests/bench/bench-ipc.py [--guests N] [--seconds S] [--data-dir DIR]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fs"))
from harness import Node, TOP_BUILDDIR  # noqa: E402

BENCH_IPC = os.path.join(TOP_BUILDDIR, "tests", "bench", "bench-ipc")


def guest_config(vmid):
    """A qemu-server config of about 1 KiB, as PVE writes them."""
    mac = "BC:24:11:%02X:%02X:%02X" % (vmid >> 16 & 255, vmid >> 8 & 255, vmid & 255)
    uuid = "%08x-1234-4abc-9def-%012x" % (vmid, vmid * 7919)
    main = [
        "#Web server %d" % vmid,
        "#managed by the benchmark, owner team-%d, ticket INFRA-%d" % (vmid % 7, vmid),
        "agent: 1,fstrim_cloned_disks=1",
        "balloon: 2048",
        "bios: ovmf",
        "boot: order=scsi0;ide2;net0",
        "cores: %d" % (1 << vmid % 4),
        "cpu: x86-64-v2-AES",
        "efidisk0: local-lvm:vm-%d-disk-2,efitype=4m,pre-enrolled-keys=1,size=4M" % vmid,
        "hotplug: disk,network,usb",
        "ide2: none,media=cdrom",
        "ipconfig0: ip=10.%d.%d.%d/16,gw=10.%d.0.1" % (vmid >> 16 & 255, vmid >> 8 & 255, vmid & 255,
                                                      vmid >> 16 & 255),
        "machine: q35",
        "memory: %d" % (1024 << vmid % 4),
        "meta: creation-qemu=8.1.5,ctime=%d" % (1700000000 + vmid),
        "name: vm-%d-web" % vmid,
        "net0: virtio=%s,bridge=vmbr0,firewall=1" % mac,
        "net1: virtio=%s,bridge=vmbr1,tag=%d" % (mac.replace("BC:24", "BC:25"), 100 + vmid % 50),
        "numa: 0",
        "onboot: 1",
        "ostype: l26",
        "scsi0: local-lvm:vm-%d-disk-0,iothread=1,size=32G" % vmid,
        "scsi1: local-lvm:vm-%d-disk-1,backup=0,iothread=1,size=100G" % vmid,
        "scsihw: virtio-scsi-single",
        "serial0: socket",
        "smbios1: uuid=%s" % uuid,
        "sockets: 1",
        "startup: order=%d,up=30" % (vmid % 20),
        "tags: prod;web;team-%d" % (vmid % 7),
        "vga: serial0",
        "vmgenid: %s" % uuid[::-1],
    ]
    if vmid % 10 == 0:
        main.insert(15, "lock: backup")
    snap = []
    if vmid % 3 == 0:
        main.insert(20, "parent: before-upgrade")
        snap = ["", "[before-upgrade]", "boot: order=scsi0;net0", "cores: 2",
                "lock: snapshot", "memory: 2048", "name: vm-%d-web" % vmid,
                "net0: virtio=%s,bridge=vmbr0" % mac, "ostype: l26",
                "scsi0: local-lvm:vm-%d-disk-0,size=32G" % vmid,
                "snaptime: %d" % (1710000000 + vmid), "tags: prod;old",
                "vmstate: local-lvm:vm-%d-state-before-upgrade" % vmid]
    return ("\n".join(main + snap) + "\n").encode()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write(path, data):
    # os.open/os.write: the system calls a C or Perl program makes
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
    os.write(fd, data)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--data-dir", default="/var/tmp")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench-ipc needs root")
        return 1
    node = Node(base=tempfile.mkdtemp(prefix="pmxcfs-bench-", dir=args.data_dir))
    node.args += ["-l"]
    try:
        node.start()
        qdir = node.path("nodes", node.nodename, "qemu-server")
        t0 = time.perf_counter()
        size = 0
        for vmid in range(100, 100 + args.guests):
            conf = guest_config(vmid)
            size += len(conf)
            write(os.path.join(qdir, "%d.conf" % vmid), conf)
        dt = time.perf_counter() - t0
        write(node.path("bench-4k.cfg"), b"".join(b"line %04d: %s\n" % (i, b"x" * 54)
                                                   for i in range(64)))
        write(node.path("storage.cfg"), b"".join(b"dir: s%04d\n\tpath /srv/%s\n\n" % (i, b"y" * 40)
                                                  for i in range(64)))
        print("pmxcfs (local mode), %d guest configs of %.0f bytes on average "
              "(written in %.1f s), IPC through libcfs" % (args.guests, size / args.guests, dt))
        sys.stdout.flush()
        one = 100 + args.guests // 2
        pid = ["--pid", str(node.pid)]
        rss0 = rss_kib(node.pid)
        subprocess.check_call([BENCH_IPC] + pid + [node.ipc_name, "bench-4k.cfg", str(one), "lock",
                                                   str(args.seconds)])
        print("daemon resident memory: %+d KiB over these requests" % (rss_kib(node.pid) - rss0))
        # change 1% of the configs: what the first call then costs
        for vmid in range(100, 100 + args.guests, 100):
            write(os.path.join(qdir, "%d.conf" % vmid), guest_config(vmid) + b"description: x\n")
        print("after changing %d configs:" % len(range(100, 100 + args.guests, 100)))
        sys.stdout.flush()
        subprocess.check_call([BENCH_IPC] + pid + ["--first", node.ipc_name, "lock"])
    finally:
        node.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
