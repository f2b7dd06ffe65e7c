"""A guest's HA setting and the restart of a crashed guest (issue 22 item 2;
docs/recovery-restart.md), on real nodes: `hostwardenctl ha` writes the setting into the
guest's libvirt metadata, keeping the element's other attributes, and the store's copy of the
definition (what a rebuild on another node defines) follows; with [recovery] enable = yes, a
guest whose QEMU is killed (SIGKILL) is started again on the same node, each time in the
journal and the history, up to max_restart times, then moved to the other node (max_relocate
= 1) or left shut off (max_relocate = 0); with ha off, or recovery off, it stays shut off."""

from __future__ import annotations

import json
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from hwevac import ctl, definition, wait_for

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
NS = "https://hostwarden.org/xmlns/domain/1"
DROPIN = "/etc/hostwarden/hostwarden.conf.d/50-recovery.conf"
MSG_HA_SET = "5c1f0f8e3a2d4b7e9d6a41c2b8e07f13"
MSG_HA_RESTART = "0b7d3e92c64f4a1e8f25d9a6c3b1e470"
MSG_HA_GIVE_UP = "e8a4c2d61f9b4e03a7c5b2d9f6e18a34"
MSG_HA_RELOCATE = "7f3a9c1e5b2d48e6a0c4d8f2b6e91a57"
MAX_RESTART = 2


@pytest.fixture(scope="module")
def nodes():
    with hwevac.cluster_on_store("dir", 2) as cluster:
        yield cluster


@pytest.fixture
def guest(nodes):
    node1 = nodes.node(1)
    name, uuid = f"ha-{uuidlib.uuid4().hex[:8]}", str(uuidlib.uuid4())
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name, uuid=uuid))
    try:
        yield name, uuid
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)


@pytest.fixture(params=[0])
def recovery(nodes, request):
    """[recovery] enable = yes on node1 with max_relocate = the param (a drop-in and Reload),
    removed afterwards."""
    node1 = nodes.node(1)
    node1.write_file(DROPIN, f"[recovery]\nenable = yes\nmax_restart = {MAX_RESTART}\n"
                     f"max_relocate = {request.param}\n")
    node1.run(BUSCTL + ["call", *NODE, "Reload"])
    try:
        yield node1
    finally:
        node1.run(["rm", "-f", DROPIN])
        node1.run(BUSCTL + ["call", *NODE, "Reload"])


def journal(node, message_id, name):
    """The messages of MESSAGE_ID about domain NAME, oldest first."""
    out = node.run(["journalctl", "-q", "-o", "cat", f"MESSAGE_ID={message_id}",
                    f"HOSTWARDEN_DOMAIN={name}"], check=False).stdout
    return [line for line in out.splitlines() if line]


def qemu_pid(node, name) -> int | None:
    proc = node.run(["cat", f"/run/libvirt/qemu/{name}.pid"], check=False)
    return int(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None


def crash(node, name) -> int:
    """SIGKILL to the guest's QEMU, as an OOM kill or a segfault would end it."""
    pid = qemu_pid(node, name)
    assert pid, f"no QEMU pid for {name}"
    node.run(["kill", "-KILL", str(pid)])
    return pid


def state(node, name) -> str:
    return node.virsh("domstate", "--reason", name, check=False).stdout.strip()


def restart_history(node, name) -> list[dict]:
    proc = ctl(node, "history", "--json", name, check=False)
    rows = json.loads(proc.stdout) if proc.returncode == 0 else []
    return [r for r in rows if r["kind"] == "restart"]


def test_set_ha_keeps_other_attributes_and_travels_in_the_store(nodes, guest):
    node1, node2 = nodes.node(1), nodes.node(2)
    name, uuid = guest
    out = ctl(node1, "ha", name).stdout
    assert out == f"{name}: ha restart, priority 0 (the default: [recovery] default_ha)\n"

    # a setting a later version keeps beside ha and priority
    node1.virsh("metadata", name, "--uri", NS, "--key", "hostwarden", "--set",
                '<guest future="kept" ha="off"/>', "--config", "--live")
    ctl(node1, "ha", name, "restart", "--priority", "50")
    assert ctl(node1, "ha", name).stdout == \
        f"{name}: ha restart, priority 50 (its own setting)\n"
    for flag in ("--config", "--live"):
        meta = node1.virsh("metadata", name, "--uri", NS, flag).stdout
        assert 'future="kept"' in meta and 'ha="restart"' in meta and 'priority="50"' in meta, \
            (flag, meta)
    assert journal(node1, MSG_HA_SET, name), node1.journal("-u", "hostwardend", "-n", "30")

    # reconciliation saved the definition: what a rebuild on node2 would define
    assert wait_for(lambda: 'priority="50"' in definition(node1, uuid), timeout=60), \
        definition(node1, uuid)
    saved = definition(node2, uuid)
    assert 'ha="restart"' in saved and 'future="kept"' in saved and NS in saved, saved

    # the guest is not on node2: its daemon says so, and the CLI exits 1
    proc = ctl(node2, "ha", name, "off", check=False)
    assert proc.returncode == 1
    assert "NoSuchDomain" in proc.stderr or f"No domain '{name}'" in proc.stderr, proc.stderr


def restart_max_times(node1, name, uuid, record_timing=None):
    """MAX_RESTART crashes of NAME on NODE1, each restarted there; the time from the SIGKILL
    to the guest running again, the back-off included, for the report."""
    for i in range(1, MAX_RESTART + 1):
        began = time.monotonic()
        old = crash(node1, name)
        assert wait_for(lambda: len(journal(node1, MSG_HA_RESTART, name)) >= 2 * i
                        and state(node1, name).startswith("running")
                        and qemu_pid(node1, name) not in (None, old), timeout=120), \
            (state(node1, name), journal(node1, MSG_HA_RESTART, name),
             node1.journal("-u", "hostwardend", "-n", "40"))
        if record_timing:
            record_timing(f"ha: crash to running again, restart {i} (back-off {2 ** i} s)",
                          time.monotonic() - began)
        messages = journal(node1, MSG_HA_RESTART, name)
        # libvirt 9.0: a SIGKILLed QEMU is "stopped, failed" (and shut off, crashed)
        assert f"{name} crashed (its QEMU ended unexpectedly); restarting it here" in \
            messages[-2], messages
        assert f"(restart {i} of {MAX_RESTART} in 60 min)" in messages[-2], messages
        assert messages[-1] == f"{name} restarted here after its crash", messages
        rows = wait_for(lambda: len(restart_history(node1, name)) >= i and
                        restart_history(node1, name), timeout=60)
        assert [(r["result"], r["domain"], r["node"]) for r in rows] == \
            [("restarted", uuid, "node1")] * i, rows


def test_a_crashed_guest_is_restarted_up_to_max_restart(nodes, guest, recovery, record_timing):
    """max_relocate = 0: restarted MAX_RESTART times, then left shut off."""
    node1 = recovery
    name, uuid = guest
    ctl(node1, "ha", name, "restart")
    restart_max_times(node1, name, uuid, record_timing)

    # one crash more than max_restart in the window: left shut off, and said so
    crash(node1, name)
    assert wait_for(lambda: journal(node1, MSG_HA_GIVE_UP, name), timeout=120), \
        node1.journal("-u", "hostwardend", "-n", "40")
    assert "left shut off" in journal(node1, MSG_HA_GIVE_UP, name)[-1]
    assert state(node1, name) == "shut off (crashed)"
    rows = wait_for(lambda: len(restart_history(node1, name)) > MAX_RESTART and
                    restart_history(node1, name), timeout=60)
    assert rows[-1]["result"] == "given-up" and "max_restart" in rows[-1]["error"], rows
    assert len(journal(node1, MSG_HA_RESTART, name)) == 2 * MAX_RESTART


@pytest.mark.parametrize("recovery", [1], indirect=True)
def test_then_it_is_moved_to_another_node(nodes, guest, recovery, record_timing):
    """max_relocate = 1: after MAX_RESTART restarts here, the next crash moves the guest to
    node2 (a cold migration, confirmed) and starts it there; the record follows it."""
    node1, node2 = recovery, nodes.node(2)
    name, uuid = guest
    ctl(node1, "ha", name, "restart", "--priority", "7")
    restart_max_times(node1, name, uuid)
    began = time.monotonic()
    crash(node1, name)
    assert wait_for(lambda: hwevac.running(node2, name), timeout=240), \
        (journal(node1, MSG_HA_RELOCATE, name), node1.journal("-u", "hostwardend", "-n", "60"))
    record_timing("ha: crash to running on another node (relocation)", time.monotonic() - began)
    messages = wait_for(lambda: len(journal(node1, MSG_HA_RELOCATE, name)) >= 2 and
                        journal(node1, MSG_HA_RELOCATE, name), timeout=60)
    assert "moving it to another node (a cold migration, relocation 1 of 1)" in messages[0], \
        messages
    assert messages[1] == f"{name} moved to node2 after its crashes here, and started there"
    # confirmed: the copy here is gone, the record is node2's
    assert wait_for(lambda: node1.virsh("domstate", name, check=False).returncode != 0,
                    timeout=60)
    assert wait_for(lambda: hwevac.record(node2, uuid).get("owner") == "node2", timeout=60), \
        hwevac.record(node2, uuid)
    rows = wait_for(lambda: len(restart_history(node1, name)) > MAX_RESTART and
                    restart_history(node1, name), timeout=60)
    assert (rows[-1]["result"], rows[-1]["destination"]) == ("relocated", "node2"), rows
    # the setting went with it
    assert ctl(node2, "ha", name).stdout == f"{name}: ha restart, priority 7 (its own setting)\n"


def test_ha_off_stays_shut_off_and_a_destroy_is_no_crash(nodes, guest, recovery):
    node1 = recovery
    name, _ = guest
    # a destroy (the operator's) is not a crash: nothing is said, nothing restarted
    node1.virsh("destroy", name)
    node1.virsh("start", name)
    ctl(node1, "ha", name, "off")
    crash(node1, name)
    assert wait_for(lambda: journal(node1, MSG_HA_RESTART, name), timeout=60), \
        node1.journal("-u", "hostwardend", "-n", "40")
    assert journal(node1, MSG_HA_RESTART, name) == \
        [f"{name} crashed (its QEMU ended unexpectedly); its HA mode is off: left shut off"]
    assert state(node1, name) == "shut off (crashed)"
    assert restart_history(node1, name) == []


def test_no_restart_unless_recovery_is_enabled(nodes, guest):
    node1 = nodes.node(1)
    ctl(node1, "ha", guest[0], "restart")
    name, uuid = guest
    crash(node1, name)
    out = wait_for(lambda: node1.run(["journalctl", "-q", "-o", "cat",
                                      f"MESSAGE_ID={MSG_HA_RESTART}", f"HOSTWARDEN_UUID={uuid}"],
                                     check=False).stdout, timeout=60)
    assert out == f"Domain {uuid} crashed; [recovery] enable is off: left shut off\n", \
        node1.journal("-u", "hostwardend", "-n", "40")
    assert state(node1, name) == "shut off (crashed)"
    assert journal(node1, MSG_HA_RESTART, name) == []
