"""Disk leases as a second line (issue 9): [locking] disk_leases = yes, `hostwardenctl
setup-leases` configures libvirt's lockd lock manager (indirect leases in a lock space on the
shared storage), CheckNode verifies it, and with hostwarden's deny list deliberately
bypassed, a second start of the same guest on another node is still refused, by the
lease."""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall
from hwevac import ctl, record, running, wait_for

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
SHARED = hwcluster.INSTANCES_PATH
LOCKSPACE = f"{SHARED}/.leases"
LOCKING = "[locking]\ndisk_leases = yes\n"


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, extra=LOCKING) for i in (1, 2)}) as cluster:
        yield cluster


def check(node) -> dict:
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckNode"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]}


def test_setup_leases_configures_libvirt_and_check_node_follows(nodes):
    node1 = nodes.node(1)
    sev, msg = check(node1)["disk-leases"]
    assert sev == "error" and "hostwardenctl setup-leases" in msg, msg

    for n in nodes.nodes:
        out = ctl(n, "setup-leases").stdout
        assert "Restart libvirtd" in out, out
    conf = node1.read_file("/etc/libvirt/qemu-lockd.conf")
    assert f'file_lockspace_dir = "{LOCKSPACE}"' in conf and "auto_disk_leases = 1" in conf, conf
    assert 'lock_manager = "lockd"' in node1.read_file("/etc/libvirt/qemu.conf")
    # the harness' own settings in qemu.conf are kept
    assert 'migration_host = "10.77.0.11"' in node1.read_file("/etc/libvirt/qemu.conf")
    # libvirt reads its lock manager only when it starts: CheckNode says so
    sev, msg = check(node1)["disk-leases"]
    assert sev == "error" and "restart" in msg, msg
    # also when the files were written in the second libvirtd started in, but after it
    started = int(node1.run([
        "busctl", "get-property", "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1/unit/libvirtd_2eservice", "org.freedesktop.systemd1.Service",
        "ExecMainStartTimestamp"]).stdout.split()[1]) + 1
    stamp = f"@{started // 1_000_000}.{started % 1_000_000:06d}"
    node1.run(["touch", "-d", stamp, "/etc/libvirt/qemu.conf", "/etc/libvirt/qemu-lockd.conf"])
    sev, msg = check(node1)["disk-leases"]
    assert sev == "error" and "restart" in msg, msg

    for n in nodes.nodes:
        n.restart_libvirtd()
    sev, msg = check(node1)["disk-leases"]
    assert sev == "ok" and LOCKSPACE in msg, msg
    # running it again changes nothing
    ctl(node1, "setup-leases")
    assert node1.read_file("/etc/libvirt/qemu.conf").count("lock_manager") == 1


def test_a_second_start_elsewhere_is_refused_by_the_lease(nodes):
    node1, node2 = nodes.nodes
    uuid = str(uuidlib.uuid4())
    # The same path on both nodes, a different file on each (as one LUN under the same
    # /dev/disk/by-path name on two hosts): QEMU's own image locking cannot see across
    # them, the lease (keyed by the path) must.
    disk = f"/var/lib/hw-lease/{uuid}.img"
    for n in nodes.nodes:
        n.run(f"mkdir -p /var/lib/hw-lease && qemu-img create -q -f raw {disk} 16M")
    xml = hwcluster.domain_xml("leased", uuid=uuid, devices=(
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"))
    hwcluster.define_and_start(node1, xml)
    try:
        assert wait_for(lambda: record(node1, uuid).get("owner") == "node1")
        # the lease: a lock file named by the SHA-256 of the disk's path, in the lock space
        lease = f"{LOCKSPACE}/{hashlib.sha256(disk.encode()).hexdigest()}"
        assert node2.run(["test", "-e", lease], check=False).returncode == 0, \
            node2.run(["ls", "-la", LOCKSPACE]).stdout

        # node2 gets the same definition; hostwarden would undefine it there and its hook
        # would refuse to start it (node1 owns the instance, node2 denies it). Bypass both
        # on purpose: hostwardend stopped, the deny list emptied.
        deny = f"/run/hostwarden/deny/{uuid}"
        assert wait_for(lambda: node2.run(["test", "-e", deny], check=False).returncode == 0)
        node2.systemctl("mask", "--runtime", "hostwardend.service")
        node2.systemctl("stop", "hostwardend.service")
        try:
            node2.run(["virsh", "-c", "qemu:///system", "define", "/dev/stdin"], input=xml)
            node2.run("rm -f /run/hostwarden/deny/*")
            assert node2.run(["ls", "-A", "/run/hostwarden/deny"]).stdout.split() == []
            proc = node2.virsh("start", "leased", check=False)
            assert proc.returncode != 0, proc.stdout
            assert "Lockspace resource" in proc.stderr and "is locked" in proc.stderr, \
                proc.stderr
        finally:
            node2.systemctl("unmask", "--runtime", "hostwardend.service")
            node2.systemctl("start", "hostwardend.service")
        assert running(node1, "leased") and not running(node2, "leased")
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", "leased", check=False)
            n.virsh("undefine", "leased", check=False)
