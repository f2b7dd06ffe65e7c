"""hostwardend on a real simulated node: systemd (Type=notify), dbus-daemon with the
shipped bus policy, and polkitd with the shipped policy and rules (issue 5, first steps).
"""

from __future__ import annotations

import time

import pytest

import hwcluster
import hwinstall

BUSCTL, DEST = hwinstall.BUSCTL, hwinstall.NODE_API
CONFIG = "[node]\nname = node1\naddress = 10.77.0.11\n"


@pytest.fixture(scope="module")
def daemon_node(record_timing):
    with hwinstall.installed_cluster(1, configs=CONFIG,
                                     units=("hostwardend.service",)) as cluster:
        node = cluster.node(1)
        # two unprivileged users: alice, and bob in group hostwarden (sysusers made it)
        node.run("useradd -M alice && useradd -M -G hostwarden bob")
        yield node


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


def check_node(node: hwcluster.Node) -> dict[str, tuple[str, str]]:
    """CheckNode() as {code: (severity, message)} (the last finding of each code)."""
    import json
    out = node.run(BUSCTL + ["--json=short", "call", *DEST, "CheckNode"]).stdout
    return {code: (severity, message) for severity, code, message in json.loads(out)["data"][0]}


def test_check_node_reports_the_readiness_list(daemon_node):
    findings = check_node(daemon_node)
    assert set(findings) >= {"libvirt-listen", "hook-active", "firewall", "console-exposure",
                             "instances-path", "peer-resolvable", "migration-ports"}, findings
    assert findings["hook-active"][0] == "ok", findings["hook-active"]
    assert findings["migration-ports"][0] == "ok", findings["migration-ports"]
    # the harness's libvirtd listens on 16514 (TLS) only, as in production
    assert findings["libvirt-listen"][0] == "ok", findings["libvirt-listen"]
    assert "16514" in findings["libvirt-listen"][1]
    # TLS readiness: the run's CA signed the node's certificates, which name its address
    assert findings["libvirt-certificate"][0] == "ok", findings["libvirt-certificate"]
    assert findings["migration-certificate"][0] == "ok", findings["migration-certificate"]
    assert findings["libvirt-client-certificate"][0] == "ok"
    assert findings["migration-client-certificate"][0] == "ok"
    assert findings["migration-tls"] == (
        "ok", "migration streams are encrypted ([migration] tls = auto) with the certificates "
        "in /etc/pki/qemu"), findings["migration-tls"]
    assert findings["migration-tls-force"][0] == "warning"  # libvirt's default: 0
    # the instances directory is nova's; hostwardend's mark directory in it is root's
    assert findings["instances-writable"][0] == "ok", findings["instances-writable"]
    assert "post-copy" not in findings  # not permitted
    # defaults: no migration sources, consoles on 0.0.0.0 with nothing in front
    assert findings["firewall"][0] == "warning"
    assert "migration_sources is empty" in findings["firewall"][1]
    assert findings["console-exposure"][0] == "warning"
    # the shared directory of the test cluster is a local file system of the host
    assert findings["instances-path"][0] == "warning"


def test_check_node_says_to_restart_libvirt_when_the_hook_is_newer(daemon_node):
    daemon_node.run(["touch", "-h", "/etc/libvirt/hooks/qemu.d/50-hostwarden"])
    severity, message = check_node(daemon_node)["hook-active"]
    assert severity == "error"
    assert "restart libvirtd.service" in message, message
    daemon_node.restart_libvirtd()
    assert check_node(daemon_node)["hook-active"][0] == "ok"


def test_check_node_finds_port_mismatch_and_firewall_conflicts(daemon_node):
    daemon_node.write_file("/etc/hostwarden/hostwarden.conf.d/60-fw.conf",
                           "[firewall]\nmigration_sources = 10.77.0.12\n"
                           "[migration]\nport_max = 49300\n")
    daemon_node.run("nft add table ip legacy && "
                    "nft add chain ip legacy INPUT '{ type filter hook input priority 0; policy drop; }'")
    try:
        daemon_node.run(BUSCTL + ["call", *DEST, "Reload"])
        findings = check_node(daemon_node)
        assert findings["migration-ports"][0] == "error"
        assert "49152-49215" in findings["migration-ports"][1]
        assert findings["firewall"][0] == "ok", findings["firewall"]
        assert findings["firewall-conflict"][0] == "error"
        assert "table ip legacy, chain INPUT (hook input) has policy drop" in \
            findings["firewall-conflict"][1]
    finally:
        daemon_node.run(["nft", "delete", "table", "ip", "legacy"])
        daemon_node.run(["rm", "-f", "/etc/hostwarden/hostwarden.conf.d/60-fw.conf"])
        daemon_node.run(BUSCTL + ["call", *DEST, "Reload"])


def test_hostwardenctl_status_check_reload(daemon_node):
    import json
    out = daemon_node.run(["hostwardenctl", "status"]).stdout
    assert "Node: node1" in out and "Address: 10.77.0.11" in out, out
    status = json.loads(daemon_node.run(["hostwardenctl", "--json", "status"]).stdout)
    assert status["Name"] == "node1" and status["FirewallState"] == "unconfigured", status

    proc = daemon_node.run(["hostwardenctl", "check"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # warnings only on this node
    assert "hook-active" in proc.stdout and "0 error(s)" in proc.stdout, proc.stdout
    findings = json.loads(daemon_node.run(["hostwardenctl", "--json", "check"]).stdout)
    assert {f["check"] for f in findings} >= {"hook-active", "firewall"}, findings

    assert daemon_node.run(["hostwardenctl", "reload"], check=False).returncode == 0
    proc = as_user(daemon_node, "alice", "hostwardenctl", "--no-ask-password", "reload")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Could not reload: "), proc.stderr

    proc = daemon_node.run(["hostwardenctl", "frobnicate"], check=False)
    assert proc.returncode == 1 and "Unknown command 'frobnicate'" in proc.stderr


def test_a_slow_polkit_does_not_block_a_concurrent_read_only_call(daemon_node):
    import subprocess
    # a rule that makes polkit think for 3 s about alice
    daemon_node.write_file("/etc/polkit-1/rules.d/05-slow.rules",
                           'polkit.addRule(function(action, subject) {\n'
                           '  if (subject.user == "alice") {\n'
                           '    var t = Date.now(); while (Date.now() - t < 3000) {}\n'
                           '  }\n});\n')
    time.sleep(1)  # polkitd reloads its rules
    slow = subprocess.Popen(daemon_node._nsenter() + [
        "setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--",
        *BUSCTL, "--timeout=30", "call", *DEST, "Reload"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the slow authorization is under way
        t0 = time.monotonic()
        out = daemon_node.run(BUSCTL + ["get-property", *DEST, "Name"]).stdout
        fast = time.monotonic() - t0
        assert out.strip() == 's "node1"'
        assert fast < 1.5, f"a read-only call took {fast:.2f}s while polkit was busy"
        assert slow.poll() is None, "the slow authorization was not slow"
    finally:
        slow.communicate(timeout=30)
        daemon_node.run(["rm", "-f", "/etc/polkit-1/rules.d/05-slow.rules"])


def test_check_node_judges_the_tls_setup(daemon_node):
    """Certificates that do not name the node, or have expired; libvirt's migrate_tls_force
    against [migration] tls = no; post-copy that QEMU as libvirt-qemu cannot do."""
    import hwpki
    pki = hwpki.Pki("another CA")
    try:
        wrong = pki.issue("node9", ("10.77.0.99",), key_type="rsa", days=1)
    finally:
        pki.cleanup()
    qcert, lcert = "/etc/pki/qemu/server-cert.pem", "/etc/pki/libvirt/servercert.pem"
    conf = "/etc/hostwarden/hostwarden.conf.d/50-test.conf"
    daemon_node.run(f"cp {qcert} {qcert}.good && cp {lcert} {lcert}.good && "
                    "cp /etc/libvirt/qemu.conf /etc/libvirt/qemu.conf.good")
    try:
        daemon_node.write_file(qcert, wrong.cert)
        daemon_node.write_file(lcert, wrong.cert)
        findings = check_node(daemon_node)
        severity, message = findings["migration-certificate"]
        assert severity == "error" and "not signed by the CA" in message, message
        assert findings["libvirt-certificate"][0] == "error", findings["libvirt-certificate"]
        # signed by the CA, but for another name: the migration address is named
        signed = hwpki.shared().issue("node9", ("10.77.0.99",), key_type="rsa", days=10)
        daemon_node.write_file(qcert, signed.cert)
        daemon_node.write_file(lcert, signed.cert)
        severity, message = check_node(daemon_node)["migration-certificate"]
        assert severity == "error" and "does not name 10.77.0.11" in message, message
        severity, message = check_node(daemon_node)["libvirt-certificate"]
        assert severity == "error" and "does not name 10.77.0.11" in message, message
        # the right names, expiring within 30 days: a warning
        soon = hwpki.shared().issue("node1", ("10.77.0.11",), key_type="rsa", days=10)
        daemon_node.write_file(qcert, soon.cert)
        severity, message = check_node(daemon_node)["migration-certificate"]
        assert severity == "warning" and "renew it" in message, message
        # libvirt forces TLS, the node says no: every migration would be refused
        daemon_node.run("echo migrate_tls_force = 1 >> /etc/libvirt/qemu.conf")
        daemon_node.write_file(conf, "[migration]\ntls = no\npermit_post_copy = yes\n")
        daemon_node.run(BUSCTL + ["call", *DEST, "Reload"])
        findings = check_node(daemon_node)
        severity, message = findings["migration-tls"]
        assert severity == "error" and "migrate_tls_force = 1" in message, message
        assert findings["migration-tls-force"][0] == "ok"
        severity, message = findings["post-copy"]
        assert severity == "error" and "vm.unprivileged_userfaultfd" in message, message
    finally:
        daemon_node.run(f"mv {qcert}.good {qcert} && mv {lcert}.good {lcert} && "
                        f"mv /etc/libvirt/qemu.conf.good /etc/libvirt/qemu.conf && rm -f {conf}")
        daemon_node.run(BUSCTL + ["call", *DEST, "Reload"])
    findings = check_node(daemon_node)
    assert findings["migration-certificate"][0] == "ok"
    assert findings["migration-tls"][0] == "ok"


def test_check_node_flags_a_broken_node(daemon_node):
    link = "/etc/libvirt/hooks/qemu.d/50-hostwarden"
    target = daemon_node.run(["readlink", link]).stdout.strip()
    # libvirtd keeps the socket systemd handed it: stop both
    daemon_node.run("systemctl stop libvirtd-tls.socket libvirtd.service")
    daemon_node.run(["rm", link])
    try:
        findings = check_node(daemon_node)
        assert findings["libvirt-listen"][0] == "error", findings["libvirt-listen"]
        assert "does not listen for peers" in findings["libvirt-listen"][1]
        assert findings["hook-installed"][0] == "error", findings
        assert daemon_node.run(["hostwardenctl", "check"], check=False).returncode == 1
    finally:
        daemon_node.run(["ln", "-s", target, link])
        # plain TCP alone (libvirtd-tcp.socket, listened on by systemd): a warning
        daemon_node.run("systemctl start libvirtd-tcp.socket")
        findings = check_node(daemon_node)
        daemon_node.run("systemctl stop libvirtd-tcp.socket")
        assert findings["libvirt-listen"][0] == "warning", findings["libvirt-listen"]
        assert "16509 without TLS" in findings["libvirt-listen"][1]
        # the socket comes back only with libvirtd stopped first
        daemon_node.run("systemctl stop libvirtd.service && "
                        "systemctl start libvirtd-tls.socket libvirtd.service")
        assert check_node(daemon_node)["libvirt-listen"][0] == "ok"
