"""hostwardend on a real simulated node: systemd (Type=notify), dbus-daemon with the
shipped bus policy, and polkitd with the shipped policy and rules (issue 5, first steps).
"""

from __future__ import annotations

import shutil
import time

import pytest

import hwcluster
import hwinstall

BUSCTL = ["busctl", "--system"]
DEST = ["org.hostwarden.Warden1", "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node"]
CONFIG = "[node]\nname = node1\naddress = 10.77.0.11\n"


@pytest.fixture(scope="module")
def daemon_node(record_timing):
    stage = hwinstall.stage()
    cluster = hwcluster.Cluster(1, install_dir=stage, configs=CONFIG, units=("hostwardend.service",))
    try:
        cluster.start()
        node = cluster.node(1)
        # two unprivileged users: alice, and bob in group hostwarden (sysusers made it)
        node.run("useradd -M alice && useradd -M -G hostwarden bob")
        yield node
    finally:
        cluster.teardown()
        shutil.rmtree(stage, ignore_errors=True)
        assert cluster.leftovers() == []


def as_user(node: hwcluster.Node, user: str, *args: str, check: bool = False):
    return node.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
                     *args], check=check)


def test_daemon_is_a_notify_service_owning_its_name(daemon_node):
    assert daemon_node.unit_active("hostwardend.service")
    assert daemon_node.systemctl("show", "-p", "Type", "--value", "hostwardend").stdout.strip() == "notify"
    names = daemon_node.run(BUSCTL + ["list", "--acquired"]).stdout
    assert "org.hostwarden.Warden1" in names


def test_anyone_reads_the_node_properties(daemon_node):
    out = as_user(daemon_node, "alice", *BUSCTL, "get-property", *DEST, "Name", check=True).stdout
    assert out.strip() == 's "node1"'
    out = as_user(daemon_node, "alice", *BUSCTL, "get-property", *DEST, "Address", check=True).stdout
    assert out.strip() == 's "10.77.0.11"'
    out = daemon_node.run(BUSCTL + ["get-property", *DEST, "FirewallState"]).stdout
    assert out.strip() == 's "unconfigured"'  # no migration_sources: nftables left alone


def test_root_may_reload(daemon_node):
    proc = daemon_node.run(BUSCTL + ["call", *DEST, "Reload"], check=False)
    assert proc.returncode == 0, proc.stderr


def test_unprivileged_caller_needs_polkit_and_is_refused(daemon_node):
    proc = as_user(daemon_node, "alice", *BUSCTL, "call", *DEST, "Reload")
    assert proc.returncode != 0
    assert "Interactive authentication required for org.hostwarden.manage-node" in proc.stderr, \
        proc.stderr
    # a site rule that says no: a plain refusal, no challenge
    daemon_node.write_file("/etc/polkit-1/rules.d/10-deny-alice.rules",
                           'polkit.addRule(function(action, subject) {\n'
                           '  if (subject.user == "alice") return polkit.Result.NO;\n});\n')
    try:
        # dbus-send shows the error's own message (busctl abbreviates AccessDenied)
        send = ["dbus-send", "--system", "--print-reply", "--dest=org.hostwarden.Warden1",
                "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node.Reload"]
        for _ in range(50):  # polkitd picks up new rules by itself
            proc = as_user(daemon_node, "alice", *send)
            if "not authorized" in proc.stderr:
                break
            time.sleep(0.1)
        assert proc.returncode != 0
        assert "org.freedesktop.DBus.Error.AccessDenied: Access denied: not authorized for " \
               "org.hostwarden.manage-node" in proc.stderr, proc.stderr
    finally:
        daemon_node.run(["rm", "-f", "/etc/polkit-1/rules.d/10-deny-alice.rules"])


def test_group_hostwarden_is_granted_by_the_shipped_rules(daemon_node):
    proc = as_user(daemon_node, "bob", *BUSCTL, "call", *DEST, "Reload")
    assert proc.returncode == 0, proc.stderr


def test_reload_with_a_broken_config_names_file_and_line_and_keeps_serving(daemon_node):
    daemon_node.write_file("/etc/hostwarden/hostwarden.conf.d/50-typo.conf",
                           "[migration]\nmax_concurrent = lots\n")
    try:
        proc = daemon_node.run(BUSCTL + ["call", *DEST, "Reload"], check=False)
        assert proc.returncode != 0
        assert "50-typo.conf:2: [migration] max_concurrent = 'lots'" in proc.stderr, proc.stderr
        out = daemon_node.run(BUSCTL + ["get-property", *DEST, "Name"]).stdout
        assert out.strip() == 's "node1"'
    finally:
        daemon_node.run(["rm", "-f", "/etc/hostwarden/hostwarden.conf.d/50-typo.conf"])


def test_without_polkit_unprivileged_callers_are_denied(daemon_node):
    daemon_node.run("systemctl mask --runtime polkit.service && systemctl stop polkit.service")
    try:
        proc = as_user(daemon_node, "bob", *BUSCTL, "call", *DEST, "Reload")
        assert proc.returncode != 0
        assert "denied" in proc.stderr, proc.stderr
        # root still may
        assert daemon_node.run(BUSCTL + ["call", *DEST, "Reload"], check=False).returncode == 0
    finally:
        daemon_node.run("systemctl unmask --runtime polkit.service")
