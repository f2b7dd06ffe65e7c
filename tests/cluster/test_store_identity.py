"""Booting without the store never starts an evacuated guest (issue 18, item 1).

Node 1 runs two autostart guests and loses power; node 2 rebuilds one of them (node 1 is
forced down). Node 1 then boots without its store: the shared storage not mounted yet
(store = dir) or every etcd member out of its reach (store = etcd). hostwardend does not
make a store of the bare directory, keeps trying, and says so (status, CheckNode); the hook
lets nothing start, autostart included. Once the store is back: the stale copy of the
evacuated guest is removed, and the guest that was never evacuated starts (its autostart
was only deferred).
"""

from __future__ import annotations

import json
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from hwevac import ctl, record, running, wait_for

N = 3
SHARED = hwcluster.INSTANCES_PATH
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
# an nftables table of the test's own in node 1's network namespace (which outlives its
# boots): etcd's client port unreachable from node 1, its own member included
CUT_ETCD = """table inet hwtest_cut {
    chain out {
        type filter hook output priority 0;
        tcp dport 2379 drop
    }
}
"""


@pytest.fixture(scope="module", params=["dir", "etcd"])
def nodes(request):
    with hwevac.cluster_on_store(request.param, N) as cluster:
        yield cluster


def status(node) -> dict:
    return json.loads(ctl(node, "status", "--json").stdout)


def check_findings(node) -> dict:
    out = ctl(node, "check", "--json", check=False).stdout
    return {f["check"]: (f["severity"], f["message"]) for f in json.loads(out)}


def state(node, name) -> str:
    proc = node.virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "undefined"


def test_a_node_booting_without_its_store_starts_nothing_until_it_reads_it(nodes):
    node1, node2, node3 = nodes.node(1), nodes.node(2), nodes.node(3)
    etcd = nodes.hw_store == "etcd"
    guests = {}
    for kind in ("evacuated", "stays"):
        uuid = str(uuidlib.uuid4())
        name = f"boot-{kind}"
        node1.run(["virsh", "define", "/dev/stdin"], input=hwcluster.domain_xml(name, uuid))
        node1.virsh("autostart", name)
        node1.virsh("start", name)
        guests[kind] = (name, uuid)
    for name, uuid in guests.values():
        assert wait_for(lambda: record(node2, uuid).get("owner") == "node1"), record(node2, uuid)
        assert wait_for(lambda: hwevac.definition(node2, uuid))

    # node1 loses power; node2 sees it down, an operator forces it down and rebuilds one guest
    node1.kill()
    assert wait_for(lambda: hwevac.list_nodes(node2)["node1"][2] == "down", timeout=20)
    ctl(node2, "force-down", "node1")
    ev_name, ev_uuid = guests["evacuated"]
    ctl(node2, "rebuild", ev_uuid, "--from", "node1")
    assert wait_for(lambda: running(node2, ev_name))
    assert record(node2, ev_uuid)["owner"] == "node2"

    # node1 boots without its store
    if etcd:
        hwcluster._run(["ip", "netns", "exec", node1.netns, "nft", "-f", "-"], input=CUT_ETCD)
        node1.boot()
    else:
        node1.boot(storage_late=True)
    try:
        assert wait_for(lambda: status(node1)["StoreState"] in ("no-identity", "unreachable"),
                        timeout=30), status(node1)
        st = status(node1)
        if etcd:
            assert st["StoreState"] == "unreachable", st
        else:
            assert st["StoreState"] == "no-identity", st
            assert "shared storage may not be mounted" in st["StoreDetail"], st
            # no store made of the bare local directory
            assert node1.run(["ls", "-A", SHARED]).stdout.strip() == ""
        severity, message = check_findings(node1)["store"]
        assert severity == "error" and "Nothing starts on this node" in message, message
        assert not hwinstall.synced(node1)
        # autostart was refused for both, and hostwardend answers no method that needs the store
        journal = node1.journal("-u", "libvirtd")
        assert journal.count("has not read the cluster store since this node booted") >= 2, \
            journal[-3000:]
        for name, _ in guests.values():
            assert state(node1, name) == "shut off", state(node1, name)
        proc = ctl(node1, "nodes", check=False)
        assert proc.returncode != 0 and "not attached to its cluster store" in proc.stderr, \
            proc.stderr
        proc = ctl(node1, "overview", check=False)
        out = proc.stdout + proc.stderr  # a frame that says why there are no nodes: stderr
        assert proc.returncode == 1 and "has not read its cluster store" in out and (
            "no cluster was made" in out or "Cannot read the cluster store" in out), out
        # a start by hand is refused too, and says how to override
        proc = node1.virsh("start", guests["stays"][0], check=False)
        assert proc.returncode != 0 and "allow-unsynced-starts" in proc.stderr, proc.stderr
        assert running(node2, ev_name) and not running(node3, ev_name)
        # the operator brings node1 back into the cluster (it reaches the hook through the
        # store, once node1 reads it)
        ctl(node2, "force-up", "node1")
    finally:
        if etcd:
            hwcluster._run(["ip", "netns", "exec", node1.netns, "nft", "delete", "table", "inet",
                            "hwtest_cut"])
        else:
            node1.mount_storage()

    # the store is back: node1 reads it, removes the stale copy, starts what is its own
    hwinstall.wait_synced([node1], timeout=30)
    assert status(node1)["StoreState"] == "attached"
    assert wait_for(lambda: state(node1, ev_name) == "undefined", timeout=30), \
        node1.virsh("list", "--all").stdout
    st_name, st_uuid = guests["stays"]
    assert wait_for(lambda: running(node1, st_name), timeout=30), \
        node1.journal("-u", "hostwardend")[-3000:]
    assert running(node2, ev_name) and not running(node3, ev_name)
    assert record(node2, ev_uuid)["owner"] == "node2"
    assert record(node2, st_uuid)["owner"] == "node1"
    assert "autostart waited for the cluster store" in node1.journal("-u", "hostwardend")
    for name, _ in guests.values():
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_init_cluster_is_once_and_a_foreign_store_is_refused(nodes):
    """A second init changes nothing; a node whose store is replaced by another cluster's
    refuses it and starts nothing."""
    node1, node2 = nodes.node(1), nodes.node(2)
    first = json.loads(ctl(node1, "init-cluster", "--json", check=False).stdout)
    proc = ctl(node2, "init-cluster", "--name", "other", check=False)
    assert proc.returncode == 1 and "Nothing written" in proc.stdout and first["id"] in proc.stdout
    joined = node2.read_file("/var/lib/hostwarden/cluster-id")
    assert f"id={first['id']}" in joined

    # node2 believes it joined another cluster: it refuses this store after a restart
    node2.run(["sed", "-i", "s/^id=.*/id=00000000-0000-4000-8000-000000000000/",
               "/var/lib/hostwarden/cluster-id"])
    node2.systemctl("restart", "hostwardend.service")
    assert wait_for(lambda: status(node2)["StoreState"] == "foreign", timeout=20), status(node2)
    assert not hwinstall.synced(node2)  # its deny list may be another cluster's now
    assert "not cluster 00000000-0000-4000-8000-000000000000" in status(node2)["StoreDetail"]
    severity, _ = check_findings(node2)["store"]
    assert severity == "error"
    node2.write_file("/var/lib/hostwarden/cluster-id", joined)
    ctl(node2, "reload")
    assert wait_for(lambda: status(node2)["StoreState"] == "attached", timeout=20), status(node2)
