"""Fencing without a BMC, the node's own side (issue 22, item 3; docs/recovery-self-fence.md).

Two nodes on an etcd store whose only member runs on node1, so that cutting node2 from
node1 cuts node2 from its store (and node1 keeps it). With [recovery] enable = yes and
self_fence = yes, node2 declares self_fence_after in its record before it counts on it;
cut off, it destroys its guest and powers itself off, not before self_fence_after and
within a generous deadline after it. With self_fence = no, the same cut leaves node2 and
its guest running. The peers' side (taking node2 as off, rebuilding its guest) is not
tested here.
"""

from __future__ import annotations

import json
import os
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwevac
import hwinstall
from faults_daemons import cut, heal
from hwevac import ETCD_PREFIX, ctl, etcdctl, running, wait_for

HEARTBEAT = 1.0
DOWN_AFTER = 3.0
SELF_FENCE_AFTER = 8.0
MEMBERS = (1,)  # etcd on node1 only: a node2 cut from node1 is cut from its store
DROPIN = "/etc/hostwarden/hostwarden.conf.d/50-hwtest-self-fence.conf"
RUNTIME_MARKER = "/run/hostwarden/self-fence"  # dbus/self-fence.h SELF_FENCE_MARKER
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
MESSAGE_SELF_FENCE = "7bbc46bbec1e407f956be117d0b7fdcf"  # lib/log.h HW_MESSAGE_SELF_FENCE


@pytest.fixture(scope="module")
def nodes():
    extra = hwevac.etcd_config(MEMBERS) + "[recovery]\nenable = yes\n"
    configs = {i: hwinstall.node_config(i, 2, extra=extra, heartbeat=f"{HEARTBEAT:g}s",
                                        down_after=f"{DOWN_AFTER:g}s") for i in (1, 2)}
    files = {i: hwevac.etcd_files(i, 2, members=MEMBERS) for i in (1, 2)}
    with hwinstall.installed_cluster(2, units=("hostwardend.service",), configs=configs,
                                     files=files) as cluster:
        cluster.hw_store = "etcd"
        cluster.hw_etcd_members = MEMBERS  # for hwevac.etcdctl()
        yield cluster


def node_record(node, name) -> dict:
    """NAME's node record in etcd, as NODE reads it ({} if there is none)."""
    text = etcdctl(node, "get", "--print-value-only", f"{ETCD_PREFIX}/nodes/{name}",
                   check=False).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def store_state(node) -> str:
    out = node.run(BUSCTL + ["--json=short", "get-property", *NODE, "StoreState"],
                   check=False).stdout
    return json.loads(out)["data"] if out else ""


def write_dropin(node, self_fence: bool) -> None:
    node.write_file(DROPIN, f"[recovery]\nself_fence = {'yes' if self_fence else 'no'}\n"
                            f"self_fence_after = {SELF_FENCE_AFTER:g}s\n")


def configure(node, self_fence: bool) -> None:
    """NODE's [recovery] self_fence, and hostwardend restarted on it, attached again."""
    write_dropin(node, self_fence)
    node.systemctl("restart", "hostwardend.service")
    assert wait_for(lambda: store_state(node) == "attached", timeout=60), store_state(node)


def start_guest(node, name) -> str:
    uuid = str(uuidlib.uuid4())
    hwcluster.define_and_start(node, hwcluster.domain_xml(name, uuid))
    assert wait_for(lambda: running(node, name), timeout=60)
    return uuid


def qemu_log_after_poweroff(node, name) -> str:
    """libvirt's log of guest NAME on NODE, read from the node's disk (the upper layer of its
    root, which outlives its power-off)."""
    path = os.path.join(node.dir, "rw", "upper", "var", "log", "libvirt", "qemu", f"{name}.log")
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# Runs first: the next test powers node2 off for good.
def test_without_self_fence_a_node_cut_from_its_store_keeps_running(nodes):
    node1, node2 = nodes.node(1), nodes.node(2)
    configure(node2, self_fence=False)
    name = "sf-no"
    start_guest(node2, name)
    # the record declares nothing (no self_fence_after field, or 0)
    assert wait_for(lambda: node_record(node1, "node2").get("heartbeat"), timeout=30)
    assert int(node_record(node1, "node2").get("self_fence_after", "0")) == 0, \
        node_record(node1, "node2")

    cut(node2, node1)
    try:
        assert wait_for(lambda: store_state(node2) == "lost", timeout=60), \
            "node2's heartbeat still gets through: the cut did not cut its store"
        # An observation window, not a wait for a condition: nothing may happen in it. It
        # lasts self_fence_after plus 6 s from the cut (a node that self-fenced would have by
        # then), sampling node2 and its guest all along.
        end = time.monotonic() + SELF_FENCE_AFTER + 6
        while time.monotonic() < end:
            assert node2.alive, "node2 powered itself off with self_fence = no"
            assert running(node2, name), f"{name} stopped on node2 with self_fence = no"
            time.sleep(0.5)  # the window's sampling period
        assert not node2.journal(f"MESSAGE_ID={MESSAGE_SELF_FENCE}").strip()
    finally:
        heal(node2)
    assert wait_for(lambda: store_state(node2) == "attached", timeout=60)
    node2.virsh("destroy", name, check=False)
    node2.virsh("undefine", name, check=False)


def test_self_fence_powers_off_a_node_cut_from_its_store(nodes):
    node1, node2 = nodes.node(1), nodes.node(2)
    configure(node2, self_fence=True)
    name, other = "sf-yes", "sf-yes-2"  # two guests: destroyed at once, a thread each
    start_guest(node2, name)
    start_guest(node2, other)

    # declared in the store before it is counted on: node2's record as node1 reads it
    declared = int(SELF_FENCE_AFTER * 1e6)
    assert wait_for(lambda: node_record(node1, "node2").get("self_fence_after")
                    == str(declared), timeout=30), node_record(node1, "node2")
    assert wait_for(lambda: "Self-fencing armed" in node2.journal(
        f"MESSAGE_ID={MESSAGE_SELF_FENCE}"), timeout=30), node2.journal("-u", "hostwardend")
    # a hostwardend that stops withdraws it first (its peers must not count on a promise no
    # one keeps), and declares it again when it is back
    node2.systemctl("stop", "hostwardend.service")
    assert int(node_record(node1, "node2").get("self_fence_after", "0")) == 0, \
        node_record(node1, "node2")
    node2.systemctl("start", "hostwardend.service")
    assert wait_for(lambda: node_record(node1, "node2").get("self_fence_after")
                    == str(declared), timeout=30), node_record(node1, "node2")
    assert wait_for(lambda: node2.journal(f"MESSAGE_ID={MESSAGE_SELF_FENCE}").count(
        "Self-fencing armed") == 2, timeout=30), node2.journal("-u", "hostwardend")
    assert running(node2, name)
    # a reload that turns it off disarms once a heartbeat declared nothing; on again, armed
    write_dropin(node2, self_fence=False)
    ctl(node2, "reload")
    assert wait_for(lambda: int(node_record(node1, "node2").get("self_fence_after", "0")) == 0,
                    timeout=30), node_record(node1, "node2")
    assert wait_for(lambda: "Self-fencing disarmed" in node2.journal(
        f"MESSAGE_ID={MESSAGE_SELF_FENCE}"), timeout=30), node2.journal("-u", "hostwardend")
    assert node2.run(["test", "-e", RUNTIME_MARKER], check=False).returncode != 0
    write_dropin(node2, self_fence=True)
    ctl(node2, "reload")
    assert wait_for(lambda: node2.journal(f"MESSAGE_ID={MESSAGE_SELF_FENCE}").count(
        "Self-fencing armed") == 3, timeout=30), node2.journal("-u", "hostwardend")
    assert node_record(node1, "node2").get("self_fence_after") == str(declared)

    cut(node2, node1)
    assert_self_fences(node1, node2, [name, other], time.monotonic())


# Runs after the one above: node2 is booted again first.
def test_a_hostwardend_killed_while_cut_off_still_fences(nodes):
    """The promise outlives the process that made it: hostwardend killed (SIGKILL, no
    withdrawal) at the cut, the one systemd restarts cannot reach the store, and still fences
    at the time the first one declared (from <runtime dir>/self-fence)."""
    node1, node2 = nodes.node(1), nodes.node(2)
    if not node2.alive:
        node2.boot()
    heal(node2)  # the cut table lives in node2's network namespace, which outlives a boot
    configure(node2, self_fence=True)
    name = "sf-crash"
    start_guest(node2, name)
    assert wait_for(lambda: node2.run(["test", "-s", RUNTIME_MARKER], check=False).returncode
                    == 0, timeout=30), "no self-fence marker in node2's runtime directory"

    cut(node2, node1)
    t_cut = time.monotonic()
    node2.systemctl("kill", "--kill-whom=main", "--signal=KILL", "hostwardend.service")
    # the hostwardend systemd started again took the promise over (seen before node2 goes:
    # its journal is volatile)
    resumed = wait_for(lambda: resumed_or_off(node2), timeout=SELF_FENCE_AFTER + 90)
    assert resumed == "resumed", "node2 went off before its new hostwardend said it resumed"
    assert_self_fences(node1, node2, [name], t_cut)


def resumed_or_off(node) -> str:
    try:
        if "Self-fencing resumed" in node.journal(f"MESSAGE_ID={MESSAGE_SELF_FENCE}"):
            return "resumed"
    except hwcluster.HarnessError:
        pass
    return "" if node.alive else "off"


def assert_self_fences(node1, node2, names, t_cut) -> None:
    """NODE2, cut from its store at T_CUT, destroys its guests NAMES and powers off, not before
    self_fence_after and within a generous deadline after it; node1 stays."""
    # node2 powers off: its PID 1 ends (the namespace's init, ended by reboot() in it)
    off = wait_for(lambda: not node2.alive, timeout=SELF_FENCE_AFTER + 90, interval=0.1)
    elapsed = time.monotonic() - t_cut
    print(f"node2 powered itself off {elapsed:.1f} s after the cut "
          f"(self_fence_after {SELF_FENCE_AFTER:g} s, heartbeat_interval {HEARTBEAT:g} s)")
    assert off, f"node2 still runs {elapsed:.0f} s after it was cut from its store"
    # Not before self_fence_after: it counts from the start of its last heartbeat that got
    # through, at most one heartbeat_interval before the cut (plus the 0.1 s of polling).
    assert elapsed >= SELF_FENCE_AFTER - HEARTBEAT - 0.1, \
        f"node2 powered off {elapsed:.1f} s after the cut, before self_fence_after"
    # its guests were destroyed by hostwardend before the power went (libvirt wrote why),
    # not killed with the node
    for name in names:
        log = qemu_log_after_poweroff(node2, name)
        assert "shutting down, reason=destroyed" in log, f"{name}: {log[-2000:]}"
    # the power-off ended node2 only
    assert node1.alive
    assert store_state(node1) == "attached"
