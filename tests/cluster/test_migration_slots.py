"""The cluster's migration slots (issue 23, item 2): [migration] max_incoming of a destination
and [cluster] max_migrations, counted as leases in the store, so that nodes that never talk
to each other share them. A migration that finds its slot taken waits in `preparing`,
copies nothing, says so in the journal, and starts when the slot is given back; an Abort
while it waits ends it without a copy.

The migrations that hold the slot are of a guest that never converges (tests/cluster/
dirtyguest.py, 10 MiB/s): they run until the test aborts or force-completes them, so the
wait is held for as long as the test needs, with no timing."""

from __future__ import annotations

import uuid as uuidlib

import pytest

import dirtyguest
import hwcluster
import hwinstall
from hwevac import ctl, wait_for
from test_migration import (BUSCTL, NODE, domstate, mig_call, migrate, props,  # noqa: F401
                            wait_final, wait_running)

KERNEL = "/var/lib/nova/instances/dirty.kernel"  # shared: the destination needs it too
SLOW = ("bandwidth", "t", "10")
CONFIGS = {
    # three migrations leave node1 at once: the limits below are what holds them
    1: "[migration]\nmax_outgoing = 3\n",
    2: "[migration]\nmax_outgoing = 2\nmax_incoming = 1\n",
}
DROPIN = "/etc/hostwarden/hostwarden.conf.d/50-slots.conf"


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, extra=CONFIGS[i]) for i in (1, 2)}) as c:
        c.node(1).write_file(KERNEL, dirtyguest.kernel())
        yield c


@pytest.fixture
def guest(nodes):
    made = []

    def start(name, node=1, dirty=False):
        xml = hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()),
                                   kernel=KERNEL if dirty else None)
        hwcluster.define_and_start(nodes.node(node), xml)
        made.append(name)
    yield start
    for name in made:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def waits_for_a_slot(node, path) -> bool:
    mig_id = path.rsplit("/", 1)[1]
    return f"Migration {mig_id} waits for a slot" in node.journal("-u", "hostwardend")


def assert_waiting(node, path):
    p = props(node, path)
    assert p["State"] == "preparing" and p["MemoryProcessed"] == 0, p


def test_a_destination_takes_max_incoming_at_once(nodes, guest):
    """node2 takes one incoming migration at a time: the second waits, copies nothing, and
    runs once the first has ended; an Abort of a waiting one ends it at once."""
    node1, node2 = nodes.nodes
    guest("slot-hog", dirty=True)
    guest("slot-next")
    guest("slot-gone")
    hog = migrate(node1, "slot-hog", "node2", *SLOW)
    wait_running(node1, hog)
    nxt = migrate(node1, "slot-next", "node2")
    assert wait_for(lambda: waits_for_a_slot(node1, nxt), 30), \
        node1.journal("-u", "hostwardend", "-n", "30")
    assert_waiting(node1, nxt)
    assert props(node1, hog)["State"] == "running"

    # a third, aborted while it waits: it ends without a copy, the guest where it was
    gone = migrate(node1, "slot-gone", "node2")
    assert wait_for(lambda: waits_for_a_slot(node1, gone), 30)
    assert mig_call(node1, gone, "Abort").returncode == 0
    final = wait_final(node1, gone, timeout=30)
    assert final["State"] == "aborted" and final["MemoryProcessed"] == 0, final
    assert domstate(node1, "slot-gone") == "running"
    assert_waiting(node1, nxt)

    assert mig_call(node1, hog, "Abort").returncode == 0
    assert wait_final(node1, hog, timeout=30)["State"] == "aborted"
    final = wait_final(node1, nxt, timeout=90)
    assert final["State"] == "completed", final
    assert domstate(node2, "slot-next") == "running"
    assert domstate(node1, "slot-hog") == "running"
    assert f"Migration {nxt.rsplit('/', 1)[1]} to node2 has its slot now" in \
        node1.journal("-u", "hostwardend")


def test_the_cluster_cap_holds_migrations_between_other_nodes(nodes, guest):
    """[cluster] max_migrations = 1 (node2 without an incoming limit now): a migration from
    node2 to node1 waits while one from node1 to node2 runs, though neither node limits
    the other's direction."""
    node1, node2 = nodes.nodes
    for n, extra in ((node1, ""), (node2, "[migration]\nmax_incoming = 0\n")):
        n.write_file(DROPIN, "[cluster]\nmax_migrations = 1\n" + extra)
        ctl(n, "reload")
    try:
        guest("cap-hog", dirty=True)
        guest("cap-back", node=2)
        hog = migrate(node1, "cap-hog", "node2", *SLOW)
        wait_running(node1, hog)
        back = migrate(node2, "cap-back", "node1")
        assert wait_for(lambda: waits_for_a_slot(node2, back), 30), \
            node2.journal("-u", "hostwardend", "-n", "30")
        assert_waiting(node2, back)
        assert mig_call(node1, hog, "ForceComplete").returncode == 0
        assert wait_final(node1, hog, timeout=90)["State"] == "completed"
        final = wait_final(node2, back, timeout=90)
        assert final["State"] == "completed", final
        assert domstate(node1, "cap-back") == "running"
        assert domstate(node2, "cap-hog") == "running"
    finally:
        for n in nodes.nodes:
            n.run(["rm", "-f", DROPIN])
            ctl(n, "reload")
