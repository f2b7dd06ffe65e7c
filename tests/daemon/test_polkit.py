"""Authorization with a real polkitd on the private bus (hwdaemon.Polkit): every entry of the
daemon's polkit table as an unprivileged caller, with and without a rule; the read-only
methods; the shipped group rule; no polkitd at all; and the re-dispatch of a call after
polkit answered (its checks are made again)."""

import pytest

from dbusclient import DBusError
from hwdaemon import ACCESS_DENIED, ERR, MIGRATION, TEST_DOMAIN, TEST_UUID, wait_for

INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

# (method, signature, args, action) with arguments that pass every check made before
# authorization; (the table of dbus/polkit.c, written out: the suite tests the API)
NODE_CALLS = [
    ("Reload", "", (), "org.hostwarden.manage-node"),
    ("Disable", "s", ("polkit test",), "org.hostwarden.manage-node"),
    ("Enable", "", (), "org.hostwarden.manage-node"),
    ("ForceDown", "sb", ("node3", True), "org.hostwarden.fence"),
    ("ForceDownWithOptions", "sba{sv}", ("node3", True, {}), "org.hostwarden.fence"),
    ("Fence", "ss", ("node2", "status"), "org.hostwarden.fence"),
    ("Migrate", "ssa{sv}", (TEST_DOMAIN, "node2", {}), "org.hostwarden.migrate"),
    ("MigrateCold", "ssa{sv}", (TEST_DOMAIN, "node2", {}), "org.hostwarden.migrate"),
    ("EvacuateLive", "sa{sv}", ("node2", {}), "org.hostwarden.evacuate"),
    ("Rebuild", "ssa{sv}", ("00000000-0000-4000-8000-0000000000aa", "node3", {}),
     "org.hostwarden.evacuate"),
    ("EvacuateFrom", "sa{sv}", ("node3", {}), "org.hostwarden.evacuate"),
    ("Archive", "b", (True,), "org.hostwarden.manage-node"),
]
MIGRATION_CALLS = [("Abort", "org.hostwarden.migrate"),
                   ("ForceComplete", "org.hostwarden.migrate")]

READ_ONLY = [
    ("ListDomains", "", ()),
    ("CheckMigration", "ssa{sv}", (TEST_DOMAIN, "node2", {})),
    ("ListMigrations", "", ()),
    ("ListNodes", "", ()),
    ("ListInstances", "", ()),
    ("CheckNode", "", ()),
    ("GetHistory", "st", ("", 0)),
]


@pytest.fixture(scope="module")
def pk(polkit_daemon):
    d = polkit_daemon
    d.seed("node", "node3", "address=127.0.0.3")
    wait_for("node3 down", lambda: d.nodes()["node3"][2] == "down")
    d.polkit.allow(False)
    return d


@pytest.fixture(scope="module")
def migration_path(pk):
    """A migration object (ended failed), made by root, for Abort / ForceComplete."""
    path = pk.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {})
    wait_for("the migration to end",
             lambda: pk.prop("State", path, MIGRATION) in ("failed", "aborted"), timeout=30)
    return path


@pytest.fixture
def allowed(pk):
    pk.polkit.allow(True)
    yield pk
    pk.polkit.allow(False)


@pytest.mark.parametrize("method,sig,args,action", NODE_CALLS, ids=[c[0] for c in NODE_CALLS])
def test_refused_without_a_rule(pk, method, sig, args, action):
    # auth_admin_keep: polkit would ask for a password, which the caller did not allow
    name, msg = pk.error(method, sig, *args, uid="nobody")
    assert name == INTERACTIVE, msg
    assert action in msg


@pytest.mark.parametrize("method,action", MIGRATION_CALLS, ids=[c[0] for c in MIGRATION_CALLS])
def test_migration_methods_refused_without_a_rule(pk, migration_path, method, action):
    name, msg = pk.error(method, path=migration_path, iface=MIGRATION, uid="nobody")
    assert name == INTERACTIVE, msg
    assert action in msg


def test_interactive_caller_without_an_agent(pk):
    name, msg = pk.error("Enable", uid="nobody", interactive=True)
    # polkitd has no authentication agent to ask here: it answers "challenge" all the same
    assert name == INTERACTIVE, (name, msg)
    assert "org.hostwarden.manage-node" in msg


def test_a_rule_lets_the_calls_through(allowed):
    d = allowed
    assert d.call("Disable", "s", "polkit test", uid="nobody") is None
    assert d.prop("State") == "disabled"
    assert d.call("Enable", uid="nobody") is None
    assert d.prop("State") == "enabled"
    assert d.call("Reload", uid="nobody") is None
    assert d.call("Fence", "ss", "node2", "status", uid="nobody") == "off"
    # past polkit, the handler's own errors come back
    name, msg = d.error("Rebuild", "ssa{sv}", "00000000-0000-4000-8000-0000000000aa", "node3",
                        {}, uid="nobody")
    assert name == ERR + "NotFenced", msg


def test_a_rule_lets_migration_methods_through(allowed, migration_path):
    for method, _ in MIGRATION_CALLS:
        name, msg = allowed.error(method, path=migration_path, iface=MIGRATION, uid="nobody")
        assert name == ERR + "NotRunning", (method, msg)


@pytest.mark.parametrize("method,sig,args", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_read_only_methods_need_no_rule(pk, method, sig, args):
    assert pk.call(method, sig, *args, uid="nobody") is not None


def test_the_shipped_rule_grants_group_hostwarden(pk):
    uid = pk.polkit.member_uid  # in group hostwarden, as polkitd's /etc/group says
    assert pk.call("Disable", "s", "group member", uid=uid) is None
    assert pk.prop("DisabledReason") == "group member"
    assert pk.call("Enable", uid=uid) is None
    assert pk.prop("State") == "enabled"


def test_no_polkit_means_denied(no_store):
    # no polkitd on that bus; Reload is served without a store
    name, msg = no_store.error("Reload", uid="nobody")
    assert name == ACCESS_DENIED
    assert "unavailable" in msg and "org.hostwarden.manage-node" in msg
    assert no_store.call("ListMigrations", uid="nobody") == []


def test_checks_are_made_again_after_authorization(allowed):
    """Migrate to node2 passes its checks, waits on polkit; meanwhile node2 leaves the
    configuration; once polkit says yes the call fails as a fresh one would."""
    d = allowed
    ctl = d.polkit.ctl
    (ctl / "gate").touch()
    (ctl / "hold").touch()
    call = None
    try:
        call = d.call_async("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {}, uid="nobody")
        wait_for("polkit holding the call", lambda: (ctl / "held").exists(), timeout=20)
        peers = {k: v for k, v in d.peers.items() if k != "node2"}
        d.write_config(peers=peers)
        assert d.call("Reload") is None  # root: no polkit
        (ctl / "hold").unlink()
        (ctl / "gate").unlink()
        with pytest.raises(DBusError) as e:
            call.result(timeout=30)
        name, msg = e.value.name, e.value.message
        assert name == ERR + "NoSuchNode", msg
        assert "No peer 'node2' in the configuration" in msg
        assert [TEST_UUID, TEST_DOMAIN, "running", "node1"] in d.call("ListDomains")
    finally:
        for f in ("hold", "gate", "held"):
            (ctl / f).unlink(missing_ok=True)
        if call:
            call.kill()
        d.write_config()
        d.call("Reload")


def test_pending_authorizations_are_capped_per_connection(pk):
    """At most 8 calls of one connection wait for polkit (org.hostwarden.Warden1(5)); the
    next fails at once with LimitsExceeded, and the place is given back once answered."""
    ctl = pk.polkit.ctl
    (ctl / "gate").touch()
    (ctl / "hold").touch()
    progress = ctl / "answers"
    calls = None
    try:
        calls = pk.pipelined("Enable", 10, progress=progress)
        wait_for("polkit holding the first call", lambda: (ctl / "held").exists(), timeout=20)
        # the calls over the cap are answered while the others still wait
        wait_for("two answers", lambda: progress.read_text() == "2", timeout=20)
    except BaseException:
        if calls:
            calls.kill()
        raise
    finally:
        for f in ("hold", "gate", "held"):
            (ctl / f).unlink(missing_ok=True)
    answers = calls.result(timeout=60)
    names = [a[0] if a else None for a in answers]
    assert names[:8] == [INTERACTIVE] * 8, answers
    assert names[8:] == [ERR + "LimitsExceeded"] * 2, answers
    assert "8" in answers[8][1], answers[8]
    # all answered: the same connection's calls are admitted again
    assert [a[0] for a in pk.pipelined("Enable", 8).result(timeout=60)] == [INTERACTIVE] * 8
    progress.unlink()


MAINTENANCE_CALLS = [("Enter", "a{sv}", ({},)), ("Cancel", "b", (True,)), ("Exit", "b", (False,))]


@pytest.mark.parametrize("method,sig,args", MAINTENANCE_CALLS, ids=[c[0] for c in MAINTENANCE_CALLS])
def test_maintenance_methods_refused_without_a_rule(pk, method, sig, args):
    """Enter, Cancel and Exit are manage-node's; a refusal changes nothing."""
    name, msg = pk.error(method, sig, *args, path="/org/hostwarden/Warden1/maintenance",
                         iface="org.hostwarden.Warden1.Maintenance", uid="nobody")
    assert name == INTERACTIVE, msg
    assert "org.hostwarden.manage-node" in msg
    assert pk.prop("State", path="/org/hostwarden/Warden1/maintenance",
                   iface="org.hostwarden.Warden1.Maintenance") == "off"


def test_maintenance_plan_needs_no_rule(pk):
    """Maintenance.Plan only reads: anybody may call it (the read-only list of dbus/polkit.c)."""
    rows = pk.call("Plan", path="/org/hostwarden/Warden1/maintenance",
                   iface="org.hostwarden.Warden1.Maintenance", uid="nobody")
    assert [r[0] for r in rows] == [TEST_DOMAIN]
