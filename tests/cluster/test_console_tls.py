"""Consoles encrypted between proxy and QEMU (issue 21 item 3, the seeds' "Securing connections
to the VNC console of an instance"): [console] tls = yes, tls_min_version = tlsv1.2 and
tls_ciphers; `hostwardenctl setup-console-tls` on both nodes; a guest's VNC console then
speaks only VeNCrypt with x509 certificates, TLS 1.3 and 1.2 clients with a listed cipher are
accepted, a TLS 1.1 client, a cipher outside the list and a plain VNC client are refused, and
so it stays after a live migration to the other node. The client (rfbtls.py) runs on the
other node, as a console proxy would, with a client certificate of the cluster's CA."""

from __future__ import annotations

import datetime
import json
import os
import re
import time

import pytest

import hwcluster
import hwinstall
from hwevac import ctl, running, wait_for

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
CONSOLE = ("[console]\ntls = yes\ntls_min_version = tlsv1.2\n"
           "tls_ciphers = AES-256-GCM:CHACHA20-POLY1305\n")
# the proxies: the test network (node2 plays the proxy of node1's consoles and back)
FIREWALL = ("[firewall]\nmigration_sources = 10.77.0.0/24 fd77::/64\n"
            "console_clients = 10.77.0.0/24\n")
PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305"
PROXY = "/etc/hwt-proxy"  # the test proxy's certificate, key and CA, on each node
CLIENT = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rfbtls.py")).read()

# what the proxy tries, and what the setting says of it
TLS13 = {"min": "TLSv1_3"}
TLS12_LISTED = {"max": "TLSv1_2", "ciphers": "ECDHE-RSA-AES256-GCM-SHA384"}
TLS12_UNLISTED = {"max": "TLSv1_2", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}
# OpenSSL 3 refuses TLS 1.1 at its default security level: level 0 lets the client offer it
TLS11 = {"min": "TLSv1_1", "max": "TLSv1_1", "ciphers": "DEFAULT:@SECLEVEL=0"}


@pytest.fixture(scope="module")
def nodes(record_timing):
    configs = {i: hwinstall.node_config(i, extra=CONSOLE + FIREWALL) for i in (1, 2)}
    with hwinstall.installed_cluster(2, units=("hostwardend.service",),
                                     configs=configs) as cluster:
        proxy = cluster.pki.issue("console-proxy", server=False, client=True)
        for n in cluster.nodes:
            n.write_file(f"{PROXY}/ca.pem", cluster.pki.ca_cert)
            n.write_file(f"{PROXY}/cert.pem", proxy.cert)
            n.write_file(f"{PROXY}/key.pem", proxy.key, mode=0o600)
        yield cluster


def check(node) -> dict:
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckNode"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]}


def connect(proxy, node, port: int, mode: str = "tls", **opts) -> dict:
    """The RFB client on PROXY against NODE's console PORT."""
    opts = {"ca": f"{PROXY}/ca.pem", "cert": f"{PROXY}/cert.pem", "key": f"{PROXY}/key.pem",
            "server_name": node.address, **opts}
    out = proxy.run(["python3", "-", node.address, str(port), mode, json.dumps(opts)],
                    input=CLIENT, timeout=60).stdout
    return json.loads(out)


def console_port(node, name: str) -> int:
    display = node.virsh("vncdisplay", name).stdout.strip()
    m = re.search(r":(\d+)$", display)
    assert m, display
    return 5900 + int(m[1])


def journal(node, since: str) -> str:
    return node.run(["journalctl", "-q", "-u", "hostwardend", "--since", since, "-o", "cat"],
                    check=False).stdout


def priority_window(node, name: str) -> float:
    """Seconds from libvirt's start of the guest's QEMU (the last "starting up" of its log) to
    hostwardend's "TLS priority set": how long its console had QEMU's default priority."""
    log = node.read_file(f"/var/log/libvirt/qemu/{name}.log")
    started = [line for line in log.splitlines() if ": starting up " in line][-1]
    t0 = datetime.datetime.strptime(started.split("+")[0], "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    out = node.run(["journalctl", "-q", "-u", "hostwardend", "-o", "short-unix"]).stdout
    done = [line for line in out.splitlines() if f"Console of {name}: TLS priority set" in line]
    return float(done[-1].split()[0]) - t0


def priority_set(node, name: str, since: str) -> bool:
    return f"Console of {name}: TLS priority set" in journal(node, since)


def assert_tls_only(proxy, node, name: str) -> None:
    port = console_port(node, name)
    plain = connect(proxy, node, port, "plain")
    assert plain["types"] == [19] and plain["result"] == "refused", plain

    r = connect(proxy, node, port, **TLS13)
    assert r["result"] == "accepted" and r["tls"] == "TLSv1.3" and r["name"] == f"QEMU ({name})", r
    assert r["cipher"] in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"), r
    r = connect(proxy, node, port, **TLS12_LISTED)
    assert r["result"] == "accepted" and r["tls"] == "TLSv1.2" and r["name"] == f"QEMU ({name})", r

    r = connect(proxy, node, port, **TLS12_UNLISTED)
    assert r["result"] == "refused" and "TLS handshake" in r["detail"], r
    r = connect(proxy, node, port, **TLS11)
    assert r["result"] == "refused" and "TLS handshake" in r["detail"], r
    # no client certificate of the CA: no console (vnc_tls_x509_verify = 1)
    r = connect(proxy, node, port, **TLS13, cert="")
    assert r["result"] == "refused", r


def assert_check_ok_with_one_console(node) -> None:
    """CheckNode's console-tls is ok, counting one console (hostwardend has recorded that it
    set the priority, just after it logged it)."""
    assert wait_for(lambda: check(node)["console-tls"][0] == "ok", timeout=30), \
        check(node)["console-tls"]
    sev, msg = check(node)["console-tls"]
    assert "1 running console(s), all with TLS" in msg, (sev, msg)


def test_setup_console_tls_writes_libvirt_side_and_check_node_follows(nodes):
    node1, node2 = nodes.nodes
    sev, msg = check(node1)["console-tls"]
    assert sev == "error" and "does not set vnc_tls" in msg and "setup-console-tls" in msg, msg
    # a guest that runs before: its console stays plain until it restarts or migrates
    early = f"tlsearly-{os.getpid()}"
    since = node1.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    hwcluster.define_and_start(node1, hwcluster.domain_xml(
        early, graphics="<graphics type='vnc' listen='0.0.0.0'/>"))
    try:
        setup_both_nodes(nodes)
        sev, msg = check(node1)["console-tls"]
        plain = f"without TLS, started before libvirt had vnc_tls = 1: {early}"
        assert sev == "warning" and plain in msg, msg
        # hostwardend found nothing to set on it when it started
        assert wait_for(lambda: f"Console of {early} has no TLS" in journal(node1, since),
                        timeout=60), journal(node1, since)
    finally:
        node1.virsh("destroy", early, check=False)
        node1.virsh("undefine", early, check=False)
    sev, msg = check(node1)["console-tls"]
    assert sev == "ok" and PRIORITY in msg and "0 running console(s)" in msg, (sev, msg)


def setup_both_nodes(nodes) -> None:
    """setup-console-tls as an operator runs it, what it writes, then libvirtd restarted."""
    node1 = nodes.node(1)
    # Debian's qemu.conf has the settings commented out, as libvirt ships it: kept as they are
    node1.run("printf '#vnc_tls = 1\\n#vnc_tls_x509_verify = 1\\n' >> /etc/libvirt/qemu.conf")
    dry = ctl(node1, "setup-console-tls", "--dry-run").stdout
    assert "Would set in /etc/libvirt/qemu.conf" in dry and "\n  vnc_tls = 1\n" in dry, dry
    assert "\n  vnc_tls_x509_verify = 1\n" in dry, dry
    assert node1.run(["test", "-e", "/etc/pki/libvirt-vnc"], check=False).returncode != 0

    for n in nodes.nodes:
        out = ctl(n, "setup-console-tls").stdout
        assert "Restart libvirtd" in out and PRIORITY in out, out
        assert "BEGIN" not in out  # never a key, nor a certificate
    conf = node1.read_file("/etc/libvirt/qemu.conf")
    assert "\nvnc_tls = 1\n" in conf and 'vnc_tls_x509_cert_dir = "/etc/pki/libvirt-vnc"' in conf
    assert "\nvnc_tls_x509_verify = 1\n" in conf and f'vnc_tls_priority = "{PRIORITY}"' in conf
    assert 'migration_host = "10.77.0.11"' in conf  # the harness' own settings are kept
    assert "\n#vnc_tls = 1\n#vnc_tls_x509_verify = 1\n" in conf, conf
    modes = node1.run(["stat", "-c", "%n %a %U:%G", "/etc/pki/libvirt-vnc/ca-cert.pem",
                       "/etc/pki/libvirt-vnc/server-cert.pem",
                       "/etc/pki/libvirt-vnc/server-key.pem"]).stdout.split("\n")
    assert modes[0].endswith(" 644 root:root") and modes[1].endswith(" 644 root:root"), modes
    assert modes[2].endswith(" 640 root:libvirt-qemu"), modes  # QEMU reads it, nobody else

    again = ctl(node1, "setup-console-tls").stdout
    assert "Unchanged /etc/libvirt/qemu.conf" in again and "Restart" not in again, again
    assert node1.read_file("/etc/libvirt/qemu.conf") == conf
    sev, msg = check(node1)["console-tls"]
    assert sev == "error" and "restart libvirtd" in msg, msg
    assert check(node1)["console-certificate"][0] == "ok"
    for n in nodes.nodes:
        n.restart_libvirtd()


def test_console_accepts_only_tls_per_setting_and_keeps_it_when_migrated(nodes,
                                                                          record_timing):
    node1, node2 = nodes.nodes
    name = f"tlscons-{os.getpid()}"
    since = node1.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    hwcluster.define_and_start(node1, hwcluster.domain_xml(
        name, graphics="<graphics type='vnc' listen='0.0.0.0'/>"))
    try:
        assert wait_for(lambda: priority_set(node1, name, since), timeout=60)
        record_timing("QEMU started to console priority set (start)",
                      priority_window(node1, name))
        assert_tls_only(node2, node1, name)
        # what it costs (docs/console-tls.md): libvirt notes the monitor command in the log
        assert "custom-monitor" in node1.read_file(f"/var/log/libvirt/qemu/{name}.log")
        assert_check_ok_with_one_console(node1)

        t0 = time.monotonic()
        since = node2.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
        ctl(node1, "migrate", "--wait", name, "node2", timeout=300)
        record_timing("live migration of a guest with a TLS console", time.monotonic() - t0)
        assert wait_for(lambda: running(node2, name), timeout=60)
        assert wait_for(lambda: priority_set(node2, name, since), timeout=60)
        record_timing("QEMU started to console priority set (incoming migration)",
                      priority_window(node2, name))
        assert_tls_only(node1, node2, name)
        assert_check_ok_with_one_console(node2)
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_reload_applies_a_new_min_version_to_running_consoles(nodes):
    """tls_min_version = tlsv1.3 in a drop-in and a reload: the running guest's console refuses
    TLS 1.2 from then on, and CheckNode says qemu.conf is behind (setup-console-tls)."""
    node1, node2 = nodes.nodes
    name = f"tlsreload-{os.getpid()}"
    dropin = "/etc/hostwarden/hostwarden.conf.d/50-tls13.conf"
    since = node1.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    hwcluster.define_and_start(node1, hwcluster.domain_xml(
        name, graphics="<graphics type='vnc' listen='0.0.0.0'/>"))
    try:
        assert wait_for(lambda: priority_set(node1, name, since), timeout=60)
        port = console_port(node1, name)
        assert connect(node2, node1, port, **TLS12_LISTED)["result"] == "accepted"

        node1.write_file(dropin, "[console]\ntls_min_version = tlsv1.3\n")
        ctl(node1, "reload")
        assert wait_for(lambda: connect(node2, node1, port, **TLS12_LISTED)["result"]
                        == "refused", timeout=60)
        r = connect(node2, node1, port, **TLS13)
        assert r["result"] == "accepted" and r["tls"] == "TLSv1.3", r
        sev, msg = check(node1)["console-tls"]
        assert sev == "error" and "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL" in msg \
            and "setup-console-tls" in msg, msg
    finally:
        node1.run(["rm", "-f", dropin])
        ctl(node1, "reload")
        node1.virsh("destroy", name, check=False)
        node1.virsh("undefine", name, check=False)


def test_without_hostwardend_the_console_keeps_qemus_default_priority(nodes):
    """The control: the same client's TLS 1.1 works against a console whose priority nobody
    set (hostwardend stopped): the refusals above are the setting's, not the client's."""
    node1, node2 = nodes.nodes
    name = f"tlsdefault-{os.getpid()}"
    node1.systemctl("mask", "--runtime", "hostwardend.service")
    node1.systemctl("stop", "hostwardend.service")
    try:
        hwcluster.define_and_start(node1, hwcluster.domain_xml(
            name, graphics="<graphics type='vnc' listen='0.0.0.0'/>"))
        r = connect(node2, node1, console_port(node1, name), **TLS11)
        assert r["result"] == "accepted" and r["tls"] == "TLSv1.1", r
    finally:
        node1.virsh("destroy", name, check=False)
        node1.virsh("undefine", name, check=False)
        node1.systemctl("unmask", "--runtime", "hostwardend.service")
        node1.systemctl("start", "hostwardend.service")
