"""Maintenance.Plan (org.hostwarden.Warden1(5), docs/maintenance.md): a row for every domain of
this node with the action maintenance would take and why, the guest's maintenance= metadata
over [maintenance] strategy, nothing changed; the object's properties; hostwardenctl
maintenance plan; a bad [maintenance] strategy refused with its file and line."""

import contextlib
import json
import socket
import subprocess

import pytest

from hwdaemon import ERR, MIGRATION, TEST_DOMAIN, TEST_UUID, Daemon, wait_for

PATH = "/org/hostwarden/Warden1/maintenance"
IFACE = "org.hostwarden.Warden1.Maintenance"
NS = "https://hostwarden.org/xmlns/domain/1"
PCI = ("<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' "
       "bus='0x03' slot='0x00' function='0x0'/></source></hostdev>")


def plan(d):
    return {row[0]: (row[1], row[2]) for row in d.call("Plan", path=PATH, iface=IFACE)}


def ctl(d, *args):
    return subprocess.run([d.exe("ctl/hostwardenctl"), "--no-ask-password"] + list(args),
                          env=d.env, capture_output=True, text=True, timeout=60)


def test_plan_of_test_default(daemon):
    """test:///default's one domain, running, has a disk only this node sees: no peer can
    take it without block migration, and the default strategy (migrate) blocks."""
    rows = daemon.call("Plan", path=PATH, iface=IFACE)
    assert [r[0] for r in rows] == ["test"]
    action, reason = plan(daemon)["test"]
    assert action == "blocked", reason
    for node in ("node2", "node3", "node4"):
        assert f"{node}: Disk vda (/guest/diskimage1) is local to node1" in reason, reason
    assert "(local-disk)" in reason and "block migration" in reason
    assert "strategy migrate ([maintenance] strategy)" in reason


def test_properties(daemon):
    assert daemon.props(path=PATH, iface=IFACE) == {
        "State": ("s", "off"), "Blocked": ("a(ss)", []), "Deadline": ("t", 0)}


def test_plan_needs_the_store(no_store):
    name, msg = no_store.error("Plan", path=PATH, iface=IFACE)
    assert name == ERR + "StoreUnavailable", msg


def dom(name, uuid, meta="", devices="", running=True):
    md = (f"<metadata><hostwarden:guest xmlns:hostwarden='{NS}' {meta}/></metadata>"
          if meta else "")
    return (f"  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
            f"<name>{name}</name><uuid>{uuid}</uuid><memory unit='KiB'>65536</memory>"
            f"<vcpu>1</vcpu>{md}<os><type arch='i686'>hvm</type></os>"
            f"<devices>{devices}</devices>"
            f"{'' if running else '<test:runstate>5</test:runstate>'}</domain>\n")


# node1's libvirt: guests the test driver's peer node2 can take (no disk, its architecture)
# or not (a PCI device), strategies from their metadata, one shut off
LOCAL_XML = ("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores>"
             "<threads>1</threads><active>2</active><mhz>2000</mhz><model>i686</model></cpu>"
             "<memory>8388608</memory>\n"
             + dom("test", TEST_UUID)
             + dom("web", "00000000-0000-4000-8000-00000000a001")
             + dom("batch", "00000000-0000-4000-8000-00000000a002", "maintenance='shutdown'")
             + dom("gpu", "00000000-0000-4000-8000-00000000a003", devices=PCI)
             + dom("gpu-spare", "00000000-0000-4000-8000-00000000a004",
                   "ha='off' maintenance='migrate-or-shutdown'", PCI)
             + dom("odd", "00000000-0000-4000-8000-00000000a005", "maintenance='evacuate'", PCI)
             + dom("cold", "00000000-0000-4000-8000-00000000a006", running=False)
             + "</node>\n")


@contextlib.contextmanager
def local_guests():
    """hostwardend on node1's own test driver file, with one peer, node2, alive."""
    d = Daemon()
    d.peers = {"node2": d.default_peers()["node2"]}
    (d.tmp / "local.xml").write_text(LOCAL_XML)
    d.libvirt_uri = f"test://{d.tmp}/local.xml"
    with d:
        d.heartbeat("node2")
        wait_for("node2 up", lambda: d.nodes().get("node2", [None] * 3)[2] == "up", timeout=20)
        yield d


@pytest.fixture(scope="module")
def guests():
    with local_guests() as d:
        yield d


def test_plan_actions_and_reasons(guests):
    d = guests
    before = (d.call("ListDomains"), d.prop("State"))
    p = plan(d)
    assert sorted(p) == ["batch", "cold", "gpu", "gpu-spare", "odd", "test", "web"]
    assert {k: v[0] for k, v in p.items()} == {
        "test": "migrate", "web": "migrate", "batch": "shutdown", "gpu": "blocked",
        "gpu-spare": "shutdown", "odd": "blocked", "cold": "none"}
    assert p["web"][1].startswith("live migration to node2, the only peer, which passes "
                                  "CheckMigration"), p["web"]
    assert p["batch"][1] == "strategy shutdown (its metadata): shut down here, stays defined here"
    assert "no node can take it: node2: PCI device 0000:03:00.0 is passed through" in p["gpu"][1]
    assert "(pci-passthrough)" in p["gpu"][1]
    assert "strategy migrate ([maintenance] strategy)" in p["gpu"][1]
    assert p["gpu-spare"][1].startswith("no node can take it, so shut down here by its strategy "
                                        "migrate-or-shutdown (its metadata): node2: PCI device")
    assert "its metadata's maintenance=\"evacuate\" is not" in p["odd"][1]
    assert p["cold"][1] == "not running (shutoff): stays defined here"
    # nothing changed: the same domains in the same states, the node still enabled
    assert (d.call("ListDomains"), d.prop("State")) == before
    assert d.prop("State", path=PATH, iface=IFACE) == "off"


def test_default_strategy_from_the_configuration(guests):
    """[maintenance] strategy is the default of the guests without their own; a guest's
    metadata still wins."""
    d = guests
    d.write_config(extra="[maintenance]\nstrategy = migrate-or-shutdown\n")
    try:
        assert d.call("Reload") is None
        p = plan(d)
        assert p["gpu"][0] == "shutdown", p["gpu"]
        assert "strategy migrate-or-shutdown ([maintenance] strategy)" in p["gpu"][1]
        assert p["web"][0] == "migrate" and p["batch"][0] == "shutdown"
        d.write_config(extra="[maintenance]\nstrategy = shutdown\n")
        assert d.call("Reload") is None
        p = plan(d)
        assert p["web"] == ("shutdown", "strategy shutdown ([maintenance] strategy): shut down "
                                        "here, stays defined here")
        assert p["gpu-spare"][0] == "shutdown" and "its metadata" in p["gpu-spare"][1]
    finally:
        d.write_config()
        d.call("Reload")


def test_bad_strategy_refused_with_file_and_line(guests):
    d = guests
    dropin = d.tmp / "conf" / "hostwarden.conf.d" / "50-maintenance.conf"
    dropin.write_text("# maintenance\n[maintenance]\nstrategy = evacuate\n")
    try:
        name, msg = d.error("Reload")
        assert name == ERR + "ConfigInvalid", msg
        assert "50-maintenance.conf:3" in msg and "[maintenance] strategy" in msg, msg
        assert "migrate, migrate-or-shutdown or shutdown" in msg, msg
        assert plan(d)["web"][0] == "migrate"  # the configuration before stays
    finally:
        dropin.unlink()


def test_hostwardenctl_maintenance_plan(guests):
    d = guests
    out = ctl(d, "maintenance", "plan")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "ACTION", "REASON"]
    assert any(ln.split()[:2] == ["gpu", "blocked"] for ln in lines), out.stdout
    assert ("7 domain(s): 2 to migrate, 2 to shut down, 2 blocked, 1 left as they are. "
            "Nothing was changed.") in out.stdout
    out = ctl(d, "--json", "maintenance", "plan")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["domain"]: r["action"] for r in rows}["batch"] == "shutdown"
    assert all(set(r) == {"domain", "action", "reason"} and r["reason"] for r in rows)
    out = ctl(d, "maintenance", "frobnicate")
    assert out.returncode == 1 and "expected plan" in out.stderr


@contextlib.contextmanager
def migration_held_in_preparing():
    """A daemon with a migration of TEST_DOMAIN held in "preparing" by a destination (node5)
    whose libvirt never answers: a socket held open without a word. Yields (daemon, the
    migration's path, its id)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    d = Daemon()
    d.peers = {"node5": {"address": "127.0.0.5",
                         "libvirt_uri": f"test+tcp://127.0.0.1:{silent.getsockname()[1]}/default"}}
    try:
        with d:
            try:
                path = d.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node5", {})
                d.wait_property("State", "preparing", path, MIGRATION)
                yield d, path, d.prop("Id", path, MIGRATION)
            finally:
                silent.close()  # before the daemon stops: its worker waits on it
    finally:
        silent.close()


def test_a_guest_being_migrated_is_left_to_its_migration():
    """A running migration of a guest (held in "preparing" by a destination whose libvirt
    never answers: a socket this test holds open without a word) is what moves it: Plan says
    migrate and names it, and asks that destination nothing more."""
    with migration_held_in_preparing() as (d, path, mid):
        assert plan(d) == {TEST_DOMAIN: (
            "migrate", f"being migrated already to node5 by migration {mid}, which "
            f"moves it ('hostwardenctl migration show {mid}')")}
