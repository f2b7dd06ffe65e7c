"""Migrate(dom, "") on three nodes: hostwarden picks a peer that passes every check, skipping
a disabled one (issue 6). Free memory ranks the rest; simulated nodes share one kernel, so
here they all report the same free memory and the first passing peer wins."""

from __future__ import annotations

import json
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall
from test_migration import BUSCTL, NODE, domstate, migrate, wait_final


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(3, units=("hostwardend.service",),
                                     configs={i: hwinstall.node_config(i, 3)
                                              for i in (1, 2, 3)}) as cluster:
        yield cluster


def test_a_disabled_peer_is_skipped(nodes):
    node1, node2, node3 = nodes.nodes
    hwcluster.define_and_start(node1, hwcluster.domain_xml("choose"))
    node2.run(BUSCTL + ["call", *NODE, "Disable", "s", "draining"])
    try:
        deadline = time.monotonic() + 15  # node1 sees node3's heartbeat (else: a warning only)
        while time.monotonic() < deadline:
            out = node1.run(BUSCTL + ["--json=short", "call", *NODE, "ListNodes"]).stdout
            if {n[0]: n[2] for n in json.loads(out)["data"][0]}.get("node3") == "up":
                break
            time.sleep(0.2)
        final = wait_final(node1, migrate(node1, "choose", ""))
        assert final["State"] == "completed", final
        assert final["Destination"] == "node3", final
        assert domstate(node3, "choose") == "running"
        assert domstate(node2, "choose") is None
    finally:
        node2.run(BUSCTL + ["call", *NODE, "Enable"])
        for n in nodes.nodes:
            n.virsh("destroy", "choose", check=False)
            n.virsh("undefine", "choose", check=False)


def test_a_peer_with_another_domain_of_that_name_is_skipped(nodes):
    """node2, the first peer, has a domain named like the guest (another instance): hostwarden
    picks node3; when node3 has one too, no peer can take it and the migration says why."""
    node1, node2, node3 = nodes.nodes
    name = "twin"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name))
    uuid = node1.virsh("domuuid", name).stdout.strip()
    others = {}
    try:
        for n in (node2, node3):
            others[n.name] = str(uuidlib.uuid4())
            n.run(["virsh", "define", "/dev/stdin"],
                  input=hwcluster.domain_xml(name, uuid=others[n.name]))
        final = wait_final(node1, migrate(node1, name, ""))
        assert final["State"] == "failed", final
        assert "No peer can take the domain" in final["Error"], final
        for n in ("node2", "node3"):
            assert f"{n} already has a domain named twin with UUID {others[n]}" in \
                final["Error"], final
        assert "destination-name-taken" in final["Error"], final
        assert domstate(node1, name) == "running"

        node3.virsh("undefine", name)
        final = wait_final(node1, migrate(node1, name, ""))
        assert final["State"] == "completed", final
        assert final["Destination"] == "node3", final
        assert node3.virsh("domuuid", name).stdout.strip() == uuid
        assert domstate(node3, name) == "running"
        assert node2.virsh("domuuid", name).stdout.strip() == others["node2"]  # untouched
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
