"""Helpers of the evacuation tests (test_evacuation, faults_power, faults_daemons): the nodes'
configuration with fence agents against their ipmi_sim BMCs, and what the tests ask a node
(records, domain states, EvacuateFrom)."""

from __future__ import annotations

import contextlib
import json
import os
import time

import hwcluster
import hwinstall
import hwpki

BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
SHARED = hwcluster.INSTANCES_PATH


ETCD_UNIT = "hwtest-etcd.service"
ETCD_PREFIX = "/hostwarden"  # hostwardend's (store-etcd.c)
# The members' certificates (server and peer: one certificate of node I's names, usable
# both ways, as etcd's own JSON gateway presents it to the member too) and hostwardend's
# client certificate, from the run's CA (hwpki).  The keys are made private by the units
# that read them (ExecStartPre): the harness writes every file 0644.
ETCD_PKI = "/etc/hwtest-etcd"
HW_ETCD_PKI = "/etc/hostwarden/etcd"
HW_ETCD_CA = f"{HW_ETCD_PKI}/ca.pem"
HW_ETCD_CERT = f"{HW_ETCD_PKI}/client.pem"
HW_ETCD_KEY = f"{HW_ETCD_PKI}/client-key.pem"


def etcd_members(members) -> tuple[int, ...]:
    """The indexes of the nodes with an etcd member: 1..MEMBERS (an int: one on every node),
    or MEMBERS itself (e.g. (4,): one member on a storage node, as a control plane)."""
    return tuple(range(1, members + 1)) if isinstance(members, int) else tuple(members)


def etcd_endpoints(members) -> list[str]:
    """The client URLs of the etcd members (etcd_members())."""
    return [f"https://10.77.0.1{j}:2379" for j in etcd_members(members)]


def etcd_config(members) -> str:
    """The [cluster] lines of hostwardend's configuration for the etcd of MEMBERS
    (etcd_members()): TLS with the run's CA and the node's client certificate."""
    return (f"store = etcd\netcd_endpoints = {' '.join(etcd_endpoints(members))}\n"
            f"etcd_cacert = {HW_ETCD_CA}\netcd_cert = {HW_ETCD_CERT}\n"
            f"etcd_key = {HW_ETCD_KEY}\n")


@contextlib.contextmanager
def cluster_on_store(store: str, n: int):
    """N installed nodes running hostwardend on a "dir" or an "etcd" store (every node an
    etcd member), as cluster.hw_store says."""
    extra = etcd_config(n) if store == "etcd" else ""
    files = {i: etcd_files(i, n) if store == "etcd" else {} for i in range(1, n + 1)}
    with hwinstall.installed_cluster(
            n, units=("hostwardend.service",),
            configs={i: hwinstall.node_config(i, n, extra=extra) for i in range(1, n + 1)},
            files=files) as cluster:
        cluster.hw_store = store
        yield cluster


def etcd_files(i: int, n: int, members=None) -> dict[str, str]:
    """Files of node I of N for store = etcd, with members on MEMBERS (etcd_members(); by
    default every one of the N nodes): where there is one, a member of the cluster they form
    (a unit of the node's systemd, Type=notify: started once the cluster has a leader) that
    speaks TLS only, to its clients and peers, and wants a certificate of the run's CA from
    both (--client-cert-auth, --peer-client-cert-auth); on every node hostwardend's client
    certificate, and hostwardend ordered after the node's own member."""
    members = etcd_members(n if members is None else members)
    pki = hwpki.shared()
    client = pki.issue(f"hostwarden-node{i}", (), server=False, client=True)
    files = {HW_ETCD_CA: pki.ca_cert,
             HW_ETCD_CERT: client.cert,
             HW_ETCD_KEY: client.key,
             "/etc/systemd/system/hostwardend.service.d/hwtest-etcd.conf":
                 (f"[Unit]\nWants={ETCD_UNIT}\nAfter={ETCD_UNIT}\n" if i in members else "") +
                 f"[Service]\nExecStartPre=+/bin/chmod 0600 {HW_ETCD_KEY}\n"}
    if i not in members:
        return files
    member = pki.issue(f"node{i}", (f"10.77.0.1{i}",), server=True, client=True)
    peers = ",".join(f"node{j}=https://10.77.0.1{j}:2380" for j in members)
    tls = (f"--cert-file {ETCD_PKI}/server.pem --key-file {ETCD_PKI}/server-key.pem "
           f"--trusted-ca-file {ETCD_PKI}/ca.pem --client-cert-auth "
           f"--peer-cert-file {ETCD_PKI}/server.pem --peer-key-file {ETCD_PKI}/server-key.pem "
           f"--peer-trusted-ca-file {ETCD_PKI}/ca.pem --peer-client-cert-auth ")
    unit = ("[Unit]\nDescription=etcd member of the hostwarden test cluster\n"
            "[Service]\nType=notify\n"
            f"ExecStartPre=/bin/chmod 0600 {ETCD_PKI}/server-key.pem\n"
            f"ExecStart=/usr/bin/etcd --name node{i} --data-dir /var/lib/hwtest-etcd "
            f"--listen-client-urls https://10.77.0.1{i}:2379 "
            f"--advertise-client-urls https://10.77.0.1{i}:2379 "
            f"--listen-peer-urls https://10.77.0.1{i}:2380 "
            f"--initial-advertise-peer-urls https://10.77.0.1{i}:2380 "
            f"--initial-cluster {peers} --initial-cluster-state new "
            f"--initial-cluster-token hwtest {tls}\n")
    files.update({
        f"/etc/systemd/system/{ETCD_UNIT}": unit,
        # also where no hostwardend wants it (a storage node)
        f"/etc/systemd/system/{hwcluster.NODE_TARGET}.d/hwtest-etcd.conf":
            f"[Unit]\nWants={ETCD_UNIT}\n",
        f"{ETCD_PKI}/ca.pem": pki.ca_cert,
        f"{ETCD_PKI}/server.pem": member.cert,
        f"{ETCD_PKI}/server-key.pem": member.key})
    return files


def etcdctl(node, *args, check=True, client_cert=True):
    """etcdctl (API v3) inside NODE against every member, with node's client certificate
    (client_cert=False: without one, as a client etcd must refuse)."""
    members = getattr(node.cluster, "hw_etcd_members", len(node.cluster.nodes))
    tls = ["--cacert", HW_ETCD_CA]
    if client_cert:
        tls += ["--cert", HW_ETCD_CERT, "--key", HW_ETCD_KEY]
    return node.run(["env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=2s",
                     "--command-timeout=5s", "--endpoints", ",".join(etcd_endpoints(members)),
                     *tls,
                     *args], check=check, timeout=60)


class LossyEtcd:
    """While in use: NODE's hostwardend asks etcd through a proxy (etcd_lossy_proxy.py, on
    the node's loopback, before its own member) that loses the answer of the first
    transaction on each of KEYS, after etcd committed it. `lost()`: the keys whose answers
    were lost so far. hostwardend is restarted on entry and on exit."""

    PORT = 23790
    DIR = "/run/hwtest-lossy"
    DROPIN = "/etc/hostwarden/hostwarden.conf.d/90-hwtest-lossy.conf"
    UNIT = "hwtest-lossy-etcd"

    def __init__(self, node, keys):
        self.node, self.keys = node, list(keys)

    def __enter__(self):
        node, n = self.node, len(self.node.cluster.nodes)
        issued = hwpki.shared().issue("127.0.0.1", server=True, client=False)
        source = os.path.join(os.path.dirname(__file__), "etcd_lossy_proxy.py")
        with open(source) as f:
            node.write_file(f"{self.DIR}/proxy.py", f.read())
        node.write_file(f"{self.DIR}/cert.pem", issued.cert)
        node.write_file(f"{self.DIR}/key.pem", issued.key, mode=0o600)
        node.write_file(f"{self.DIR}/ca.pem", node.read_file(HW_ETCD_CA))
        node.write_file(f"{self.DIR}/client.pem", node.read_file(HW_ETCD_CERT))
        node.write_file(f"{self.DIR}/client-key.pem", node.read_file(HW_ETCD_KEY), mode=0o600)
        own = f"https://{node.address}:2379"
        node.run(["systemd-run", "--unit", self.UNIT, "/usr/bin/python3", f"{self.DIR}/proxy.py",
                  str(self.PORT), own, self.DIR, *self.keys])
        # listening before hostwardend starts: its etcd client stays on the endpoint that
        # answered first (CI, under load: it took its own member, and nothing was lost)
        assert wait_for(lambda: hwcluster.tcp_connect(node, "127.0.0.1", self.PORT, timeout=1),
                        timeout=30), "the lossy etcd proxy does not listen"
        # the proxy first, then the node's own member (a dead peer's would cost a timeout)
        endpoints = [f"https://127.0.0.1:{self.PORT}", own] + [
            e for e in etcd_endpoints(n) if e != own]
        node.write_file(self.DROPIN, f"[cluster]\netcd_endpoints = {' '.join(endpoints)}\n")
        self._restart()
        return self

    def lost(self) -> list[str]:
        out = self.node.run(["cat", f"{self.DIR}/lost"], check=False).stdout
        return [line.split()[0] for line in out.splitlines() if line.endswith("succeeded=True")]

    def _restart(self):
        self.node.systemctl("restart", "hostwardend.service")
        assert wait_for(lambda: json.loads(self.node.run(
            BUSCTL + ["--json=short", "get-property", *NODE, "StoreState"]).stdout)["data"]
                        == "attached", timeout=30)

    def __exit__(self, *exc):
        self.node.run(["rm", "-f", self.DROPIN])
        self.node.run(["systemctl", "stop", self.UNIT], check=False)
        self._restart()
        self.node.run(["rm", "-rf", self.DIR])
        return False


def uses_etcd(node) -> bool:
    return getattr(node.cluster, "hw_store", "dir") == "etcd"


def config(i: int, n: int, bmc_password: str, store: str = "dir", etcd_members=None) -> str:
    """node I of N: fast heartbeats, max_concurrent 2, every peer fenced by fence_ipmilan
    against its BMC; the store in the shared directory or in etcd (members on ETCD_MEMBERS,
    etcd_members(), by default on every one of the N nodes)."""
    etcd = etcd_config(n if etcd_members is None else etcd_members) if store == "etcd" else ""
    return hwinstall.node_config(i, n, extra=etcd + "[migration]\nmax_concurrent = 2\n",
                                 peer_lines=lambda j: fencing(j, bmc_password))


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


def record(node, uuid, kind="instances") -> dict:
    """The instance record of UUID in the store ({} if there is none); with kind="nodes", the
    node record of the node named UUID."""
    if uses_etcd(node):
        text = etcdctl(node, "get", "--print-value-only", f"{ETCD_PREFIX}/{kind}/{uuid}",
                       check=False).stdout
    else:
        text = node.run(["cat", f"{SHARED}/.hostwarden/{kind}/{uuid}"], check=False).stdout
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
