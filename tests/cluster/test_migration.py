"""Live migration through the API on real nodes (issue 6): Migrate returns its object at
once, the engine runs p2p virDomainMigrateToURI3, the Migration object reports state and
progress with PropertiesChanged at most twice a second, and the instance record follows the
guest; a failed migration leaves the guest running on the source."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall

BUSCTL = ["busctl", "--system"]
BUS = "org.hostwarden.Warden1"
NODE = ["org.hostwarden.Warden1", "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node"]
MIG_IFACE = "org.hostwarden.Warden1.Migration"
CONFIG = """[node]
name = node{i}
address = 10.77.0.1{i}
[cluster]
heartbeat_interval = 500ms
down_after = 3s
[migration]
downtime_delay = 1s
completion_timeout = 30s
[peer node{j}]
address = 10.77.0.1{j}
libvirt_uri = qemu+tcp://10.77.0.1{j}/system
"""


@pytest.fixture(scope="module")
def nodes(record_timing):
    stage = hwinstall.stage()
    cluster = hwcluster.Cluster(
        2, install_dir=stage, units=("hostwardend.service",),
        configs={i: CONFIG.format(i=i, j=3 - i) for i in (1, 2)})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.teardown()
        shutil.rmtree(stage, ignore_errors=True)
        assert cluster.leftovers() == []


def migrate(node, dom, dest, *opts):
    args = [str(len(opts) // 3), *opts] if opts else ["0"]
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "Migrate", "ssa{sv}", dom, dest,
                             *args]).stdout
    return json.loads(out)["data"][0]


def props(node, path):
    out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE, "State",
                             "Error", "Destination", "Progress", "MemoryTotal",
                             "MemoryProcessed", "Downtime", "Domain", "DomainName"]).stdout
    names = ["State", "Error", "Destination", "Progress", "MemoryTotal", "MemoryProcessed",
             "Downtime", "Domain", "DomainName"]
    values = [json.loads(line)["data"] for line in out.splitlines() if line.strip()]
    return dict(zip(names, values))


def wait_final(node, path, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = props(node, path)
        if p["State"] in ("completed", "failed", "aborted"):
            return p
        time.sleep(0.3)
    raise AssertionError(f"migration {path} not finished: {props(node, path)}")


def domstate(node, name):
    proc = node.virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def persistent(node, name):
    proc = node.virsh("dominfo", name, check=False)
    return proc.returncode == 0 and "Persistent:     yes" in proc.stdout


@pytest.fixture
def guest(nodes):
    names = []

    def start(name, node=1, memory_mib=64):
        uuid = str(uuidlib.uuid4())
        hwcluster.define_and_start(nodes.node(node),
                                   hwcluster.domain_xml(name, uuid=uuid, memory_mib=memory_mib))
        names.append(name)
        return uuid
    yield start
    for name in names:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_an_idle_guest_completes_and_runs_on_the_destination(nodes, guest):
    node1, node2 = nodes.nodes
    uuid = guest("mig-idle")
    started = time.monotonic()
    path = migrate(node1, "mig-idle", "node2")
    returned = time.monotonic() - started
    assert path.startswith("/org/hostwarden/Warden1/migration/")
    assert returned < 2.0, f"Migrate took {returned:.1f}s to return"
    final = wait_final(node1, path)
    assert final["State"] == "completed", final
    assert final["Progress"] == 100
    assert final["Domain"] == uuid and final["DomainName"] == "mig-idle"
    assert final["MemoryTotal"] > 0 or final["MemoryProcessed"] > 0
    assert domstate(node2, "mig-idle") == "running"
    assert persistent(node2, "mig-idle")
    assert domstate(node1, "mig-idle") is None  # no definition left on the source
    # the instance record follows the guest, and the source now refuses to start it
    record = node1.read_file(f"/var/lib/nova/instances/.hostwarden/instances/{uuid}")
    assert "owner=node2" in record, record
    listed = json.loads(node1.run(BUSCTL + ["--json=short", "call", *NODE,
                                            "ListMigrations"]).stdout)["data"][0]
    assert [m for m in listed if m[6] == path and m[4] == "completed" and m[3] == "node2"]


def test_a_migration_to_a_dead_destination_fails_and_the_guest_runs_on(nodes, guest):
    node1, node2 = nodes.nodes
    guest("mig-dead")
    # node2's libvirtd is gone (service and sockets): the p2p connection fails
    node2.systemctl("stop", "libvirtd.service", "libvirtd.socket", "libvirtd-ro.socket",
                    "libvirtd-admin.socket", "libvirtd-tcp.socket")
    try:
        path = migrate(node1, "mig-dead", "node2")
        final = wait_final(node1, path)
        assert final["State"] == "failed", final
        assert "node2" in final["Error"], final
        assert domstate(node1, "mig-dead") == "running"
        assert persistent(node1, "mig-dead")
    finally:
        node2.systemctl("start", "libvirtd.socket", "libvirtd-ro.socket",
                        "libvirtd-admin.socket", "libvirtd-tcp.socket", "libvirtd.service")
