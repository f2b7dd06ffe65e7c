"""Evacuation and fencing on three real nodes with ipmi_sim BMCs (issue 7): Fence runs the
real fence_ipmilan against the node's BMC and records the result; Rebuild/EvacuateFrom are
refused unless the source is down and fenced, keep UUID, MACs and disks, re-create a lost
local disk from its base image or refuse; the fenced node comes back and none of its old
guests runs there; EvacuateLive drains a node."""

from __future__ import annotations

import json
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall

BUS = "org.hostwarden.Warden1"
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
PASSWORD = f"bmc-{uuidlib.uuid4().hex[:12]}"
N = 3


def config(i: int, cluster_password: str) -> str:
    text = (f"[node]\nname = node{i}\naddress = 10.77.0.1{i}\n"
            "[cluster]\nheartbeat_interval = 500ms\ndown_after = 3s\n"
            "[migration]\nmax_concurrent = 2\n")
    for j in range(1, N + 1):
        if j == i:
            continue
        options = (f"ip={hwcluster.BMC_ADDRESS}\n    ipport={hwcluster.BMC_PORT_BASE + j}\n"
                   f"    username={hwcluster.BMC_USER}\n    password={cluster_password}\n"
                   "    lanplus=1\n    cipher=3\n")
        text += (f"[peer node{j}]\naddress = 10.77.0.1{j}\n"
                 f"libvirt_uri = qemu+tcp://10.77.0.1{j}/system\n"
                 f"fence_agent = fence_ipmilan\nfence_options = {options}")
    return text


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            N, units=("hostwardend.service",), bmc=True, bmc_password=PASSWORD,
            configs={i: config(i, PASSWORD) for i in range(1, N + 1)}) as cluster:
        cluster.node(2).run("useradd -M alice")
        yield cluster


def ctl(node, *args, check=True, timeout=180):
    return node.run(["hostwardenctl", "--no-ask-password", *args], check=check, timeout=timeout)


def list_nodes(node):
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "ListNodes"]).stdout
    return {n[0]: n for n in json.loads(out)["data"][0]}


def gdbus(node, method, *args, check=False):
    return node.run(["gdbus", "call", "--system", "--dest", BUS, "--object-path",
                     "/org/hostwarden/Warden1", "--method",
                     f"org.hostwarden.Warden1.Node.{method}", *args], check=check, timeout=180)


def test_fence_status_runs_the_real_agent_and_records_the_result(nodes):
    node1, node2 = nodes.node(1), nodes.node(2)
    out = ctl(node2, "fence", "node1", "status").stdout
    assert out.strip() == "node1: power on", out
    assert list_nodes(node2)["node1"][3] == "on"
    assert node1.alive
    # The BMC was asked (ipmi_sim ran its chassis control), the password never logged.
    journal = node2.journal("-u", "hostwardend")
    assert "Fence agent fence_ipmilan reports node node1 on" in journal, journal
    assert PASSWORD not in journal


def test_fence_validates_then_authorizes(nodes):
    node2 = nodes.node(2)
    bad = gdbus(node2, "Fence", "node1", "reboot")
    assert "InvalidArgs" in bad.stderr and "status" in bad.stderr, bad.stderr
    own = gdbus(node2, "Fence", "node2", "off")
    assert "InvalidArgs" in own.stderr and "cannot fence itself" in own.stderr, own.stderr
    unknown = gdbus(node2, "Fence", "node9", "status")
    assert "NoSuchNode" in unknown.stderr, unknown.stderr
    refused = node2.run(["setpriv", "--reuid=alice", "--regid=alice", "--clear-groups",
                         "hostwardenctl", "--no-ask-password", "fence", "node1", "off"],
                        check=False)
    assert refused.returncode != 0 and "nteractive authentication required" in refused.stderr, \
        refused.stderr
    assert nodes.node(1).alive


def test_a_wrong_bmc_password_fails_clearly_and_changes_nothing(nodes):
    node2 = nodes.node(2)
    conf = node2.read_file("/etc/hostwarden/hostwarden.conf")
    try:
        node2.write_file("/etc/hostwarden/hostwarden.conf", conf.replace(PASSWORD, "wrong-pw-1"))
        ctl(node2, "reload")
        out = ctl(node2, "fence", "node1", "off", check=False)
        assert out.returncode != 0 and "FenceFailed" not in out.stdout
        assert "fence_ipmilan exited with status 1" in out.stderr, out.stderr
        assert "wrong-pw-1" not in out.stderr
        assert nodes.node(1).alive
        assert list_nodes(node2)["node1"][3] == "on"  # as recorded before
        assert "wrong-pw-1" not in node2.journal("-u", "hostwardend")
    finally:
        node2.write_file("/etc/hostwarden/hostwarden.conf", conf)
        ctl(node2, "reload")
