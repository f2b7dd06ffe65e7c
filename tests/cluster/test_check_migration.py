"""CheckMigration on two real nodes (issue 6): the constraints a TCG node can show, each with
its code and an actionable message; bad arguments get InvalidArgs / NoSuchDomain /
NoSuchNode. The other rules are unit-tested on fixtures (tests/unit/test-migcheck.c)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid as uuidlib

import pytest

import dirtyguest
import hwcluster
import hwinstall

BUSCTL, DEST = hwinstall.BUSCTL, hwinstall.NODE_API
ISO_DIR = "/var/lib/libvirt/images"  # node-local: each node has its own


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            # node3: a peer configured but never there
            configs={i: hwinstall.node_config(i, 3) for i in (1, 2)}) as cluster:
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

    def define(name, memory_mib=64, devices="", start=False, kernel=None):
        xml = hwcluster.domain_xml(name, memory_mib=memory_mib, devices=devices, kernel=kernel)
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
    assert "hostwardenctl migrate --cold" in msg, msg
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


# --- CheckMigration predicts what Migrate refuses (issue 19, item 7) -----------------------
#
# REFUSALS has a case for every error finding that can be made on these nodes: it builds
# the situation, CheckMigration must report the finding, then Migrate must refuse naming the
# same reason, and the guest stays as it was. The other error findings are unit-tested
# (tests/unit/test-migcheck.c). tests/style/check-refusals fails when an error finding is
# added to the engine without a case here or there, and a row in docs/migration.md ("What
# CheckMigration predicts").

WARDEN = "org.hostwarden.Warden1"
MIG_IFACE = "org.hostwarden.Warden1.Migration"
# the refusals that are D-Bus errors of the Migrate call itself (the others: a Migration
# that fails at once with "(code)" in its Error): error name, words of the message
REFUSED_BY_CALL = {
    "destination-self": ("org.freedesktop.DBus.Error.InvalidArgs", "is this node"),
    "migration-tls": ("org.hostwarden.Warden1.Error.ConstraintViolated",
                      "/etc/pki/qemu/server-key.pem"),
    "migration-busy": ("org.hostwarden.Warden1.Error.Busy", "being migrated already"),
}


def qcow2_disk(path, dev="vda"):
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>")


def local_cdroms(node):
    """A data CD and an ISO 9660 config drive on node's own disk."""
    node.run(["mkdir", "-p", ISO_DIR])
    node.run(["truncate", "-s", "1M", f"{ISO_DIR}/rf-data.img"])
    node.run(["truncate", "-s", "1M", f"{ISO_DIR}/rf-disk.config"])
    node.run(f"printf CD001 | dd of={ISO_DIR}/rf-disk.config bs=1 seek=32769 conv=notrunc "
             "status=none")
    return {"readonly-drive": f"{ISO_DIR}/rf-data.img",
            "config-drive-iso9660": f"{ISO_DIR}/rf-disk.config"}


@contextlib.contextmanager
def refusal_case(code, nodes, domain):
    """The situation for code: yields (domain, destination, options as {name: gvariant})."""
    node1, node2 = nodes.nodes
    name = f"rf-{code}"
    cleanup = []
    try:
        if code == "domain-shutoff":
            yield domain(name), "node2", {}
        elif code == "domain-managed-save":
            domain(name, start=True)
            node1.virsh("managedsave", name)
            yield name, "node2", {}
        elif code == "destination-self":
            yield domain(name, start=True), "node1", {}
        elif code == "destination-disabled":
            node2.run(BUSCTL + ["call", *DEST, "Disable", "s", "refusal test"])
            cleanup.append(lambda: node2.run(BUSCTL + ["call", *DEST, "Enable"]))
            yield domain(name, start=True), "node2", {}
        elif code == "destination-down":
            node2.systemctl("stop", "hostwardend.service")
            cleanup.append(lambda: (node2.systemctl("start", "hostwardend.service"),
                                    wait_up(node1, "node2", timeout=30)))
            wait_state(node1, "node2", "down")
            yield domain(name, start=True), "node2", {}
        elif code == "destination-unreachable":
            yield domain(name, start=True), "node3", {}  # configured, not there
        elif code == "destination-name-taken":
            domain(name, start=True)
            node2.run(["virsh", "define", "/dev/stdin"],
                      input=hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4())))
            cleanup.append(lambda: node2.virsh("undefine", name, check=False))
            yield name, "node2", {}
        elif code == "memory":  # more than any node has: only definable
            yield domain(name, memory_mib=1024 * 1024), "node2", {}
        elif code in ("readonly-drive", "config-drive-iso9660"):
            iso = local_cdroms(node1)[code]
            cdrom = (f"<disk type='file' device='cdrom'><source file='{iso}'/>"
                     "<target dev='sda' bus='sata'/><readonly/></disk>")
            yield domain(name, devices=cdrom, start=True), "node2", {"block": "<true>"}
        elif code == "local-disk":
            image = f"{ISO_DIR}/{name}.qcow2"
            node1.run(["mkdir", "-p", ISO_DIR])
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
            cleanup.append(lambda: node1.run(["rm", "-f", image]))
            yield domain(name, devices=qcow2_disk(image), start=True), "node2", {}
        elif code in ("shared-disk-block", "unsafe-storage"):
            image = f"/var/lib/nova/instances/{name}.qcow2"
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
            cleanup.append(lambda: node1.run(["rm", "-f", image]))
            opts = {"block": "<true>"} if code == "shared-disk-block" else {}
            yield domain(name, devices=qcow2_disk(image), start=True), "node2", opts
        elif code == "local-backing-file":
            base = f"{ISO_DIR}/{name}-base.qcow2"
            top = f"/var/lib/nova/instances/{name}.qcow2"
            node1.run(["mkdir", "-p", ISO_DIR])
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "16M"])
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, top])
            cleanup.append(lambda: node1.run(["rm", "-f", base, top]))
            yield domain(name, devices=qcow2_disk(top), start=True), "node2", {}
        elif code == "snapshots":  # libvirt: "cannot migrate domain with 1 snapshots"
            image = f"{ISO_DIR}/{name}.qcow2"
            node1.run(["mkdir", "-p", ISO_DIR])
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
            cleanup.append(lambda: node1.run(["rm", "-f", image]))
            domain(name, devices=qcow2_disk(image), start=True)
            node1.virsh("snapshot-create-as", name, "s1")
            cleanup.append(lambda: node1.virsh("snapshot-delete", name, "s1", "--metadata",
                                               check=False))
            yield name, "node2", {"block": "<true>"}
        elif code == "migration-tls":
            key = "/etc/pki/qemu/server-key.pem"
            node1.run(["mv", key, key + ".away"])
            cleanup.append(lambda: node1.run(["mv", key + ".away", key]))
            yield domain(name, start=True), "node2", {"tls": "<true>"}
        elif code == "migration-busy":
            # a guest that never converges at 10 MiB/s: its migration stays under way
            node1.write_file(DIRTY_KERNEL, dirtyguest.kernel())
            domain(name, kernel=DIRTY_KERNEL, start=True)
            cleanup.append(lambda: (node2.virsh("destroy", name, check=False),
                                    node2.virsh("undefine", name, check=False)))
            path = json.loads(node1.run(BUSCTL + [
                "--json=short", "call", *DEST, "Migrate", "ssa{sv}", name, "node2", "1",
                "bandwidth", "t", "10"]).stdout)["data"][0]
            cleanup.append(lambda: node1.run(BUSCTL + ["call", WARDEN, path, MIG_IFACE,
                                                       "Abort"], check=False))
            yield name, "node2", {}
        else:
            raise AssertionError(f"no case builds {code}")
    finally:
        for undo in reversed(cleanup):
            undo()


DIRTY_KERNEL = "/var/lib/nova/instances/rf-dirty.kernel"
REFUSALS = ("domain-shutoff", "domain-managed-save", "destination-self", "destination-disabled",
            "destination-down", "destination-unreachable", "destination-name-taken", "memory",
            "readonly-drive", "config-drive-iso9660", "local-disk", "shared-disk-block",
            "unsafe-storage", "local-backing-file", "snapshots", "migration-tls",
            "migration-busy")


def wait_state(node, peer, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListNodes"]).stdout
        if {n[0]: n[2] for n in json.loads(out)["data"][0]}.get(peer) == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"{peer} not {state} as seen from {node.name}")


def gvariant_opts(opts: dict) -> str:
    return "{" + ", ".join(f"'{k}': {v}" for k, v in opts.items()) + "}"


def migrate_outcome(node, dom, dest, opts):
    """Migrate (through gdbus, which shows the D-Bus error name): ("refused", stderr) when the
    call fails, else the Migration's final (State, Error)."""
    proc = node.run(["gdbus", "call", "--system", "--dest", WARDEN, "--object-path",
                     "/org/hostwarden/Warden1", "--method",
                     "org.hostwarden.Warden1.Node.Migrate", dom, dest, gvariant_opts(opts)],
                    check=False)
    if proc.returncode != 0:
        return "refused", proc.stderr
    path = proc.stdout.split("'")[1]  # (objectpath '/org/...',)
    deadline = time.monotonic() + 60
    while True:
        state, error = [json.loads(line)["data"] for line in node.run(
            BUSCTL + ["--json=short", "get-property", WARDEN, path, MIG_IFACE, "State",
                      "Error"]).stdout.splitlines()]
        if state in ("failed", "completed", "aborted"):
            return state, error
        assert time.monotonic() < deadline, (state, error)
        time.sleep(0.2)


@pytest.mark.parametrize("code", REFUSALS)
def test_check_migration_names_what_migrate_refuses(nodes, domain, code):
    node1, node2 = nodes.nodes
    wait_up(node1, "node2")
    with refusal_case(code, nodes, domain) as (dom, dest, opts):
        before = node1.virsh("domstate", dom).stdout.strip()
        words = []
        for k, v in opts.items():
            words += [k, "b", v.strip("<>")]
        findings = check(node1, dom, dest, *words)
        assert code in findings and findings[code][0] == "error", findings
        outcome, text = migrate_outcome(node1, dom, dest, opts)
        if code in REFUSED_BY_CALL:
            name, words = REFUSED_BY_CALL[code]
            assert outcome == "refused" and name in text and words in text, (outcome, text)
        else:
            assert outcome == "failed" and f"({code})" in text, (outcome, text)
        # nothing moved: the guest is as it was, here
        assert node1.virsh("domstate", dom).stdout.strip() == before
