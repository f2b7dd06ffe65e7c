"""SetHA and GetHA (org.hostwarden.Warden1(5), docs/recovery-restart.md): a guest's HA
setting in its libvirt metadata. Arguments and their errors, the setting read back by name
and by UUID, the store's copy of the definition following it (what a rebuild elsewhere
reads), hostwardenctl ha, and authorization: SetHA is manage-node's, GetHA anybody's."""

import subprocess

import pytest

from hwdaemon import ERR, INVALID_ARGS, TEST_DOMAIN, TEST_UUID, wait_for

INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"


def ctl(d, *args):
    return subprocess.run([d.exe("ctl/hostwardenctl"), "--no-ask-password"] + list(args),
                          env=d.env, capture_output=True, text=True, timeout=60)


def stored_definition(d):
    return (d.tmp / "state" / "definitions" / f"{TEST_UUID}.xml").read_text()


@pytest.mark.parametrize("args,expected", [
    (("", "off", 0), "Expected a domain name or UUID"),
    (("a/b", "off", 0), "Expected a domain name or UUID"),
    ((TEST_DOMAIN, "maybe", 0), "Expected mode 'off' or 'restart', got 'maybe'"),
    ((TEST_DOMAIN, "", 0), "Expected mode 'off' or 'restart'"),
    ((TEST_DOMAIN, "off", 1001), "Expected a priority from -1000 to 1000, got 1001"),
    ((TEST_DOMAIN, "restart", -1001), "Expected a priority from -1000 to 1000, got -1001"),
], ids=["empty-domain", "slash", "bad-mode", "empty-mode", "priority-high", "priority-low"])
def test_set_ha_invalid_args(daemon, args, expected):
    name, msg = daemon.error("SetHA", "ssi", *args)
    assert name == INVALID_ARGS, msg
    assert expected in msg


def test_get_ha_invalid_args(daemon):
    name, msg = daemon.error("GetHA", "s", "")
    assert name == INVALID_ARGS, msg
    assert "Expected a domain name or UUID" in msg


def test_no_such_domain(daemon):
    name, msg = daemon.error("SetHA", "ssi", "no-such-guest", "off", 0)
    assert name == ERR + "NoSuchDomain", msg
    assert "no-such-guest" in msg and "node1" in msg
    name, msg = daemon.error("GetHA", "s", "00000000-0000-4000-8000-0000000000ff")
    assert name == ERR + "NoSuchDomain", msg


def test_default_ha_from_the_configuration(daemon):
    """A guest without its own setting has [recovery] default_ha, shown as not its own."""
    d = daemon
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("restart", 0, False)  # the default's default
    d.write_config(extra="[recovery]\ndefault_ha = off\n")
    try:
        assert d.call("Reload") is None
        assert d.call("GetHA", "s", TEST_DOMAIN) == ("off", 0, False)
    finally:
        d.write_config()
        d.call("Reload")
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("restart", 0, False)


def test_set_then_get_by_name_and_uuid_and_the_store_follows(daemon):
    d = daemon
    assert d.call("SetHA", "ssi", TEST_DOMAIN, "off", 7) is None
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("off", 7, True)
    assert d.call("GetHA", "s", TEST_UUID) == ("off", 7, True)
    # reconciliation saves the changed definition: what a rebuild on another node defines
    wait_for("the store's definition with ha=off",
             lambda: 'ha="off" priority="7"' in stored_definition(d), timeout=30)
    assert "https://hostwarden.org/xmlns/domain/1" in stored_definition(d)

    assert d.call("SetHA", "ssi", TEST_UUID.upper(), "restart", -1000) is None
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("restart", -1000, True)
    wait_for("the store's definition with ha=restart",
             lambda: 'ha="restart" priority="-1000"' in stored_definition(d), timeout=30)
    # one element, changed in place, never a second one
    assert stored_definition(d).count("xmlns/domain/1") == 1


def test_hostwardenctl_ha(daemon):
    d = daemon
    r = ctl(d, "ha", TEST_DOMAIN, "off", "--priority", "-5")
    assert r.returncode == 0, r.stderr
    r = ctl(d, "ha", TEST_DOMAIN)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{TEST_DOMAIN}: ha off, priority -5 (its own setting)\n"
    r = ctl(d, "--json", "ha", TEST_UUID)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f'{{"domain":"{TEST_UUID}","mode":"off","priority":-5,"own":true}}\n'

    r = ctl(d, "ha", TEST_DOMAIN, "restart")  # no --priority: the default priority
    assert r.returncode == 0, r.stderr
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("restart", 0, True)

    for args, expected in [
            (("ha", TEST_DOMAIN, "maybe"), "Expected 'off' or 'restart', got 'maybe'"),
            (("ha", TEST_DOMAIN, "off", "--priority", "high"),
             "--priority=high: expected a number from -1000 to 1000"),
            (("ha", TEST_DOMAIN, "off", "--priority", "1001"), "from -1000 to 1000"),
            (("ha", TEST_DOMAIN, "--priority", "3"), "--priority goes with a mode"),
            (("ha", "no-such-guest", "off"), "No domain 'no-such-guest'"),
            (("history", "--priority", "3"), "--priority is for 'ha'"),
    ]:
        r = ctl(d, *args)
        assert r.returncode == 1, (args, r.stdout)
        assert expected in r.stderr, (args, r.stderr)
    assert d.call("GetHA", "s", TEST_DOMAIN) == ("restart", 0, True)


@pytest.fixture(scope="module")
def pk(polkit_daemon):
    polkit_daemon.polkit.allow(False)
    return polkit_daemon


def test_set_ha_refused_without_a_rule(pk):
    name, msg = pk.error("SetHA", "ssi", TEST_DOMAIN, "off", 1, uid="nobody")
    assert name == INTERACTIVE, msg
    assert "org.hostwarden.manage-node" in msg
    # nothing changed; GetHA is read-only: anybody may call it
    assert pk.call("GetHA", "s", TEST_DOMAIN, uid="nobody") == ("restart", 0, False)


def test_set_ha_checks_before_polkit(pk):
    # bad arguments are refused before anybody is asked for a password
    name, msg = pk.error("SetHA", "ssi", TEST_DOMAIN, "sometimes", 1, uid="nobody")
    assert name == INVALID_ARGS, msg


def test_set_ha_allowed_by_a_rule(pk):
    pk.polkit.allow(True)
    try:
        assert pk.call("SetHA", "ssi", TEST_DOMAIN, "off", 42, uid="nobody") is None
        assert pk.call("GetHA", "s", TEST_DOMAIN, uid="nobody") == ("off", 42, True)
        # past polkit, the domain's own errors come back
        name, msg = pk.error("SetHA", "ssi", "no-such-guest", "off", 0, uid="nobody")
        assert name == ERR + "NoSuchDomain", msg
    finally:
        pk.polkit.allow(False)
