"""A dedicated migration network (issue 21 item 5, docs/migration.md "Migration network"):
with [node] migration_address and the peers' [peer] migration_address set to the nodes' eth1
(a second link, bridge br1), the memory stream and the disks' NBD streams cross eth1, TLS
encrypted with the certificate that names the node (not its eth1 address), while eth0
carries only the libvirt control connection (port 16514)."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid as uuidlib

import pytest

import dirtyguest
import hwcapture
import hwcluster
import hwinstall
from hwevac import wait_for

BUS = "org.hostwarden.Warden1"
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
MIG_IFACE = "org.hostwarden.Warden1.Migration"
PORTS = range(49152, 49216)  # [migration] port_min/port_max, libvirt's defaults
PATTERN_KERNEL = "/var/lib/nova/instances/mignet-pattern.kernel"  # shared: both nodes
DISK_BYTE = 0x5A
# 16 MiB/s (memory and NBD alike): a speed tcpdump keeps up with on a loaded machine (at full
# speed it lost segments of a block migration); a capture that lost any proves nothing
CAPTURABLE = ("bandwidth", "t", "16")


def mignet_address(i: int) -> str:
    return f"10.77.1.1{i}"  # node i's eth1 (Cluster extra_links=1)


def config(i: int) -> str:
    # [firewall] as production: migration_sources lists the node network only
    # (hwinstall.FIREWALL); the table admits the peers' migration addresses by itself
    extra = f"[node]\nmigration_address = {mignet_address(i)}\n"
    return hwinstall.node_config(
        i, extra=extra, peer_lines=lambda j: f"migration_address = {mignet_address(j)}\n")


@pytest.fixture(scope="module")
def nodes():
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service", "hostwarden-firewall.service"), extra_links=1,
            configs={i: config(i) for i in (1, 2)}) as cluster:
        for n in cluster.nodes:
            assert n.link_addresses[1] == mignet_address(n.index)
        cluster.node(1).write_file(PATTERN_KERNEL, dirtyguest.pattern_kernel())
        yield cluster


def migrate(node, dom, dest, *opts):
    args = [str(len(opts) // 3), *opts] if opts else ["0"]
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "Migrate", "ssa{sv}", dom, dest,
                             *args]).stdout
    return json.loads(out)["data"][0]


def wait_final(node, path, timeout=180.0):
    def final():
        out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                                 "State", "Error"]).stdout
        state, error = [json.loads(line)["data"] for line in out.splitlines()]
        return (state, error) if state in ("completed", "failed", "aborted") else None
    result = wait_for(final, timeout)
    assert result, f"migration {path} did not end within {timeout} s"
    return result


def domstate(node, name):
    proc = node.virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def captured_migration(src, dst, dom, tmp_path, label, *opts):
    """Migrates DOM from SRC to DST through hostwardend while tcpdump captures every TCP
    segment on DST's eth0 and eth1: what each link saw."""
    captures = {ifname: hwcapture.Capture(dst, "tcp", tmp_path / f"{label}-{ifname}.pcap",
                                          interface=ifname)
                for ifname in ("eth0", "eth1")}
    with captures["eth0"], captures["eth1"]:
        state, error = wait_final(src, migrate(src, dom, dst.name, *opts))
    assert state == "completed", error
    assert domstate(dst, dom) == "running"
    return {ifname: c for ifname, c in captures.items()}


def report(label, seen):
    for ifname, s in seen.items():
        print(f"{label} {ifname}: {s.bytes} bytes in {s.flows} flows, dropped {s.dropped}")
        for note in s.notes:
            print(f"    {note}")


def assert_control_only(eth0: hwcapture.Seen, guest_bytes: int):
    """eth0: the libvirt control connection (16514) and nothing of the guest's size.
    Every flow has 16514 at its listening end, so none is a connection to a migration
    port; its client end is an ephemeral port, which may well lie in PORTS (Linux picks
    them from 32768-60999), so a port in that range alone proves nothing."""
    assert eth0.dropped == 0, eth0
    assert eth0.per_flow, "no libvirt control connection on eth0?"
    assert all(f.has_port(hwcluster.LIBVIRT_TLS_PORT) for f in eth0.per_flow), eth0.notes
    assert eth0.bytes < guest_bytes // 8, eth0.notes


def migration_flows(eth1: hwcapture.Seen):
    """Flows from node1's migration address to node2's migration ports."""
    return [f for f in eth1.per_flow
            if f.src == mignet_address(1) and f.dst == mignet_address(2) and f.dport in PORTS]


def test_memory_stream_crosses_the_migration_link_encrypted(nodes, tmp_path, record_timing):
    """A 32 MiB guest whose memory holds a known pattern (14 MiB of it) migrates with TLS
    ([migration] tls = auto: the nodes have QEMU's certificates, which name node2 and its
    eth0 address, not 10.77.1.12): the memory stream is on eth1, from node1's migration
    address to node2's, starts with a TLS handshake and carries none of the pattern; eth0
    carries the libvirt control connection only."""
    node1, node2 = nodes.nodes
    name = "mignet-live"
    xml = hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()), memory_mib=32,
                               kernel=PATTERN_KERNEL)
    hwcluster.define_and_start(node1, xml)
    try:
        word = f"{dirtyguest.PATTERN_WORD:08x}"
        assert wait_for(lambda: word in node1.virsh("qemu-monitor-command", "--hmp", name,
                                                    "xp /4wx 0x800000").stdout)
        t0 = time.monotonic()
        captures = captured_migration(node1, node2, name, tmp_path, "live", *CAPTURABLE)
        record_timing("migration over the migration link, 32 MiB guest", time.monotonic() - t0)
        pattern = dirtyguest.pattern_bytes()
        seen = {i: hwcapture.inspect(c, pattern) for i, c in captures.items()}
        report("live", seen)
        eth0, eth1 = seen["eth0"], seen["eth1"]
        assert eth1.dropped == 0, eth1
        flows = migration_flows(eth1)
        memory = max(flows, key=lambda f: f.bytes)
        assert memory.bytes > 14 << 20, eth1.notes
        assert memory.tls_hello, eth1.notes  # the source's ClientHello
        assert eth1.tls_handshake, eth1.notes  # and node2's ServerHello, which QEMU accepted
        assert eth1.pattern_hits == 0, eth1.notes
        assert eth0.pattern_hits == 0, eth0.notes
        assert_control_only(eth0, 32 << 20)
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


def test_block_migration_sends_the_disk_over_the_migration_link(nodes, tmp_path,
                                                                record_timing):
    """A guest with a node-local qcow2 disk holding 48 MiB of one byte value moves with block
    migration and TLS: the NBD stream and the memory stream are on eth1 (more than the disk's
    48 MiB there, none of the disk's bytes in the clear), eth0 carries the control connection
    only, and the copy on node2 has the data."""
    node1, node2 = nodes.nodes
    name = "mignet-block"
    image = f"/var/lib/libvirt/images/mignet-{uuidlib.uuid4().hex[:8]}.qcow2"  # node-local
    node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"])
    node1.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {DISK_BYTE:#x} 0 48M", image])
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>")
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()),
                                                           devices=disk))
    try:
        t0 = time.monotonic()
        captures = captured_migration(node1, node2, name, tmp_path, "block",
                                      "block", "b", "true", *CAPTURABLE)
        record_timing("block migration over the migration link, 48 MiB disk",
                      time.monotonic() - t0)
        seen = {i: hwcapture.inspect(c, bytes([DISK_BYTE]) * 64) for i, c in captures.items()}
        report("block", seen)
        eth0, eth1 = seen["eth0"], seen["eth1"]
        assert eth1.dropped == 0, eth1
        flows = migration_flows(eth1)
        # NBD: the server (node2's QEMU) greets with NBDMAGIC, then both switch to TLS
        # (NBD_OPT_STARTTLS); the memory stream is TLS from its first byte
        nbd_ports = {f.sport for f in eth1.per_flow if f.start.startswith(b"NBDMAGIC")}
        nbd = [f for f in flows if f.dport in nbd_ports]
        memory = [f for f in flows if f.dport not in nbd_ports]
        assert nbd and sum(f.bytes for f in nbd) > 48 << 20, eth1.notes
        assert memory and all(f.tls_hello for f in memory), eth1.notes
        assert eth1.pattern_hits == 0, eth1.notes  # the disk's bytes never in the clear
        assert eth0.pattern_hits == 0, eth0.notes
        assert_control_only(eth0, 48 << 20)
        out = node2.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c",
                         f"read -P {DISK_BYTE:#x} 0 48M", image]).stdout
        assert "read 50331648/50331648 bytes" in out, out
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
            n.run(["rm", "-f", image])


def migration_listeners(node) -> list[str]:
    """node's listening TCP sockets on a migration port, as "address:port"."""
    out = node.run(["ss", "-Hltn"]).stdout
    return [line.split()[3] for line in out.splitlines()
            if line.split()[3].rsplit(":", 1)[1].isdigit()
            and int(line.split()[3].rsplit(":", 1)[1]) in PORTS]


def test_the_destination_listens_on_its_migration_address_only(nodes):
    """While a block migration copies its disk (slowly: 1 MiB/s), node2's QEMU listens for
    the disks (NBD) and then the memory on 10.77.1.12 only, not on every address: a stream
    cannot arrive over the node network."""
    node1, node2 = nodes.nodes
    name = "mignet-listen"
    image = f"/var/lib/libvirt/images/mignet-{uuidlib.uuid4().hex[:8]}.qcow2"
    node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
    node1.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 8M", image])
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>")
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()),
                                                           devices=disk))
    try:
        path = migrate(node1, name, "node2", "block", "b", "true", "bandwidth", "t", "1")
        seen = wait_for(lambda: migration_listeners(node2), 60)
        assert seen, "node2's QEMU never listened on a migration port"
        assert all(a.rsplit(":", 1)[0] == mignet_address(2) for a in seen), seen
        state, error = wait_final(node1, path)
        assert state == "completed", error
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
            n.run(["rm", "-f", image])

def test_without_the_tls_name_qemu_refuses_the_certificate_on_the_migration_address(nodes):
    """Why hostwarden passes tls.destination: the same migration by hand (virsh, the
    parameters hostwarden passes but the TLS name) fails, because node2's certificate names
    node2 and 10.77.0.12, not 10.77.1.12; with --tls-destination node2 it lands."""
    node1, node2 = nodes.nodes
    name = "mignet-tlsname"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4())))
    args = ("--tls", "--migrateuri", f"tcp://{mignet_address(2)}", "--listen-address",
            mignet_address(2), "--persistent", "--undefinesource")
    try:
        proc = hwcluster.migrate(node1, node2, name, *args)
        assert proc.returncode != 0, proc.stdout
        # libvirt reports the source's error or the destination's, whichever comes first
        # ("Cannot read from TLS channel" there); the source's QEMU logs its own
        source_log = node1.read_file(f"/var/log/libvirt/qemu/{name}.log")
        why = [line for line in (proc.stderr + source_log).splitlines()
               if "certificate" in line.lower()]
        print(f"without --tls-destination: {proc.stderr.strip()} / {why}")
        assert why, (proc.stderr, source_log)
        assert domstate(node1, name) == "running" and domstate(node2, name) is None
        proc = hwcluster.migrate(node1, node2, name, *args, "--tls-destination", "node2")
        assert proc.returncode == 0, proc.stderr
        assert domstate(node2, name) == "running"
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)

V6_DROPIN = "/etc/hostwarden/hostwarden.conf.d/80-ipv6-migration-network.conf"


def test_an_ipv6_migration_address(nodes, tmp_path):
    """The migration addresses as IPv6 (each node's eth1 has fd77:1::(10+N) too): the
    stream URI has the address in brackets, node2's table admits node1's IPv6 migration
    address though its migration_sources hold fd77::/64 only, and the memory stream
    crosses eth1 over IPv6."""
    node1, node2 = nodes.nodes
    v6 = {1: "fd77:1::11", 2: "fd77:1::12"}
    name = "mignet-v6"
    node1.write_file(V6_DROPIN, f"[peer node2]\nmigration_address = {v6[2]}\n")
    node2.write_file(V6_DROPIN, f"[peer node1]\nmigration_address = {v6[1]}\n")
    reload(node1)
    reload(node2)
    xml = hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()), memory_mib=32,
                               kernel=PATTERN_KERNEL)
    hwcluster.define_and_start(node1, xml)
    try:
        assert v6[1] in nft_set(node2, "migration_sources6")
        word = f"{dirtyguest.PATTERN_WORD:08x}"
        assert wait_for(lambda: word in node1.virsh("qemu-monitor-command", "--hmp", name,
                                                    "xp /4wx 0x800000").stdout)
        capture = hwcapture.Capture(node2, "ip6 and tcp", tmp_path / "v6.pcap",
                                    interface="eth1")
        with capture:
            state, error = wait_final(node1, migrate(node1, name, "node2", *CAPTURABLE))
        assert state == "completed", error
        assert domstate(node2, name) == "running"
        seen = hwcapture.inspect(capture, dirtyguest.pattern_bytes())
        report("ipv6", {"eth1": seen})
        src, dst = (ipaddress.ip_address(a).packed.hex() for a in (v6[1], v6[2]))
        stream = [f for f in seen.per_flow if f.src == src and f.dst == dst and f.dport in PORTS]
        assert stream and max(f.bytes for f in stream) > 14 << 20, seen.notes
        assert all(f.tls_hello for f in stream) and seen.pattern_hits == 0, seen.notes
        assert seen.dropped == 0, seen
    finally:
        for n in nodes.nodes:
            n.run(["rm", "-f", V6_DROPIN])
            reload(n)
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)

FIREWALL = "/usr/libexec/hostwarden/hostwarden-firewall"
LISTEN_PORT = 49215  # the last migration port: no migration of these tests takes it
LISTENER = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{mignet_address(2)}", {LISTEN_PORT}))
s.listen(64)
while True:
    s.accept()[0].close()
"""


def connect_from(node, source: str, host: str, port: int) -> str:
    """A TCP connect from NODE, bound to its address SOURCE: "connected", "refused" (a
    reset: the firewall's reject for a migration source while the window is closed) or
    "timeout" (a dropped SYN)."""
    script = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(1.5)\n"
        f"s.bind(({source!r}, 0))\n"
        "try:\n"
        f"    s.connect(({host!r}, {port}))\n"
        "    print('connected')\n"
        "except ConnectionRefusedError:\n"
        "    print('refused')\n"
        "except TimeoutError:\n"
        "    print('timeout')\n")
    return node.run(["/usr/bin/python3", "-c", script], timeout=30).stdout.strip()


def nft_set(node, name: str) -> str:
    out = node.run(["nft", "list", "set", "inet", "hostwarden", name]).stdout
    return out.split("elements = {", 1)[1].split("}", 1)[0] if "elements" in out else ""


def test_the_window_opens_to_the_peers_migration_address(nodes):
    """migration_sources lists the node network only (10.77.0.0/24), yet node2's table
    admits node1's migration address (its [peer node1] migration_address, 10.77.1.11, from
    which node1's QEMU connects): a reset while the window is closed, a connection while it
    is open. Another address on the migration network (10.77.1.99) is dropped either way.
    The migrations above crossed this window too: without it their streams were dropped."""
    node1, node2 = nodes.nodes
    peer, stranger, target = mignet_address(1), "10.77.1.99", mignet_address(2)
    sources = nft_set(node2, "migration_sources4")
    assert peer in sources and "10.77.1.0/24" not in sources, sources
    node2.run(["systemd-run", "--quiet", "--unit=hwt-mignet-listener", "/usr/bin/python3",
               "-c", LISTENER])
    node1.run(["ip", "addr", "add", f"{stranger}/24", "dev", "eth1", "nodad"])
    try:
        # node2 itself reaches its listener (loopback is always accepted)
        assert wait_for(lambda: connect_from(node2, target, target, LISTEN_PORT)
                        == "connected", 10)
        node2.run([FIREWALL, "close-window"])
        assert connect_from(node1, peer, target, LISTEN_PORT) == "refused"
        assert connect_from(node1, stranger, target, LISTEN_PORT) == "timeout"
        node2.run([FIREWALL, "open-window"])
        assert peer in nft_set(node2, "migration_open4")
        assert connect_from(node1, peer, target, LISTEN_PORT) == "connected"
        assert connect_from(node1, stranger, target, LISTEN_PORT) == "timeout"
    finally:
        node2.run([FIREWALL, "close-window"], check=False)
        node2.run(["systemctl", "stop", "hwt-mignet-listener"], check=False)
        node1.run(["ip", "addr", "del", f"{stranger}/24", "dev", "eth1"], check=False)


MIGNET_CODES = ("migration-address", "peer-migration-address", "migration-network-certificate")
WRONG = "/etc/hostwarden/hostwarden.conf.d/90-wrong-migration-network.conf"


def check_node(node) -> dict[str, tuple[str, str]]:
    """CheckNode's findings about the migration network: {code: (severity, message)}."""
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckNode"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]
            if code in MIGNET_CODES}


def check_migration(node, dom, dest) -> dict[str, tuple[str, str]]:
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "CheckMigration", "ssa{sv}", dom,
                             dest, "0"]).stdout
    return {code: (sev, msg) for sev, code, msg in json.loads(out)["data"][0]}


def reload(node):
    node.run(BUSCTL + ["call", *NODE, "Reload"])


def test_check_node_reports_a_working_migration_network(nodes):
    node1, node2 = nodes.nodes
    found = check_node(node1)
    assert found["migration-address"][0] == "ok", found
    assert mignet_address(1) in found["migration-address"][1]
    assert found["peer-migration-address"] == (
        "ok", f"node2: migration streams go to {mignet_address(2)}, from {mignet_address(1)}")
    # the test certificates name node1, which peers check over the migration network
    assert found["migration-network-certificate"][0] == "ok", found


def test_a_wrong_migration_network_is_found_before_migrate_touches_the_guest(nodes):
    """node1 given a [node] migration_address on none of its interfaces and, for node2, a
    migration address no host has: CheckNode reports both as errors, CheckMigration names
    migration-network, and Migrate fails with it before anything moves: the guest runs on
    node1 still."""
    node1, node2 = nodes.nodes
    name = "mignet-wrong"
    node1.write_file(WRONG, "[node]\nmigration_address = 10.77.1.77\n"
                            "[peer node2]\nmigration_address = 10.77.1.99\n")
    reload(node1)
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4())))
    try:
        found = check_node(node1)
        assert found["migration-address"][0] == "error", found
        assert "10.77.1.77 is not an address of this node" in found["migration-address"][1]
        assert found["peer-migration-address"][0] == "error", found
        assert "10.77.1.99" in found["peer-migration-address"][1]
        predicted = check_migration(node1, name, "node2")
        assert predicted["migration-network"][0] == "error", predicted
        state, error = wait_final(node1, migrate(node1, name, "node2"))
        assert state == "failed" and "(migration-network)" in error, (state, error)
        assert domstate(node1, name) == "running"
        assert domstate(node2, name) is None
    finally:
        node1.run(["rm", "-f", WRONG])
        reload(node1)
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
    assert check_node(node1)["peer-migration-address"][0] == "ok"
