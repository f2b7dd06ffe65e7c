"""hostwarden-hook on real simulated nodes (issue 3, scenarios b and c).

(b) With hostwarden installed on node2, the guest whose VNC server listens on node1's
    address -- the migration that fails without it (test_vnc_migration.py) -- live-migrates
    with plain `virsh migrate --live --p2p`, and its live XML on node2 listens where node2's
    `[console] listen` says.
(c) Split-brain protection: a UUID on node2's deny list cannot start there, with the hook's
    message naming the owner node and time; another UUID starts. A fenced node starts and
    receives nothing, and a refused migration leaves the guest running on its source.
"""

from __future__ import annotations

import os
import shutil
import uuid as uuidlib
import xml.etree.ElementTree as ET

import pytest

import hwcluster
import hwinstall


@pytest.fixture(scope="module")
def stage_dir():
    path = hwinstall.stage()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def hw_cluster(stage_dir, record_timing):
    """node1 without hostwarden, node2 with it (installed before libvirtd starts) and its
    firewall on: the migrations into node2 pass through the window the hook opens."""
    cluster = hwcluster.Cluster(2, install_dir={2: stage_dir},
                                units=("hostwarden-firewall.service",))
    try:
        cluster.start()
        record_timing("boot 2 node(s) until libvirtd answers", cluster.boot_seconds)
        yield cluster
    finally:
        cluster.teardown()
        assert cluster.leftovers() == []


def configure(node: hwcluster.Node, text: str) -> None:
    """The hook reads its configuration on every call: no restart needed. The firewall is
    on, as in production (hwinstall.FIREWALL)."""
    node.write_file("/etc/hostwarden/hostwarden.conf",
                    f"[node]\nname = {node.name}\n" + text + "\n" + hwinstall.FIREWALL)


def cleanup(*nodes: hwcluster.Node, names=()) -> None:
    for node in nodes:
        for name in names:
            node.virsh("destroy", name, check=False)
            node.virsh("undefine", name, check=False)
        node.run("rm -rf /run/hostwarden", check=False)


def graphics_listens(node: hwcluster.Node, name: str) -> list[tuple[str, str | None, list]]:
    """(type, listen attribute, [listen child addresses]) of the live domain XML."""
    root = ET.fromstring(node.virsh("dumpxml", name).stdout)
    return [(g.get("type"), g.get("listen"), [l.get("address") for l in g.findall("listen")])
            for g in root.findall("./devices/graphics")]


def test_hook_is_installed_where_libvirt_runs_it(hw_cluster):
    node2 = hw_cluster.node(2)
    assert node2.run(["readlink", hwinstall.HOOK_LINK]).stdout.strip() == hwinstall.HOOK
    out = node2.run([hwinstall.HOOK, "--version"]).stdout
    assert out.startswith("hostwarden-hook "), out
    # and node1 really has none (the control for scenario a)
    assert node2.run(["test", "-e", hwinstall.HOOK_LINK], check=False).returncode == 0
    assert hw_cluster.node(1).run(["test", "-e", hwinstall.HOOK_LINK], check=False).returncode != 0


@pytest.mark.parametrize("mode", ["0.0.0.0", "node"])
def test_vnc_guest_bound_to_source_migrates_and_listens_per_config(hw_cluster, mode):
    node1, node2 = hw_cluster.nodes
    name = f"vnc-{mode.replace('.', '')}-{os.getpid()}"
    configure(node2, f"address = {node2.address}\n[console]\nlisten = {mode}\n")
    expect = "0.0.0.0" if mode == "0.0.0.0" else node2.address
    graphics = (f"<graphics type='vnc' listen='{node1.address}'>"
                f"<listen type='address' address='{node1.address}'/></graphics>")
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, graphics=graphics))
    try:
        proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource")
        assert proc.returncode == 0, proc.stderr
        assert node2.virsh("domstate", name).stdout.strip() == "running"
        assert name not in node1.virsh("list", "--all", "--name").stdout.split()
        assert graphics_listens(node2, name) == [("vnc", expect, [expect])]
        # QEMU on node2 really serves the console there
        display = node2.virsh("domdisplay", name).stdout.strip()
        assert display.startswith(f"vnc://{'localhost' if expect == '0.0.0.0' else expect}:") or \
            display.startswith(f"vnc://{expect}:"), display
        journal = node2.journal("SYSLOG_IDENTIFIER=hostwarden-hook")
        assert f"console of '{name}' moved to this node's listen address" in journal, journal
        # through the firewall: the migration ports were open only in the hook's window
        assert f"Migration window open for the incoming migration of '{name}'" in journal
        assert "tcp dport 49152-49215 drop" in node2.run(
            ["nft", "list", "table", "inet", "hostwarden"]).stdout
    finally:
        cleanup(node1, node2, names=[name])


def test_ipv6_console_migrates_over_ipv6(hw_cluster):
    node1, node2 = hw_cluster.nodes
    name = f"vnc6-{os.getpid()}"
    configure(node2, "[console]\nlisten = 0.0.0.0\n")
    graphics = f"<graphics type='vnc' listen='{node1.address6}'/>"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, graphics=graphics))
    try:
        proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource",
                                 ipv6=True)
        assert proc.returncode == 0, proc.stderr
        assert graphics_listens(node2, name) == [("vnc", "::", ["::"])]
    finally:
        cleanup(node1, node2, names=[name])


def test_keep_mode_reproduces_the_bind_error(hw_cluster):
    """With [console] listen = keep the hook leaves the address alone: the seeds' failure,
    and the guest keeps running on its source."""
    node1, node2 = hw_cluster.nodes
    name = f"vnc-keep-{os.getpid()}"
    configure(node2, "[console]\nlisten = keep\n")
    graphics = f"<graphics type='vnc' listen='{node1.address}'/>"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, graphics=graphics))
    try:
        proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource")
        assert proc.returncode != 0
        assert "Cannot assign requested address" in proc.stderr, proc.stderr
        assert node1.virsh("domstate", name).stdout.strip() == "running"
    finally:
        cleanup(node1, node2, names=[name])


def test_denied_uuid_cannot_start_while_another_starts(hw_cluster):
    node2 = hw_cluster.node(2)
    configure(node2, "")
    denied, allowed = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    node2.write_file(f"/run/hostwarden/deny/{denied}",
                     "owner=node3\nsince=2026-11-24T01:02:03Z\nevacuated_from=node2\n")
    # no hostwardend on this node to read a store: the operator's override lets starts
    # through, the deny list still decides
    node2.run(["hostwardenctl", "allow-unsynced-starts", "--reason",
               "hook-only test node, deny list written by the test"])
    names = [f"denied-{os.getpid()}", f"allowed-{os.getpid()}"]
    try:
        for name, uuid in zip(names, (denied, allowed)):
            node2.run(["virsh", "define", "/dev/stdin"],
                      input=hwcluster.domain_xml(name, uuid=uuid))
        proc = node2.virsh("start", names[0], check=False)
        assert proc.returncode != 0, "a denied instance started"
        assert "hostwarden: refusing to start domain" in proc.stderr, proc.stderr
        assert "evacuated to node 'node3' at 2026-11-24T01:02:03Z" in proc.stderr, proc.stderr
        assert node2.virsh("domstate", names[0]).stdout.strip() == "shut off"

        node2.virsh("start", names[1])
        assert node2.virsh("domstate", names[1]).stdout.strip() == "running"

        journal = node2.journal("MESSAGE_ID=be94857a800f4d1b983ace9d9418e187")
        assert f"refusing to start domain '{names[0]}' ({denied})" in journal, journal
    finally:
        cleanup(node2, names=names)


def test_fenced_node_refuses_starts_and_incoming_migrations(hw_cluster):
    node1, node2 = hw_cluster.nodes
    configure(node2, "[console]\nlisten = 0.0.0.0\n")
    node2.write_file("/run/hostwarden/node/fenced", "since=2026-11-24T02:00:00Z\nby=fence_ipmilan\n")
    local, moving = f"local-{os.getpid()}", f"moving-{os.getpid()}"
    try:
        node2.run(["virsh", "define", "/dev/stdin"], input=hwcluster.domain_xml(local))
        proc = node2.virsh("start", local, check=False)
        assert proc.returncode != 0
        assert "this node is fenced (since 2026-11-24T02:00:00Z, by fence_ipmilan)" in proc.stderr

        hwcluster.define_and_start(node1, hwcluster.domain_xml(moving))
        proc = hwcluster.migrate(node1, node2, moving, "--persistent", "--undefinesource")
        assert proc.returncode != 0, "a fenced node received a guest"
        assert "refusing to receive" in proc.stderr, proc.stderr
        # a failed migration leaves the guest running on the source
        assert node1.virsh("domstate", moving).stdout.strip() == "running"
        assert moving not in node2.virsh("list", "--all", "--name").stdout.split()
    finally:
        cleanup(node1, node2, names=[local, moving])
