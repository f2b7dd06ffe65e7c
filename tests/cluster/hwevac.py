"""Helpers of the evacuation tests (test_evacuation, faults_power, faults_daemons): the nodes'
configuration with fence agents against their ipmi_sim BMCs, and what the tests ask a node
(records, domain states, EvacuateFrom)."""

from __future__ import annotations

import json
import time

import hwcluster
import hwinstall

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
SHARED = hwcluster.INSTANCES_PATH


ETCD_UNIT = "hwtest-etcd.service"
ETCD_PREFIX = "/hostwarden"  # hostwardend's (store-etcd.c)


def etcd_endpoints(n: int) -> list[str]:
    """The client URLs of the etcd members on nodes 1..N (one member on each node)."""
    return [f"http://10.77.0.1{j}:2379" for j in range(1, n + 1)]


def etcd_files(i: int, n: int) -> dict[str, str]:
    """Files of node I of N for store = etcd: a member of the cluster the N nodes form (a
    unit of the node's systemd, Type=notify: started once the cluster has a leader), and
    hostwardend ordered after it."""
    peers = ",".join(f"node{j}=http://10.77.0.1{j}:2380" for j in range(1, n + 1))
    unit = ("[Unit]\nDescription=etcd member of the hostwarden test cluster\n"
            "[Service]\nType=notify\n"
            f"ExecStart=/usr/bin/etcd --name node{i} --data-dir /var/lib/hwtest-etcd "
            f"--listen-client-urls http://10.77.0.1{i}:2379 "
            f"--advertise-client-urls http://10.77.0.1{i}:2379 "
            f"--listen-peer-urls http://10.77.0.1{i}:2380 "
            f"--initial-advertise-peer-urls http://10.77.0.1{i}:2380 "
            f"--initial-cluster {peers} --initial-cluster-state new "
            "--initial-cluster-token hwtest\n")
    return {f"/etc/systemd/system/{ETCD_UNIT}": unit,
            "/etc/systemd/system/hostwardend.service.d/hwtest-etcd.conf":
                f"[Unit]\nWants={ETCD_UNIT}\nAfter={ETCD_UNIT}\n"}


def etcdctl(node, *args, check=True):
    """etcdctl (API v3) inside NODE against every member."""
    n = len(node.cluster.nodes)
    return node.run(["env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=2s",
                     "--command-timeout=5s", "--endpoints", ",".join(etcd_endpoints(n)), *args],
                    check=check, timeout=60)


def uses_etcd(node) -> bool:
    return getattr(node.cluster, "hw_store", "dir") == "etcd"


def config(i: int, n: int, bmc_password: str, store: str = "dir") -> str:
    """node I of N: fast heartbeats, max_concurrent 2, every peer fenced by fence_ipmilan
    against its BMC; the store in the shared directory or in the nodes' etcd cluster."""
    text = (f"[node]\nname = node{i}\naddress = 10.77.0.1{i}\n"
            "[cluster]\nheartbeat_interval = 500ms\ndown_after = 3s\n")
    if store == "etcd":
        text += f"store = etcd\netcd_endpoints = {' '.join(etcd_endpoints(n))}\n"
    text += "[migration]\nmax_concurrent = 2\n"
    for j in range(1, n + 1):
        if j == i:
            continue
        text += f"[peer node{j}]\naddress = 10.77.0.1{j}\n" + fencing(j, bmc_password)
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
    """The instance record of UUID in the store ({} if there is none)."""
    if uses_etcd(node):
        text = etcdctl(node, "get", "--print-value-only", f"{ETCD_PREFIX}/instances/{uuid}",
                       check=False).stdout
    else:
        text = node.run(["cat", f"{SHARED}/.hostwarden/instances/{uuid}"], check=False).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def records(node) -> set[str]:
    """The UUIDs of the instance records in the store."""
    if uses_etcd(node):
        out = etcdctl(node, "get", "--prefix", "--keys-only", f"{ETCD_PREFIX}/instances/",
                      check=False).stdout
        return {x.rsplit("/", 1)[-1] for x in out.split() if len(x.rsplit("/", 1)[-1]) == 36}
    out = node.run(["ls", f"{SHARED}/.hostwarden/instances"], check=False).stdout
    return {x for x in out.split() if len(x) == 36}


def definition(node, uuid) -> str:
    """The saved definition (domain XML) of UUID in the store ("" if there is none)."""
    if uses_etcd(node):
        return etcdctl(node, "get", "--print-value-only", f"{ETCD_PREFIX}/definitions/{uuid}",
                       check=False).stdout
    return node.run(["cat", f"{SHARED}/.hostwarden/definitions/{uuid}.xml"], check=False).stdout


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
    out = node.run(["find", SHARED, "-path", f"{SHARED}/.hostwarden*", "-prune", "-o",
                    "-type", "f", "-print"]).stdout
    return set(out.split())


def evacuate_from(node, source):
    """EvacuateFrom(SOURCE) on NODE: {uuid: (result, name or message)}, or the error text."""
    proc = node.run(BUSCTL + ["--json=short", "call", *NODE, "EvacuateFrom", "sa{sv}", source,
                              "0"], check=False, timeout=300)
    if proc.returncode != 0:
        return proc.stderr
    return {r[0]: (r[1], r[2]) for r in json.loads(proc.stdout)["data"][0]}
