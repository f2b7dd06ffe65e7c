"""The seeds' VNC problem, reproduced on real libvirt/QEMU (no hostwarden).

Scenario (a): a guest whose VNC server listens on the *source node's*
address cannot be live-migrated: the destination QEMU is started with the
same ``-vnc <source address>`` and cannot bind it.  The control guests
(no graphics, or listening on 0.0.0.0) migrate fine.

Later scenarios (hostwarden's hook rewriting the listen address on the
destination) will use the same cluster helpers.
"""

from __future__ import annotations

import os
import time

import pytest

import hwcluster


def _domains(node: hwcluster.Node) -> dict[str, str]:
    """{name: state} of all domains (running or only defined) on NODE."""
    out = node.virsh("list", "--all", "--name").stdout.split()
    return {name: node.virsh("domstate", name).stdout.strip() for name in out}


def _remove(node: hwcluster.Node, name: str) -> None:
    node.virsh("destroy", name, check=False)
    node.virsh("undefine", name, check=False)


def test_vnc_listen_on_source_address_breaks_live_migration(module_cluster, record_timing):
    node1, node2 = module_cluster.nodes
    name = f"vnc-source-{os.getpid()}"
    graphics = f"<graphics type='vnc' listen='{node1.address}'/>"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, graphics=graphics))
    try:
        # QEMU on node1 really listens on node1's address (port 5900 + n).
        display = node1.virsh("domdisplay", name).stdout.strip()
        assert display.startswith(f"vnc://{node1.address}:"), display

        t0 = time.monotonic()
        proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource")
        record_timing("failed migration (VNC bind error)", time.monotonic() - t0)

        assert proc.returncode != 0, "migration unexpectedly succeeded"
        # What libvirt 9.0 / QEMU 7.2 say, e.g.:
        #   error: internal error: process exited while connecting to monitor:
        #   ... qemu-system-x86_64: -vnc 10.77.0.11:0,audiodev=audio1:
        #   Failed to bind socket: Cannot assign requested address
        assert "Failed to bind socket: Cannot assign requested address" in proc.stderr, proc.stderr
        assert f"-vnc {node1.address}:" in proc.stderr, proc.stderr

        # The guest is unharmed on the source and nothing is left on node2.
        assert _domains(node1).get(name) == "running"
        assert name not in _domains(node2)
    finally:
        _remove(node1, name)


@pytest.mark.parametrize(
    "graphics",
    [None, "<graphics type='vnc' listen='0.0.0.0'/>"],
    ids=["no-graphics", "vnc-0.0.0.0"],
)
def test_control_guest_live_migrates(module_cluster, record_timing, graphics):
    node1, node2 = module_cluster.nodes
    name = f"control-{'vnc' if graphics else 'nographics'}-{os.getpid()}"
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, graphics=graphics))
    try:
        t0 = time.monotonic()
        proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource")
        record_timing("live migration p2p, idle 64 MiB TCG guest", time.monotonic() - t0)
        assert proc.returncode == 0, proc.stderr

        # Running (and persistently defined) on node2, gone from node1.
        assert _domains(node2).get(name) == "running"
        assert node2.virsh("dominfo", name).stdout.count("Persistent:     yes") == 1
        assert name not in _domains(node1)
        job = node2.virsh("domjobinfo", "--completed", name).stdout
        assert "Completed" in job, job
        if graphics:
            display = node2.virsh("domdisplay", name).stdout.strip()
            assert display.startswith("vnc://"), display
    finally:
        _remove(node1, name)
        _remove(node2, name)
