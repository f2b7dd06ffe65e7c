"""Power failures during evacuations (issue 7; suite `faults`): on three real nodes with
ipmi_sim BMCs, whose /var/lib/nova/instances is a GlusterFS volume a fourth node serves
(faults_cluster.py), six guests run from writable qcow2 disks (Nova's layout: overlays of
an image in _base, made by the nova user) and keep writing a counter to them
(diskguest.py). A node loses power while another rebuilds a fenced node's instances
(EvacuateFrom), or while a node drains itself (EvacuateLive, the source or a destination
losing power). After each round the operator's recovery: fence every dead node through its
BMC, evacuate its instances to a survivor (again, if needed, when a migration was still
being cleaned up), power it on again. Then, every round:
- every guest runs on exactly one node, and that node owns its record;
- every disk file that existed still exists;
- no instance record is lost, and none is invented;
- every disk passes `qemu-img check`, and its counter is above the one read after the
  previous round: it never went backwards (not across a power loss, a rebuild or a
  migration) and the guest kept writing (Fleet.disk_problems).

Each (operation, fault) pair runs until its fault has landed while the operation was going
(run_rounds(); the rounds that missed are reported apart); HW_FAULT_PASSES (default 1, as
CI runs it) repeats the whole schedule, HW_FAULT_SEED replays the random choices,
HW_FAULT_PAIRS ("operation/fault,...") runs only those pairs."""

from __future__ import annotations

import os
import random
import shlex
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

import diskguest
import hwcluster
import hwgluster
from faults_cluster import N, fault_cluster
from hwevac import SHARED, ctl, evacuate_from, list_nodes, record, records, wait_for

GUESTS = 6
#: Nova's image cache: the guests' disks are qcow2 overlays of this raw image.
BASE = f"{SHARED}/_base/fault-base"
#: The guests write their counter 100 / TICKS times a second (diskguest.kernel(ticks)).
TICKS = 5
#: Nova's files are made by nova-compute, which runs as the nova user.
AS_NOVA = ["setpriv", "--reuid=nova", "--regid=nova", "--init-groups", "--"]


@pytest.fixture(scope="module", params=os.environ.get("HW_FAULT_STORES", "dir,etcd").split(","))
def nodes(request, record_timing):
    # etcd on the storage node: a rebuild round powers off two of the three compute nodes
    with fault_cluster(request.param, record_timing=record_timing,
                       etcd_on_storage_node=True) as cluster:
        yield cluster


def guest_xml(name: str, uuid: str, disk: str) -> str:
    # Writable: the disk is on GlusterFS, which libvirt knows as shared (faults_cluster.py);
    # the guest keeps writing its counter to it (diskguest.py), kernel next to the disk.
    return hwcluster.domain_xml(name, uuid=uuid, kernel=f"{os.path.dirname(disk)}/kernel",
                                devices=diskguest.disk_xml(disk))


def read_disks(node, disks) -> dict[str, tuple[int | None, str]]:
    """Every disk of DISKS, read on NODE in one go (one command: a round's check costs
    little): disk -> (its counter, None if it could not be read whole; what is wrong, ""
    when the counter was read and `qemu-img check` found the image clean).  Both with
    --force-share: the guests run."""
    script = "".join(
        f"echo '@@ read {d}'; {shlex.join(diskguest.counter_command(d))} 2>&1; "
        f"echo '@@ check'; qemu-img check -U -f qcow2 {d} 2>&1; echo \"@@ rc $?\"; "
        for d in disks)
    out = node.run(["sh", "-c", script], timeout=120).stdout
    found: dict[str, tuple[int | None, str]] = {}
    disk = read = check = ""
    for part in out.split("@@ ")[1:]:
        head, _, body = part.partition("\n")
        if head.startswith("read "):
            disk, read = head[5:], body
        elif head == "check":
            check = body
        else:  # "rc N": the disk's last part
            try:
                value = diskguest.parse_counter(read)
                err = "" if value is not None else "a torn read"
            except ValueError as e:
                value, err = None, str(e)
            if head != "rc 0" or "No errors were found" not in check:
                err = f"qemu-img check ({head}): {check.strip()}"
            found[disk] = (value, err)
    missing = set(disks) - set(found)
    assert not missing, f"{node.name}: no answer for {missing}:\n{out}"
    return found


def counter_problem(last: int, value: int | None, err: str) -> tuple[str, bool]:
    """Judge one disk read by read_disks() (VALUE, ERR) against the counter LAST read
    from it after the previous round: (what is wrong, "" if nothing; whether reading again
    may mend it).  Backwards is final; not moved yet (a guest still booting), a torn read
    or a check that found something (an image QEMU is writing) are read again."""
    if value is not None and value < last:
        return f"the counter went backwards: {last} -> {value}", False
    if err:
        return err, True
    if value is None or value == last:
        return f"the counter did not move from {last}", True
    return "", False


class Fleet:
    """The guests and what the rounds did to them."""

    def __init__(self, cluster):
        self.cluster = cluster
        #: The compute nodes: the ones that run guests and take faults (never the storage
        #: node, whose brick would die with it).
        self.nodes = hwgluster.compute_nodes(cluster)
        self.guests: dict[str, tuple[str, str]] = {}  # name -> (uuid, disk)
        self.disks: set[str] = set()
        #: Each guest's counter as read after the previous round (or at create()).
        self.counters: dict[str, int] = {}
        self.log: list[str] = []

    def create(self) -> None:
        """Nova's layout on the shared volume, made as the nova user: the image in _base,
        per instance a directory with a qcow2 overlay of it and the guest's kernel; each
        guest writes its counter to its overlay (diskguest.kernel)."""
        first = self.nodes[0]
        first.run(AS_NOVA + ["sh", "-c", f"mkdir -p {SHARED}/_base && "
                             f"qemu-img create -q -f raw {BASE} 16M"])
        kernel = diskguest.kernel(ticks=TICKS)
        for k in range(GUESTS):
            node = self.nodes[k % N]
            uuid = str(uuidlib.uuid4())
            name = f"fault-{k}"
            disk = f"{SHARED}/{uuid}/disk"
            node.run(AS_NOVA + ["sh", "-c", f"mkdir {SHARED}/{uuid} && cat > {SHARED}/{uuid}"
                                f"/kernel && qemu-img create -q -f qcow2 -F raw -b {BASE} {disk}"],
                     input=kernel)
            node.run(["virsh", "define", "/dev/stdin"], input=guest_xml(name, uuid, disk))
            node.virsh("autostart", name)  # so that a node coming back exercises the deny list
            node.virsh("start", name)
            self.guests[name] = (uuid, disk)
            self.disks.add(disk)
        # Every disk in the directory is one of ours: the file list to keep.
        self.disks |= set(first.run(
            ["find", SHARED, "-path", f"{SHARED}/.hostwarden*", "-prune", "-o", "-type", "f",
             "-print"]).stdout.split())
        # Fresh overlays read zeros: the first round's check wants every counter above.
        self.counters = {name: 0 for name in self.guests}

    def disk_problems(self, timeout: float = 20) -> list[str]:
        """What is wrong with the guests' disks now, compared with the last call: `qemu-img
        check` must be clean, and each counter at least what it was (it never goes
        backwards, not across a power loss, a rebuild or a migration) and above it (the
        guest kept writing).  A counter that has not moved yet is read again (until
        TIMEOUT): a guest just rebuilt may still be booting.  The new counters become
        the next call's baseline.  Read on the storage node, from the brick itself (the
        compute nodes' paths, a read-only bind mount of it): no FUSE client's cache between
        the disk and the check, and a node that never loses power."""
        t0 = time.monotonic()
        by_disk = {disk: name for name, (_, disk) in self.guests.items()}
        deadline = t0 + timeout
        pending = dict(by_disk)
        problems: dict[str, str] = {}
        now: dict[str, int] = {}
        while pending:
            for disk, (value, err) in read_disks(self.cluster.storage_node, pending).items():
                name = pending[disk]
                problem, again = counter_problem(self.counters[name], value, err)
                if problem:
                    problems[name] = f"{name}: {disk}: {problem}"
                else:
                    problems.pop(name, None)
                if value is not None and value >= self.counters[name]:
                    now[name] = value
                if not again:
                    del pending[disk]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.log.append(f"  disks checked in {time.monotonic() - t0:.1f}s, counters: " + ", ".join(
            f"{name} {self.counters[name]}->{now.get(name, '?')}" for name in self.guests))
        self.counters.update(now)
        return sorted(problems.values())

    def where(self) -> dict[str, list[str]]:
        # one `virsh list` per node (not a domstate per guest and node: 18 calls, ~40 % of
        # the daemon faults' time); a libvirtd that does not answer runs none of them
        on = {n.name: set(n.virsh("list", "--state-running", "--name", check=False).stdout.split())
              for n in self.nodes if n.alive}
        return {name: [node for node, names in on.items() if name in names]
                for name in self.guests}

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
        for node in self.nodes:
            if node.alive:
                text += f"\n--- {node.name}: virsh list --all\n" + node.virsh(
                    "list", "--all", check=False).stdout
        for name, (uuid, _) in self.guests.items():
            if not any(name in p or uuid in p for p in problems):
                continue
            for node in self.nodes:
                if node.alive:
                    lines = [line for line in node.journal().splitlines()
                             if name in line or uuid in line]
                    text += f"\n--- {node.name}: {name} {uuid}\n" + "\n".join(lines[-40:])
        return text

    def invariants(self) -> list[str]:
        """What is wrong now (empty: every invariant holds)."""
        problems = []
        some = next(n for n in self.nodes if n.alive)
        for name, places in self.where().items():
            uuid = self.guests[name][0]
            if len(places) != 1:
                problems.append(f"{name} runs on {places or 'no node'}")
            elif record(some, uuid).get("owner") != places[0]:
                problems.append(f"{name} runs on {places[0]}, its record says "
                                f"{record(some, uuid) or 'nothing'}")
        gone = some.run(["sh", "-c", 'for f; do [ -e "$f" ] || echo "$f"; done', "-",
                         *sorted(self.disks)]).stdout.split()
        problems += [f"disk {disk} is gone" for disk in gone]
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
    survivors = [n for n in fleet.nodes if n not in dead]
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
    for n in fleet.nodes:
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
    x = fleet.busiest(fleet.nodes)
    y, z = [n for n in fleet.nodes if n is not x]
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
    only = [p.strip() for p in os.environ.get("HW_FAULT_PAIRS", "").split(",") if p.strip()]
    if only:  # by hand: "rebuild/partition cutting the store,drain/kill hostwardend"
        schedule = [(op, fault) for op, fault in schedule if f"{op}/{fault}" in only]
        assert schedule, f"HW_FAULT_PAIRS={only} names no pair of this test"
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
                problems = (([] if settled else fleet.invariants()) + fleet.disk_problems()
                            + more_problems())
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
    x = fleet.busiest(fleet.nodes)
    victim = x if kill_source else rnd.choice([n for n in fleet.nodes if n is not x])
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
