"""Rebuild, EvacuateFrom and EvacuateLive: argument checks, the fencing gate, record states,
and a rebuild that defines and starts the instance on test:///default."""

import uuid

import pytest

from hwdaemon import ERR, INVALID_ARGS, MIGRATION, TEST_DOMAIN, domain_xml, wait_for


@pytest.fixture(scope="module")
def fenced(daemon):
    """node3 down and forced down (fenced by the admin's word), node2 down and not fenced."""
    daemon.seed("node", "node3", "address=127.0.0.3")
    daemon.seed("node", "node2", "address=127.0.0.2")
    wait_for("node2, node3 down", lambda: (lambda n: n["node2"][2] == "down" and
                                           n["node3"][2] == "down")(daemon.nodes()))
    daemon.call("ForceDown", "sb", "node3", True)
    return daemon


def seed_instance(daemon, owner="node3", *extra, define=True):
    u = str(uuid.uuid4())
    name = "guest-" + u[:8]
    daemon.seed("instance", u, name, owner, *extra)
    if define:
        daemon.seed("definition", u, stdin=domain_xml(name, u))
    return u, name


@pytest.mark.parametrize("bad", ["not-a-uuid", "6695eb01f6a4830479aa97f2502e193f",
                                 "6695eb01-f6a4-8304-79aa-97f2502e193g"])
def test_rebuild_refuses_a_bad_uuid(daemon, bad):
    name, msg = daemon.error("Rebuild", "ssa{sv}", bad, "node3", {})
    assert name == INVALID_ARGS, msg


def test_rebuild_argument_errors(daemon):
    u = str(uuid.uuid4())
    name, msg = daemon.error("Rebuild", "ssa{sv}", u, "bad name!", {})
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("Rebuild", "ssa{sv}", u, "node1", {})
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("Rebuild", "ssa{sv}", u, "node3", {"block": ("b", True)})
    assert name == INVALID_ARGS, msg


def test_rebuild_needs_a_fenced_source(fenced):
    u, _ = seed_instance(fenced, "node2")
    name, msg = fenced.error("Rebuild", "ssa{sv}", u, "node2", {})
    assert name == ERR + "NotFenced"
    assert "node2" in msg


def test_rebuild_of_an_unknown_instance(fenced):
    name, msg = fenced.error("Rebuild", "ssa{sv}", str(uuid.uuid4()), "node3", {})
    assert name == ERR + "NoSuchDomain", msg


def test_rebuild_of_an_instance_owned_elsewhere(fenced):
    u, _ = seed_instance(fenced, "node4")
    name, msg = fenced.error("Rebuild", "ssa{sv}", u, "node3", {})
    assert name == ERR + "AlreadyEvacuated", msg
    assert "node4" in msg


def test_rebuild_of_a_deleted_instance(fenced):
    u, _ = seed_instance(fenced, "node3", "deleted")
    name, msg = fenced.error("Rebuild", "ssa{sv}", u, "node3", {})
    assert name == ERR + "NoSuchDomain", msg


def test_rebuild_starts_the_instance_here(fenced):
    u, name = seed_instance(fenced, "node3")
    assert fenced.call("Rebuild", "ssa{sv}", u, "node3", {}) is None
    assert [u, name, "running", "node1"] in fenced.call("ListDomains")
    rec = wait_for("the record moved", lambda: (
        lambda r: r if r and r[2] == "node1" else None)(fenced.instances().get(u)))
    assert rec[1:4] == [name, "node1", "node3"]


def test_evacuate_from_argument_errors(fenced):
    name, msg = fenced.error("EvacuateFrom", "sa{sv}", "node1", {})
    assert name == INVALID_ARGS, msg
    name, msg = fenced.error("EvacuateFrom", "sa{sv}", "bad name!", {})
    assert name == INVALID_ARGS, msg
    name, msg = fenced.error("EvacuateFrom", "sa{sv}", "node2", {})
    assert name == ERR + "NotFenced", msg


def test_evacuate_from_rebuilds_what_the_source_owned(fenced):
    a, name_a = seed_instance(fenced, "node3")
    b, name_b = seed_instance(fenced, "node3", define=False)  # no definition: refused
    rows = fenced.call("EvacuateFrom", "sa{sv}", "node3", {})
    by_uuid = {r[0]: r for r in rows}
    assert all(len(r) == 3 for r in rows)
    assert by_uuid[a][1] == "rebuilt", by_uuid[a]
    assert by_uuid[b][1] != "rebuilt" and by_uuid[b][2], by_uuid[b]
    assert [a, name_a, "running", "node1"] in fenced.call("ListDomains")


def test_evacuate_live_argument_errors(daemon):
    name, msg = daemon.error("EvacuateLive", "sa{sv}", "node1", {})
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("EvacuateLive", "sa{sv}", "node9", {})
    assert name == ERR + "NoSuchNode", msg
    name, msg = daemon.error("EvacuateLive", "sa{sv}", "node2", {"nope": ("b", True)})
    assert name == INVALID_ARGS, msg
    assert "Unknown option 'nope'" in msg
    assert daemon.prop("State") == "enabled"


def test_evacuate_live_disables_and_queues_the_running_domains(daemon):
    with daemon.signals() as sig:
        try:
            paths = daemon.call("EvacuateLive", "sa{sv}", "node2", {})
            assert daemon.prop("State") == "disabled"
            assert "evacuat" in daemon.prop("DisabledReason")
            assert paths, "no migration queued"
            names = {daemon.prop("DomainName", p, MIGRATION) for p in paths}
            assert TEST_DOMAIN in names
            for p in paths:
                sig.wait("MigrationNew", lambda a, p=p: a[1] == p and p.endswith("/" + a[0]))
                wait_for("the migration to end", lambda: daemon.prop(
                    "State", p, MIGRATION) in ("failed", "aborted", "completed"), timeout=30)
        finally:
            daemon.call("Enable")
