"""Maintenance.Plan on two real nodes (issue 23, docs/maintenance.md): node1's running guests
get the action maintenance would take (live migration to node2, shutdown by their strategy,
blocked by what CheckMigration refuses) and a guest that is not running stays; and the plan
changes nothing: the same guests run on the same node, the node stays enabled, no migration
starts."""

from __future__ import annotations

import json
import time

import pytest

import hwcluster
import hwinstall

BUSCTL, DEST = hwinstall.BUSCTL, hwinstall.NODE_API
LOCAL_DIR = "/var/lib/libvirt/images"  # node-local: each node has its own
NS = "https://hostwarden.org/xmlns/domain/1"


def guest_xml(name, strategy=None, disk=None):
    xml = hwcluster.domain_xml(name, devices=(
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>" if disk else ""))
    if strategy:
        xml = xml.replace("  <vcpu>", f"  <metadata><hostwarden:guest xmlns:hostwarden='{NS}' "
                                      f"maintenance='{strategy}'/></metadata>\n  <vcpu>", 1)
    return xml


def wait_up(node, peer, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListNodes"]).stdout
        if {n[0]: n[2] for n in json.loads(out)["data"][0]}.get(peer) == "up":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{peer} not up as seen from {node.name}: {out}")
        time.sleep(0.2)


def running(node):
    return set(node.virsh("list", "--name").stdout.split())


@pytest.fixture(scope="module")
def nodes():
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, 2) for i in (1, 2)}) as cluster:
        node1 = cluster.node(1)
        node1.run(["mkdir", "-p", LOCAL_DIR])
        for name in ("mp-local", "mp-local-spare"):
            node1.run(["qemu-img", "create", "-q", "-f", "qcow2", f"{LOCAL_DIR}/{name}.qcow2",
                       "16M"])
        guests = {
            "mp-web": guest_xml("mp-web"),
            "mp-batch": guest_xml("mp-batch", "shutdown"),
            "mp-local": guest_xml("mp-local", disk=f"{LOCAL_DIR}/mp-local.qcow2"),
            "mp-local-spare": guest_xml("mp-local-spare", "migrate-or-shutdown",
                                        disk=f"{LOCAL_DIR}/mp-local-spare.qcow2"),
        }
        for xml in guests.values():
            hwcluster.define_and_start(node1, xml)
        node1.run(["virsh", "define", "/dev/stdin"], input=guest_xml("mp-off"))
        wait_up(node1, "node2")
        yield cluster


def test_plan_says_what_maintenance_would_do_and_changes_nothing(nodes, record_timing):
    node1, node2 = nodes.nodes
    before = running(node1)
    assert {"mp-web", "mp-batch", "mp-local", "mp-local-spare"} <= before
    t0 = time.monotonic()
    out = node1.run(["hostwardenctl", "--json", "maintenance", "plan"])
    record_timing("maintenance plan, 5 domains, 1 peer", time.monotonic() - t0)
    plan = {r["domain"]: (r["action"], r["reason"]) for r in json.loads(out.stdout)}
    print(json.dumps(plan, indent=1))  # shown when the test fails
    assert {k: v[0] for k, v in plan.items()} == {
        "mp-web": "migrate", "mp-batch": "shutdown", "mp-local": "blocked",
        "mp-local-spare": "shutdown", "mp-off": "none"}, plan
    reason = plan["mp-web"][1]
    assert reason.startswith("live migration to node2, the only peer, which passes "
                             "CheckMigration ("), reason
    assert "MiB free" in reason or "GiB free" in reason, reason
    assert plan["mp-batch"][1] == ("strategy shutdown (its metadata): shut down here, stays "
                                   "defined here")
    reason = plan["mp-local"][1]
    assert reason.startswith("no node can take it: node2: Disk vda "
                             f"({LOCAL_DIR}/mp-local.qcow2) is local to node1"), reason
    assert "(local-disk)" in reason and "strategy migrate ([maintenance] strategy)" in reason
    reason = plan["mp-local-spare"][1]
    assert reason.startswith("no node can take it, so shut down here by its strategy "
                             "migrate-or-shutdown (its metadata): node2: Disk vda"), reason
    assert plan["mp-off"][1] == "not running (shutoff): stays defined here"

    # anybody may ask (the bus policy lets the interface through; no polkit): the same plan
    as_nobody = node1.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "hostwardenctl", "--json", "maintenance", "plan"])
    assert {r["domain"]: r["action"] for r in json.loads(as_nobody.stdout)} == {
        k: v[0] for k, v in plan.items()}

    # the table, exit status 0 although a guest is blocked
    table = node1.run(["hostwardenctl", "maintenance", "plan"], check=False)
    assert table.returncode == 0, table
    assert "1 to migrate, 2 to shut down, 1 blocked, 1 left as they are" in table.stdout

    # nothing changed: the same guests run on node1, none on node2, node1 still enabled,
    # no migration started
    assert running(node1) == before
    assert not running(node2) & {"mp-web", "mp-batch", "mp-local", "mp-local-spare"}
    assert "mp-off" not in running(node1)
    state = node1.run(BUSCTL + ["--json=short", "get-property", *DEST, "State"]).stdout
    assert json.loads(state)["data"] == "enabled"
    migrations = node1.run(BUSCTL + ["--json=short", "call", *DEST, "ListMigrations"]).stdout
    assert json.loads(migrations)["data"][0] == []
    maint = node1.run(BUSCTL + ["--json=short", "get-property", "org.hostwarden.Warden1",
                                "/org/hostwarden/Warden1/maintenance",
                                "org.hostwarden.Warden1.Maintenance", "State"]).stdout
    assert json.loads(maint)["data"] == "off"
