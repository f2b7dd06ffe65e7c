"""Maintenance on two real nodes (issue 23, docs/maintenance.md). Plan: node1's running guests
get the action maintenance would take (live migration to node2, shutdown by their strategy,
blocked by what CheckMigration refuses) and a guest that is not running stays; and the plan
changes nothing. Enter: the same guests drained by it (one to node2, two shut down, the one
with a node-local disk blocked and named), ready once nothing runs, still ready after a
reboot of the node, Exit --return enabling the node and bringing the migrated guest back
from node2. Cancel in the middle of a drain of two
guests that cannot converge at the bandwidth given (max_concurrent 1): the second never
starts, the first is aborted (--abort), both run on node1, the node is enabled."""

from __future__ import annotations

import json
import time

import pytest

import dirtyguest
import hwcluster
import hwevac
import hwinstall

BUSCTL, DEST = hwinstall.BUSCTL, hwinstall.NODE_API
LOCAL_DIR = "/var/lib/libvirt/images"  # node-local: each node has its own
NS = "https://hostwarden.org/xmlns/domain/1"
MAINT = ["org.hostwarden.Warden1", "/org/hostwarden/Warden1/maintenance",
         "org.hostwarden.Warden1.Maintenance"]
KERNEL = "/var/lib/nova/instances/mc-dirty.kernel"  # shared: both nodes see it
# one migration at a time, slow enough that a guest dirtying its memory never converges by
# itself; a SeaBIOS guest ignores ACPI: destroyed after 5 s
CONFIG = "[migration]\nmax_concurrent = 1\nbandwidth = 10\nshutdown_timeout = 5s\n"


def guest_xml(name, strategy=None, disk=None):
    xml = hwcluster.domain_xml(name, devices=(
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>" if disk else ""))
    if strategy:
        xml = xml.replace("  <vcpu>", f"  <metadata><hostwarden:guest xmlns:hostwarden='{NS}' "
                                      f"maintenance='{strategy}'/></metadata>\n  <vcpu>", 1)
    return xml


def wait_up(node, peer, timeout=30.0):
    def listed_up():
        out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListNodes"]).stdout
        return {n[0]: n[2] for n in json.loads(out)["data"][0]}.get(peer) == "up"
    wait_for(f"{peer} up as seen from {node.name}", listed_up, timeout)


def running(node):
    return set(node.virsh("list", "--name").stdout.split())


@pytest.fixture(scope="module")
def nodes():
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, 2, extra=CONFIG) for i in (1, 2)}) as cluster:
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


def maint_prop(node, name):
    out = node.run(BUSCTL + ["--json=short", "get-property", *MAINT, name]).stdout
    return json.loads(out)["data"]


def node_state(node):
    return json.loads(node.run(BUSCTL + ["--json=short", "get-property", *DEST, "State"]
                               ).stdout)["data"]


def wait_for(what, predicate, timeout=120.0):
    """hwevac.wait_for, failing the test with what it waited for."""
    value = hwevac.wait_for(predicate, timeout, interval=0.5)
    assert value, f"timed out waiting for {what}"
    return value


def heartbeat(node):
    """node's heartbeat counter, from ListNodes' detail ("...heartbeat N, generation M")."""
    out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListNodes"]).stdout
    detail = {n[0]: n[4] for n in json.loads(out)["data"][0]}[node.name]
    return int(detail.split("heartbeat ")[1].split(",")[0])


def mig_prop(node, path, name):
    out = node.run(BUSCTL + ["--json=short", "get-property", "org.hostwarden.Warden1", path,
                             "org.hostwarden.Warden1.Migration", name]).stdout
    return json.loads(out)["data"]


def migrations(node):
    out = node.run(BUSCTL + ["--json=short", "call", *DEST, "ListMigrations"]).stdout
    return json.loads(out)["data"][0]


def test_enter_drains_blocks_then_ready_survives_a_reboot_and_exit_enables(nodes, record_timing):
    node1, node2 = nodes.nodes
    t0 = time.monotonic()
    out = node1.run(["hostwardenctl", "maintenance", "enter"])
    assert "disabled and drains" in out.stdout
    assert node_state(node1) == "disabled"
    # mp-web leaves for node2, mp-batch and mp-local-spare are shut down (destroyed after
    # shutdown_timeout: SeaBIOS ignores ACPI), mp-local cannot leave: blocked, named
    wait_for("blocked", lambda: maint_prop(node1, "State") == "blocked", timeout=180)
    record_timing("maintenance enter → blocked (1 migrated, 2 shut down)", time.monotonic() - t0)
    blocked = dict(maint_prop(node1, "Blocked"))
    print(blocked)
    assert set(blocked) == {"mp-local"}, blocked
    assert f"Disk vda ({LOCAL_DIR}/mp-local.qcow2) is local to node1" in blocked["mp-local"]
    assert "mp-web" in running(node2)
    assert running(node1) == {"mp-local"}
    status = node1.run(["hostwardenctl", "maintenance", "status"], check=False)
    assert status.returncode == 3 and "mp-local: no node can take it" in status.stdout, status

    # the operator deals with mp-local himself; the next heartbeat's look finds nothing
    # running: ready
    node1.virsh("destroy", "mp-local")
    wait_for("ready", lambda: maint_prop(node1, "State") == "ready", timeout=60)
    assert maint_prop(node1, "Blocked") == []
    status = node1.run(["hostwardenctl", "maintenance", "status"], check=False)
    assert status.returncode == 0, status
    assert "ready (no guest left running: safe to reboot)" in status.stdout
    assert "Maintenance of this node: ready (no guest left running: safe to reboot)." in \
        node1.run(["hostwardenctl", "overview"]).stdout

    # the operator reboots the node, as "ready" said he may: after the boot hostwardend reads
    # the store again, and the node is still in maintenance, ready, and disabled
    t0 = time.monotonic()
    init_before = node1.pid
    node1.poweroff()
    node1.boot()
    assert node1.pid != init_before  # a new init: the node did boot again
    wait_for("hostwardend back", lambda: node1.run(
        BUSCTL + ["get-property", *MAINT, "State"], check=False).returncode == 0, timeout=60)
    record_timing("reboot while ready → hostwardend answers", time.monotonic() - t0)
    assert maint_prop(node1, "State") == "ready"
    beat = heartbeat(node1)
    wait_for("three heartbeats, each with its look", lambda: heartbeat(node1) >= beat + 3,
             timeout=60)
    assert maint_prop(node1, "State") == "ready" and node_state(node1) == "disabled"

    # exit --return: node2, which runs mp-web now, sends it back on its heartbeat
    t0 = time.monotonic()
    out = node1.run(["hostwardenctl", "maintenance", "exit", "--return"])
    assert "enabled again" in out.stdout and "migrate them back" in out.stdout
    assert maint_prop(node1, "State") == "off" and node_state(node1) == "enabled"
    assert node1.run(["hostwardenctl", "maintenance", "status"],
                     check=False).returncode == 4
    wait_for("mp-web's migration back completed", lambda: [
        m[4] for m in migrations(node2) if m[1] == "mp-web" and m[3] == "node1"] == ["completed"],
        timeout=120)
    record_timing("maintenance exit --return → the guest back", time.monotonic() - t0)
    assert "mp-web" in running(node1) and "mp-web" not in running(node2)
    node1.virsh("destroy", "mp-web")  # the next test drains its own guests
    # its entry is out of node1's record, and nothing asks for a return any more
    rec = hwevac.record(node1, "node1", kind="nodes")
    assert "maintenance_left" not in rec and "maintenance_return" not in rec, rec
    assert "maintenance" not in rec, rec  # off: the keys are not written


def test_cancel_in_the_middle_of_a_drain(nodes, record_timing):
    node1, node2 = nodes.nodes
    node1.write_file(KERNEL, dirtyguest.kernel())
    for name in ("mc-a", "mc-b"):
        hwcluster.define_and_start(node1, hwcluster.domain_xml(name, memory_mib=64,
                                                               kernel=KERNEL))
    try:
        assert running(node1) == {"mc-a", "mc-b"}
        node1.run(["hostwardenctl", "maintenance", "enter"])
        # max_concurrent 1: mc-a's migration runs, mc-b's waits in the queue
        wait_for("mc-a migrating", lambda: any(
            m[1] == "mc-a" and m[4] == "running" for m in migrations(node1)), timeout=120)
        assert maint_prop(node1, "State") == "draining"
        queued = [m for m in migrations(node1) if m[1] == "mc-b"]
        assert [m[4] for m in queued] == ["queued"], migrations(node1)
        t0 = time.monotonic()
        out = node1.run(["hostwardenctl", "maintenance", "cancel", "--abort"])
        assert "enabled again" in out.stdout
        assert maint_prop(node1, "State") == "off" and node_state(node1) == "enabled"
        wait_for("both migrations ended", lambda: all(
            m[4] in ("aborted", "failed") for m in migrations(node1)
            if m[1] in ("mc-a", "mc-b")), timeout=120)
        record_timing("maintenance cancel --abort → the running migration aborted",
                      time.monotonic() - t0)
        ended = {m[1]: m[4] for m in migrations(node1) if m[1] in ("mc-a", "mc-b")}
        assert ended == {"mc-a": "aborted", "mc-b": "aborted"}, migrations(node1)
        # the second never started; both guests run where they were
        mc_b = [m for m in migrations(node1) if m[1] == "mc-b"][0][6]
        assert mig_prop(node1, mc_b, "Started") == 0
        assert "before it started" in mig_prop(node1, mc_b, "Error")
        assert running(node1) >= {"mc-a", "mc-b"}
        assert not running(node2) & {"mc-a", "mc-b"}
        assert maint_prop(node1, "State") == "off"
    finally:
        node1.run(["hostwardenctl", "maintenance", "cancel", "--abort"], check=False)
        for name in ("mc-a", "mc-b"):
            node1.virsh("destroy", name, check=False)
