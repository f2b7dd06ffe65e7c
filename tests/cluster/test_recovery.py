"""Automatic recovery without a controller (issue 22), on three real nodes with ipmi_sim BMCs
and [recovery] enable = yes: a node that loses power is fenced by the coordinator through its
real fence agent, and its HA guests run again on the survivors by themselves, higher priority
first, never twice; a guest with ha="off" stays where it was; when two of the three nodes are
lost at once, the survivor takes itself for the one cut off and fences nobody."""

from __future__ import annotations

import json
import re
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from hwevac import ctl, list_nodes, record, running, wait_for

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
PASSWORD = f"bmc-{uuidlib.uuid4().hex[:12]}"
N = 3
DOWN_AFTER, CONFIRM_AFTER = 3, 2
RECOVERY = f"[recovery]\nenable = yes\nconfirm_after = {CONFIRM_AFTER}s\n"
XMLNS = "https://hostwarden.org/xmlns/domain/1"


def config(i: int) -> str:
    return hwinstall.node_config(i, N, extra=RECOVERY, down_after=f"{DOWN_AFTER}s",
                                 peer_lines=lambda j: hwevac.fencing(j, PASSWORD))


@pytest.fixture(scope="module")
def nodes():
    with hwinstall.installed_cluster(
            N, units=("hostwardend.service",), bmc=True, bmc_password=PASSWORD,
            configs={i: config(i) for i in range(1, N + 1)}) as cluster:
        yield cluster


def ha_guest(name: str, ha: str | None = None, priority: int | None = None) -> str:
    """A diskless guest, with hostwarden's HA setting in its metadata when HA is given."""
    xml = hwcluster.domain_xml(name, memory_mib=48)
    if ha is not None:
        attrs = f' ha="{ha}"' + (f' priority="{priority}"' if priority is not None else "")
        xml = xml.replace("<vcpu>", f"<metadata><hostwarden:guest xmlns:hostwarden='{XMLNS}'"
                                    f"{attrs}/></metadata>\n  <vcpu>", 1)
    return xml


def uuid_of(node, name: str) -> str:
    return node.virsh("domuuid", name).stdout.strip()


def runs_on(nodes, name: str) -> list[str]:
    return [n.name for n in nodes.nodes if n.alive and running(n, name)]


def history(node) -> list[list]:
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "GetHistory", "st", "", "0"]).stdout
    return json.loads(out)["data"][0]


def power_on(node) -> None:
    """Back on through its BMC; a boot that fails there is done by the harness, as the faults
    suite's clean-up does (the test is about what happened before)."""
    node.bmc.ipmitool("chassis", "power", "on", check=False)
    try:
        node.wait_powered_on()
    except hwcluster.HarnessError:
        node.kill()
        node.boot()


def test_a_node_that_loses_power_comes_back_on_the_survivors(nodes, record_timing):
    """node3 runs three guests: two HA ones (the default, restart; one with priority 10) and
    one with ha="off". It loses power. Without anyone calling anything, the coordinator
    fences it (its BMC says off), and the two HA guests run again on node1 or node2, each on
    exactly one node, with their UUIDs; the guest with ha="off" stays node3's and runs
    nowhere. The journal says each step with hostwarden's MESSAGE_ID, the history has the
    fence and the rebuilds. node3 powered on again runs none of them."""
    node1, node2, node3 = nodes.nodes
    guests = {"rec-high": ha_guest("rec-high", "restart", 10),
              "rec-default": ha_guest("rec-default"),
              "rec-off": ha_guest("rec-off", "off")}
    for name, xml in guests.items():
        hwcluster.define_and_start(node3, xml)
    uuids = {name: uuid_of(node3, name) for name in guests}
    for uuid in uuids.values():
        assert wait_for(lambda: record(node1, uuid).get("owner") == "node3"), record(node1, uuid)
        assert wait_for(lambda: hwevac.definition(node1, uuid))
    # every node says what recovery is doing; one of them coordinates
    assert wait_for(lambda: any("coordinator" == prop_recovery(n) for n in nodes.nodes)), \
        [prop_recovery(n) for n in nodes.nodes]
    coordinator = next(n.name for n in nodes.nodes if prop_recovery(n) == "coordinator")
    others = [n for n in nodes.nodes if n.name != coordinator]
    assert all(prop_recovery(n) == f"watching; coordinator: {coordinator}" for n in others)
    assert "Automatic recovery: " in ctl(node1, "overview").stdout

    t0 = time.monotonic()
    node3.bmc.ipmitool("chassis", "power", "off")
    assert wait_for(lambda: not node3.alive)
    deadline = DOWN_AFTER + CONFIRM_AFTER + 120  # fence_ipmilan and a TCG start on 2 cores
    assert wait_for(lambda: all(len(runs_on(nodes, n)) == 1 for n in ("rec-high", "rec-default")),
                    timeout=deadline, interval=0.2), \
        {n: runs_on(nodes, n) for n in guests} | {"journal": node1.journal("-u", "hostwardend")[-3000:]}
    record_timing("power loss to both HA guests running on a survivor", time.monotonic() - t0)

    for name in ("rec-high", "rec-default"):
        where = runs_on(nodes, name)
        assert where and where[0] in ("node1", "node2"), where
        survivor = nodes.node(int(where[0][-1]))
        assert uuid_of(survivor, name) == uuids[name]
        rec = record(node1, uuids[name])
        assert rec["owner"] == where[0] and rec["evacuated_from"] == "node3", rec
        assert "recover_to" not in rec, rec  # a rebuild writes a fresh record
    assert runs_on(nodes, "rec-off") == []
    assert record(node1, uuids["rec-off"])["owner"] == "node3"
    assert list_nodes(node1)["node3"][3] == "off", list_nodes(node1)["node3"]

    # the journal of the nodes says it: coordinator's fence and assignment, survivors' rebuild
    journal = "".join(n.journal("-u", "hostwardend", "-o", "verbose", "MESSAGE_ID="
                                "5e0d3c1b9a7f4e26b8c4d2f6a1e93b70") for n in (node1, node2))
    for step in ("fencing", "fenced", "assigned", "rebuilt"):
        assert f"HOSTWARDEN_RECOVERY={step}" in journal, (step, journal[-4000:])
    assert PASSWORD not in journal
    hist = history(node1)
    assert any(h[1] == "fence" for h in hist), hist
    assert sum(1 for h in hist if h[1] == "rebuild" and h[2] == "automatic"
               and h[8] == "rebuilt") >= 2, hist

    # node3 comes back: nothing it had runs there twice
    ctl(node1, "fence", "node3", "on")
    node3.wait_powered_on()
    assert wait_for(lambda: all(node3.virsh("domuuid", n, check=False).returncode != 0
                                for n in ("rec-high", "rec-default")), timeout=60), \
        node3.virsh("list", "--all").stdout
    for name in ("rec-high", "rec-default"):
        assert len(runs_on(nodes, name)) == 1, runs_on(nodes, name)
    for name in guests:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def prop_recovery(node) -> str:
    out = node.run(BUSCTL + ["--json=short", "get-property", "org.hostwarden.Warden1",
                             "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node",
                             "Recovery"], check=False).stdout
    return json.loads(out)["data"] if out else ""


def test_two_of_three_lost_at_once_fences_nobody(nodes):
    """node2 and node3 lose power together: node1 sees two of three nodes down, more than
    max_lost (half) allows, takes itself for the one cut off, says so and fences nobody:
    neither BMC is asked to power anything off, no node record says off."""
    node1, node2, node3 = nodes.nodes
    for n in (node2, node3):
        if not n.alive:
            power_on(n)
    assert wait_for(lambda: all(list_nodes(node1)[f"node{i}"][2] == "up" for i in (2, 3)),
                    timeout=60), list_nodes(node1)
    # a node record still saying off from an earlier test is cleared as an operator would
    for i in (2, 3):
        if list_nodes(node1)[f"node{i}"][3] == "off":
            ctl(node1, "fence", f"node{i}", "on")
    cursor = node1.run(["journalctl", "--show-cursor", "-n", "0", "-q"]).stdout
    cursor = re.search(r"-- cursor: (.*)", cursor)[1]
    for n in (node2, node3):
        n.bmc.ipmitool("chassis", "power", "off")
    assert wait_for(lambda: not node2.alive and not node3.alive)
    storm = "fences nobody"
    assert wait_for(lambda: storm in node1.run(
        ["journalctl", "-u", "hostwardend", "--after-cursor", cursor]).stdout,
        timeout=DOWN_AFTER + 30), node1.journal("-u", "hostwardend")[-3000:]
    # An observation window: past the time it would have fenced (down_after + confirm_after,
    # counted from when it saw them down, which was before the message), a few heartbeats
    # more; the pause is the window itself, not a stand-in for a condition.
    time.sleep(CONFIRM_AFTER + 3)
    after = node1.run(["journalctl", "-u", "hostwardend", "--after-cursor", cursor]).stdout
    assert "fencing it" not in after and "Running fence agent" not in after, after
    for i in (2, 3):
        assert list_nodes(node1)[f"node{i}"][3] != "off", list_nodes(node1)
    assert "2 of 3 nodes look down, fencing nobody" in prop_recovery(node1), prop_recovery(node1)
    shown = ctl(node1, "overview").stdout
    assert "Automatic recovery: coordinator: 2 of 3 nodes look down" in shown, shown
    assert "recovery fences it" in shown and "hostwardenctl fence" not in shown, shown
    for n in (node2, node3):
        power_on(n)


def test_a_fence_that_fails_is_tried_again_and_nothing_is_rebuilt_before(nodes, record_timing):
    """node2 dies with its BMC (ipmi_sim stopped, then the node killed): the coordinator's
    fence_ipmilan fails, is reported and tried again, and node2's HA guest is rebuilt
    nowhere: a failed fence is never taken for off. The BMC answers again: the next try
    fences node2, and the guest runs on a survivor."""
    node1, node2, node3 = nodes.nodes
    for n in nodes.nodes:
        if not n.alive:
            power_on(n)
    assert wait_for(lambda: all(state == "up" for _, _, state, *_ in list_nodes(node1).values()),
                    timeout=60), list_nodes(node1)
    for i in (2, 3):
        if list_nodes(node1)[f"node{i}"][3] == "off":
            ctl(node1, "fence", f"node{i}", "on")
    hwcluster.define_and_start(node2, ha_guest("rec-bmc", "restart"))
    uuid = uuid_of(node2, "rec-bmc")
    assert wait_for(lambda: hwevac.definition(node1, uuid))
    cursor = re.search(r"-- cursor: (.*)", node1.run(
        ["journalctl", "--show-cursor", "-n", "0", "-q"]).stdout)[1]
    journals = lambda: "".join(n.run(["journalctl", "-u", "hostwardend", "--after-cursor",  # noqa: E731
                                      cursor], check=False).stdout for n in (node1, node3))

    node2.bmc.stop()
    node2.kill()
    # fence_ipmilan gives up on a BMC that does not answer after 20 s
    assert wait_for(lambda: journals().count("fencing node node2 failed") >= 2,
                    timeout=DOWN_AFTER + CONFIRM_AFTER + 120), journals()[-3000:]
    assert "trying again" in journals()
    assert runs_on(nodes, "rec-bmc") == []
    assert record(node1, uuid)["owner"] == "node2" and "recover_to" not in record(node1, uuid)
    assert list_nodes(node1)["node2"][3] != "off"
    assert PASSWORD not in journals()

    t0 = time.monotonic()
    node2.bmc.start()
    assert wait_for(lambda: len(runs_on(nodes, "rec-bmc")) == 1, timeout=120), journals()[-3000:]
    record_timing("BMC back to the guest running on a survivor", time.monotonic() - t0)
    assert record(node1, uuid)["owner"] in ("node1", "node3")
    assert list_nodes(node1)["node2"][3] == "off"
    for n in nodes.nodes:
        if n.alive:
            n.virsh("destroy", "rec-bmc", check=False)
            n.virsh("undefine", "rec-bmc", check=False)
    power_on(node2)
