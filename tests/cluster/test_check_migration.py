"""CheckMigration on two real nodes (issue 6): the constraints a TCG node can show, each with
its code and an actionable message; bad arguments get InvalidArgs / NoSuchDomain /
NoSuchNode. The other rules are unit-tested on fixtures (tests/unit/test-migcheck.c)."""

from __future__ import annotations

import json
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall

BUSCTL, DEST = hwinstall.BUSCTL, hwinstall.NODE_API
CONFIG = """[node]
name = node{i}
address = 10.77.0.1{i}
[cluster]
heartbeat_interval = 500ms
down_after = 3s
[peer node{j}]
address = 10.77.0.1{j}
[peer node3]
address = 10.77.0.13
"""
ISO_DIR = "/var/lib/libvirt/images"  # node-local: each node has its own


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: CONFIG.format(i=i, j=3 - i) for i in (1, 2)}) as cluster:
        yield cluster


def check(node, dom, dest, *opts):
    """CheckMigration → {code: (severity, message)}; opts as busctl a{sv} words."""
    args = ["a{sv}", str(len(opts) // 3), *opts] if opts else ["a{sv}", "0"]
    out = node.run(BUSCTL + ["--json=short", "call", *DEST, "CheckMigration", "ssa{sv}",
                             dom, dest, *args[1:]]).stdout
    findings = json.loads(out)["data"][0]
    return {code: (sev, msg) for sev, code, msg in findings}


def call_error(node, dom, dest, opts="{}"):
    """CheckMigration through gdbus, which shows the D-Bus error name; returns stderr."""
    proc = node.run(["gdbus", "call", "--system", "--dest", "org.hostwarden.Warden1",
                     "--object-path", "/org/hostwarden/Warden1", "--method",
                     "org.hostwarden.Warden1.Node.CheckMigration", dom, dest, opts], check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def wait_up(node, peer, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListNodes"]).stdout
        states = {n[0]: n[2] for n in json.loads(out)["data"][0]}
        if states.get(peer) == "up":
            return
        time.sleep(0.2)
    raise AssertionError(f"{peer} not up as seen from {node.name}")


@pytest.fixture
def domain(nodes):
    """Defines domains on node1 (started only when asked: most rules read the definition, and
    a shut-off domain is a finding of its own) and removes them afterwards."""
    node1 = nodes.node(1)
    names = []

    def define(name, memory_mib=64, devices="", start=False):
        xml = hwcluster.domain_xml(name, memory_mib=memory_mib, devices=devices)
        node1.run(["virsh", "define", "/dev/stdin"], input=xml)
        names.append(name)
        if start:
            node1.virsh("start", name)
        return name
    yield define
    for name in names:
        node1.virsh("destroy", name, check=False)
        node1.virsh("undefine", "--managed-save", name, check=False)


def test_a_plain_guest_to_a_live_peer_has_no_error(nodes, domain):
    node1 = nodes.node(1)
    wait_up(node1, "node2")
    findings = check(node1, domain("cm-plain", start=True), "node2")
    assert all(sev != "error" for sev, _ in findings.values()), findings


def test_a_shut_off_domain_is_an_error(nodes, domain):
    """Migrate refuses a domain that does not run: CheckMigration says so first."""
    node1 = nodes.node(1)
    wait_up(node1, "node2")
    findings = check(node1, domain("cm-off"), "node2")
    sev, msg = findings["domain-shutoff"]
    assert sev == "error", findings
    assert "cm-off is shut off" in msg and "virsh start cm-off" in msg, msg
    assert "cold migration (not yet available)" in msg, msg
    assert [c for c, (sev, _) in findings.items() if sev == "error"] == ["domain-shutoff"]


def test_a_managed_saved_domain_is_an_error(nodes, domain):
    node1 = nodes.node(1)
    wait_up(node1, "node2")
    name = domain("cm-saved", start=True)
    assert "domain-managed-save" not in check(node1, name, "node2")
    node1.virsh("managedsave", name)
    assert "Managed save:   yes" in node1.virsh("dominfo", name).stdout
    findings = check(node1, name, "node2")
    sev, msg = findings["domain-managed-save"]
    assert sev == "error", findings
    assert "managed save image on node1" in msg and "virsh start cm-saved" in msg, msg
    assert "managedsave-remove cm-saved" in msg, msg
    assert "domain-shutoff" not in findings, findings


def test_a_destination_with_another_domain_of_that_name(nodes, domain):
    """libvirt cannot hold two domains of one name: a same-name domain of another UUID on the
    destination is an error, and gone with it."""
    node1, node2 = nodes.nodes
    wait_up(node1, "node2")
    name = domain("cm-twin", start=True)
    other = str(uuidlib.uuid4())
    node2.run(["virsh", "define", "/dev/stdin"],
              input=hwcluster.domain_xml(name, uuid=other))
    try:
        findings = check(node1, name, "node2")
        sev, msg = findings["destination-name-taken"]
        assert sev == "error", findings
        uuid = node1.virsh("domuuid", name).stdout.strip()
        assert other in msg and uuid in msg and "pick another node" in msg, msg
    finally:
        node2.virsh("undefine", name, check=False)
    assert "destination-name-taken" not in check(node1, name, "node2")


def test_destination_is_this_node(nodes, domain):
    findings = check(nodes.node(1), domain("cm-self"), "node1")
    assert findings["destination-self"][0] == "error"
    assert "is this node" in findings["destination-self"][1]


def test_not_enough_free_memory_on_the_destination(nodes, domain):
    findings = check(nodes.node(1), domain("cm-huge", memory_mib=1024 * 1024), "node2")
    sev, msg = findings["memory"]
    assert sev == "error"
    assert "needs 1048576 MiB" in msg and "node2 has" in msg, msg


def test_a_disabled_destination(nodes, domain):
    node1, node2 = nodes.nodes
    name = domain("cm-disabled")
    node2.run(BUSCTL + ["call", *DEST, "Disable", "s", "maintenance"])
    try:
        findings = check(node1, name, "node2")
        assert findings["destination-disabled"][0] == "error"
        assert "hostwardenctl enable" in findings["destination-disabled"][1]
    finally:
        node2.run(BUSCTL + ["call", *DEST, "Enable"])
    assert "destination-disabled" not in check(node1, name, "node2")


def test_cdrom_with_block_migration(nodes, domain):
    node1 = nodes.node(1)
    node1.run(["mkdir", "-p", ISO_DIR])
    # a data CD and an ISO 9660 config drive (volume descriptor "CD001" at 0x8001)
    node1.run(["truncate", "-s", "1M", f"{ISO_DIR}/data.img"])
    node1.run(["truncate", "-s", "1M", f"{ISO_DIR}/disk.config"])
    node1.run(f"printf CD001 | dd of={ISO_DIR}/disk.config bs=1 seek=32769 conv=notrunc "
              "status=none")
    cdroms = (f"<disk type='file' device='cdrom'><source file='{ISO_DIR}/data.img'/>"
              "<target dev='sda' bus='sata'/><readonly/></disk>"
              f"<disk type='file' device='cdrom'><source file='{ISO_DIR}/disk.config'/>"
              "<target dev='sdb' bus='sata'/><readonly/></disk>")
    name = domain("cm-cdrom", devices=cdroms)
    findings = check(node1, name, "node2", "block", "b", "true")
    assert findings["readonly-drive"][0] == "error"
    assert "sda" in findings["readonly-drive"][1] and "--eject" in findings["readonly-drive"][1]
    assert findings["config-drive-iso9660"][0] == "error"
    assert "config_drive_format=vfat" in findings["config-drive-iso9660"][1]
    # without block migration those node-local images are the problem instead
    findings = check(node1, name, "node2")
    assert findings["local-disk"][0] == "error" and "--block" in findings["local-disk"][1]


def test_shared_disk_with_block_migration(nodes, domain):
    node1 = nodes.node(1)
    path = f"/var/lib/nova/instances/{uuidlib.uuid4()}.qcow2"
    node1.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"])
    try:
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>")
        name = domain("cm-shared", devices=disk, start=True)
        findings = check(node1, name, "node2", "block", "b", "true")
        assert findings["shared-disk-block"][0] == "error"
        assert "without block" in findings["shared-disk-block"][1]
        # without block: only libvirt's refusal of the test's bind-mounted shared directory
        errors = [code for code, (sev, _) in check(node1, name, "node2").items()
                  if sev == "error"]
        assert errors == ["unsafe-storage"], errors
    finally:
        node1.run(["rm", "-f", path])


def test_a_shared_disk_on_a_local_base_is_found_before_migrate_refuses_it(nodes, domain):
    """A qcow2 disk on the shared storage whose backing file is on the source's own disk:
    the destination cannot open it, which libvirt learns only when the destination's QEMU
    fails to start. CheckMigration names it first, and Migrate refuses with that finding,
    leaving the guest where it runs. With the base on the shared storage, that finding
    goes and libvirt migrates the guest.

    The test's shared directory is a bind mount, which libvirt does not take for shared
    storage (it refuses 'Migration without shared storage is unsafe'): CheckMigration
    predicts that too (unsafe-storage), and the libvirt runs here pass --unsafe to get past
    it to the backing file."""
    node1, node2 = nodes.nodes
    wait_up(node1, "node2")
    tag = uuidlib.uuid4().hex[:8]
    name = f"cm-base-{tag}"
    local_base = f"/var/lib/libvirt/images/base-{tag}.qcow2"
    shared_base = f"/var/lib/nova/instances/_base/base-{tag}.qcow2"
    top = f"/var/lib/nova/instances/top-{tag}.qcow2"
    node1.run(["mkdir", "-p", "/var/lib/nova/instances/_base"])
    for base in (local_base, shared_base):
        node1.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "16M"])
    node1.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", local_base, top])
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{top}'/><target dev='vda' bus='virtio'/></disk>")
    try:
        domain(name, devices=disk, start=True)
        findings = check(node1, name, "node2")
        sev, msg = findings["local-backing-file"]
        assert sev == "error" and local_base in msg and "vda" in msg, msg
        sev, msg = findings["unsafe-storage"]
        assert sev == "error" and "vda" in msg, msg
        proc = hwcluster.migrate(node1, node2, name)
        assert proc.returncode != 0 and "Migration without shared storage is unsafe" in \
            proc.stderr, proc.stderr
        # past libvirt's own check, the destination cannot open the base
        proc = hwcluster.migrate(node1, node2, name, "--unsafe")
        assert proc.returncode != 0 and local_base in proc.stderr, proc.stderr
        assert node1.virsh("domstate", name).stdout.strip() == "running"
        # hostwarden refuses before anything starts, naming the finding
        out = node1.run(BUSCTL + ["--json=short", "call", *DEST, "Migrate", "ssa{sv}", name,
                                  "node2", "0"]).stdout
        path = json.loads(out)["data"][0]
        deadline = time.monotonic() + 60
        while True:
            state, error = [json.loads(line)["data"] for line in node1.run(
                BUSCTL + ["--json=short", "get-property", "org.hostwarden.Warden1", path,
                          "org.hostwarden.Warden1.Migration", "State", "Error"]
            ).stdout.splitlines()]
            if state in ("failed", "completed", "aborted") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state == "failed" and "(local-backing-file)" in error, (state, error)
        assert node1.virsh("domstate", name).stdout.strip() == "running"
        # the same disk on a base on the shared storage: that finding goes, and libvirt
        # (past its own check) migrates it
        node1.virsh("destroy", name)
        node1.run(["qemu-img", "rebase", "-u", "-F", "qcow2", "-b", shared_base, top])
        node1.virsh("start", name)
        assert "local-backing-file" not in check(node1, name, "node2")
        proc = hwcluster.migrate(node1, node2, name, "--unsafe")
        assert proc.returncode == 0, proc.stderr
    finally:
        node2.virsh("destroy", name, check=False)
        node1.run(["rm", "-f", local_base, shared_base, top])


def test_an_unreachable_destination_is_a_finding(nodes, domain):
    findings = check(nodes.node(1), domain("cm-unreach"), "node3")
    assert findings["destination-unreachable"][0] == "error"
    assert "qemu+tls://10.77.0.13/system" in findings["destination-unreachable"][1]


def test_bad_arguments(nodes, domain):
    node1 = nodes.node(1)
    name = domain("cm-args")
    err = call_error(node1, "no-such-guest", "node2")
    assert "org.hostwarden.Warden1.Error.NoSuchDomain" in err, err
    assert "ListDomains()" in err, err
    err = call_error(node1, name, "node9")
    assert "org.hostwarden.Warden1.Error.NoSuchNode" in err and "[peer NAME]" in err, err
    err = call_error(node1, name, "")
    assert "org.freedesktop.DBus.Error.InvalidArgs" in err and "destination node" in err, err
    err = call_error(node1, name, "node2", "{'block': <'yes'>}")
    assert "org.freedesktop.DBus.Error.InvalidArgs" in err, err
    assert "'block' must be a boolean" in err, err
    err = call_error(node1, name, "node2", "{'blok': <true>}")
    assert "Unknown option 'blok'" in err and "block (b)" in err, err
    err = call_error(node1, name, "node2", "{'post-copy': <true>}")
    assert "permit_post_copy = no" in err, err
    err = call_error(node1, name, "node2", "{'timeout-action': <'pause'>}")
    assert "expected abort or force_complete" in err, err
