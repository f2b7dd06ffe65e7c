"""Helpers of the evacuation tests (test_evacuation, test_evacuation_faults): the nodes'
configuration with fence agents against their ipmi_sim BMCs, and what the tests ask a node
(records, domain states, EvacuateFrom)."""

from __future__ import annotations

import json
import time

import hwcluster
import hwinstall

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
SHARED = hwcluster.INSTANCES_PATH


def config(i: int, n: int, bmc_password: str) -> str:
    """node I of N: fast heartbeats, max_concurrent 2, every peer fenced by fence_ipmilan
    against its BMC."""
    text = (f"[node]\nname = node{i}\naddress = 10.77.0.1{i}\n"
            "[cluster]\nheartbeat_interval = 500ms\ndown_after = 3s\n"
            "[migration]\nmax_concurrent = 2\n")
    for j in range(1, n + 1):
        if j == i:
            continue
        text += (f"[peer node{j}]\naddress = 10.77.0.1{j}\n"
                 f"libvirt_uri = qemu+tcp://10.77.0.1{j}/system\n" + fencing(j, bmc_password))
    return text


def fencing(j: int, bmc_password: str) -> str:
    """The fence_agent and fence_options lines of [peer nodeJ]: fence_ipmilan against node
    J's ipmi_sim BMC (hwcluster.Cluster(bmc=True, bmc_password=...))."""
    options = (f"ip={hwcluster.BMC_ADDRESS}\n    ipport={hwcluster.BMC_PORT_BASE + j}\n"
               f"    username={hwcluster.BMC_USER}\n    password={bmc_password}\n"
               "    lanplus=1\n    cipher=3\n")
    return f"fence_agent = fence_ipmilan\nfence_options = {options}"


def ctl(node, *args, check=True, timeout=180):
    return node.run(["hostwardenctl", "--no-ask-password", *args], check=check, timeout=timeout)


def list_nodes(node) -> dict:
    """ListNodes as NODE sees it: name -> (name, address, state, fence, ...)."""
    out = node.run(BUSCTL + ["--json=short", "call", *NODE, "ListNodes"]).stdout
    return {n[0]: n for n in json.loads(out)["data"][0]}


def record(node, uuid) -> dict:
    """The instance record of UUID on shared storage ({} if there is none)."""
    text = node.run(["cat", f"{SHARED}/.hostwarden/instances/{uuid}"], check=False).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def records(node) -> set[str]:
    out = node.run(["ls", f"{SHARED}/.hostwarden/instances"], check=False).stdout
    return {x for x in out.split() if len(x) == 36}


def running(node, name) -> bool:
    proc = node.virsh("domstate", name, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "running"


def wait_for(predicate, timeout=20.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def shared_files(node) -> set[str]:
    out = node.run(["find", SHARED, "-path", f"{SHARED}/.hostwarden", "-prune", "-o",
                    "-type", "f", "-print"]).stdout
    return set(out.split())


def evacuate_from(node, source):
    """EvacuateFrom(SOURCE) on NODE: {uuid: (result, name or message)}, or the error text."""
    proc = node.run(BUSCTL + ["--json=short", "call", *NODE, "EvacuateFrom", "sa{sv}", source,
                              "0"], check=False, timeout=300)
    if proc.returncode != 0:
        return proc.stderr
    return {r[0]: (r[1], r[2]) for r in json.loads(proc.stdout)["data"][0]}
