"""Abort, ForceComplete and the timeout action at every phase of a migration, live and
block (issue 19, item 7): the guest ends where the last accepted word of the operator says,
no accepted request is lost, and what a failed block migration made on the destination
(temporary pools, partial copies) is removed. The firewall is on (test_migration.CONFIG).

Phases: queued (test_migration.test_max_concurrent_queues_the_rest), preparing (the
destination's libvirtd stopped with SIGSTOP holds the preflight there), copying disks (a
block migration at 4 MiB/s), copying memory (a guest that dirties memory faster than the
bandwidth: it never converges by itself), switchover (ForceComplete pauses the guest,
then an Abort races the end)."""

from __future__ import annotations

import json
import threading
import uuid as uuidlib

import pytest

import hwcluster
from hwevac import wait_for
from test_migration import (BUS, BUSCTL, MIG_IFACE, SLOW, domstate, guest, mig_call, migrate,  # noqa: F401
                            nodes, persistent, props, wait_final, wait_running, window_open)

IMAGE_DIR = "/var/lib/libvirt/images"  # node-local: a block migration copies it


@pytest.fixture
def block_guest(nodes):
    """A guest on node1 with a local 48 MiB-filled qcow2 disk; removed after the test from
    both nodes, with its image."""
    made = []

    def start(name):
        image = f"{IMAGE_DIR}/{name}.qcow2"
        node1 = nodes.node(1)
        node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"])
        node1.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 48M", image])
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>")
        hwcluster.define_and_start(node1, hwcluster.domain_xml(
            name, uuid=str(uuidlib.uuid4()), devices=disk))
        made.append((name, image))
        return image
    yield start
    for name, image in made:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
            n.run(["rm", "-f", image])


def disk_copy_under_way(node, path) -> bool:
    out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE, "State",
                             "DiskProcessed"]).stdout
    state, done = [json.loads(line)["data"] for line in out.splitlines()]
    assert state in ("preparing", "running"), state
    return state == "running" and done > 0


def file_exists(node, path) -> bool:
    return node.run(["test", "-e", path], check=False).returncode == 0


def no_leftovers_on_destination(node1, node2, image):
    """Nothing of a failed block migration stays on the destination: libvirt leaves the
    copy it created there, hostwardend removes it."""
    assert f"removed the partial copy {image} on node2" in node1.journal("-u", "hostwardend")
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout
    assert not file_exists(node2, image), f"the partial copy {image} stayed on node2"
    assert wait_for(lambda: not window_open(node2), 15), "the migration window stayed open"


def test_abort_while_preparing_is_kept_until_the_copy_would_start(nodes, guest):
    """The destination's libvirtd does not answer (stopped): the migration is preparing
    (its preflight waits for the destination). An Abort then is answered only once the
    migration has ended, aborted, without the copy ever starting."""
    node1, node2 = nodes.nodes
    guest("ctl-prep")
    node2.run("kill -STOP $(pidof libvirtd)")
    try:
        path = migrate(node1, "ctl-prep", "node2")
        assert props(node1, path)["State"] == "preparing"
        answer = {}
        caller = threading.Thread(
            target=lambda: answer.update(proc=mig_call(node1, path, "Abort")))
        caller.start()
        caller.join(3)
        assert caller.is_alive(), "Abort answered while the migration was still preparing"
    finally:
        node2.run("kill -CONT $(pidof libvirtd)")
    caller.join(60)
    assert answer["proc"].returncode == 0, answer["proc"].stderr
    final = wait_final(node1, path)
    assert final["State"] == "aborted", final
    assert "before the copy started" in final["Error"], final
    assert final["MemoryProcessed"] == 0, final
    assert domstate(node1, "ctl-prep") == "running" and persistent(node1, "ctl-prep")
    assert domstate(node2, "ctl-prep") is None


def test_abort_while_copying_disks_cleans_the_destination(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-abort")
    path = migrate(node1, "ctl-blk-abort", "node2", "block", "b", "true", "bandwidth", "t",
                   "4")
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    assert file_exists(node2, image)  # the copy being made
    proc = mig_call(node1, path, "Abort")
    assert proc.returncode == 0, proc.stderr  # answered after the end: the guest stayed
    final = props(node1, path)
    assert final["State"] == "aborted", final
    assert domstate(node1, "ctl-blk-abort") == "running"
    assert domstate(node2, "ctl-blk-abort") is None
    no_leftovers_on_destination(node1, node2, image)
    # the source's disk is whole
    out = node1.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 48M",
                     image]).stdout
    assert "read 50331648/50331648 bytes" in out, out


def test_force_complete_while_copying_disks_lands_the_guest_running(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-force")
    path = migrate(node1, "ctl-blk-force", "node2", "block", "b", "true", "bandwidth", "t",
                   "4", "post-copy", "b", "false")
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    assert mig_call(node1, path, "ForceComplete").returncode == 0
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "completed", final
    assert domstate(node2, "ctl-blk-force") == "running"  # paused to complete, resumed there
    assert domstate(node1, "ctl-blk-force") is None
    assert file_exists(node2, image)
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout


def test_timeout_action_abort_while_copying_disks_cleans_the_destination(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-timeout")
    # 2 s per GiB, counted as 2 GiB (memory) + 1 (disk): 6 s, the copy takes 12 s
    path = migrate(node1, "ctl-blk-timeout", "node2", "block", "b", "true", "bandwidth", "t",
                   "4", "completion-timeout", "t", "2", "timeout-action", "s", "abort")
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "aborted" and "completion-timeout" in final["Error"], final
    assert domstate(node1, "ctl-blk-timeout") == "running"
    no_leftovers_on_destination(node1, node2, image)


def test_the_last_word_wins_at_the_switchover(nodes, guest):
    """ForceComplete pauses a guest that never converges, then an Abort races the end of
    the copy. Either the Abort is answered with success and the guest runs on the source
    (resumed), or it is refused as too late and the guest runs on the destination; never
    an accepted Abort with the guest gone."""
    node1, node2 = nodes.nodes
    guest("ctl-switch", dirty=True)
    path = migrate(node1, "ctl-switch", "node2", *SLOW)
    wait_running(node1, path)
    assert mig_call(node1, path, "ForceComplete").returncode == 0
    answer = {}
    caller = threading.Thread(target=lambda: answer.update(proc=mig_call(node1, path, "Abort")))
    caller.start()
    caller.join(60)
    final = wait_final(node1, path)
    proc = answer["proc"]
    if proc.returncode == 0:
        assert final["State"] == "aborted", final
        assert domstate(node1, "ctl-switch") == "running"
        assert domstate(node2, "ctl-switch") is None
    else:
        assert "completed before the abort took effect" in proc.stderr, proc.stderr
        assert final["State"] == "completed", final
        assert domstate(node2, "ctl-switch") == "running"
        assert domstate(node1, "ctl-switch") is None
