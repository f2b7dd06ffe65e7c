"""An operator's mistake must not run a guest twice (issue 18), on two real nodes: ForceDown
of a node whose heartbeat is fresh is refused unless insisted; a node cannot force itself
down; EvacuateFrom asks the source's libvirt and refuses an instance that runs there, whatever
the forced-down flag says; a forced-down node's status says so, and what clears it."""

from __future__ import annotations

import uuid as uuidlib

import pytest

import hwcluster
import hwinstall
from hwevac import ctl, evacuate_from, list_nodes, record, running, wait_for

BUS = "org.hostwarden.Warden1"


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i) for i in (1, 2)}) as cluster:
        yield cluster


def gdbus(node, method, *args):
    """A Node method through gdbus, which prints the D-Bus error name on failure."""
    return node.run(["gdbus", "call", "--system", "--dest", BUS, "--object-path",
                     "/org/hostwarden/Warden1", "--method",
                     f"org.hostwarden.Warden1.Node.{method}", *args], check=False, timeout=180)


def test_force_down_of_a_live_node_running_a_guest_never_runs_it_twice(nodes):
    node1, node2 = nodes.nodes
    name, uuid = "fd-twice", str(uuidlib.uuid4())
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=uuid))
    try:
        assert wait_for(lambda: record(node2, uuid).get("owner") == "node1"), record(node2, uuid)
        assert wait_for(lambda: list_nodes(node2)["node1"][2] == "up")

        # Refused: node2 sees node1's heartbeat change, with the reason and what to do.
        refused = gdbus(node2, "ForceDown", "node1", "true")
        assert refused.returncode != 0
        assert "org.hostwarden.Warden1.Error.NodeUp" in refused.stderr, refused.stderr
        assert "Node node1 is up: its heartbeat is fresh (last seen " in refused.stderr, \
            refused.stderr
        assert "'hostwardenctl fence node1 off'" in refused.stderr, refused.stderr
        assert "'hostwardenctl force-down node1 --insist'" in refused.stderr, refused.stderr
        cli = ctl(node2, "force-down", "node1", check=False)
        assert cli.returncode == 1 and "heartbeat is fresh" in cli.stderr, cli.stderr
        same = gdbus(node2, "ForceDownWithOptions", "node1", "true", "{'insist': <false>}")
        assert "Error.NodeUp" in same.stderr, same.stderr
        assert list_nodes(node2)["node1"][2] == "up"

        # Options are checked: what was expected is said.
        bad = gdbus(node2, "ForceDownWithOptions", "node1", "true", "{'insist': <'yes'>}")
        assert "InvalidArgs" in bad.stderr and "must be a boolean (b), not 's'" in bad.stderr, \
            bad.stderr
        bad = gdbus(node2, "ForceDownWithOptions", "node1", "true", "{'bogus': <true>}")
        assert "InvalidArgs" in bad.stderr and "Unknown option 'bogus'; expected insist (b)" \
            in bad.stderr, bad.stderr
        assert list_nodes(node2)["node1"][2] == "up"

        # Insisted: accepted, and the journal says who insisted.
        insisted = gdbus(node2, "ForceDownWithOptions", "node1", "true", "{'insist': <true>}")
        assert insisted.returncode == 0, insisted.stderr
        assert wait_for(lambda: list_nodes(node2)["node1"][2] == "forced-down")
        assert wait_for(lambda: "Node node1 declared down (ForceDown) by uid 0 on node2, who "
                        "insisted although its heartbeat was fresh" in
                        node2.journal("-u", "hostwardend"))

        # The evacuation asks node1's libvirt, which runs the guest: refused, nothing moved.
        results = evacuate_from(node2, "node1")
        assert isinstance(results, dict) and uuid in results, results
        outcome, message = results[uuid]
        assert outcome == "refused", results
        assert f"Instance {uuid} ({name}) runs on node1, its source" in message, message
        assert running(node1, name)
        assert node2.virsh("domuuid", name, check=False).returncode != 0  # not defined there
        assert node2.virsh("list", "--all", "--name").stdout.split() == []
        rec = record(node2, uuid)
        assert rec["owner"] == "node1" and "evacuated_from" not in rec, rec

        # A node cannot force itself down (as it cannot fence itself), nor take it back alone.
        own = gdbus(node2, "ForceDownWithOptions", "node2", "true", "{'insist': <true>}")
        assert "InvalidArgs" in own.stderr and "Node node2 cannot force itself down: call " \
            "ForceDown on a peer" in own.stderr, own.stderr
        assert list_nodes(node2)["node2"][2] != "forced-down"
        up = ctl(node1, "force-up", "node1", check=False)
        assert up.returncode == 1 and "Run 'hostwardenctl force-up node1' on a peer" in \
            up.stderr, up.stderr

        # node1 after its hostwardend restarts: status says forced down, by whom, and what
        # clears it; its hook refuses a start with the same advice.
        node1.systemctl("restart", "hostwardend")
        status = wait_for(lambda: (lambda out: out if "State: forced down" in out else None)(
            ctl(node1, "status", check=False).stdout))
        assert status and "State: forced down by uid 0 on node2 since " in status, status
        assert "only 'hostwardenctl force-up node1' run on a peer clears it." in status, status
        assert "State: enabled" not in status, status
        node1.run(["virsh", "define", "/dev/stdin"], input=hwcluster.domain_xml("fd-other"))
        start = node1.virsh("start", "fd-other", check=False)
        assert start.returncode != 0
        assert "'hostwardenctl force-up node1' run on a peer clears this." in start.stderr, \
            start.stderr

        # Unforcing is never refused for freshness.
        assert ctl(node2, "force-up", "node1").returncode == 0
        assert wait_for(lambda: list_nodes(node2)["node1"][2] == "up")
        assert wait_for(lambda: "State: enabled" in ctl(node1, "status").stdout)
        assert running(node1, name) and not running(node2, name)
    finally:
        gdbus(node2, "ForceDown", "node1", "false")
        for n in nodes.nodes:
            for guest in (name, "fd-other"):
                n.virsh("destroy", guest, check=False)
                n.virsh("undefine", guest, check=False)
