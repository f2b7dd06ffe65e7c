"""GlusterFS shared storage for the simulated compute nodes (see hwcluster.py).

The harness shares /var/lib/nova/instances between nodes with a bind mount of one host
directory.  libvirt does not take that for shared storage (its file system is the host's
ext4/xfs/tmpfs), so it refuses to live-migrate a guest with a writable disk there
("Migration without shared storage is unsafe").  This module serves a real GlusterFS
volume from one simulated node (the *storage node*) on the test network and mounts it
with FUSE on the compute nodes' /var/lib/nova/instances; libvirt 9.0 recognizes
``fuse.glusterfs`` as a shared file system, and live migration of a writable qcow2 disk
goes through with plain ``virsh migrate --live --p2p``.

Typical use::

    files = hwgluster.cluster_files(n_nodes=3, storage=3)
    with Cluster(3, files=files) as cluster:
        node1, node2, storage = cluster.nodes
        hwgluster.setup_volume(storage)
        for node in (node1, node2):
            hwgluster.mount_on(node, storage)
        ...   # /var/lib/nova/instances is the volume on node1 and node2

Everything runs inside the nodes, never on the host: glusterd, the brick and its state
(/var/lib/glusterd, /var/log/glusterfs, the brick's tmpfs) live in the storage node's
overlay and mount namespace, the FUSE clients in the compute nodes' (as systemd mount
units, so in the nodes' cgroups).  The harness's teardown kills them with the nodes;
`host_leftovers()` checks that nothing reached the host.  Never run glusterd (or gsyncd,
which writes /var/lib/glusterd/geo-replication) on the host itself.

Only the Python standard library is used.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping

import hwcluster
from hwcluster import INSTANCES_PATH, NODE_TARGET, HarnessError, Node

__all__ = [
    "VOLUME",
    "BRICK_MOUNT",
    "GLUSTERD_PORT",
    "MOUNT_UNIT",
    "cluster_files",
    "server_files",
    "client_files",
    "setup_volume",
    "mount_on",
    "mounted_type",
    "host_leftovers",
    "check_environment",
]

#: The volume's name.
VOLUME = "instances"
#: The storage node's brick file system (a tmpfs of its own: see server_files()).
BRICK_MOUNT = "/srv/gluster"
BRICK_DIR = f"{BRICK_MOUNT}/brick"
#: glusterd's management port (clients fetch the volume file there); the brick process
#: listens on a port glusterd picks from [base-port, max-port] (49152-60999, from the top).
GLUSTERD_PORT = 24007
#: The compute nodes' mount unit for INSTANCES_PATH (systemd's name for that path).
MOUNT_UNIT = "var-lib-nova-instances.mount"
#: Test-only unit that gives the node's private /dev a /dev/fuse (see client_files()).
FUSE_DEV_UNIT = "hwt-fuse-dev.service"

# glusterd runs `gsyncd --version` at start and, when it answers, ~20 more gsyncd (Python)
# runs to configure geo-replication: 11-15 s on this machine.  Without gsyncd glusterd logs
# "geo-replication module not installed" and starts in ~0.15 s.  A stub that fails is
# worse: glusterd then refuses to start ("geo-replication module not working as desired").
# The rm happens in the storage node's overlay (a whiteout in its own upper layer).
_GLUSTERD_DROPIN = """\
# Written by hwgluster.py (test only): the brick's tmpfs first; no geo-replication.
[Unit]
Requires=srv-gluster.mount
After=srv-gluster.mount

[Service]
ExecStartPre=/bin/sh -c 'rm -f /usr/lib/*/glusterfs/gsyncd /usr/libexec/glusterfs/gsyncd'
"""

# The brick on a tmpfs of its own: bricks need trusted.* xattrs (tmpfs has them), a brick
# on the root file system needs `volume create ... force`, and the size caps what the
# tests can write into the node's memory.
_BRICK_MOUNT_UNIT = f"""\
# Written by hwgluster.py (test only): the GlusterFS brick's file system.
[Unit]
Description=GlusterFS brick (tmpfs)
DefaultDependencies=no
Before=glusterd.service

[Mount]
What=hwt-brick
Where={BRICK_MOUNT}
Type=tmpfs
Options=mode=0755,size=1g
"""

_STORAGE_TARGET_DROPIN = """\
# Written by hwgluster.py: this node serves the GlusterFS volume.
[Unit]
Wants=srv-gluster.mount glusterd.service
After=glusterd.service
"""

# The harness gives every node a private /dev without /dev/fuse (a real node gets it from
# the fuse module through devtmpfs).  Test only.
_FUSE_DEV_SERVICE = """\
# Written by hwgluster.py (test only): the node's private /dev has no /dev/fuse.
[Unit]
Description=/dev/fuse in the simulated node's private /dev
DefaultDependencies=no
ConditionPathExists=!/dev/fuse

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mknod -m 0666 /dev/fuse c 10 229
"""


def _mount_unit(server: str, volume: str) -> str:
    # Before= libvirtd and hostwardend: on a node that boots with it (a real compute
    # node, or a harness without the bind mount), guests and storage marks only after
    # the volume is there.  Not wanted by the node target here: at boot the harness has
    # its bind mount on INSTANCES_PATH (systemd then shows this unit active for it), so
    # mount_on() unmounts that first and starts the unit.
    return f"""\
# Written by hwgluster.py: the shared instances directory, a GlusterFS volume (FUSE).
[Unit]
Description=Nova instances on GlusterFS {server}:/{volume}
Requires={FUSE_DEV_UNIT}
After={FUSE_DEV_UNIT} network-online.target
Wants=network-online.target
Before=libvirtd.service hostwardend.service

[Mount]
What={server}:/{volume}
Where={INSTANCES_PATH}
Type=glusterfs
Options=_netdev,log-level=WARNING
TimeoutSec=60
"""


def server_files() -> dict[str, str]:
    """Files for the storage node (pass through Cluster(files={index: ...})): glusterd
    and the brick's tmpfs wanted by the node target, glusterd without geo-replication."""
    return {
        f"/etc/systemd/system/{NODE_TARGET}.d/hwt-gluster.conf": _STORAGE_TARGET_DROPIN,
        "/etc/systemd/system/glusterd.service.d/hwt.conf": _GLUSTERD_DROPIN,
        "/etc/systemd/system/srv-gluster.mount": _BRICK_MOUNT_UNIT,
    }


def client_files(server: str, volume: str = VOLUME) -> dict[str, str]:
    """Files for a compute node: the mount unit for INSTANCES_PATH and /dev/fuse."""
    return {
        f"/etc/systemd/system/{MOUNT_UNIT}": _mount_unit(server, volume),
        f"/etc/systemd/system/{FUSE_DEV_UNIT}": _FUSE_DEV_SERVICE,
    }


def cluster_files(n_nodes: int, storage: int, volume: str = VOLUME,
                  base: Mapping[str, str] | None = None) -> dict[int, dict[str, str]]:
    """Cluster(files=...) for N_NODES nodes where node STORAGE serves the volume and all
    others mount it; BASE: more files for every node (the GlusterFS ones win)."""
    if not 1 <= storage <= n_nodes:
        raise ValueError(f"storage node {storage} is not one of the {n_nodes} nodes")
    server = f"node{storage}"
    files: dict[int, dict[str, str]] = {}
    for index in range(1, n_nodes + 1):
        extra = server_files() if index == storage else client_files(server, volume)
        files[index] = {**(base or {}), **extra}
    return files


def check_environment() -> list[str]:
    """What this machine lacks to serve and mount a GlusterFS volume in the nodes
    (Debian: glusterfs-server, glusterfs-client; FUSE in the kernel)."""
    problems = []
    for prog, package in (("glusterd", "glusterfs-server"), ("gluster", "glusterfs-cli"),
                          ("mount.glusterfs", "glusterfs-client")):
        if shutil.which(prog, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            problems.append(f"{prog} not found (Debian package {package})")
    with open("/proc/filesystems") as f:
        if not any(line.split()[-1:] == ["fuse"] for line in f):
            problems.append("the kernel has no FUSE (modprobe fuse)")
    return problems


def _poll(what: str, check, timeout: float, interval: float = 0.1):
    """CHECK() until it returns something true; HarnessError after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        result, last = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"{what} (after {timeout:.0f}s): {last}")
        time.sleep(interval)


def _gluster(node: Node, *args: str, check: bool = True, timeout: float = 60):
    return node.run(["gluster", "--mode=script", *args], check=check, timeout=timeout)


def setup_volume(server: Node, volume: str = VOLUME, owner: tuple[int, int] | None = None,
                 allow: str = "10.77.0.*", timeout: float = 60) -> float:
    """Create and start a one-brick volume on SERVER (booted with server_files()); return
    the seconds it took, from waiting for glusterd to the brick being online.

    owner: (uid, gid) of the volume's root directory (storage.owner-uid/-gid), e.g.
    Nova's; allow: the clients glusterd and the brick accept (auth.allow).
    """
    start = time.monotonic()

    def glusterd_answers():
        proc = _gluster(server, "volume", "list", check=False, timeout=30)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()

    _poll(f"{server.name}: glusterd does not answer", glusterd_answers, timeout)
    server.run(["mkdir", "-p", BRICK_DIR])
    _gluster(server, "volume", "create", volume, f"{server.name}:{BRICK_DIR}")
    options = {
        "auth.allow": allow,
        # gNFS is not built in Debian's packages; say so rather than rely on the default
        "nfs.disable": "on",
        # a client that lost the server gives up (EIO/ENOTCONN) after this, not 42 s
        "network.ping-timeout": "10",
    }
    if owner is not None:
        options["storage.owner-uid"] = str(owner[0])
        options["storage.owner-gid"] = str(owner[1])
    for key, value in options.items():
        _gluster(server, "volume", "set", volume, key, value)
    _gluster(server, "volume", "start", volume)

    def brick_online():
        proc = _gluster(server, "volume", "status", volume, "--xml", check=False)
        return "<status>1</status>" in proc.stdout, (proc.stdout + proc.stderr)[-400:]

    _poll(f"{server.name}: brick of volume {volume} not online", brick_online, timeout)
    return time.monotonic() - start


def mounted_type(node: Node, path: str = INSTANCES_PATH) -> str:
    """The file system type mounted at PATH in NODE ("" if none): "fuse.glusterfs" once
    mount_on() ran, the host's type for the harness's bind mount."""
    proc = node.run(["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", path], check=False)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def mount_on(node: Node, timeout: float = 60) -> float:
    """Mount the volume on NODE's INSTANCES_PATH (node booted with client_files()),
    replacing the harness's bind mount; return the seconds it took."""
    start = time.monotonic()
    # the harness's bind mount (several if a test stacked them)
    while mounted_type(node) not in ("", "fuse.glusterfs"):
        node.run(["umount", INSTANCES_PATH])
    try:
        node.run(["systemctl", "start", MOUNT_UNIT], timeout=timeout)
    except hwcluster.NodeCommandError as e:
        log = node.run("tail -n 30 /var/log/glusterfs/var-lib-nova-instances.log",
                       check=False).stdout
        raise HarnessError(f"{node.name}: mounting the GlusterFS volume failed: {e}\n"
                           f"--- client log ---\n{log}") from e
    fstype = mounted_type(node)
    if fstype != "fuse.glusterfs":
        raise HarnessError(f"{node.name}: {INSTANCES_PATH} is {fstype!r} after the mount")
    return time.monotonic() - start


def host_leftovers() -> list[str]:
    """What of GlusterFS is on the host itself (call it after the clusters' teardown):
    FUSE mounts in the host's mount namespace, gluster processes outside every
    simulated node, and glusterd state in the host's /var/lib/glusterd (the package
    ships only groups/ and hooks/ there)."""
    found: list[str] = []
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "fuse.glusterfs":
                found.append(f"mount {fields[0]} on {fields[1]}")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if not comm.startswith("gluster"):
                continue
            with open(f"/proc/{pid}/cgroup") as f:
                cgroups = f.read()
        except OSError:
            continue
        # a node's processes (this or another test run) sit below an hwt-* cgroup
        if "/hwt-" not in cgroups or f"/{hwcluster.PREFIX}" in cgroups:
            found.append(f"process {pid} ({comm})")
    for name in ("glusterd.info", "vols", "peers", "geo-replication"):
        path = os.path.join("/var/lib/glusterd", name)
        if os.path.exists(path):
            found.append(f"host state {path}")
    return found
