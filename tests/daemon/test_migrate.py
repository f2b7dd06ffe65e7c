"""Migrate and the Migration object. The test driver cannot migrate (p2p "not supported by
the source host"), so every migration here ends failed: its object, properties and errors
are what is checked; progress and downtime are the cluster suite's (tests/cluster)."""

import pytest

from hwdaemon import ERR, INVALID_ARGS, MIGRATION, TEST_DOMAIN, TEST_UUID, wait_for

OPTION_ERRORS = [
    ({"nope": ("b", True)}, "Unknown option 'nope'"),
    ({"block": ("s", "yes")}, "Option 'block' must be a boolean (b)"),
    ({"bandwidth": ("s", "10")}, "Option 'bandwidth' must be an unsigned integer"),
    ({"max-downtime-ms": ("t", 0)}, "Option 'max-downtime-ms' must be at least 1"),
    ({"timeout-action": ("u", 1)}, "Option 'timeout-action' must be a string (s)"),
    ({"timeout-action": ("s", "reboot")}, "Option 'timeout-action' is 'reboot'"),
    ({"auto-converge": ("b", True)}, "Option 'auto-converge' is not permitted"),
    ({"post-copy": ("b", True)}, "Option 'post-copy' is not permitted"),
    # migration policies (issue 23): a name this node has, and permits
    ({"policy": ("b", True)}, "Option 'policy' must be a string (s), not 'b'"),
    ({"policy": ("s", "fastest")}, "Option 'policy' is 'fastest'; expected a migration policy"),
    ({"policy": ("s", "post-copy-when-stalled")},
     "Option 'policy': migration policy post-copy-when-stalled switches to post-copy, which "
     "[migration] permit_post_copy = no forbids on this node"),
    ({"policy": ("s", "minimal-downtime")}, "permit_auto_converge = no forbids"),
]

PROPERTY_TYPES = {
    "Id": "s", "Domain": "s", "DomainName": "s", "Source": "s", "Destination": "s",
    "Mode": "s", "State": "s", "Error": "s", "Created": "t", "Started": "t", "Finished": "t",
    "MemoryTotal": "t", "MemoryProcessed": "t", "MemoryRemaining": "t", "DiskTotal": "t",
    "DiskProcessed": "t", "DiskRemaining": "t", "DirtyRate": "t", "Iteration": "t",
    "MaxDowntime": "t", "Downtime": "t", "Progress": "u", "PostCopy": "b",
    "NetworkDowntime": "t",  # issue 21 item 4
    "Policy": "s",  # issue 23 item 2
}


def test_migrate_argument_errors(daemon):
    name, msg = daemon.error("Migrate", "ssa{sv}", "", "node2", {})
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("Migrate", "ssa{sv}", TEST_DOMAIN, "node1", {})
    assert name == INVALID_ARGS, msg


def test_migrate_unknown_destination(daemon):
    name, msg = daemon.error("Migrate", "ssa{sv}", TEST_DOMAIN, "node9", {})
    assert name == ERR + "NoSuchNode"
    assert "node9" in msg


@pytest.mark.parametrize("opts,expected", OPTION_ERRORS, ids=[e[1] for e in OPTION_ERRORS])
def test_migrate_option_errors(daemon, opts, expected):
    name, msg = daemon.error("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", opts)
    assert name == INVALID_ARGS
    assert expected in msg


def test_migrate_unknown_domain(daemon):
    name, msg = daemon.error("Migrate", "ssa{sv}", "no-such-guest", "node2", {})
    assert name == ERR + "NoSuchDomain"
    assert "no-such-guest" in msg


@pytest.fixture(scope="module")
def failed_migration(daemon):
    """A Migrate of the test domain to node2: its path once it has ended (failed)."""
    with daemon.signals() as sig:
        path = daemon.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {})
        assert path.startswith("/org/hostwarden/Warden1/migration/")
        sig.wait("MigrationNew", lambda a: a[1] == path and path.endswith("/" + a[0]))
    wait_for("the migration to end", lambda: daemon.prop(
        "State", path, MIGRATION) in ("failed", "aborted", "completed"), timeout=30)
    return path


def test_migration_ends_failed_with_an_error(daemon, failed_migration):
    p = failed_migration
    assert daemon.prop("State", p, MIGRATION) == "failed"
    assert daemon.prop("Error", p, MIGRATION)
    # the guest is still here and still ours
    assert [TEST_UUID, TEST_DOMAIN, "running", "node1"] in daemon.call("ListDomains")


def test_a_failed_migration_is_logged_with_the_destination_named(daemon, failed_migration):
    """Refused before a destination was chosen (preflight), the log still names the one the
    caller asked for."""
    mid = failed_migration.rsplit("/", 1)[1]
    ends = [l for l in daemon.daemon_log().splitlines() if f"Migration {mid} of {TEST_DOMAIN} to" in l]
    assert ends and f"Migration {mid} of {TEST_DOMAIN} to node2 failed" in ends[0], ends


def test_migration_properties(daemon, failed_migration):
    p = failed_migration
    props = daemon.props(p, MIGRATION)
    assert {k: t for k, (t, _) in props.items()} == PROPERTY_TYPES
    assert daemon.get("Progress", p, MIGRATION)[0] == "u"  # Get agrees with GetAll
    v = {k: val for k, (_, val) in props.items()}
    assert p.endswith("/" + v["Id"])
    assert v["Domain"] == TEST_UUID
    assert v["DomainName"] == TEST_DOMAIN
    assert v["Source"] == "node1"
    assert v["Destination"] == "node2"
    assert v["Mode"] == "live"
    assert v["Created"] > 0
    assert v["Finished"] >= v["Created"]
    assert v["PostCopy"] is False


def test_list_migrations_has_the_row(daemon, failed_migration):
    p = failed_migration
    mid = daemon.prop("Id", p, MIGRATION)
    rows = daemon.call("ListMigrations")
    assert [mid, TEST_DOMAIN, "node1", "node2", "failed", "live", p] in rows


def test_abort_and_force_complete_of_a_failed_migration(daemon, failed_migration):
    p = failed_migration
    name, msg = daemon.error("Abort", path=p, iface=MIGRATION)
    assert name == ERR + "NotRunning"
    assert "failed already" in msg
    name, msg = daemon.error("ForceComplete", path=p, iface=MIGRATION)
    assert name == ERR + "NotRunning", msg


def test_abort_of_a_migration_that_does_not_exist(daemon):
    name, msg = daemon.error("Abort", path="/org/hostwarden/Warden1/migration/nosuch",
                             iface=MIGRATION)
    assert name == "org.freedesktop.DBus.Error.UnknownObject", (name, msg)
