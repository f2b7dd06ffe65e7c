"""MigrateCold, Confirm and Revert (issue 21 item 1) as far as libvirt's test driver goes: the
arguments and their errors, the polkit action, a cold migration that fails before anything
moved (the test driver's disk is no file a storage pool has), Confirm and Revert of
migrations not in verify, CheckMigration's cold mode. The copy, verify, Confirm and Revert
themselves are the cluster suite's (tests/cluster/test_cold_migration.py)."""

import pytest

from hwdaemon import ERR, INVALID_ARGS, MIGRATION, TEST_DOMAIN, TEST_UUID, wait_for

INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

OPTION_ERRORS = [
    ({"block": ("b", True)}, "Unknown option 'block'; expected shutdown-timeout (t, seconds)"),
    ({"shutdown-timeout": ("s", "10")},
     "Option 'shutdown-timeout' must be an unsigned integer (t or u), not 's'"),
    ({"shutdown-timeout": ("t", 3601)},
     "Option 'shutdown-timeout' is 3601; expected at most 3600"),
]


def test_migrate_cold_needs_a_domain_and_a_peer(daemon):
    name, msg = daemon.error("MigrateCold", "ssa{sv}", "", "node2", {})
    assert (name, msg) == (INVALID_ARGS, "Expected a domain name or UUID")
    name, msg = daemon.error("MigrateCold", "ssa{sv}", TEST_DOMAIN, "node1", {})
    assert name == INVALID_ARGS and "this node" in msg, msg
    name, msg = daemon.error("MigrateCold", "ssa{sv}", TEST_DOMAIN, "node9", {})
    assert name == ERR + "NoSuchNode" and "node9" in msg, msg


@pytest.mark.parametrize("opts,expected", OPTION_ERRORS, ids=[e[1] for e in OPTION_ERRORS])
def test_migrate_cold_option_errors(daemon, opts, expected):
    name, msg = daemon.error("MigrateCold", "ssa{sv}", TEST_DOMAIN, "node2", opts)
    assert name == INVALID_ARGS
    assert expected in msg


def test_migrate_cold_of_an_unknown_domain(daemon):
    name, msg = daemon.error("MigrateCold", "ssa{sv}", "no-such-guest", "node2", {})
    assert name == ERR + "NoSuchDomain" and "no-such-guest" in msg, msg


def test_migrate_refuses_the_cold_option(daemon):
    name, msg = daemon.error("Migrate", "ssa{sv}", TEST_DOMAIN, "node2",
                             {"cold": ("b", True)})
    assert name == INVALID_ARGS and "MigrateCold" in msg, msg


def test_check_migration_cold_mode(daemon):
    """The test domain's disk is a file no peer sees: an error live, none cold."""
    live = {r[1]: r[0] for r in daemon.call("CheckMigration", "ssa{sv}", TEST_DOMAIN, "node2",
                                            {})}
    cold = {r[1]: r[0] for r in daemon.call("CheckMigration", "ssa{sv}", TEST_DOMAIN, "node2",
                                            {"cold": ("b", True)})}
    assert live.get("local-disk") == "error", live
    assert "local-disk" not in cold, cold
    assert "error" not in cold.values(), cold


@pytest.fixture(scope="module")
def failed_cold(daemon):
    """A cold migration of the running test domain: it fails before the guest is shut down
    (the test driver has no volume for its disk file)."""
    path = daemon.call("MigrateCold", "ssa{sv}", TEST_DOMAIN, "node2",
                       {"shutdown-timeout": ("u", 5)})
    wait_for("the cold migration to end", lambda: daemon.prop(
        "State", path, MIGRATION) in ("failed", "aborted", "completed", "verify"), timeout=30)
    return path


def test_a_failed_cold_migration_leaves_the_guest_running_here(daemon, failed_cold):
    p = failed_cold
    assert daemon.prop("State", p, MIGRATION) == "failed"
    assert daemon.prop("Mode", p, MIGRATION) == "cold"
    assert "Cannot read disk" in daemon.prop("Error", p, MIGRATION)
    assert [TEST_UUID, TEST_DOMAIN, "running", "node1"] in daemon.call("ListDomains")
    mid = daemon.prop("Id", p, MIGRATION)
    assert [mid, TEST_DOMAIN, "node1", "node2", "failed", "cold", p] in \
        daemon.call("ListMigrations")


def test_confirm_and_revert_need_a_cold_migration_in_verify(daemon, failed_cold):
    for verb in ("Confirm", "Revert"):
        name, msg = daemon.error(verb, path=failed_cold, iface=MIGRATION)
        assert name == ERR + "NotRunning", msg
        assert "is failed" in msg and "state verify" in msg, msg


@pytest.fixture(scope="module")
def live_migration(daemon):
    path = daemon.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {})
    wait_for("the migration to end", lambda: daemon.prop(
        "State", path, MIGRATION) in ("failed", "aborted", "completed"), timeout=30)
    return path


def test_confirm_and_revert_of_a_live_migration(daemon, live_migration):
    for verb in ("Confirm", "Revert"):
        name, msg = daemon.error(verb, path=live_migration, iface=MIGRATION)
        assert name == ERR + "NotRunning", msg
        assert "is a live migration: only a cold migration waits in state verify" in msg, msg


def test_confirm_of_a_migration_that_does_not_exist(daemon):
    name, _ = daemon.error("Confirm", path="/org/hostwarden/Warden1/migration/0000000000000000",
                           iface=MIGRATION)
    assert name == "org.freedesktop.DBus.Error.UnknownObject"


def test_migrate_cold_is_the_migrate_action(polkit_daemon):
    d = polkit_daemon
    d.polkit.allow(False)
    name, msg = d.error("MigrateCold", "ssa{sv}", TEST_DOMAIN, "node2", {}, uid="nobody")
    assert name == INTERACTIVE, msg
    assert "org.hostwarden.migrate" in msg
    # its checks come first: a bad argument is told without asking polkit
    name, msg = d.error("MigrateCold", "ssa{sv}", "", "node2", {}, uid="nobody")
    assert name == INVALID_ARGS, msg
