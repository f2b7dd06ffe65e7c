"""Maintenance.Enter, Cancel and Exit (org.hostwarden.Warden1(5), docs/maintenance.md) on the
test driver: options checked (InvalidArgs saying what was expected), Cancel and Exit refused
when there is no maintenance, a drain that shuts down the guests whose strategy says so and
lists in Blocked those that cannot leave (State blocked, the node disabled with a reason),
Enter refused while it lasts, Exit enabling the node again, and hostwardenctl maintenance
status's exit status. The cluster suite (tests/cluster/test_maintenance.py) drains real
guests by live migration."""

import json
import time

import pytest

from hwdaemon import ERR, MIGRATION, TEST_DOMAIN, wait_for
from test_maintenance import IFACE, PATH, ctl, local_guests, migration_held_in_preparing

INVALID = "org.freedesktop.DBus.Error.InvalidArgs"


def call(d, method, sig="", *args, **kw):
    return d.call(method, sig, *args, path=PATH, iface=IFACE, **kw)


def error(d, method, sig="", *args, **kw):
    return d.error(method, sig, *args, path=PATH, iface=IFACE, **kw)


def state(d):
    return d.prop("State", path=PATH, iface=IFACE)


def blocked(d):
    return dict(d.prop("Blocked", path=PATH, iface=IFACE))


@pytest.mark.parametrize("opts,expected", [
    ({"when": ("t", 60)}, "Unknown option 'when'; expected deadline (t, seconds from now)"),
    ({"deadline": ("s", "1h")}, "Option 'deadline' must be an unsigned integer (t or u)"),
    ({"deadline": ("t", 0)}, "Option 'deadline' must be at least 1"),
], ids=["unknown", "string", "zero"])
def test_enter_options_are_checked(daemon, opts, expected):
    name, msg = error(daemon, "Enter", "a{sv}", opts)
    assert name == INVALID, msg
    assert expected in msg, msg
    assert state(daemon) == "off"
    assert daemon.prop("State") == "enabled"


@pytest.mark.parametrize("method,arg", [("Cancel", False), ("Cancel", True), ("Exit", False),
                                        ("Exit", True)])
def test_cancel_and_exit_without_maintenance(daemon, method, arg):
    name, msg = error(daemon, method, "b", arg)
    assert name == ERR + "NotRunning", msg
    assert "This node is not in maintenance" in msg and "maintenance enter" in msg, msg


def test_enter_needs_the_store(no_store):
    name, msg = error(no_store, "Enter", "a{sv}", {})
    assert name == ERR + "StoreUnavailable", msg


@pytest.fixture
def guests():
    """test_maintenance's guests, fresh for each test: a drain changes them."""
    with local_guests() as d:
        yield d


def heartbeat(d):
    """node1's heartbeat counter, from ListNodes' detail ("...heartbeat N, generation M")."""
    detail = d.nodes()["node1"][4]
    return int(detail.split("heartbeat ")[1].split(",")[0])


def running(d):
    return {r[1] for r in d.call("ListDomains") if r[2] == "running"}


def test_drain_shuts_down_lists_the_blocked_and_exit_enables(guests):
    """The plan's decisions acted on: batch and gpu-spare (strategy shutdown, or
    migrate-or-shutdown with no node to take them) are shut down; gpu and odd cannot leave
    and are listed with the plan's reasons; test and web go to node2 by live migration,
    which the test driver cannot do: their failed migrations are not tried again, they are
    listed with the failure. The state ends blocked; nothing is ever destroyed but by a
    strategy's shutdown."""
    d = guests
    assert state(d) == "off"
    assert call(d, "Enter", "a{sv}", {}) is None
    assert d.prop("State") == "disabled"
    assert "maintenance" in dict(
        (n[0], n[4]) for n in d.call("ListNodes"))["node1"], d.call("ListNodes")
    wait_for("blocked", lambda: state(d) == "blocked", timeout=60)
    b = blocked(d)
    assert set(b) == {"gpu", "odd", "test", "web"}, b
    assert "PCI device 0000:03:00.0 is passed through" in b["gpu"], b
    assert "maintenance=\"evacuate\"" in b["odd"], b
    for name in ("test", "web"):
        assert b[name].startswith("its migration ") and " failed: " in b[name], b
    assert running(d) == {"gpu", "odd", "test", "web"}  # batch and gpu-spare shut down
    # the failed migrations stay failed: the heartbeats' looks queue nothing more
    ids = {r[0] for r in d.call("ListMigrations")}
    beat = heartbeat(d)
    wait_for("three more heartbeats of node1", lambda: heartbeat(d) >= beat + 3, timeout=20)
    assert {r[0] for r in d.call("ListMigrations")} == ids
    assert set(blocked(d)) == set(b)

    name, msg = error(d, "Enter", "a{sv}", {})
    assert name == ERR + "Busy" and "in maintenance already (blocked)" in msg, msg
    out = ctl(d, "maintenance", "status")
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "Maintenance of this node: blocked" in out.stdout
    assert "  gpu: " in out.stdout and "Blocked:" in out.stdout
    out = ctl(d, "--json", "maintenance", "status")
    j = json.loads(out.stdout)
    assert j["state"] == "blocked" and j["deadline"] == 0
    assert {x["domain"] for x in j["blocked"]} == set(b)
    assert "Maintenance of this node: blocked." in ctl(d, "overview").stdout

    assert call(d, "Exit", "b", False) is None
    assert state(d) == "off" and blocked(d) == {}
    assert d.prop("State") == "enabled"
    out = ctl(d, "maintenance", "status")
    assert out.returncode == 4 and "off (not in maintenance)" in out.stdout, out.stdout
    name, msg = error(d, "Exit", "b", False)
    assert name == ERR + "NotRunning", msg


def test_deadline_and_cancel(guests):
    """--deadline sets Deadline (µs since the epoch); Cancel ends the maintenance: State off,
    the node enabled, no deadline. (What a passed deadline does is lib/maintenance-state.c's
    decision: tests/unit/test-maintenance-state.c.)"""
    d = guests
    before = time.time()
    out = ctl(d, "maintenance", "enter", "--deadline=1h")
    assert out.returncode == 0, out.stderr
    deadline = d.prop("Deadline", path=PATH, iface=IFACE) / 1e6
    assert before + 3600 <= deadline <= time.time() + 3600, deadline
    assert "Deadline: " in ctl(d, "maintenance", "status").stdout
    wait_for("a look at the node", lambda: state(d) != "draining", timeout=60)
    out = ctl(d, "maintenance", "cancel")
    assert out.returncode == 0, out.stderr
    assert state(d) == "off" and d.prop("State") == "enabled"
    assert d.prop("Deadline", path=PATH, iface=IFACE) == 0 and blocked(d) == {}


def test_enter_bad_deadline_in_hostwardenctl(daemon):
    out = ctl(daemon, "maintenance", "enter", "--deadline=soon")
    assert out.returncode == 1 and "Invalid --deadline 'soon'" in out.stderr, out.stderr
    assert state(daemon) == "off"


def test_passed_deadline_blocks_and_leaves_the_migration_alone():
    """A guest held in a migration that does not end (its destination's libvirt never
    answers: a socket this test holds open without a word) keeps the drain draining; once
    the deadline passed, the state is blocked and Blocked names the guest and its migration,
    which goes on: nothing is aborted or destroyed for a deadline, and Cancel, which stops
    only what the drain queued, leaves it too."""
    with migration_held_in_preparing() as (d, path, mid):
        assert call(d, "Enter", "a{sv}", {"deadline": ("t", 1)}) is None
        wait_for("blocked by the deadline", lambda: state(d) == "blocked", timeout=30)
        assert blocked(d) == {TEST_DOMAIN: f"deadline passed (its migration {mid} is "
                                           "still under way)"}
        assert d.prop("State", path, MIGRATION) == "preparing"
        assert TEST_DOMAIN in running(d)
        assert call(d, "Cancel", "b", True) is None
        assert state(d) == "off" and d.prop("State") == "enabled"
        assert d.prop("State", path, MIGRATION) == "preparing"
