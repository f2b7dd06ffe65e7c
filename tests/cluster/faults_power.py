"""Power failures during evacuations (issue 7; suite `faults`): on three real nodes with
ipmi_sim BMCs, a node loses power while another rebuilds a fenced node's instances
(EvacuateFrom), or while a node drains itself (EvacuateLive, the source or a destination
losing power). After each round the operator's recovery: fence every dead node through its
BMC, evacuate its instances to a survivor (again, if needed, when a migration was still
being cleaned up), power it on again. Then, every round:
- every guest runs on exactly one node, and that node owns its record;
- every disk file that existed still exists;
- no instance record is lost, and none is invented.

Each (operation, fault) pair runs until its fault has landed while the operation was going
(run_rounds(); the rounds that missed are reported apart); HW_FAULT_PASSES (default 1, as
CI runs it) repeats the whole schedule, HW_FAULT_SEED replays the random choices."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall
from hwevac import (SHARED, config, ctl, evacuate_from, list_nodes, record, records, running,
                    wait_for)

PASSWORD = f"bmc-{uuidlib.uuid4().hex[:12]}"
N = 3
GUESTS = 6


@pytest.fixture(scope="module")
def nodes():
    with hwinstall.installed_cluster(
            N, units=("hostwardend.service",), bmc=True, bmc_password=PASSWORD,
            configs={i: config(i, N, PASSWORD) for i in range(1, N + 1)}) as cluster:
        yield cluster


def guest_xml(name: str, uuid: str, disk: str) -> str:
    # Read-only: libvirt takes a read-write file disk on a file system it does not know as
    # shared (the harness' shared directory is a bind mount) for unsafe to migrate.
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
               f"<source file='{disk}'/><target dev='vda' bus='virtio'/><readonly/></disk>")
    return hwcluster.domain_xml(name, uuid=uuid, devices=devices)


class Fleet:
    """The guests and what the rounds did to them."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.guests: dict[str, tuple[str, str]] = {}  # name -> (uuid, disk)
        self.disks: set[str] = set()
        self.log: list[str] = []

    def create(self) -> None:
        for k in range(GUESTS):
            node = self.cluster.nodes[k % N]
            uuid = str(uuidlib.uuid4())
            name = f"fault-{k}"
            disk = f"{SHARED}/{uuid}/disk"
            node.run(f"mkdir -p {SHARED}/{uuid} && qemu-img create -q -f raw {disk} 1M")
            node.run(["virsh", "define", "/dev/stdin"], input=guest_xml(name, uuid, disk))
            node.virsh("autostart", name)  # so that a node coming back exercises the deny list
            node.virsh("start", name)
            self.guests[name] = (uuid, disk)
            self.disks.add(disk)
        # Every disk in the directory is one of ours: the file list to keep.
        self.disks |= set(self.cluster.nodes[0].run(
            ["find", SHARED, "-path", f"{SHARED}/.hostwarden*", "-prune", "-o", "-type", "f",
             "-print"]).stdout.split())

    def where(self) -> dict[str, list[str]]:
        alive = [n for n in self.cluster.nodes if n.alive]
        return {name: [n.name for n in alive if running(n, name)] for name in self.guests}

    def busiest(self, among) -> hwcluster.Node:
        counts = {n.name: 0 for n in among}
        for places in self.where().values():
            for p in places:
                if p in counts:
                    counts[p] += 1
        return self.cluster.node(max(counts, key=lambda k: (counts[k], k)))

    def history(self, problems: list[str]) -> str:
        """What the live nodes' libvirt and journals say about the guests named in
        PROBLEMS."""
        text = ""
        for node in self.cluster.nodes:
            if node.alive:
                text += f"\n--- {node.name}: virsh list --all\n" + node.virsh(
                    "list", "--all", check=False).stdout
        for name, (uuid, _) in self.guests.items():
            if not any(name in p or uuid in p for p in problems):
                continue
            for node in self.cluster.nodes:
                if node.alive:
                    lines = [line for line in node.journal().splitlines()
                             if name in line or uuid in line]
                    text += f"\n--- {node.name}: {name} {uuid}\n" + "\n".join(lines[-40:])
        return text

    def invariants(self) -> list[str]:
        """What is wrong now (empty: every invariant holds)."""
        problems = []
        some = next(n for n in self.cluster.nodes if n.alive)
        for name, places in self.where().items():
            uuid = self.guests[name][0]
            if len(places) != 1:
                problems.append(f"{name} runs on {places or 'no node'}")
            elif record(some, uuid).get("owner") != places[0]:
                problems.append(f"{name} runs on {places[0]}, its record says "
                                f"{record(some, uuid) or 'nothing'}")
        for disk in sorted(self.disks):
            if some.run(["test", "-e", disk], check=False).returncode != 0:
                problems.append(f"disk {disk} is gone")
        ours = {uuid for uuid, _ in self.guests.values()}
        have = records(some)
        if ours - have:
            problems.append(f"records lost: {sorted(ours - have)}")
        if have - ours:
            problems.append(f"records invented: {sorted(have - ours)}")
        return problems


def power_off(node) -> None:
    node.bmc.ipmitool("chassis", "power", "off")
    assert wait_for(lambda: not node.alive, timeout=15), f"{node.name} did not power off"


def again(message: str) -> bool:
    """An EvacuateFrom refusal that asks to try again."""
    return "still in progress" in message or "try again" in message


def recover(fleet: Fleet, dead: list) -> None:
    """Fence the dead nodes, evacuate their instances to the survivors, power them on."""
    cluster = fleet.cluster
    survivors = [n for n in cluster.nodes if n not in dead]
    s = survivors[0]
    for d in dead:
        assert wait_for(lambda: list_nodes(s)[d.name][2] == "down", timeout=20), \
            list_nodes(s)[d.name]
        ctl(s, "fence", d.name, "off")
    for k, d in enumerate(dead):
        target = survivors[k % len(survivors)]
        for attempt in range(8):
            results = evacuate_from(target, d.name)
            if isinstance(results, str):  # the target has not seen it down yet
                assert "not known to be down yet" in results, results
                time.sleep(1)
                continue
            fleet.log.append(f"  EvacuateFrom({d.name}) on {target.name}: " + ", ".join(
                f"{res}{'' if res == 'rebuilt' else ' (' + msg + ')'}"
                for res, msg in results.values()))
            for res, msg in results.values():
                # The only refusals that may be: a migration that finished on a survivor
                # (which claims the record), or one still being cleaned up, or an instance
                # that reconciliation is acting on (evacuate again).
                assert res == "rebuilt" or (res == "refused" and (
                    "runs on node" in msg or again(msg))), (res, msg)
            if not any(again(msg) for _, msg in results.values()):
                break
            time.sleep(3)
        else:
            raise AssertionError(f"EvacuateFrom({d.name}) kept finding migrations in progress")
    for d in dead:
        ctl(s, "fence", d.name, "on")
    for d in dead:
        d.wait_powered_on()
    for d in dead:
        assert wait_for(lambda: list_nodes(s)[d.name][2] in ("up", "disabled"), timeout=30), \
            list_nodes(s)[d.name]
    for n in cluster.nodes:
        ctl(n, "enable")


OPERATION_TIMEOUT = 300  # seconds: an operation still going after this hangs


def in_background(fn):
    result: dict = {}

    def run():
        try:
            result["value"] = fn()
        except Exception as e:  # noqa: BLE001 - the node lost power under it
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def finish(t: threading.Thread, result: dict, what: str) -> None:
    """The operation of in_background() has ended; one that hangs fails the round. Each
    operation runs its command with OPERATION_TIMEOUT, which kills it (TimeoutExpired), so
    the thread always ends too and none is left behind."""
    t.join(timeout=OPERATION_TIMEOUT + 60)
    if t.is_alive() or isinstance(result.get("error"), subprocess.TimeoutExpired):
        raise AssertionError(f"{what} hung: not ended {OPERATION_TIMEOUT} s after it started")


def start_rebuild(fleet: Fleet, rnd: random.Random, max_delay: float):
    """X (the busiest node) loses power and is fenced; Y, one of the others at random,
    starts rebuilding X's instances (EvacuateFrom, in the background). After a random delay
    up to MAX_DELAY: (x, y, z, the thread, the delay, whether the rebuild still runs)."""
    cluster = fleet.cluster
    x = fleet.busiest(cluster.nodes)
    y, z = [n for n in cluster.nodes if n is not x]
    if rnd.random() < 0.5:
        y, z = z, y
    power_off(x)
    assert wait_for(lambda: list_nodes(y)[x.name][2] == "down", timeout=20)
    ctl(y, "fence", x.name, "off")
    delay = rnd.uniform(0.0, max_delay)
    t, result = in_background(lambda: evacuate_from(y, x.name))
    time.sleep(delay)
    return x, y, z, (t, result), delay, t.is_alive()


def fault_during(what: str, start, rnd: random.Random, lo: float, hi: float, fault,
                 attempt: int = 0) -> tuple[float, bool]:
    """START() runs in the background; after a random delay between LO and HI s, FAULT().
    Then START() is left to end (finish()): (the delay, whether it still ran when the fault
    hit). A later ATTEMPT of the same pair aims earlier: the earlier one missed."""
    delay = rnd.uniform(lo, lo + (hi - lo) / (1 + attempt))
    t, result = in_background(start)
    time.sleep(delay)
    during = t.is_alive()
    fault()
    finish(t, result, what)
    return delay, during


ATTEMPTS = 3  # rounds of one (operation, fault) pair until its fault lands


def run_rounds(fleet: Fleet, schedule: list[tuple[str, str]], one_round, record_timing,
               record_fault_round, more_problems=lambda: []) -> None:
    """Every (operation, fault) pair of SCHEDULE, HW_FAULT_PASSES times (1 in CI): rounds of
    the pair until its fault has landed while the operation was going, up to ATTEMPTS.
    Random choices from HW_FAULT_SEED (or a random seed, printed). ONE_ROUND(rnd, op, fault,
    attempt) does one round: the operation, the fault in it, the recovery; it returns
    whether the fault landed while the operation was still going. After every round,
    landed or not, every invariant must hold (within 30 s), and MORE_PROBLEMS() must find
    none. A round whose fault missed (the operation had ended) proves nothing about the
    fault: it is reported apart, and a pair that never landed fails."""
    seed = int(os.environ.get("HW_FAULT_SEED", str(random.randrange(1 << 30))))
    passes = int(os.environ.get("HW_FAULT_PASSES", "1"))
    store = getattr(fleet.cluster, "hw_store", "dir")
    rnd = random.Random(seed)
    rounds = 0
    try:
        for op, fault in schedule * passes:
            for attempt in range(ATTEMPTS):
                t0 = time.monotonic()
                rounds += 1
                during = one_round(rnd, op, fault, attempt)
                settled = wait_for(lambda: not fleet.invariants(), timeout=30)
                problems = ([] if settled else fleet.invariants()) + more_problems()
                fleet.log.append(f"  after: {fleet.where()}")
                record_fault_round(store, op, fault, not problems, during)
                assert not problems, \
                    f"round {rounds} ({op}, {fault}, seed {seed}): {problems}\n" + \
                    "\n".join(fleet.log) + fleet.history(problems)
                record_timing(f"fault round ({op}, {fault})", time.monotonic() - t0)
                if during:
                    break
            else:
                raise AssertionError(
                    f"({op}, {fault}): the fault never hit the operation while it was going "
                    f"in {ATTEMPTS} rounds (seed {seed})\n" + "\n".join(fleet.log))
    finally:
        print(f"\nfault rounds ({store}): {rounds} (seed {seed})")
        print("\n".join(fleet.log))


def round_during_evacuate_from(fleet: Fleet, rnd: random.Random,
                               attempt: int) -> tuple[list, bool]:
    """X dies and is fenced; Y rebuilds X's instances; Y loses power while it does."""
    x, y, _, (t, result), delay, during = start_rebuild(fleet, rnd, 1.2 / (1 + attempt))
    power_off(y)
    finish(t, result, f"EvacuateFrom({x.name}) on {y.name}")
    fleet.log.append(f"EvacuateFrom({x.name}) on {y.name}, {y.name} off after {delay:.2f}s"
                     f"{'' if during else ', the rebuild had ended'}")
    return [x, y], during


def round_during_live_drain(fleet: Fleet, rnd: random.Random, kill_source: bool,
                            attempt: int) -> tuple[list, bool]:
    """X drains itself live (EvacuateLive) and X, or a destination, loses power mid-drain."""
    cluster = fleet.cluster
    x = fleet.busiest(cluster.nodes)
    victim = x if kill_source else rnd.choice([n for n in cluster.nodes if n is not x])
    delay, during = fault_during(
        f"EvacuateLive on {x.name}",
        lambda: ctl(x, "evacuate", "--live", "--wait", check=False, timeout=OPERATION_TIMEOUT),
        rnd, 0.2, 2.5, lambda: power_off(victim), attempt)
    fleet.log.append(f"EvacuateLive on {x.name}, {victim.name} off after {delay:.2f}s"
                     f"{'' if during else ', the drain had ended'}")
    return [victim], during


SCHEDULE = [("rebuild", "power-off of the rebuilding node"),
            ("drain", "power-off of the source"),
            ("drain", "power-off of a destination")]


def test_power_failures_during_evacuations_lose_nothing(nodes, record_timing,
                                                        record_fault_round):
    fleet = Fleet(nodes)
    fleet.create()

    def one_round(rnd: random.Random, op: str, fault: str, attempt: int) -> bool:
        if op == "rebuild":
            dead, during = round_during_evacuate_from(fleet, rnd, attempt)
        else:
            dead, during = round_during_live_drain(fleet, rnd, fault.endswith("the source"),
                                                   attempt)
        recover(fleet, dead)
        return during

    run_rounds(fleet, SCHEDULE, one_round, record_timing, record_fault_round)
