"""Evacuation and fencing on three real nodes with ipmi_sim BMCs (issue 7): Fence runs the
real fence_ipmilan against the node's BMC and records the result; Rebuild/EvacuateFrom are
refused unless the source is down and fenced, keep UUID, MACs and disks, re-create a lost
local disk from its base image or refuse; the fenced node comes back and none of its old
guests runs there; EvacuateLive drains a node."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from hwevac import (config, ctl, evacuate_from, list_nodes, record, running, shared_files,
                    wait_for)

BUS = "org.hostwarden.Warden1"
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
PASSWORD = f"bmc-{uuidlib.uuid4().hex[:12]}"
N = 3


# Local disks outside instances_path (here on a node's own root): hostwardend's sandbox
# must let it re-create them there, as an operator's drop-in would.
DROPIN = "[Service]\nReadWritePaths=-/var/lib/hw-local\n"


# The whole suite runs with each store backend (issue 9): the shared directory, and an
# etcd cluster of three members, one on each node.
@pytest.fixture(scope="module", params=["dir", "etcd"])
def nodes(request, record_timing):
    store = request.param
    files = {i: {"/etc/systemd/system/hostwardend.service.d/local-disks.conf": DROPIN,
                 "/var/lib/hw-local/.keep": "",
                 **(hwevac.etcd_files(i, N) if store == "etcd" else {})}
             for i in range(1, N + 1)}
    with hwinstall.installed_cluster(
            N, units=("hostwardend.service",), bmc=True, bmc_password=PASSWORD,
            configs={i: config(i, N, PASSWORD, store) for i in range(1, N + 1)},
            files=files) as cluster:
        cluster.hw_store = store
        cluster.node(2).run("useradd -M alice")
        if store == "etcd":
            assert all(n.unit_active(hwevac.ETCD_UNIT) for n in cluster.nodes)
            # every node's record and heartbeat lease are in etcd
            for kind in ("nodes", "alive"):
                assert wait_for(lambda: set(hwevac.etcdctl(
                    cluster.node(1), "get", "--prefix", "--keys-only",
                    f"{hwevac.ETCD_PREFIX}/{kind}/").stdout.split()) == {
                        f"{hwevac.ETCD_PREFIX}/{kind}/node{i}" for i in range(1, N + 1)})
            # nothing of the store in the shared directory
            assert cluster.node(1).run(["test", "-e", f"{hwevac.SHARED}/.hostwarden/nodes"],
                                       check=False).returncode != 0
        yield cluster


def gdbus(node, method, *args, check=False):
    return node.run(["gdbus", "call", "--system", "--dest", BUS, "--object-path",
                     "/org/hostwarden/Warden1", "--method",
                     f"org.hostwarden.Warden1.Node.{method}", *args], check=check, timeout=180)


def test_fence_status_runs_the_real_agent_and_records_the_result(nodes):
    node1, node2 = nodes.node(1), nodes.node(2)
    out = ctl(node2, "fence", "node1", "status").stdout
    assert out.strip() == "node1: power on", out
    assert list_nodes(node2)["node1"][3] == "on"
    assert node1.alive
    # The BMC was asked (ipmi_sim ran its chassis control), the password never logged.
    journal = node2.journal("-u", "hostwardend")
    assert "Fence agent fence_ipmilan reports node node1 on" in journal, journal
    assert PASSWORD not in journal


def test_fence_validates_then_authorizes(nodes):
    node2 = nodes.node(2)
    bad = gdbus(node2, "Fence", "node1", "reboot")
    assert "InvalidArgs" in bad.stderr and "status" in bad.stderr, bad.stderr
    own = gdbus(node2, "Fence", "node2", "off")
    assert "InvalidArgs" in own.stderr and "cannot fence itself" in own.stderr, own.stderr
    unknown = gdbus(node2, "Fence", "node9", "status")
    assert "NoSuchNode" in unknown.stderr, unknown.stderr
    refused = node2.run(["setpriv", "--reuid=alice", "--regid=alice", "--clear-groups",
                         "hostwardenctl", "--no-ask-password", "fence", "node1", "off"],
                        check=False)
    assert refused.returncode != 0 and "nteractive authentication required" in refused.stderr, \
        refused.stderr
    assert nodes.node(1).alive


def test_a_wrong_bmc_password_fails_clearly_and_changes_nothing(nodes):
    node2 = nodes.node(2)
    conf = node2.read_file("/etc/hostwarden/hostwarden.conf")
    try:
        node2.write_file("/etc/hostwarden/hostwarden.conf", conf.replace(PASSWORD, "wrong-pw-1"))
        ctl(node2, "reload")
        out = ctl(node2, "fence", "node1", "off", check=False)
        assert out.returncode != 0 and "FenceFailed" not in out.stdout
        assert "fence_ipmilan exited with status 1" in out.stderr, out.stderr
        assert "wrong-pw-1" not in out.stderr
        assert nodes.node(1).alive
        assert list_nodes(node2)["node1"][3] == "on"  # as recorded before
        assert "wrong-pw-1" not in node2.journal("-u", "hostwardend")
    finally:
        node2.write_file("/etc/hostwarden/hostwarden.conf", conf)
        ctl(node2, "reload")


SHARED = hwevac.SHARED
LOCAL = "/var/lib/hw-local"  # a node's own disk (its overlay), not shared


def guest_xml(name: str, uuid: str, mac: str, disk: str) -> str:
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
               f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"
               f"<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>")
    return hwcluster.domain_xml(name, uuid=uuid, devices=devices)


def evacuate_node1(node, restarted: bool):
    """EvacuateFrom(node1) on NODE; restarted: NODE's hostwardend was restarted since node1
    went down, and first watches node1 for down_after before it takes it for down."""
    def once():
        r = evacuate_from(node, "node1")
        return None if isinstance(r, str) and "not known to be down yet" in r else r
    return wait_for(once, timeout=15) if restarted else evacuate_from(node, "node1")


def test_evacuation_of_a_fenced_node_never_twice(nodes, record_timing):
    """Node 1 dies with four guests: one on shared storage, one on a local disk whose base
    image is in _base, one whose base is gone, one whose local disk node 2 cannot re-create
    (a directory hostwardend's sandbox does not let it write). Evacuation is refused while
    node 1 is up and while it is down but not fenced; after fence off it rebuilds the first
    two on node 2 with the same UUIDs, MACs and disks and refuses the third; the fourth is
    claimed, fails, and its record goes back to node 1. Node 1 boots again: none of the
    evacuated guests runs there, the other two are still its own; no shared file is gone.
    With etcd, the answer to the first guest's claim is lost after etcd committed it."""
    node1, node2, node3 = nodes.node(1), nodes.node(2), nodes.node(3)
    guests = {}
    # Nova's files: made by the nova user, as nova-compute (which runs as nova) makes them
    as_nova = "setpriv --reuid=nova --regid=nova --init-groups -- "
    for n in nodes.nodes:
        n.run(f"install -d -o nova -g nova {LOCAL}")
    node1.run(f"{as_nova} sh -c 'mkdir -p {SHARED}/_base && "
              f"qemu-img create -q -f raw {SHARED}/_base/base1 32M && "
              f"qemu-img create -q -f raw {SHARED}/_base/base2 32M'")
    for i, kind in enumerate(("shared", "local", "nobase", "nowrite")):
        uuid = str(uuidlib.uuid4())
        mac = f"52:54:00:77:01:{i + 10:02x}"
        if kind == "shared":
            disk = f"{SHARED}/{uuid}/disk"
            base = f"{SHARED}/_base/base1"
        elif kind == "nowrite":
            disk = f"/var/lib/hw-nowrite/{uuid}/disk"
            base = f"{SHARED}/_base/base1"
        else:
            disk = f"{LOCAL}/{uuid}/disk"
            base = f"{SHARED}/_base/base{1 if kind == 'local' else 2}"
        node1.run(f"mkdir -p $(dirname {disk}) && qemu-img create -q -f qcow2 -F raw -b {base} "
                  f"{disk} 48M" if kind == "nowrite" else
                  f"{as_nova} sh -c 'mkdir -p $(dirname {disk}) && "
                  f"qemu-img create -q -f qcow2 -F raw -b {base} {disk} 48M'")
        name = f"evac-{kind}"
        node1.run(["virsh", "define", "/dev/stdin"], input=guest_xml(name, uuid, mac, disk))
        node1.virsh("autostart", name)
        node1.virsh("start", name)
        guests[kind] = (name, uuid, mac, disk)
    # Records claimed by node1, definitions saved with the local disks' bases.
    for name, uuid, _, disk in guests.values():
        assert wait_for(lambda: record(node2, uuid).get("owner") == "node1"), record(node2, uuid)
        assert wait_for(lambda: f'hostwarden-disk-base path="{disk}"' in
                        hwevac.definition(node2, uuid))
    before = shared_files(node2)

    # Refused while node1 is up.
    answer = evacuate_from(node2, "node1")
    assert isinstance(answer, str) and "NotFenced" in answer or "is up" in answer, answer

    # node1 loses power (a crash as far as the cluster knows): down, but not fenced yet.
    node1.bmc.ipmitool("chassis", "power", "off")
    assert wait_for(lambda: not node1.alive)
    assert wait_for(lambda: list_nodes(node2)["node1"][2] == "down", timeout=15)
    answer = evacuate_from(node2, "node1")
    assert isinstance(answer, str) and "not fenced" in answer, answer
    node2.run(["rm", f"{SHARED}/_base/base2"])  # the third guest's base image is gone

    out = ctl(node2, "fence", "node1", "off").stdout
    assert "power off" in out
    # With etcd, the answer to node2's claim of the first guest is lost after etcd committed
    # it (issue 19): the claim is tried again, finds the record changed by itself, and must
    # take it for done, not for "changed meanwhile" (a rebuild that gave up there would leave
    # the record claimed by node2 and the guest nowhere).
    shared_key = f"{hwevac.ETCD_PREFIX}/instances/{guests['shared'][1]}"
    with (hwevac.LossyEtcd(node2, [shared_key]) if hwevac.uses_etcd(node2)
          else contextlib.nullcontext()) as lossy:
        t0 = time.monotonic()
        results = evacuate_node1(node2, restarted=bool(lossy))
        record_timing("EvacuateFrom, 4 instances", time.monotonic() - t0)
        if lossy:
            assert lossy.lost() == [shared_key], results
    assert isinstance(results, dict), results
    name, uuid, mac, disk = guests["shared"]
    assert results[uuid][0] == "rebuilt", results
    name_l, uuid_l, mac_l, disk_l = guests["local"]
    assert results[uuid_l][0] == "rebuilt", results[uuid_l]
    name_n, uuid_n, _, disk_n = guests["nobase"]
    assert results[uuid_n][0] == "refused" and "base image" in results[uuid_n][1], results
    name_w, uuid_w, _, _ = guests["nowrite"]
    assert results[uuid_w][0] == "refused" and "Cannot re-create disk" in results[uuid_w][1], \
        results[uuid_w]
    assert record(node2, uuid_w)["owner"] == "node1" and "evacuated_from" not in \
        record(node2, uuid_w), record(node2, uuid_w)  # given back: nothing changed

    for name, uuid, mac, disk in (guests["shared"], guests["local"]):
        assert running(node2, name)
        assert node2.virsh("domuuid", name).stdout.strip() == uuid
        assert mac in node2.virsh("domiflist", name).stdout
        assert disk in node2.virsh("domblklist", name).stdout
        rec = record(node2, uuid)
        assert rec["owner"] == "node2" and rec["evacuated_from"] == "node1", rec
    info = node2.run(["qemu-img", "info", "-U", disk_l]).stdout  # re-created on node2 from its base
    assert f"backing file: {SHARED}/_base/base1" in info and "48 MiB" in info, info
    # ... in an instance directory of nova's, as Nova would have made it; the disk is QEMU's
    # while the guest runs (libvirt's dynamic ownership), nova's once it stops (below)
    owner = "stat -c %U:%G "
    assert node2.run(owner + os.path.dirname(disk_l)).stdout.strip() == "nova:nova"
    assert node2.run(owner + disk_l).stdout.strip() == "libvirt-qemu:libvirt-qemu"
    assert record(node2, uuid_n)["owner"] == "node1"
    assert not running(node2, name_n) and not running(node3, name_n)
    # Nothing on shared storage is gone but the base we deleted ourselves.
    assert before - shared_files(node2) == {f"{SHARED}/_base/base2"}
    # Refused a second time: they belong to node2 now.
    again = evacuate_node1(node2, restarted=hwevac.uses_etcd(node2))
    assert isinstance(again, dict) and set(again) == {uuid_n, uuid_w}, again

    # node1 comes back (its BMC powers it on): none of the evacuated guests runs there.
    ctl(node2, "fence", "node1", "on")
    node1.wait_powered_on()
    assert wait_for(lambda: node1.virsh("domuuid", guests["shared"][0], check=False).returncode
                    != 0 and node1.virsh("domuuid", name_l, check=False).returncode != 0,
                    timeout=30), node1.virsh("list", "--all").stdout
    for name, uuid, _, _ in (guests["shared"], guests["local"]):
        assert running(node2, name) and not running(node1, name) and not running(node3, name)
    journal = node1.journal("-u", "libvirtd", "-u", "hostwardend")
    assert "evacuated to node 'node2'" in journal or "Stale copy of instance" in journal
    # The guest that was not evacuated is still node1's, defined there (its base image is
    # gone, so it cannot start anywhere until an operator restores it).
    assert node1.virsh("domuuid", name_n).stdout.strip() == uuid_n
    assert record(node1, uuid_n)["owner"] == "node1"
    assert record(node1, uuid_w)["owner"] == "node1"  # not lost to node2's reconciliation
    assert not any(running(n, name_n) for n in nodes.nodes)
    assert node1.run(["test", "-e", disk_l]).returncode == 0  # its old local disk is kept
    assert before - shared_files(node2) == {f"{SHARED}/_base/base2"}
    for name, _, _, _ in guests.values():
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
    assert node2.run(owner + disk_l).stdout.strip() == "nova:nova"
    # undefined everywhere, their records are marked deleted (their owners' reconciliation)
    # before the next test evacuates node1 again (on an idle machine it came first)
    uuids = {uuid for _, uuid, _, _ in guests.values()}
    assert wait_for(lambda: all(not (r := record(node2, u)) or r.get("deleted") == "yes"
                                for u in uuids), timeout=30), {u: record(node2, u) for u in uuids}


# A fault injector, not part of what an operator installs: a libvirt hook after
# hostwarden's that kills node2's hostwardend at the moment libvirt starts the paused guest
# (its rebuild has claimed the record and defined the domain), and refuses that start, once.
# What a hostwardend killed there leaves, every time: the record node2's, the domain defined
# and shut off. (libvirt runs every script in qemu.d, in order, for each operation.)
KILL_AT_REBUILD_START = """#!/bin/sh
[ "$1" = power-paused ] && [ "$2" = prepare ] && [ "$3" = begin ] || exit 0
[ -e /run/hw-fault-fired ] && exit 0
touch /run/hw-fault-fired
kill -9 "$(systemctl show -P MainPID hostwardend.service)"
echo "fault injection: hostwardend killed before this start" >&2
exit 1
"""
FAULT_HOOK = "/etc/libvirt/hooks/qemu.d/90-test-kill-hostwardend"


def test_an_evacuation_keeps_each_guests_power_state(nodes):
    """Node 1 dies with a running, a paused and a shut-off guest (its records say so, as it
    last saw them); after fence off, node 2 rebuilds them running, paused and shut off (as
    Nova's evacuate keeps a stopped instance stopped), not all started. node2's hostwardend
    is killed in the paused guest's rebuild, after it claimed the record and before the
    start: the restarted one finishes that rebuild (its note in /run/hostwarden/rebuild),
    paused, and a second EvacuateFrom takes the guests not begun. Node 1 boots again and
    none of them runs there."""
    node1, node2, node3 = nodes.node(1), nodes.node(2), nodes.node(3)
    guests = {}
    for power in ("running", "paused", "shutoff"):
        uuid, name = str(uuidlib.uuid4()), f"power-{power}"
        node1.run(["virsh", "define", "/dev/stdin"], input=hwcluster.domain_xml(name, uuid))
        node1.virsh("autostart", name)  # refused by node1's hook when it comes back
        if power != "shutoff":
            node1.virsh("start", name)
        if power == "paused":
            node1.virsh("suspend", name)
        guests[power] = (name, uuid)
    for power, (name, uuid) in guests.items():
        assert wait_for(lambda: record(node2, uuid).get("power") == power), record(node2, uuid)
        assert wait_for(lambda: hwevac.definition(node2, uuid))

    node1.bmc.ipmitool("chassis", "power", "off")
    assert wait_for(lambda: not node1.alive)
    assert wait_for(lambda: list_nodes(node2)["node1"][2] == "down", timeout=15)
    ctl(node2, "fence", "node1", "off")
    node2.write_file(FAULT_HOOK, KILL_AT_REBUILD_START, mode=0o755)
    try:
        answer = evacuate_from(node2, "node1")
        assert isinstance(answer, str), answer  # the daemon died under the call
        assert node2.run(["test", "-e", "/run/hw-fault-fired"], check=False).returncode == 0
        name, uuid = guests["paused"]
        paused = wait_for(lambda: node2.virsh("domstate", name, check=False).stdout.strip()
                          == "paused", timeout=60)
        if not paused:
            print(node2.journal("-u", "hostwardend", "-u", "libvirtd")[-6000:])
        assert paused, node2.virsh("list", "--all").stdout
        journal = node2.journal("-u", "hostwardend")
        assert f"The rebuild of {uuid} (evacuated from node1) was cut short" in journal
        assert wait_for(lambda: not node2.run(["ls", "/run/hostwarden/rebuild"],
                                              check=False).stdout.strip())
        rows = json.loads(ctl(node2, "history", "--json", name).stdout)
        assert [(r["kind"], r["mode"], r["result"]) for r in rows] == \
            [("rebuild", "resumed", "rebuilt")], rows
        # the others: rebuilt before the kill, or now (once the restarted daemon has seen
        # node1 without a heartbeat for down_after: until then the call is refused whole)
        answers = []
        assert wait_for(lambda: isinstance(answers.append(evacuate_from(node2, "node1"))
                                           or answers[-1], dict), timeout=30), answers
        results = answers[-1]
        assert isinstance(results, dict) and uuid not in results, results
        assert all(result == "rebuilt" for result, _ in results.values()), results
    finally:
        node2.run(["rm", "-f", FAULT_HOOK, "/run/hw-fault-fired"])
    states = {"running": "running", "paused": "paused", "shutoff": "shut off"}
    for power, (name, uuid) in guests.items():
        assert node2.virsh("domstate", name).stdout.strip() == states[power], power
        assert record(node2, uuid)["owner"] == "node2"
    assert f"{guests['shutoff'][1]} ({guests['shutoff'][0]}) of fenced node node1 rebuilt here, " \
        "shut off as it was" in node2.journal("-u", "hostwardend")

    ctl(node2, "fence", "node1", "on")
    node1.wait_powered_on()
    assert wait_for(lambda: all(node1.virsh("domuuid", name, check=False).returncode != 0
                                for name, _ in guests.values()), timeout=30), \
        node1.virsh("list", "--all").stdout
    # their autostart was refused by node1's hook (fenced until a peer sees it on, and denied)
    assert "hostwarden: refusing to start domain 'power-" in node1.journal("-u", "libvirtd")
    for power, (name, _) in guests.items():
        assert node2.virsh("domstate", name).stdout.strip() == states[power], power
        assert not running(node3, name)
    for name, _ in guests.values():
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_evacuate_live_drains_a_node_to_its_peers(nodes, record_timing):
    """`hostwardenctl evacuate --live --wait` on node1: node1 is disabled with a reason, its
    four running guests are live-migrated (max_concurrent 2) to node2 and node3, chosen by
    hostwarden, each running on exactly one node afterwards."""
    node1 = nodes.node(1)
    names = [f"drain-{i}" for i in range(4)]
    uuids = {}
    for name in names:
        hwcluster.define_and_start(node1, hwcluster.domain_xml(name))
        uuids[name] = node1.virsh("domuuid", name).stdout.strip()
    etcd = hwevac.uses_etcd(node1)
    try:
        t0 = time.monotonic()
        if etcd:
            # with store = etcd, the member every hostwardend asks first (node1's) is killed
            # while the drain runs: the others keep the quorum and take its requests
            result = {}
            drain = threading.Thread(target=lambda: result.update(out=ctl(
                node1, "evacuate", "--live", "--wait", timeout=300).stdout))
            drain.start()
            time.sleep(0.3)
            node1.systemctl("kill", "--signal=KILL", hwevac.ETCD_UNIT)
            drain.join(timeout=320)
            out = result.get("out", "")
            assert not node1.unit_active(hwevac.ETCD_UNIT)
        else:
            out = ctl(node1, "evacuate", "--live", "--wait", timeout=300).stdout
        record_timing(f"EvacuateLive, 4 idle guests ({nodes.hw_store})", time.monotonic() - t0)
        assert "4 domain(s) moved, 0 not." in out, out
        # one line per guest, with its name: two of them were still queued when --wait
        # read their names
        for name in names:
            assert re.search(rf"^{name} +-> node[23] +completed$", out, re.M), out
        landed = set()
        for name in names:
            where = [n.name for n in nodes.nodes if running(n, name)]
            assert len(where) == 1 and where[0] in ("node2", "node3"), (name, where)
            landed.add(where[0])
        # The two migrations chosen at once count each other's memory: they spread (the
        # simulated nodes report the same free memory, the host's).
        assert landed == {"node2", "node3"}, landed
        # each record follows its guest
        for name in names:
            where = [n.name for n in nodes.nodes if running(n, name)]
            assert wait_for(lambda: record(node1, uuids[name]).get("owner") == where[0]), \
                (name, where, record(node1, uuids[name]))
        reason = json.loads(node1.run(BUSCTL + ["--json=short", "get-property", *NODE,
                                                "DisabledReason"]).stdout)["data"]
        assert "EvacuateLive" in reason, reason
        assert wait_for(lambda: list_nodes(nodes.node(2))["node1"][2] == "disabled")
        # Nothing left to drain: an empty list, not an error.
        again = ctl(node1, "evacuate", "--live").stdout
        assert "0 migration(s) queued" in again, again
    finally:
        if etcd and not node1.unit_active(hwevac.ETCD_UNIT):
            node1.systemctl("start", hwevac.ETCD_UNIT)  # it rejoins with its data
        ctl(node1, "enable")
        for name in names:
            for n in nodes.nodes:
                n.virsh("destroy", name, check=False)
                n.virsh("undefine", name, check=False)


def node_findings(node) -> dict[str, tuple[str, str]]:
    """CheckNode() as {code: (severity, message)}."""
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckNode"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]}


def migration_findings(node, dom, dest) -> dict[str, tuple[str, str]]:
    """CheckMigration(dom, dest, {}) as {code: (severity, message)}."""
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckMigration", "ssa{sv}", dom,
                             dest, "0"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]}


def test_storage_marks_prove_the_shared_instances_directory_with_either_store(nodes):
    """Each hostwardend writes a storage mark into instances_path and records it in the
    store; a peer that finds that mark under its own instances_path shares the directory.
    CheckNode says so, and a guest whose disk is a file there live-migrates without block
    migration with either store, also with etcd, where no shared state directory proves it
    (the test cluster's shared directory is a bind mount of a local file system). A mark
    that is not the one recorded (another directory mounted there) makes node2 a peer that
    does not share it: CheckNode warns, and with etcd the disk counts as local again."""
    node1, node2 = nodes.node(1), nodes.node(2)
    etcd = hwevac.uses_etcd(node1)
    name, uuid = "marked-0", str(uuidlib.uuid4())
    disk = f"{hwevac.SHARED}/{uuid}/disk"
    mark2 = f"{hwevac.SHARED}/.hostwarden-storage/node2"
    # the earlier tests of the module power nodes off and on: every peer's mark must be
    # recorded again, which took more than 20 s on a CI machine running three suites
    if not wait_for(lambda: node_findings(node1)["instances-path"][0] == "ok", timeout=90):
        # what to look at when it does not (CI, twice: node1 saw neither peer's mark)
        print(node1.run(["sh", "-c", f"grep -H . {hwevac.SHARED}/.hostwarden-storage/*; grep -H "
                                     f"storage_mark {hwevac.SHARED}/.hostwarden/nodes/*; "
                                     "hostwardenctl nodes"], check=False).stdout)
        print(node1.journal("-u", "hostwardend")[-4000:])
        pytest.fail(str(node_findings(node1)["instances-path"]))
    assert "storage marks" in node_findings(node1)["instances-path"][1]
    node1.run(f"mkdir -p {hwevac.SHARED}/{uuid} && qemu-img create -q -f raw {disk} 1M")
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
               f"<source file='{disk}'/><target dev='vda' bus='virtio'/><readonly/></disk>")
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=uuid, devices=devices))
    try:
        assert "local-disk" not in migration_findings(node1, name, "node2")
        # node2's mark replaced: node1 no longer sees what node2 recorded
        node1.run(["sh", "-c", f"echo {'0' * 32} > {mark2}"])
        severity, message = node_findings(node1)["instances-path"]
        assert severity == "warning" and "node2" in message and "node3" not in message, message
        findings = migration_findings(node1, name, "node2")
        if etcd:
            assert findings.get("local-disk", ("",))[0] == "error", findings
            assert "node2 cannot see it" in findings["local-disk"][1], findings
        else:  # node2's heartbeats in the shared state directory prove it
            assert "local-disk" not in findings, findings
        assert "local-disk" not in migration_findings(node1, name, "node3")
        # node2's hostwardend writes a new mark when it starts
        node2.systemctl("restart", "hostwardend.service")
        assert wait_for(lambda: node_findings(node1)["instances-path"][0] == "ok", timeout=30), \
            node_findings(node1)
        assert "local-disk" not in migration_findings(node1, name, "node2")
        out = ctl(node1, "migrate", "--wait", name, "node2", timeout=300).stdout
        assert "completed" in out, out
        assert [n.name for n in nodes.nodes if running(n, name)] == ["node2"]
        assert node2.run(["test", "-f", disk], check=False).returncode == 0
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
        node1.run(["rm", "-rf", f"{hwevac.SHARED}/{uuid}"], check=False)


def test_the_journals_carry_the_message_ids_and_never_the_bmc_password(nodes):
    """After the tests above (fencing, an evacuation, a node's return, a drain): the nodes'
    journals have a message of each kind an operator searches for, by MESSAGE_ID, and the
    BMC password of fence_options is nowhere in them."""
    found = {}
    for n in nodes.nodes:
        out = n.run(["journalctl", "--no-pager", "-o", "json",
                     "--output-fields=MESSAGE_ID"]).stdout
        ids = {json.loads(line).get("MESSAGE_ID") for line in out.splitlines() if line}
        for kind, mid in MESSAGE_IDS.items():
            if mid in ids:
                found.setdefault(kind, []).append(n.name)
        assert PASSWORD not in n.run(["journalctl", "--no-pager", "-o", "verbose"]).stdout
    assert set(found) == set(MESSAGE_IDS), (sorted(set(MESSAGE_IDS) - set(found)), found)


@pytest.mark.parametrize("nodes", ["etcd"], indirect=True)  # dir has no etcd to refuse
def test_the_store_refuses_a_client_without_certificate_and_says_why(nodes):
    """store = etcd: the members speak TLS only and want a client certificate of the
    cluster's CA (--client-cert-auth), as production's do. etcdctl with the node's
    certificate reads the store; without one, etcd refuses it. hostwardenctl with a
    configuration that names no client certificate fails saying which member refused it and
    why (hostwardend's StoreDetail carries the same text: store_error_detail())."""
    node1 = nodes.node(1)
    assert hwevac.uses_etcd(node1)
    ident = f"{hwevac.ETCD_PREFIX}/cluster/identity"
    assert hwevac.etcdctl(node1, "get", "--keys-only", ident).stdout.split() == [ident]
    proc = hwevac.etcdctl(node1, "get", "--keys-only", ident, check=False, client_cert=False)
    assert proc.returncode != 0 and ident not in proc.stdout, (proc.stdout, proc.stderr)

    conf = node1.read_file("/etc/hostwarden/hostwarden.conf")
    assert "etcd_cert = " in conf and "https://10.77.0.11:2379" in conf, conf
    nocert = "".join(line for line in conf.splitlines(True)
                     if not line.startswith(("etcd_cert", "etcd_key")))
    node1.write_file("/run/hwtest-nocert/hostwarden.conf", nocert, mode=0o600)
    try:
        proc = node1.run(["env", "HOSTWARDEN_CONF_DIR=/run/hwtest-nocert", "hostwardenctl",
                          "--no-ask-password", "init-cluster"], check=False, timeout=60)
    finally:
        node1.run(["rm", "-rf", "/run/hwtest-nocert"])
    assert proc.returncode != 0, proc.stdout
    assert "https://10.77.0.11:2379" in proc.stderr and "client certificate" in proc.stderr, \
        proc.stderr


MESSAGE_IDS = {
    "migration started": "c4ca0a45c3fb468699ce61c279adad22",
    "migration completed": "3d625884a32349409cb0b8db84a3ebe6",
    "fence": "9b22479fd7eb4ace97570ee7708f8074",
    "evacuation": "1332e98f29b34e32bfc81300b1d54ee9",
    "refusal": "be94857a800f4d1b983ace9d9418e187",
    "reconciled": "e59a5c230b524d669a621f14a97b1cef",
}
