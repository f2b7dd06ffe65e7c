"""The history lasts (issue 21, item 2; docs/history-and-archiving.md): a live migration
leaves its record in the cluster store, which both hostwardends find again after they
restarted and after the destination node rebooted, and `hostwardenctl history --json` shows
it on either node, with store = dir and store = etcd."""

from __future__ import annotations

import json
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from hwevac import ctl, wait_for

N = 2
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
BUS = "org.hostwarden.Warden1"
MIG_IFACE = "org.hostwarden.Warden1.Migration"


@pytest.fixture(scope="module", params=["dir", "etcd"])
def nodes(request):
    with hwevac.cluster_on_store(request.param, N) as cluster:
        yield cluster


def history(node, *args):
    """hostwardenctl history --json on NODE, once its hostwardend answers (after a restart it
    answers StoreUnavailable until it has read the store again)."""
    def attempt():
        proc = ctl(node, "history", "--json", *args, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    rows = wait_for(attempt, timeout=90)
    assert rows is not None, ctl(node, "history", "--json", *args, check=False)
    return rows


def test_a_live_migration_is_in_the_history_after_restarts(nodes):
    node1, node2 = nodes.node(1), nodes.node(2)
    name, uuid = "hist-guest", str(uuidlib.uuid4())
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=uuid))
    try:
        out = node1.run(BUSCTL + ["--json=short", "call", *NODE, "Migrate", "ssa{sv}", name,
                                  "node2", "0"]).stdout
        path = json.loads(out)["data"][0]
        mid = path.rsplit("/", 1)[1]

        def state():
            out = node1.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                                      "State"]).stdout
            return json.loads(out)["data"]
        assert wait_for(lambda: state() in ("completed", "failed", "aborted"), timeout=120)
        assert state() == "completed"

        for node in (node1, node2):
            node.run("systemctl restart hostwardend.service")
        before = [r for r in history(node2, name) if mid in r["id"]]
        assert len(before) == 1, history(node2)
        r = before[0]
        assert (r["kind"], r["mode"], r["domain"], r["domain_name"], r["node"], r["source"],
                r["destination"], r["result"], r["error"]) == \
            ("migration", "live", uuid, name, "node1", "node1", "node2", "completed", "")
        assert r["caller_uid"] == 0 and r["caller"].startswith(":")  # busctl, as root
        assert r["bytes"] > 0
        assert 0 < r["duration_usec"] < 120 * 10**6
        assert r["started"] < r["finished"]
        # the same record from the other node, by UUID
        assert history(node1, uuid) == before

        # the destination loses power and boots again: the record is still there
        node2.kill()
        node2.boot()
        hwinstall.wait_synced([node2], timeout=120)
        assert [x for x in history(node2, name) if mid in x["id"]] == before
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
