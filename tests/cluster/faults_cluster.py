"""The faults suite's cluster (faults_power.py, faults_daemons.py): three compute nodes and
a fourth, the storage node, which serves /var/lib/nova/instances as a GlusterFS volume on
the test network (hwgluster.py).  libvirt takes fuse.glusterfs for shared storage, so the
guests' disks can be writable qcow2 images (Nova's layout: an overlay per instance on a
backing file in _base) and still live-migrate; the store is either the shared directory
(`.hostwarden` on that same volume, so it is shared over the network like the disks) or an
etcd cluster of the three compute nodes.

    with fault_cluster("dir") as cluster:
        cluster.compute        # [node1, node2, node3]: hostwardend, BMCs, guests, faults
        cluster.storage_node   # node4: glusterd and the brick; no hostwardend, no firewall;
                               # the brick (read-only) on its /var/lib/nova/instances

The storage node is never a fault target: its brick is on a tmpfs that dies with it.
Its BMC exists (the harness gives every node one) but nothing uses it."""

from __future__ import annotations

import contextlib
import time
import uuid as uuidlib
from typing import Iterator

import hwcluster
import hwevac
import hwgluster
import hwinstall

#: Compute nodes (node1..node3); the storage node is node N + 1.
N = 3
STORES = ("dir", "etcd")


@contextlib.contextmanager
def fault_cluster(store: str, firewall: str = "", record_timing=None,
                  etcd_on_storage_node: bool = False,
                  config: str = "") -> Iterator[hwcluster.Cluster]:
    """The installed cluster (hwinstall.installed_cluster) of N compute nodes, with
    hostwardend and a BMC each, fencing one another through the BMCs (hwevac.config),
    and the storage node.  STORE: "dir" or "etcd" (hwevac.etcd_files: a member on each
    compute node, or with ETCD_ON_STORAGE_NODE one on the storage node, as on a control
    plane: a test that powers off two compute nodes at once keeps its store).
    FIREWALL: a [firewall] section for the compute nodes' hostwarden.conf ("": the
    harness's, hwinstall.FIREWALL).  Sets cluster.compute, cluster.storage_node and
    cluster.hw_store (and hw_etcd_members).  CONFIG: more sections for the compute nodes'
    hostwarden.conf (e.g. [recovery]).  RECORD_TIMING (conftest's record_timing):
    where the boot's times go (the storage node's glusterd and volume, the compute nodes'
    mounts, the whole boot)."""
    if store not in STORES:
        raise ValueError(f"store must be one of {STORES}, got {store!r}")
    missing = hwgluster.check_environment()
    if missing:
        raise hwcluster.HarnessError("cannot serve GlusterFS in the nodes: "
                                     + "; ".join(missing))
    password = f"bmc-{uuidlib.uuid4().hex[:12]}"
    storage = N + 1
    files = hwgluster.cluster_files(N + 1, storage=storage,
                                    owner=(hwcluster.NOVA_UID, hwcluster.NOVA_GID))
    members = (storage,) if etcd_on_storage_node else N
    if store == "etcd":
        for i in range(1, N + 2):
            files[i] = {**hwevac.etcd_files(i, N, members), **files[i]}
    configs = {i: hwevac.config(i, N, password, store, members) + firewall + config
               for i in range(1, N + 1)}
    t0 = time.monotonic()
    with hwinstall.installed_cluster(
            N + 1, units=("hostwardend.service",), bmc=True, bmc_password=password,
            configs=configs, files=files) as cluster:
        cluster.hw_store = store
        cluster.hw_etcd_members = members  # for hwevac.etcdctl()
        cluster.storage_node = cluster.node(storage)
        cluster.compute = hwgluster.compute_nodes(cluster)
        assert [n.index for n in cluster.compute] == list(range(1, N + 1)), cluster.compute
        for node in cluster.compute:
            # mounted before libvirtd and hostwardend started (a failure shows here)
            hwgluster.wait_mounted(node, timeout=5)
        assert not cluster.storage_node.unit_active("hostwardend.service")
        # The brick, read-only, where the compute nodes have the volume: the storage node
        # reads the guests' disks under their own paths (faults_power.read_disks).
        cluster.storage_node.run(["mount", "--bind", "-o", "ro", hwgluster.BRICK_DIR,
                                  hwcluster.INSTANCES_PATH])
        if record_timing is not None:
            storage_node = cluster.storage_node
            record_timing(f"fault cluster ({store}): storage node's glusterd + volume",
                          (hwgluster.unit_seconds(storage_node, "glusterd.service") or 0)
                          + (hwgluster.unit_seconds(storage_node, hwgluster.VOLUME_UNIT) or 0))
            record_timing(f"fault cluster ({store}): compute node's mount at boot, slowest",
                          max(hwgluster.unit_seconds(n, hwgluster.MOUNT_UNIT) or 0
                              for n in cluster.compute))
            record_timing(f"fault cluster ({store}): boot {N}+1 nodes until libvirtd answers",
                          cluster.boot_seconds)
            record_timing(f"fault cluster ({store}): install, boot, init-cluster",
                          time.monotonic() - t0)
        yield cluster
    leftovers = hwgluster.host_leftovers()
    assert not leftovers, f"GlusterFS left on the host: {leftovers}"


def reaches_volume(node) -> bool:
    """Does NODE reach the volume (a directory read goes to the brick)?  Not for a while
    after a cut from the storage node: the FUSE client answers ENOTCONN until it has
    reconnected (about 3 s after the heal), and so would every store write of
    hostwardend's (e.g. `hostwardenctl enable`: "Cannot record the node's state:
    Transport endpoint is not connected")."""
    path = hwcluster.INSTANCES_PATH
    return node.run(f"stat -f {path} >/dev/null && ls -a {path} >/dev/null",
                    check=False).returncode == 0
