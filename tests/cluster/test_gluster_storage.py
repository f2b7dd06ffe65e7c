"""Shared storage libvirt recognizes: a GlusterFS volume (hwgluster.py) on the compute
nodes' /var/lib/nova/instances lets a guest with a *writable* qcow2 disk (backing file in
_base, as Nova lays it out) live-migrate with plain ``virsh migrate --live --p2p`` while
the guest keeps writing to that disk; on the harness's bind mount libvirt refuses the same
guest (the control).  A compute node mounts the volume again when it boots again.
"""

from __future__ import annotations

import time
import uuid

import diskguest
import hwcluster
import hwgluster
from hwcluster import INSTANCES_PATH

UNSAFE = "Migration without shared storage is unsafe"
NOVA_ID = hwcluster.NOVA_UID  # the nodes' nova account (hwcluster.py)


def _poll(what: str, check, timeout: float, interval: float = 0.05):
    """CHECK() -> (result, detail) until result is true; AssertionError after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        result, detail = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} (after {timeout:.0f}s): {detail}"
        time.sleep(interval)


def _writer_guest(node: hwcluster.Node, name: str,
                  root: str = INSTANCES_PATH) -> tuple[str, str]:
    """Nova's layout under ROOT: a raw image in _base, the instance's qcow2 disk on top of
    it; the guest (diskguest.py, its kernel next to the disk) writes its counter to that
    disk.  Defines and starts it on NODE; returns the disk's path and the domain XML."""
    inst, base = f"{root}/{name}", f"{root}/_base/base-64m"
    disk = f"{inst}/disk"
    node.run(f"mkdir -p {root}/_base {inst} && "
             f"{{ [ -e {base} ] || qemu-img create -q -f raw {base} 64M; }} && "
             f"qemu-img create -q -f qcow2 -b {base} -F raw {disk}")
    node.write_file(f"{inst}/kernel", diskguest.kernel())
    xml = hwcluster.domain_xml(name, uuid=str(uuid.uuid4()), kernel=f"{inst}/kernel",
                               devices=diskguest.disk_xml(disk))
    hwcluster.define_and_start(node, xml)
    return disk, xml


def _last_read(node: hwcluster.Node, disk: str) -> int:
    """The guest's counter, read on NODE (again while a read races a write)."""
    for _ in range(100):
        value = diskguest.parse_counter(node.run(diskguest.counter_command(disk)).stdout)
        if value is not None:
            return value
    raise AssertionError(f"{node.name}: sector 0 of {disk} never read whole")


def _counter_passes(node: hwcluster.Node, disk: str, value: int, timeout: float = 30) -> int:
    """Poll until the counter is above VALUE (the guest runs and writes); return it.
    Fails at once if it is ever below VALUE."""
    def check():
        now = _last_read(node, disk)
        assert now >= value, f"the counter went backwards: {value} -> {now}"
        return (now if now > value else 0), f"still {now}"
    return _poll(f"{node.name}: the guest does not write", check, timeout)


def _assert_clean(node: hwcluster.Node, disk: str) -> None:
    check = node.run(["qemu-img", "check", disk], check=False)
    assert check.returncode == 0 and "No errors were found" in check.stdout, \
        (check.stdout, check.stderr)


def test_writable_qcow2_on_gluster_migrates_live(make_cluster, record_timing):
    missing = hwgluster.check_environment()
    assert not missing, "cannot serve GlusterFS in the nodes: " + "; ".join(missing)
    files = hwgluster.cluster_files(n_nodes=3, storage=3, owner=(NOVA_ID, NOVA_ID))
    cluster = make_cluster(3, files=files)
    node1, node2 = hwgluster.compute_nodes(cluster)
    storage = cluster.node(3)

    # Mounted at boot, before libvirtd; owned by nova; one file system for both.
    for node in (node1, node2):
        hwgluster.wait_mounted(node)
        record_timing("gluster: compute node's mount at boot (waiting for the volume)",
                      hwgluster.unit_seconds(node, hwgluster.MOUNT_UNIT))
        # the harness gives every node the nova account (hwcluster.NOVA_UID)
        assert node.run(["stat", "-c", "%U:%G", INSTANCES_PATH]).stdout.strip() == "nova:nova"
    record_timing("gluster: storage node's glusterd + volume at boot",
                  hwgluster.unit_seconds(storage, "glusterd.service")
                  + hwgluster.unit_seconds(storage, hwgluster.VOLUME_UNIT))
    node1.write_file(f"{INSTANCES_PATH}/seen-by-node2", "hello\n")
    assert node2.read_file(f"{INSTANCES_PATH}/seen-by-node2") == "hello\n"

    # The control: on the harness's bind mount libvirt refuses the same guest.
    disk, _ = _writer_guest(node1, "bind-vm", root=hwgluster.BIND_PATH)
    _counter_passes(node1, disk, 0)
    proc = hwcluster.migrate(node1, node2, "bind-vm")
    assert proc.returncode != 0 and UNSAFE in proc.stderr, (proc.returncode, proc.stderr)
    node1.virsh("destroy", "bind-vm")
    node1.virsh("undefine", "bind-vm")

    # A writable qcow2 disk on the volume: live migration there and back, no --unsafe.
    disk, xml = _writer_guest(node1, "gluster-vm")
    last = _counter_passes(node1, disk, 0)
    for src, dst in ((node1, node2), (node2, node1)):
        before = _last_read(src, disk)
        assert before >= last, f"the counter went backwards: {last} -> {before}"
        t0 = time.monotonic()
        proc = hwcluster.migrate(src, dst, "gluster-vm")
        record_timing("gluster: live migration of the writing guest (64 MiB)",
                      time.monotonic() - t0)
        assert proc.returncode == 0, proc.stderr
        assert dst.virsh("domstate", "gluster-vm").stdout.strip() == "running"
        # it wrote while it migrated, and goes on on the destination
        last = _counter_passes(dst, disk, before)

    # Consistent afterwards: QEMU closes the image cleanly on destroy (SIGTERM).
    node1.virsh("destroy", "gluster-vm")
    node1.virsh("undefine", "gluster-vm")
    final = _last_read(node1, disk)
    assert final >= last, f"the counter went backwards: {last} -> {final}"
    _assert_clean(node1, disk)
    info = node2.run(["qemu-img", "info", disk]).stdout
    assert f"backing file: {INSTANCES_PATH}/_base/base-64m" in info, info

    # node2 loses power and boots again: the volume is mounted again at boot, and the
    # guest started there (as a rebuild would) goes on from the counter on its disk.
    node2.kill()
    t0 = time.monotonic()
    node2.boot()
    hwgluster.wait_mounted(node2)
    record_timing("gluster: compute node's boot until mounted again", time.monotonic() - t0)
    hwcluster.define_and_start(node2, xml)
    _counter_passes(node2, disk, final)
    node2.virsh("destroy", "gluster-vm")
    _assert_clean(node2, disk)

    # Everything stops with the nodes; nothing of it is on the host.
    cluster.teardown()
    assert cluster.leftovers() == []
    assert hwgluster.host_leftovers() == []
