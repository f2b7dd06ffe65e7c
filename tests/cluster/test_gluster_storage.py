"""Shared storage libvirt recognizes: a GlusterFS volume (hwgluster.py) on the compute
nodes' /var/lib/nova/instances lets a guest with a *writable* qcow2 disk (backing file in
_base, as Nova lays it out) live-migrate with plain ``virsh migrate --live --p2p``, while
the guest keeps writing to that disk; the harness's bind mount does not (the control).
"""

from __future__ import annotations

import time
import uuid

import diskguest
import hwcluster
import hwgluster
from hwcluster import INSTANCES_PATH

UNSAFE = "Migration without shared storage is unsafe"
# Nova's uid/gid are whatever the package got; they must only be the same on every node
NOVA_ID = 64060


def _add_nova_user(node: hwcluster.Node) -> None:
    node.run(f"getent group nova >/dev/null || groupadd -r -g {NOVA_ID} nova; "
             f"getent passwd nova >/dev/null || useradd -r -u {NOVA_ID} -g nova "
             "-d /var/lib/nova -s /usr/sbin/nologin nova")


def _writer_guest(node: hwcluster.Node, name: str) -> tuple[str, str]:
    """Nova's layout: a raw image in _base, the instance's qcow2 disk on top of it; the
    guest (diskguest.py, its kernel next to the disk) writes its counter to that disk.
    Defines and starts it on NODE; returns the disk's path and the domain XML."""
    inst = f"{INSTANCES_PATH}/{name}"
    base = f"{INSTANCES_PATH}/_base/base-64m"
    disk = f"{inst}/disk"
    node.run(f"mkdir -p {INSTANCES_PATH}/_base {inst} && "
             f"{{ [ -e {base} ] || qemu-img create -q -f raw {base} 64M; }} && "
             f"qemu-img create -q -f qcow2 -b {base} -F raw {disk}")
    node.write_file(f"{inst}/kernel", diskguest.kernel())
    xml = hwcluster.domain_xml(name, uuid=str(uuid.uuid4()), kernel=f"{inst}/kernel",
                               devices=diskguest.disk_xml(disk))
    hwcluster.define_and_start(node, xml)
    return disk, xml


def _assert_clean(node: hwcluster.Node, disk: str) -> None:
    check = node.run(["qemu-img", "check", disk], check=False)
    assert check.returncode == 0 and "No errors were found" in check.stdout, \
        (check.stdout, check.stderr)


def _counter(node: hwcluster.Node, disk: str) -> int:
    """The guest's counter, read on NODE (retried while a read races a write)."""
    def read():
        out = node.run(diskguest.counter_command(disk)).stdout
        value = diskguest.parse_counter(out)
        return value, out
    return hwgluster._poll(f"{node.name}: counter in {disk}", read, 20, interval=0.02)


def _counter_passes(node: hwcluster.Node, disk: str, value: int, timeout: float = 30) -> int:
    """Poll until the counter is above VALUE (the guest runs and writes); return it."""
    def check():
        now = _counter(node, disk)
        assert now >= value, f"the counter went backwards: {value} -> {now}"
        return (now if now > value else 0), f"still {now}"
    return hwgluster._poll(f"{node.name}: the guest does not write", check, timeout)


def test_writable_qcow2_on_gluster_migrates_live(make_cluster, record_timing):
    missing = hwgluster.check_environment()
    assert not missing, "cannot serve GlusterFS in the nodes: " + "; ".join(missing)
    files = hwgluster.cluster_files(n_nodes=3, storage=3)
    cluster = make_cluster(3, files=files)
    node1, node2, storage = cluster.nodes

    # The control: on the harness's bind mount libvirt refuses the same guest.
    disk, _ = _writer_guest(node1, "bind-vm")
    _counter_passes(node1, disk, 0)
    proc = hwcluster.migrate(node1, node2, "bind-vm")
    assert proc.returncode != 0 and UNSAFE in proc.stderr, (proc.returncode, proc.stderr)
    node1.virsh("destroy", "bind-vm")
    node1.virsh("undefine", "bind-vm")

    # The volume, owned by nova, mounted on both compute nodes.
    for node in cluster.nodes:
        _add_nova_user(node)
    started = time.monotonic()
    record_timing("gluster: volume created and started",
                  hwgluster.setup_volume(storage, owner=(NOVA_ID, NOVA_ID)))
    for node in (node1, node2):
        record_timing("gluster: FUSE mount on a compute node", hwgluster.mount_on(node))
    record_timing("gluster: glusterd answering to both nodes mounted",
                  time.monotonic() - started)
    for node in (node1, node2):
        assert hwgluster.mounted_type(node) == "fuse.glusterfs"
        assert node.run(["stat", "-c", "%U:%G", INSTANCES_PATH]).stdout.strip() == "nova:nova"
    node1.write_file(f"{INSTANCES_PATH}/seen-by-node2", "hello\n")
    assert node2.read_file(f"{INSTANCES_PATH}/seen-by-node2") == "hello\n"

    # A writable qcow2 disk on the volume: live migration there and back, no --unsafe.
    disk, xml = _writer_guest(node1, "gluster-vm")
    last = _counter_passes(node1, disk, 0)
    for src, dst in ((node1, node2), (node2, node1)):
        before = _counter(src, disk)
        assert before >= last, f"the counter went backwards: {last} -> {before}"
        t0 = time.monotonic()
        proc = hwcluster.migrate(src, dst, "gluster-vm")
        record_timing("gluster: live migration of the writing guest (64 MiB)",
                      time.monotonic() - t0)
        assert proc.returncode == 0, proc.stderr
        assert UNSAFE not in proc.stderr
        assert dst.virsh("domstate", "gluster-vm").stdout.strip() == "running"
        # it goes on writing on the destination, from where it was
        last = _counter_passes(dst, disk, before)

    # Consistent afterwards: QEMU closes the image cleanly on destroy (SIGTERM).
    node1.virsh("destroy", "gluster-vm")
    final = _counter(node1, disk)
    assert final >= last, f"the counter went backwards: {last} -> {final}"
    _assert_clean(node1, disk)
    info = node2.run(["qemu-img", "info", disk]).stdout
    assert f"backing file: {INSTANCES_PATH}/_base/base-64m" in info, info

    # Booted again on the other node (as a rebuild would), it goes on from the disk.
    node1.virsh("undefine", "gluster-vm")
    hwcluster.define_and_start(node2, xml)
    _counter_passes(node2, disk, final)
    node2.virsh("destroy", "gluster-vm")
    _assert_clean(node2, disk)

    # Everything stops with the nodes; nothing of it is on the host.
    cluster.teardown()
    assert cluster.leftovers() == []
    assert hwgluster.host_leftovers() == []
