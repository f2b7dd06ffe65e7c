"""Faults during operations (issue 9, suite `faults`): on three real nodes with the firewall
on, whose /var/lib/nova/instances is a GlusterFS volume a fourth node serves
(faults_cluster.py), with six guests that keep writing to writable qcow2 disks there
(faults_power.Fleet), one of three operations runs:
- drain: a node drains itself (EvacuateLive);
- migrate: one guest live-migrates (hostwardenctl migrate --wait, slowed to 1 MiB/s);
- rebuild: a node loses power and is fenced, another rebuilds its instances (EvacuateFrom);
and, in the middle of it, one of these faults:
- hostwardend on the node doing it is killed (-9): systemd restarts it, and it adopts the
  migrations libvirt still runs;
- libvirtd on the source, or on a destination (the rebuilding node), is killed (-9):
  systemd restarts it, the guests keep running;
- the network between the node doing it and a peer is cut (everything between their
  addresses dropped in the node), then healed 3 s later;
- the node doing it is cut from the store for 5 s (longer than down_after, 3 s: its peers
  see it down meanwhile): from every etcd member but its own, which is then in the
  minority, or, with store = dir, from the GlusterFS server holding the store directory
  and the disks.
After each round the operation is left to end, the daemons run again, the node is enabled;
after a rebuild, the operator's recovery (EvacuateFrom again until every instance is
placed, the dead node powered on). Then, every round:
- every guest runs on exactly one node, and that node owns its record;
- every disk file that existed still exists;
- no instance record is lost, and none is invented;
- every disk passes `qemu-img check`, and its counter has grown since the previous round
  and never went backwards;
- no migration port stayed open: every node's window sets are empty;
- the operation ended: one still going after OPERATION_TIMEOUT is a failure (a hang).
Every (operation, fault) pair runs with each store (dir and etcd), as CI runs it, until its
fault has landed while the operation was going (run_rounds(); the rounds that missed are
reported apart, in "fault rounds" at the end and in $HW_FAULT_REPORT). HW_FAULT_PASSES
repeats the schedule, HW_FAULT_SEED replays the random choices, HW_FAULT_STORES=etcd (or
dir) runs one store only."""

from __future__ import annotations

import os
import random
import time

import pytest

from faults_cluster import fault_cluster, reaches_volume
from faults_power import (OPERATION_TIMEOUT, Fleet, fault_during, finish, recover, run_rounds,
                          start_rebuild)
from hwevac import ctl, uses_etcd, wait_for

STORES = os.environ.get("HW_FAULT_STORES", "dir,etcd").split(",")
FIREWALL = "[firewall]\nmigration_sources = 10.77.0.0/24\nopen_window = 60s\n"
KINDS = ("kill hostwardend", "kill libvirtd on the source", "kill libvirtd on a destination",
         "partition", "partition cutting the store")


@pytest.fixture(scope="module", params=STORES)
def nodes(request, record_timing):
    store = request.param
    with fault_cluster(store, FIREWALL, record_timing=record_timing) as cluster:
        cluster.hw_store = store
        # the window sets this test watches exist (an absent table would have none open)
        for n in cluster.compute:
            assert wait_for(lambda: n.run(["nft", "list", "set", "inet", "hostwarden",
                                           "migration_open4"], check=False).returncode == 0)
        yield cluster


def open_windows(node) -> list[str]:
    """The elements of the migration window sets: the ports open to a peer right now."""
    found = []
    for family in ("4", "6"):
        out = node.run(["nft", "list", "set", "inet", "hostwarden", f"migration_open{family}"],
                       check=False).stdout
        body = out.split("elements = {", 1)
        if len(body) == 2:
            found += [e.strip() for e in body[1].split("}", 1)[0].split(",") if e.strip()]
    return found


def cut(x, *others) -> None:
    """Everything between X and OTHERS dropped, in X (both directions)."""
    peers = "{ " + ", ".join(y.address for y in others) + " }"
    x.run(["nft", "-f", "-"], input=(
        "table inet hwfault {\n"
        " chain in { type filter hook input priority -300; ip saddr " + peers + " drop; }\n"
        " chain out { type filter hook output priority -300; ip daddr " + peers +
        " drop; }\n}\n"))


def store_servers(x) -> list:
    """The nodes X reaches its store through: the other etcd members (X's own member alone
    is a minority), or the GlusterFS server of the store directory."""
    if uses_etcd(x):
        return [n for n in x.cluster.compute if n is not x]
    return [x.cluster.storage_node]


def heal(x) -> None:
    x.run(["nft", "delete", "table", "inet", "hwfault"], check=False)


def daemons_running(fleet: Fleet) -> bool:
    return all(n.unit_active("hostwardend.service") and n.unit_active("libvirtd.service")
               for n in fleet.nodes if n.alive)


def no_job(fleet: Fleet) -> bool:
    """No migration job left in any libvirt."""
    for n in fleet.nodes:
        if not n.alive:
            continue
        for name in fleet.guests:
            out = n.virsh("domjobinfo", name, check=False).stdout
            if "Unbounded" in out:
                return False
    return True


def inflict(kind: str, x, y) -> None:
    """The fault: X is the node doing the operation, Y its peer in it."""
    if kind == "kill hostwardend":
        x.systemctl("kill", "--kill-whom=main", "--signal=KILL", "hostwardend.service")
    elif kind == "kill libvirtd on the source":
        x.systemctl("kill", "--kill-whom=main", "--signal=KILL", "libvirtd.service")
    elif kind == "kill libvirtd on a destination":
        y.systemctl("kill", "--kill-whom=main", "--signal=KILL", "libvirtd.service")
    elif kind == "partition":
        cut(x, y)
        time.sleep(3)
        heal(x)
    else:
        cut(x, *store_servers(x))
        time.sleep(5)  # the fault's length: longer than down_after (3 s), as the docstring says
        heal(x)


def settle(fleet: Fleet) -> None:
    """systemd restarts what was killed; the migrations end one way or the other."""
    assert wait_for(lambda: daemons_running(fleet), timeout=60), "a daemon did not come back"
    for n in fleet.nodes:  # libvirt answers again
        if n.alive:
            assert wait_for(lambda: n.virsh("list", check=False).returncode == 0, timeout=60)
    assert wait_for(lambda: no_job(fleet), timeout=120), "a migration job is left"
    for n in fleet.nodes:  # a node cut from the storage node reaches it again
        if n.alive:
            assert wait_for(lambda: reaches_volume(n), timeout=60), \
                f"{n.name} does not reach the GlusterFS volume again"


def drain_round(fleet: Fleet, rnd: random.Random, kind: str, attempt: int) -> bool:
    """X drains itself (EvacuateLive); the fault hits X, a destination or the link."""
    x = fleet.busiest(fleet.nodes)
    y = rnd.choice([n for n in fleet.nodes if n is not x])
    delay, during = fault_during(
        f"EvacuateLive on {x.name}",
        lambda: ctl(x, "evacuate", "--live", "--wait", check=False, timeout=OPERATION_TIMEOUT),
        rnd, 0.2, 2.0, lambda: inflict(kind, x, y), attempt)
    fleet.log.append(f"EvacuateLive on {x.name}, {kind} ({y.name}) after {delay:.2f}s"
                     f"{'' if during else ', the drain had ended'}")
    settle(fleet)
    ctl(x, "enable")
    return during


def migrate_round(fleet: Fleet, rnd: random.Random, kind: str, attempt: int) -> bool:
    """One guest live-migrates from X to Y (slowed to 1 MiB/s); the fault hits mid-way."""
    x = fleet.busiest(fleet.nodes)
    name = rnd.choice([g for g, places in fleet.where().items() if places == [x.name]])
    y = rnd.choice([n for n in fleet.nodes if n is not x])
    delay, during = fault_during(
        f"Migrate {name} {x.name} -> {y.name}",
        lambda: ctl(x, "migrate", "--wait", "--bandwidth=1", name, y.name, check=False,
                    timeout=OPERATION_TIMEOUT),
        rnd, 0.3, 1.5, lambda: inflict(kind, x, y), attempt)
    fleet.log.append(f"Migrate {name} {x.name} -> {y.name}, {kind} after {delay:.2f}s"
                     f"{'' if during else ', the migration had ended'}")
    settle(fleet)
    return during


def rebuild_round(fleet: Fleet, rnd: random.Random, kind: str, attempt: int) -> bool:
    """X loses power and is fenced; Y rebuilds X's instances (EvacuateFrom) and the fault hits
    Y (its hostwardend, its libvirtd) or the link between Y and the third node. Then the
    operator's recovery: EvacuateFrom again until every instance is placed, X powered on."""
    x, y, z, (t, result), delay, during = start_rebuild(fleet, rnd, 0.6 / (1 + attempt))
    inflict({"kill libvirtd on a destination": "kill libvirtd on the source"}.get(kind, kind),
            y, z)
    finish(t, result, f"EvacuateFrom({x.name}) on {y.name}")
    fleet.log.append(f"EvacuateFrom({x.name}) on {y.name}, {kind} after {delay:.2f}s"
                     f"{'' if during else ', the rebuild had ended'}")
    settle(fleet)
    recover(fleet, [x])
    return during


OPERATIONS = {"drain": drain_round, "migrate": migrate_round, "rebuild": rebuild_round}
# Every fault with every operation; a rebuild has no source but the rebuilding node, whose
# libvirtd is the destination's.
SCHEDULE = [(op, kind) for op in OPERATIONS for kind in KINDS
            if not (op == "rebuild" and kind == "kill libvirtd on the source")]


def test_daemon_and_network_faults_during_operations_lose_nothing(nodes, record_timing,
                                                                  record_fault_round):
    fleet = Fleet(nodes)
    fleet.create()

    def one_round(rnd: random.Random, op: str, kind: str, attempt: int) -> bool:
        return OPERATIONS[op](fleet, rnd, kind, attempt)

    def ports_open() -> list[str]:
        return [f"migration ports still open on {n.name}: {open_windows(n)}"
                for n in fleet.nodes if not wait_for(lambda: not open_windows(n), timeout=30)]

    run_rounds(fleet, SCHEDULE, one_round, record_timing, record_fault_round, ports_open)
