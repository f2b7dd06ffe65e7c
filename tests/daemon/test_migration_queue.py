"""Busy and the queue: a destination whose libvirt never answers (a TCP socket this test
holds open without a word) keeps a migration in "preparing", deterministically."""

import socket
import uuid

import pytest

from hwdaemon import ERR, MIGRATION, TEST_DOMAIN, Daemon, domain_xml, wait_for


@pytest.fixture(scope="module")
def silent():
    """A listening socket nobody answers on; closed at teardown, which fails whatever waits
    on it (the daemon drains its workers when it stops: close this first)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


@pytest.fixture(scope="module")
def qd(silent):
    port = silent.getsockname()[1]
    d = Daemon(config_extra="[migration]\nmax_concurrent = 1\n")
    d.peers = d.default_peers()
    d.peers["node5"] = {"address": "127.0.0.5",
                        "libvirt_uri": f"test+tcp://127.0.0.1:{port}/default"}
    with d:
        try:
            yield d
        finally:
            silent.close()


@pytest.fixture(scope="module")
def held(qd):
    """A migration of the test domain to node5, held in "preparing"."""
    path = qd.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node5", {})
    qd.wait_property("State", "preparing", path, MIGRATION)
    return path


def test_second_migrate_of_the_same_domain_is_busy(qd, held):
    name, msg = qd.error("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {})
    assert name == ERR + "Busy", msg
    mid = qd.prop("Id", held, MIGRATION)
    assert f"migration {mid} ({held}," in msg, msg
    assert "state preparing" in msg


def test_a_queued_migration_aborts_at_once(qd, held):
    # a second running domain: rebuilt here from a fenced node3
    qd.seed("node", "node3", "address=127.0.0.3")
    wait_for("node3 down", lambda: qd.nodes()["node3"][2] == "down")
    qd.call("ForceDown", "sb", "node3", True)
    u = str(uuid.uuid4())
    name = "queued-" + u[:8]
    qd.seed("instance", u, name, "node3")
    qd.seed("definition", u, stdin=domain_xml(name, u))
    qd.call("Rebuild", "ssa{sv}", u, "node3", {})

    path = qd.call("Migrate", "ssa{sv}", name, "node2", {})
    # max_concurrent = 1 and the held one takes the place
    assert qd.prop("State", path, MIGRATION) == "queued"
    assert qd.call("Abort", path=path, iface=MIGRATION) is None
    assert qd.prop("State", path, MIGRATION) == "aborted"
    assert qd.prop("Error", path, MIGRATION) == "Aborted by an operator before it started"
    assert qd.prop("State", held, MIGRATION) == "preparing"
    rows = {r[0]: r for r in qd.call("ListMigrations")}
    assert rows[qd.prop("Id", path, MIGRATION)][4] == "aborted"
