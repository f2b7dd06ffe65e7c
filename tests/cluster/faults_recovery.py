"""Automatic recovery under faults (issue 22 item 4; suite `faults`).

On the faults suite's cluster (faults_cluster.py: three compute nodes with ipmi_sim BMCs,
fencing one another through fence_ipmilan, whose /var/lib/nova/instances is a GlusterFS
volume a fourth node serves; heartbeat 500 ms, down_after 3 s) with [recovery] enable = yes
and confirm_after 2 s, six guests (faults_power.Fleet: HA by default_ha, each writing a
counter to its qcow2 disk on the volume) live through randomized rounds, with store = dir
(in the volume) and with store = etcd (a member on each compute node, so that a partition
cuts a node from the store too). Nobody calls anything during a round: the coordinator
(the node holding the recovery lease, found with the Node property Recovery) must act.
- power loss: a random node that runs guests loses power (the harness kills it): the
  coordinator fences it through its BMC, its guests run again on the survivors;
- coordinator power loss: the same, to the coordinator (given a guest first if it has
  none): another node takes the lease over, then fences it;
- partition (etcd only): a node is cut from the other compute nodes (and with them from
  the etcd quorum) while its BMC and the volume still answer: the majority side fences it
  through the BMC and rebuilds its guests; once the cut heals, the node is still off;
- BMC dead: the node's ipmi_sim is stopped, then it loses power; with self_fence = no
  nothing of it is rebuilt, the coordinator reports the failed fence and keeps trying;
  when the BMC answers again, a retry fences it and its guests come back;
- self-fence: the node declares self_fence = yes, self_fence_after 4 s (a drop-in and
  `hostwardenctl reload`), its BMC is stopped and it is powered off by the harness (it
  stands for a node that fenced itself): the peers take it as off only after
  self_fence_after plus their margin (down_after) and after its fence agent failed, then
  rebuild;
- two of three lost: two nodes lose power at once: nobody is fenced and nothing rebuilt
  (with dir the survivor says it is cut off: the fence-storm guard; with etcd on the
  compute nodes it has lost the store's quorum too).
During every round a watcher polls every live node's libvirt: no guest may ever run on two
nodes. After the round: the right nodes were fenced (the BMCs' power logs) and no other,
the journals have the coordinator's steps (MESSAGE_ID 5e0d3c1b...), the time from the power
loss (or the cut) to every guest of the node running on a survivor is recorded; then the
cluster is restored (`fence NODE on`, or the BMC's power on and `force-up`), and
faults_power.run_rounds checks its invariants: every guest runs on exactly one node, which
owns its record, no disk or record lost or invented, every counter grew and never went
back.

HW_FAULT_RECOVERY_ROUNDS: rounds per store (default 10, as CI runs it: 20 in all; more by
hand for a soak); HW_FAULT_SEED replays the random choices (printed); HW_FAULT_STORES=dir
(or etcd) runs one store; HW_FAULT_PAIRS="recovery/partition,..." only those scenarios."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import threading
import time

import pytest

import hwcluster
import hwinstall
from faults_cluster import fault_cluster
from faults_daemons import cut
from faults_power import Fleet, run_rounds
from hwevac import ctl, list_nodes, record, wait_for
from hwinstall import BUSCTL, NODE_API
from test_recovery import prop_recovery

STORES = os.environ.get("HW_FAULT_STORES", "dir,etcd").split(",")
ROUNDS = int(os.environ.get("HW_FAULT_RECOVERY_ROUNDS", "10"))
DOWN_AFTER, CONFIRM_AFTER, SELF_FENCE_AFTER, HEARTBEAT = 3, 2, 4, 0.5
RECOVERY = f"[recovery]\nenable = yes\nconfirm_after = {CONFIRM_AFTER}s\n"
MESSAGE_ID = "5e0d3c1b9a7f4e26b8c4d2f6a1e93b70"
SELF_FENCE_DROPIN = "/etc/hostwarden/hostwarden.conf.d/90-hwtest-self-fence.conf"
#: From a power loss to the guests running on a survivor: down_after + confirm_after, a
#: fence_ipmilan run, TCG starts on two loaded cores; a fence agent against a dead BMC
#: takes ~22 s to fail.
BACK_TIMEOUT = 150
OP = "recovery"
# Each store's rounds, in order (repeated past their end): every scenario of the store at
# least once in CI's ten; the victims, pairs and guests are the random part.
ORDER = {
    "dir": ["power loss", "coordinator power loss", "BMC dead", "power loss",
            "two of three lost", "coordinator power loss", "self-fence", "power loss",
            "coordinator power loss", "power loss"],
    "etcd": ["partition", "power loss", "coordinator power loss", "self-fence", "partition",
             "two of three lost", "power loss", "BMC dead", "coordinator power loss",
             "partition"],
}


@pytest.fixture(scope="module", params=STORES)
def nodes(request, record_timing):
    with fault_cluster(request.param, record_timing=record_timing, config=RECOVERY) as cluster:
        yield cluster


# ---- what the nodes say ------------------------------------------------------------------

def events(fleet: Fleet, since: float) -> list[dict]:
    """The recovery steps in the live nodes' journals (MESSAGE_ID) since SINCE (time.time()),
    in time order: {t, by, step, node, instance, message}."""
    found = []
    for n in fleet.nodes:
        if not n.alive:
            continue
        out = n.run(["journalctl", "-o", "json", "-u", "hostwardend", f"MESSAGE_ID={MESSAGE_ID}",
                     "--since", f"@{int(since) - 1}"], check=False).stdout
        for line in out.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            t = int(e.get("__REALTIME_TIMESTAMP", 0)) / 1e6
            if t >= since:
                found.append({"t": t, "by": n.name, "step": e.get("HOSTWARDEN_RECOVERY"),
                              "node": e.get("HOSTWARDEN_NODE"),
                              "instance": e.get("HOSTWARDEN_INSTANCE"),
                              "message": e.get("MESSAGE")})
    return sorted(found, key=lambda e: e["t"])


def steps(evs: list[dict], step: str, about: str | None = None) -> list[dict]:
    return [e for e in evs if e["step"] == step and (about is None or e["node"] == about)]


def fenced_off(node) -> int:
    """How many times NODE's BMC powered it off (its power log): the rounds' power losses are
    the harness's (Node.kill), never the BMC's, so each of these is a fence of a node that
    was on (ipmi_sim does not ask its power control to power off a node that is off)."""
    return sum(1 for line in node.bmc.power_log().splitlines() if line.endswith("power 0"))


def coordinator(fleet: Fleet):
    """The compute node whose Recovery property says it coordinates (None: none yet)."""
    for n in fleet.nodes:
        if n.alive and prop_recovery(n) == "coordinator":
            return n
    return None


class Watch:
    """Every live node's libvirt, polled while a round runs (one `virsh list` per node,
    Fleet.where): a guest seen running on two nodes at once, when each guest was first seen
    on each node, and the last look."""

    def __init__(self, fleet: Fleet, interval: float = 0.4):
        self.fleet, self.interval = fleet, interval
        self.twice: list[str] = []
        self.first: dict[tuple[str, str], float] = {}  # (guest, node) -> time.time()
        self.last: tuple[float, dict[str, list[str]]] = (0.0, {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            where = self.look()
            now = time.time()
            if where is not None:
                for name, places in where.items():
                    if len(places) > 1:
                        self.twice.append(f"{name} runs on {places} at {now:.1f}")
                    for p in places:
                        self.first.setdefault((name, p), now)
                self.last = (now, where)
            self._stop.wait(self.interval)

    def look(self) -> dict[str, list[str]] | None:
        """Fleet.where(), with a short timeout: a node that loses power under the look (or a
        libvirtd that hangs) must not blind the watcher for virsh's 120 s. None: no look."""
        on = {}
        for n in self.fleet.nodes:
            if not n.alive:
                continue
            try:
                out = n.virsh("list", "--state-running", "--name", check=False,
                              timeout=10).stdout
            except subprocess.TimeoutExpired:
                return None
            on[n.name] = set(out.split())
        return {g: [n for n, names in on.items() if g in names] for g in self.fleet.guests}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


# ---- a round -----------------------------------------------------------------------------

class Round:
    """One round: its victims, what it expects, what it saw, its report line."""

    def __init__(self, fleet: Fleet, store: str, scenario: str):
        self.fleet, self.store, self.scenario = fleet, store, scenario
        self.started = time.time()
        self.fences_before = {n.name: fenced_off(n) for n in fleet.nodes}
        self.watch = Watch(fleet)
        self.victims: list = []
        self.guests: list[str] = []   # the victims' guests when the fault hit
        self.t0 = 0.0                 # time.time() of the fault
        self.back: float | None = None
        self.notes: list[str] = []
        self.problems: list[str] = []

    def take_guests(self, victims) -> None:
        self.victims = list(victims)
        names = {v.name for v in victims}
        self.guests = sorted(g for g, places in self.fleet.where().items()
                             if set(places) & names)

    def expect(self, cond, what: str) -> bool:
        if not cond:
            self.problems.append(what)
        return bool(cond)

    def survivors(self) -> list:
        return [n for n in self.fleet.nodes if n not in self.victims]

    def guests_back(self) -> bool:
        """Every guest of the victims runs on exactly one node, a survivor (the watcher's
        last look, taken after the fault)."""
        t, where = self.watch.last
        names = {v.name for v in self.victims}
        return t > self.t0 and all(len(where.get(g, [])) == 1 and where[g][0] not in names
                                   for g in self.guests)

    def wait_back(self, timeout: float = BACK_TIMEOUT) -> bool:
        ok = wait_for(self.guests_back, timeout=timeout, interval=0.2)
        if ok:
            self.back = self.watch.last[0] - self.t0
        return self.expect(ok, f"the guests of {[v.name for v in self.victims]} "
                           f"({self.guests}) did not all run again on a survivor in "
                           f"{timeout} s: {self.watch.last[1]}")

    def fences(self) -> dict[str, int]:
        """How many fences each node's BMC took since the round began."""
        return {n.name: fenced_off(n) - self.fences_before[n.name] for n in self.fleet.nodes}

    def check_fenced(self, allowed) -> None:
        """No node but ALLOWED was fenced (the BMC logs): never a live node."""
        names = {n.name for n in allowed}
        for name, k in self.fences().items():
            self.expect(k == 0 or name in names,
                        f"{name} was fenced {k} time(s) through its BMC in a round that "
                        f"fences only {sorted(names) or 'nobody'}")

    def finish(self, landed: bool) -> bool:
        self.watch.stop()
        self.problems += [f"a guest ran twice: {t}" for t in self.watch.twice[:5]]
        back = f"{self.back:.1f}s" if self.back is not None else "-"
        line = (f"{self.store:<4} {self.scenario:<22} {','.join(v.name for v in self.victims):<11} "
                f"{len(self.guests)} guest(s) back in {back:>6}"
                + (f"; {'; '.join(self.notes)}" if self.notes else "")
                + (f"; PROBLEMS: {self.problems}" if self.problems else ""))
        timeline = [f"    {e['t'] - self.t0:+6.1f}s {e['by']}: {e['step']} {e['node'] or ''} "
                    f"{e['instance'] or ''}".rstrip() for e in events(self.fleet, self.started)]
        print("\n".join([line] + timeline), flush=True)
        self.fleet.log.append(line)
        RESULTS.append((self.store, self.scenario, landed, self.back, not self.problems))
        assert not self.problems, (
            f"{self.store} {self.scenario}: {self.problems}\n"
            + "\n".join(f"  {e['t'] - self.t0:+7.1f}s {e['by']}: {e['step']} {e['node']} "
                        f"{e['instance'] or ''}"
                        for e in events(self.fleet, self.started))
            + "\n" + "\n".join(self.fleet.log)
            + self.fleet.history(self.guests))
        return landed


#: (store, scenario, landed, seconds back or None, held) of every round: the closing summary.
RESULTS: list[tuple[str, str, bool, float | None, bool]] = []


def victim_with_guests(fleet: Fleet, rnd: random.Random, among=None):
    counts = {n.name: 0 for n in (among or fleet.nodes)}
    for places in fleet.where().values():
        for p in places:
            if p in counts:
                counts[p] += 1
    names = sorted(k for k, c in counts.items() if c) or sorted(counts)
    return fleet.cluster.node(rnd.choice(names))


def all_up(fleet: Fleet) -> bool:
    for n in fleet.nodes:
        seen = list_nodes(n)
        if any(seen[m.name][2] not in ("up", "disabled") or seen[m.name][3] == "off"
               for m in fleet.nodes
               if m.name in seen):
            return False
    return True


#: What went wrong when a fenced node was powered on again with `fence NODE on` (the
#: operator's command): checked at the end of the test, so that the rounds after it still run
#: (they power such a node on through its BMC instead, see restore()).
REFENCED: list[str] = []


def boots_and_stays(fleet: Fleet, n, helper) -> bool:
    """N boots (after a power-on already asked for), and its peers see it up: its heartbeat
    runs. False if it was killed meanwhile (fenced again while it booted)."""
    try:
        n.wait_powered_on()
    except hwcluster.HarnessError:
        return False
    # (a node forced down shows "forced-down" until force-up: its hostwardend has read the
    # store since it booted, and its peers do not see it down)
    return bool(wait_for(lambda: not n.alive or (hwinstall.synced(n) and list_nodes(helper)[
        n.name][2] != "down"), timeout=60)) and n.alive


def restore(fleet: Fleet, r: Round, fenced=(), forced_down=(), unfenced=()) -> None:
    """The cluster whole again: each FENCED node powered on with `fence NODE on`; each
    FORCED_DOWN one booted (its BMC first, which was stopped) and forced up; each UNFENCED
    one powered on through its BMC; then every node up, synced, enabled, in every node's
    view.  A FENCED node that the coordinator fences again while it boots (its heartbeat has
    not run yet) is noted in REFENCED; an UNFENCED one may be fenced while it boots (when
    two were lost, the first back ends the fence storm and the other has been down for long:
    it is fenced, its guests rebuilt, as they should be); such a node is powered on
    through its BMC again, and `fence NODE on` is said once its heartbeat runs. So is a node
    fenced after it was up again; one that stops without its BMC's power-off is a problem."""
    helper = next(n for n in fleet.nodes if n.alive)
    since = time.time()
    fenced_before = {n.name: fenced_off(n) for n in fleet.nodes}
    for n in fenced:
        ctl(helper, "fence", n.name, "on")
    for n in list(forced_down) + list(unfenced):
        if n.bmc.process is None or n.bmc.process.poll() is not None:
            n.bmc.start()
        n.bmc.ipmitool("chassis", "power", "on")
    for n in list(fenced) + list(forced_down) + list(unfenced):
        before, tries = fenced_off(n), 0
        while not boots_and_stays(fleet, n, helper):
            tries += 1
            assert tries < 4, f"{n.name} does not come back: {n.bmc.power_log()[-500:]}\n" \
                + "\n".join(n.console_log().splitlines()[-30:])
            if n in fenced:
                REFENCED.append(
                    f"{r.store} {r.scenario}: `fence {n.name} on`: {n.name} was fenced again "
                    f"while it booted ({fenced_off(n) - before} power-off(s) by its BMC since "
                    f"the power-on); steps since: " + ", ".join(
                        f"{e['by']} {e['step']} {e['node']}" for e in events(fleet, r.t0)
                        if e["step"] in ("fencing", "fenced")))
            n.bmc.ipmitool("chassis", "power", "on")
        fenced_before[n.name] = fenced_off(n)  # it runs: a power-off from now is a fence
        if tries:
            r.notes.append(f"{n.name} fenced again while it booted, powered on again")
    for n in forced_down:
        ctl(helper, "force-up", n.name)
    for tries in range(4):
        # A node up again can still be fenced by the rules: its heartbeat stalled for
        # down_after + confirm_after (5 s here) on two loaded cores while its peer booted.
        # The coordinator's 'fencing' step and its BMC's power-off say so; a node gone
        # without both is a problem.
        for n in [n for n in fleet.nodes if not n.alive]:
            offs = fenced_off(n)
            why = steps(events(fleet, since), "fencing", n.name)
            r.expect(offs > fenced_before[n.name] and why,
                     f"{n.name} stopped, not fenced by a coordinator: "
                     f"{n.bmc.power_log()[-300:]}\n"
                     + "\n".join(n.console_log().splitlines()[-30:]))
            fenced_before[n.name] = offs
            r.notes.append(f"{n.name} fenced after it was up again"
                           + (f" ({why[-1]['by']}: {why[-1]['message']})" if why else "")
                           + ", powered on again")
            peer = next(h for h in fleet.nodes if h.alive and h is not n)  # before it boots
            n.bmc.ipmitool("chassis", "power", "on")
            boots_and_stays(fleet, n, peer)
        for n in fleet.nodes:  # fenced again while booting: its record still says off
            peer = next(h for h in fleet.nodes if h.alive and h is not n)  # not itself
            if list_nodes(peer)[n.name][3] == "off":
                ctl(peer, "fence", n.name, "on")
        try:
            hwinstall.wait_synced(fleet.nodes)
            break
        except hwcluster.HarnessError:  # one of them stopped meanwhile
            assert tries < 3, f"nodes keep stopping: {[n.name for n in fleet.nodes]}"
    if not wait_for(lambda: all_up(fleet), timeout=60):
        r.problems.append("the cluster is not whole again: " + str(
            {n.name: {k: v[2:4] for k, v in list_nodes(n).items()} for n in fleet.nodes}))
    for n in fleet.nodes:
        ctl(n, "enable")


# ---- the scenarios -----------------------------------------------------------------------

def power_loss(fleet: Fleet, r: Round, victim) -> bool:
    """VICTIM loses power; the coordinator fences it through its BMC; its guests run again
    on the survivors. Then `fence VICTIM on`."""
    r.take_guests([victim])
    r.t0 = time.time()
    victim.kill()
    r.wait_back()

    def all_rebuilt():
        evs = events(fleet, r.t0)
        return evs if len(steps(evs, "rebuilt", victim.name)) >= len(r.guests) else None
    # a rebuild's step is logged just after its guest starts, which the watcher may see first
    evs = wait_for(all_rebuilt, timeout=15) or events(fleet, r.t0)
    r.expect(steps(evs, "fenced", victim.name), f"no 'fenced' step for {victim.name}")
    rebuilt = steps(evs, "rebuilt", victim.name)
    r.expect(len(rebuilt) >= len(r.guests), f"{len(r.guests)} guests, 'rebuilt' steps: "
             f"{[e['instance'] for e in rebuilt]}")
    if rebuilt and steps(evs, "fenced", victim.name):
        r.expect(min(e["t"] for e in rebuilt) >= steps(evs, "fenced", victim.name)[0]["t"],
                 "a guest was rebuilt before its node was fenced")
    r.check_fenced([victim])
    restore(fleet, r, fenced=[victim])
    return bool(r.guests)


def round_power_loss(fleet, rnd, r):
    return power_loss(fleet, r, victim_with_guests(fleet, rnd))


def round_coordinator(fleet, rnd, r):
    """The coordinator loses power: another node takes the lease over and fences it."""
    assert wait_for(lambda: coordinator(fleet), timeout=30), \
        {n.name: prop_recovery(n) for n in fleet.nodes}
    coord = coordinator(fleet)
    where = fleet.where()
    if not any(places == [coord.name] for places in where.values()):
        # it runs nothing: give it a guest, so that its loss has something to recover
        name = rnd.choice(sorted(g for g, p in where.items() if len(p) == 1))
        src = fleet.cluster.node(where[name][0])
        ctl(src, "migrate", "--wait", name, coord.name, timeout=180)
        r.notes.append(f"{name} migrated to it first")
    if coordinator(fleet) is not coord:  # the lease moved meanwhile: the fault must hit it
        r.notes.append("the lease moved before the loss")
        return False
    landed = power_loss(fleet, r, coord)
    evs = events(fleet, r.t0)
    took = [e for e in steps(evs, "coordinating") if e["by"] != coord.name]
    r.expect(took, f"no survivor said it coordinates after {coord.name}'s loss")
    if took:
        r.notes.append(f"lease to {took[0]['by']} at +{took[0]['t'] - r.t0:.1f}s")
    return landed


def heal_netns(node) -> None:
    """faults_daemons.cut() undone from the host, in NODE's network namespace (which outlives
    its power): the node may be off."""
    subprocess.run(["ip", "netns", "exec", node.netns, "nft", "delete", "table", "inet",
                    "hwfault"], capture_output=True, check=False, timeout=30)


def round_partition(fleet, rnd, r):
    """X is cut from the other compute nodes (etcd's quorum with them), not from its BMC nor
    the volume: the majority fences it through the BMC and rebuilds its guests; healed, X
    stays off."""
    x = victim_with_guests(fleet, rnd)
    others = [n for n in fleet.nodes if n is not x]
    r.take_guests([x])
    r.t0 = time.time()
    try:
        cut(x, *others)
        r.expect(wait_for(lambda: not x.alive, timeout=BACK_TIMEOUT, interval=0.2),
                 f"{x.name} cut off still runs after {BACK_TIMEOUT} s")
    finally:
        # Off, its own firewall (the cut) is gone with it; only the harness's network
        # namespace outlives it (and a black hole at its address would hold the survivors'
        # connections to it for TCP's ~2 minutes).
        heal_netns(x)
    r.wait_back()
    r.expect(r.fences()[x.name] >= 1, f"{x.name} was not fenced through its BMC")
    r.check_fenced([x])
    # healed: nothing powers it on again, and nothing of it runs twice (the watcher)
    status = x.bmc.ipmitool("chassis", "power", "status").stdout
    r.expect(not x.alive and "off" in status, f"after the heal {x.name} is not off: {status}")
    r.expect(steps(events(fleet, r.t0), "fenced", x.name), f"no 'fenced' step for {x.name}")
    restore(fleet, r, fenced=[x])
    return bool(r.guests)


def round_bmc_dead(fleet, rnd, r):
    """X's BMC dies, then X loses power (self_fence = no): nothing of it is rebuilt; the
    coordinator says the fence failed and tries again. The BMC comes back: a retry fences
    X and its guests run again."""
    x = victim_with_guests(fleet, rnd)
    r.take_guests([x])
    x.bmc.stop()
    r.t0 = time.time()
    x.kill()
    failed = wait_for(lambda: steps(events(fleet, r.t0), "fence-failed", x.name),
                      timeout=BACK_TIMEOUT)
    r.expect(failed, f"no 'fence-failed' step for {x.name} with its BMC dead")
    if failed:
        r.notes.append(f"fence failed at +{failed[0]['t'] - r.t0:.1f}s")
    names = {x.name}
    r.expect(not any((g, n.name) in r.watch.first for g in r.guests
                     for n in fleet.nodes if n.name not in names),
             f"a guest of {x.name} ran elsewhere while it could not be fenced")
    evs = events(fleet, r.t0)
    r.expect(not steps(evs, "assigned", x.name) and not steps(evs, "rebuilt", x.name)
             and not steps(evs, "self-fenced", x.name),
             f"{x.name} was taken as fenced without a fence: {evs}")
    r.expect(list_nodes(r.survivors()[0])[x.name][3] != "off",
             f"{x.name}'s record says off without a fence")
    revived = time.time()
    x.bmc.start()
    r.wait_back()
    evs = events(fleet, r.t0)
    r.expect(len(steps(evs, "fencing", x.name)) >= 2, "the coordinator did not try again")
    ok = [e for e in steps(evs, "fenced", x.name) if e["t"] >= revived]
    r.expect(ok, f"no 'fenced' step for {x.name} once its BMC answered again")
    if ok:
        r.notes.append(f"BMC back at +{revived - r.t0:.1f}s, fenced at +{ok[0]['t'] - r.t0:.1f}s")
    r.check_fenced([x])
    restore(fleet, r, fenced=[x])
    return bool(r.guests)


def round_self_fence(fleet, rnd, r):
    """X declares self-fencing (self_fence_after 4 s), its BMC dies, it powers itself off:
    the peers take it as off only after self_fence_after + down_after without its heartbeat
    (and after its agent failed), then rebuild its guests."""
    x = victim_with_guests(fleet, rnd)
    x.write_file(SELF_FENCE_DROPIN, f"[recovery]\nself_fence = yes\n"
                 f"self_fence_after = {SELF_FENCE_AFTER}s\n")
    ctl(x, "reload")
    peer = next(n for n in fleet.nodes if n is not x)
    declared = wait_for(lambda: record(peer, x.name, kind="nodes").get("self_fence_after"),
                        timeout=30)
    assert declared, f"{x.name} did not declare self-fencing: " \
        f"{record(peer, x.name, kind='nodes')}"
    r.take_guests([x])
    x.bmc.stop()
    r.t0 = time.time()
    x.kill()
    r.wait_back()
    evs = events(fleet, r.t0)
    margin = SELF_FENCE_AFTER + DOWN_AFTER - HEARTBEAT  # its last heartbeat: before t0
    took = steps(evs, "self-fenced", x.name)
    if r.expect(took, f"no 'self-fenced' step for {x.name}"):
        r.notes.append(f"taken as off at +{took[0]['t'] - r.t0:.1f}s")
        r.expect(took[0]["t"] - r.t0 >= margin,
                 f"{x.name} taken as off {took[0]['t'] - r.t0:.1f}s after its last "
                 f"heartbeat, before self_fence_after + margin ({margin}s)")
        r.expect(any(e["t"] <= took[0]["t"] for e in steps(evs, "fence-failed", x.name)),
                 "taken as self-fenced before its fence agent failed")
    first = [t for (g, n), t in r.watch.first.items() if g in r.guests and n != x.name]
    if first:
        r.expect(min(first) - r.t0 >= margin,
                 f"a guest of {x.name} ran elsewhere {min(first) - r.t0:.1f}s after its loss")
    r.check_fenced([])
    restore(fleet, r, forced_down=[x])
    x.run(["rm", "-f", SELF_FENCE_DROPIN])
    ctl(x, "reload")
    return bool(r.guests)


def round_storm(fleet, rnd, r):
    """Two of the three nodes lose power at once: nobody is fenced, nothing is rebuilt."""
    victims = rnd.sample(fleet.nodes, 2)
    survivor = next(n for n in fleet.nodes if n not in victims)
    r.take_guests(victims)
    r.t0 = time.time()
    for v in victims:
        v.kill()
    storm = wait_for(lambda: steps(events(fleet, r.t0), "storm"), timeout=DOWN_AFTER + 30)
    said = prop_recovery(survivor)
    if fleet.cluster.hw_store == "dir":
        r.expect(storm, f"{survivor.name} did not say it fences nobody (storm): {said}")
    else:  # etcd on the compute nodes: its one member has no quorum left either
        # (its hostwardend may not answer at all while its store calls wait for a quorum)
        proc = survivor.run(BUSCTL + ["--json=short", "get-property", *NODE_API, "StoreState"],
                            check=False)
        store = json.loads(proc.stdout)["data"] if proc.returncode == 0 else \
            f"no answer ({proc.stderr.strip()})"
        r.expect(storm or "store does not answer" in said or store != "attached",
                 f"{survivor.name} neither says storm nor lost the store: {said}, {store}")
        r.notes.append(f"its store: {store}")
    r.notes.append(f"{survivor.name} says {said!r}")
    # An observation window: past the time it would have fenced (down_after + confirm_after),
    # a fence agent's run and a few heartbeats more; the pause is the window itself.
    time.sleep(max(0.0, r.t0 + DOWN_AFTER + CONFIRM_AFTER + 5 - time.time()))
    evs = events(fleet, r.t0)
    for step in ("fencing", "fenced", "assigned", "rebuilt", "self-fenced"):
        r.expect(not steps(evs, step), f"'{step}' in a storm: {steps(evs, step)}")
    r.expect(not any((g, survivor.name) in r.watch.first for g in r.guests),
             f"a guest of the lost nodes ran on {survivor.name}")
    r.check_fenced([])
    restore(fleet, r, unfenced=victims)
    # Their guests, which nobody fenced nor rebuilt, run again only if libvirt autostarts
    # them (a guest rebuilt in an earlier round has no autostart any more): the operator
    # starts the rest where their records say.
    helper = survivor
    # (a node fenced while it booted, after the storm ended: its guests are rebuilt first)
    wait_for(lambda: not any(record(helper, fleet.guests[g][0]).get("recover_to")
                             for g in r.guests), timeout=BACK_TIMEOUT)
    started = []
    for g, places in fleet.where().items():
        if g in r.guests and not places:
            owner = record(helper, fleet.guests[g][0]).get("owner")
            if owner and fleet.cluster.node(owner).virsh("start", g, check=False).returncode == 0:
                started.append(g)
    if started:
        r.notes.append(f"{len(started)} guest(s) not autostarted on their node's return, "
                       "started by hand")
    return bool(r.guests)


SCENARIOS = {"power loss": round_power_loss, "coordinator power loss": round_coordinator,
             "partition": round_partition, "BMC dead": round_bmc_dead,
             "self-fence": round_self_fence, "two of three lost": round_storm}


def summary() -> list[str]:
    lines = []
    for store in STORES:
        for scenario in SCENARIOS:
            rs = [x for x in RESULTS if x[0] == store and x[1] == scenario]
            if not rs:
                continue
            times = [x[3] for x in rs if x[3] is not None]
            lines.append(
                f"{store:<4} {scenario:<22} rounds {len(rs):>2}, landed "
                f"{sum(x[2] for x in rs):>2}, held {sum(x[4] for x in rs):>2}"
                + (f", back in median {statistics.median(times):.1f}s max {max(times):.1f}s"
                   if times else ""))
    return lines


def test_recovery_under_faults_never_runs_a_guest_twice(nodes, record_timing,
                                                       record_fault_round):
    fleet = Fleet(nodes)
    fleet.create()
    store = nodes.hw_store
    order = ORDER[store]
    schedule = [(OP, order[k % len(order)]) for k in range(ROUNDS)]

    def one_round(rnd: random.Random, op: str, scenario: str, attempt: int) -> bool:
        r = Round(fleet, store, scenario)
        landed = SCENARIOS[scenario](fleet, rnd, r)
        landed = r.finish(landed)
        if r.back is not None:
            record_timing(f"recovery ({scenario}): fault to the guests running elsewhere",
                          r.back)
        return landed

    try:
        run_rounds(fleet, schedule, one_round, record_timing, record_fault_round)
    finally:
        print("\nrecovery rounds:\n" + "\n".join(summary()), flush=True)
    refenced = [x for x in REFENCED if x.startswith(store + " ")]
    assert not refenced, "a node powered on again with `fence NODE on` was fenced again " \
        "while it booted:\n" + "\n".join(refenced)
