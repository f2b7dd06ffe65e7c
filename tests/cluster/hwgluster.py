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
        for node in (node1, node2):
            hwgluster.wait_mounted(node)
        ...   # /var/lib/nova/instances is the volume on node1 and node2

It all happens at boot, so that every boot of a node (a reboot, a BMC power-on) mounts
the volume again: the storage node's VOLUME_UNIT creates and starts the volume; each
compute node's MOUNT_UNIT, ordered before libvirtd and hostwardend, moves the harness's
bind mount out of the way (to /run/hwt-storage, where a boot with storage_late has it),
waits for the volume and mounts it.  The nodes boot in parallel, so a compute node's
boot waits for the storage node's volume (about a second here).

Everything runs inside the nodes, never on the host: glusterd, the brick and its state
(/var/lib/glusterd, /var/log/glusterfs, the brick's tmpfs) live in the storage node's
overlay and mount namespace, the FUSE clients in the compute nodes' (started by
MOUNT_UNIT, so in the nodes' cgroups).  The harness's teardown kills them with the nodes;
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
    "BRICK_DIR",
    "GLUSTERD_PORT",
    "VOLUME_UNIT",
    "MOUNT_UNIT",
    "cluster_files",
    "server_files",
    "client_files",
    "wait_mounted",
    "compute_nodes",
    "unit_seconds",
    "mounted_type",
    "host_leftovers",
    "check_environment",
]

#: The volume's name.
VOLUME = "instances"
#: The storage node's brick file system (a tmpfs of its own: see _BRICK_MOUNT_UNIT).
BRICK_MOUNT = "/srv/gluster"
BRICK_DIR = f"{BRICK_MOUNT}/brick"
#: glusterd's management port (clients fetch the volume file there); the brick process
#: listens on a port glusterd picks from [base-port, max-port] (49152-60999; seen: 60796).
GLUSTERD_PORT = 24007
#: The storage node's unit that creates and starts the volume at boot.
VOLUME_UNIT = "hwt-gluster-volume.service"
#: The compute nodes' unit that mounts it on INSTANCES_PATH at boot, before libvirtd.
MOUNT_UNIT = "hwt-gluster-mount.service"
#: Where the harness's bind mount of its host directory stays reachable in a compute node
#: (as after a boot with storage_late): the mount unit moves it there.
BIND_PATH = "/run/hwt-storage"
_SCRIPTS = "/usr/local/lib/hwt-gluster"
#: A file only the storage node has (hostwardend's unit there checks it).
STORAGE_MARKER = "/etc/hwt-storage-node"

# glusterd runs `gsyncd --version` at start and, when it answers, ~20 more gsyncd (Python)
# runs to configure geo-replication: 11-18 s on this machine.  Without gsyncd glusterd logs
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
# tests can write into the node's memory.  It dies with the node: so does the volume.
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

_VOLUME_SCRIPT = r"""#!/bin/sh
# Written by hwgluster.py: create and start the GlusterFS volume at boot (once).
set -eu
vol=$1 brick=$2
g() { gluster --mode=script "$@"; }
n=0
until g volume list >/dev/null 2>&1; do
    n=$((n + 1))
    [ $n -lt 600 ] || { echo "glusterd does not answer" >&2; exit 1; }
    sleep 0.1
done
if ! g volume info "$vol" >/dev/null 2>&1; then
    mkdir -p "$brick"
    g volume create "$vol" "$(hostname):$brick"
    # the options in one call: a gluster CLI call costs 0.1-0.5 s here
    g volume set "$vol" group hwt
fi
g volume info "$vol" | grep -q '^Status: Started' || g volume start "$vol"
n=0
until g volume status "$vol" --xml 2>/dev/null | grep -q '<status>1</status>'; do
    n=$((n + 1))
    [ $n -lt 600 ] || { echo "the brick of $vol is not online" >&2; exit 1; }
    sleep 0.1
done
"""

_MOUNT_SCRIPT = r"""#!/bin/sh
# Written by hwgluster.py: mount the GlusterFS volume on the instances directory at boot,
# waiting (up to 60 s) for the storage node to serve it.
set -u
what=$1 where=$2 bind=$3
fstype() { findmnt -n -o FSTYPE --mountpoint "$where" | tail -n 1; }
# The node's private /dev has no /dev/fuse (a real node's devtmpfs has it).  Test only.
[ -e /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229
# The harness bind-mounted its host directory here: keep it reachable at $bind (as a
# boot with storage_late does), then out of the way.  (/ is shared: no mount --move.)
case "$(fstype)" in
"" | fuse.glusterfs) ;;
*)
    if ! mountpoint -q "$bind"; then
        mkdir -p "$bind"
        mount --bind "$where" "$bind"
    fi
    umount "$where" ;;
esac
n=0
while :; do
    if [ "$(fstype)" = fuse.glusterfs ]; then
        stat -f "$where" >/dev/null 2>&1 && exit 0
        umount -l "$where"   # a client that lost its server
    fi
    n=$((n + 1))
    [ $n -le 120 ] || { echo "cannot mount $what on $where" >&2; exit 1; }
    mount -t glusterfs -o log-level=WARNING "$what" "$where" 2>/dev/null || sleep 0.5
done
"""

_STORAGE_TARGET_DROPIN = f"""\
# Written by hwgluster.py: this node serves the GlusterFS volume.
[Unit]
Wants=srv-gluster.mount glusterd.service {VOLUME_UNIT}
After={VOLUME_UNIT}
"""

_COMPUTE_TARGET_DROPIN = f"""\
# Written by hwgluster.py: the instances directory is a GlusterFS volume.
[Unit]
Wants={MOUNT_UNIT}
After={MOUNT_UNIT}
"""


def _volume_unit(volume: str) -> str:
    return f"""\
# Written by hwgluster.py: create and start the GlusterFS volume {volume}.
[Unit]
Description=GlusterFS volume {volume} (hwgluster.py)
Requires=glusterd.service
After=glusterd.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=90
ExecStart=/bin/sh {_SCRIPTS}/volume.sh {volume} {BRICK_DIR}
"""


def _volume_options(owner: tuple[int, int] | None) -> str:
    options = [
        "auth.allow=10.77.0.*",          # the test network only
        "nfs.disable=on",                # gNFS is not built in Debian's packages
        "network.ping-timeout=10",       # a client that lost the server: ENOTCONN after 10 s
        # no client-side caches of small files' contents and of metadata: with them (the
        # defaults) hostwardend's dir store on the volume lost updates: a node's heartbeat,
        # a read-modify-write of its record under the OFD lock, read its record from its
        # client's cache and wrote back fence=off over a peer's fence=on of a second
        # before (seen in faults_daemons.py; docs/gluster-test-storage.md)
        "performance.quick-read=off",
        "performance.io-cache=off",
        "performance.read-ahead=off",
        "performance.stat-prefetch=off",
        "performance.open-behind=off",
        # the server drops a client it cannot reach (a partition: no FIN) and its locks
        # (the dir store's OFD locks) after ~5.5 s instead of ~42 s (measured)
        "server.tcp-user-timeout=5",
        "server.keepalive-time=2",
        "server.keepalive-interval=1",
        "server.keepalive-count=2",
    ]
    if owner is not None:
        options += [f"storage.owner-uid={owner[0]}", f"storage.owner-gid={owner[1]}"]
    return "".join(f"{o}\n" for o in options)


def _mount_unit(server: str, volume: str) -> str:
    # Before libvirtd and hostwardend: guests and storage marks only once the volume is
    # there, on every boot (also a reboot or a BMC power-on, where the harness bind-mounts
    # its host directory again).  A oneshot service rather than a .mount unit: systemd
    # takes the harness's bind mount for that .mount unit, active, and a mount unit
    # cannot wait for the storage node.  The FUSE daemon stays in this unit's cgroup.
    return f"""\
# Written by hwgluster.py: the shared instances directory, a GlusterFS volume (FUSE).
[Unit]
Description=Nova instances on GlusterFS {server}:/{volume} (hwgluster.py)
Before=libvirtd.service hostwardend.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=90
ExecStart=/bin/sh {_SCRIPTS}/mount.sh {server}:/{volume} {INSTANCES_PATH} {BIND_PATH}
ExecStop=-/bin/umount {INSTANCES_PATH}
"""


def server_files(volume: str = VOLUME, owner: tuple[int, int] | None = None) -> dict[str, str]:
    """Files for the storage node (pass through Cluster(files={index: ...})): glusterd,
    the brick's tmpfs and VOLUME_UNIT wanted by the node target; glusterd without
    geo-replication.  owner: (uid, gid) of the volume's root (storage.owner-uid/-gid)."""
    return {
        f"/etc/systemd/system/{NODE_TARGET}.d/hwt-gluster.conf": _STORAGE_TARGET_DROPIN,
        "/etc/systemd/system/glusterd.service.d/hwt.conf": _GLUSTERD_DROPIN,
        "/etc/systemd/system/srv-gluster.mount": _BRICK_MOUNT_UNIT,
        f"/etc/systemd/system/{VOLUME_UNIT}": _volume_unit(volume),
        f"{_SCRIPTS}/volume.sh": _VOLUME_SCRIPT,
        # an option group (like the package's groups/virt), in the node's own overlay
        "/var/lib/glusterd/groups/hwt": _volume_options(owner),
        # no compute node: where the build is installed on every node (hwinstall) and
        # units= starts hostwardend (and hwinstall the firewall) everywhere, they stay off
        "/etc/systemd/system/hostwardend.service.d/hwt-storage-node.conf": (
            "# Written by hwgluster.py: the storage node is no compute node.\n"
            f"[Unit]\nConditionPathExists=!{STORAGE_MARKER}\n"),
        # nor its firewall (hwinstall turns it on everywhere): its migration range,
        # 49152-49215, lies inside the one glusterd picks the brick's port from
        "/etc/systemd/system/hostwarden-firewall.service.d/hwt-storage-node.conf": (
            "# Written by hwgluster.py: the storage node is no compute node.\n"
            f"[Unit]\nConditionPathExists=!{STORAGE_MARKER}\n"),
        STORAGE_MARKER: "GlusterFS storage node (hwgluster.py)\n",
    }


def client_files(server: str, volume: str = VOLUME) -> dict[str, str]:
    """Files for a compute node: MOUNT_UNIT, wanted by the node target."""
    return {
        f"/etc/systemd/system/{NODE_TARGET}.d/hwt-gluster.conf": _COMPUTE_TARGET_DROPIN,
        f"/etc/systemd/system/{MOUNT_UNIT}": _mount_unit(server, volume),
        f"{_SCRIPTS}/mount.sh": _MOUNT_SCRIPT,
    }


def cluster_files(n_nodes: int, storage: int, volume: str = VOLUME,
                  owner: tuple[int, int] | None = None,
                  base: Mapping[str, str] | None = None) -> dict[int, dict[str, str]]:
    """Cluster(files=...) for N_NODES nodes where node STORAGE serves the volume and all
    others mount it at boot; BASE: more files for every node (the GlusterFS ones win)."""
    if not 1 <= storage <= n_nodes:
        raise ValueError(f"storage node {storage} is not one of the {n_nodes} nodes")
    server = f"node{storage}"
    files: dict[int, dict[str, str]] = {}
    for index in range(1, n_nodes + 1):
        extra = (server_files(volume, owner) if index == storage
                 else client_files(server, volume))
        files[index] = {**(base or {}), **extra}
    return files


def compute_nodes(cluster: hwcluster.Cluster) -> list[Node]:
    """CLUSTER's nodes without its storage node (the one cluster_files() made the server):
    the nodes tests migrate between, fence, power off and partition."""
    return [n for n in cluster.nodes
            if STORAGE_MARKER not in cluster._extra_files_for(n.index)]


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


def unit_seconds(node: Node, unit: str) -> float | None:
    """How long UNIT took to start in NODE's last boot (None if it did not start)."""
    out = node.run(["systemctl", "show", "-p", "InactiveExitTimestampMonotonic",
                    "-p", "ActiveEnterTimestampMonotonic", unit]).stdout
    values = dict(line.split("=", 1) for line in out.split())
    begin = int(values.get("InactiveExitTimestampMonotonic") or 0)
    end = int(values.get("ActiveEnterTimestampMonotonic") or 0)
    return (end - begin) / 1e6 if begin and end >= begin else None


def wait_mounted(node: Node, timeout: float = 90) -> None:
    """Wait until NODE (booted with client_files()) has the volume on INSTANCES_PATH;
    HarnessError with the unit's journal and the FUSE client's log if it does not."""
    deadline = time.monotonic() + timeout
    while True:
        state = node.run(["systemctl", "is-active", MOUNT_UNIT], check=False).stdout.strip()
        if state == "active" and mounted_type(node) == "fuse.glusterfs":
            return
        if state == "failed" or time.monotonic() > deadline:
            log = node.run("tail -n 30 /var/log/glusterfs/var-lib-nova-instances.log",
                           check=False).stdout
            raise HarnessError(
                f"{node.name}: {MOUNT_UNIT} is {state}, {INSTANCES_PATH} is "
                f"{mounted_type(node)!r}\n--- journal ---\n{node.journal('-u', MOUNT_UNIT)}"
                f"--- FUSE client log ---\n{log}")
        time.sleep(0.1)


def mounted_type(node: Node, path: str = INSTANCES_PATH) -> str:
    """The file system type mounted at PATH in NODE ("" if none): "fuse.glusterfs" once
    MOUNT_UNIT mounted the volume, the host's type for the harness's bind mount."""
    proc = node.run(["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", path], check=False)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


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
    for name in ("glusterd.info", "vols", "peers", "geo-replication", "groups/hwt"):
        path = os.path.join("/var/lib/glusterd", name)
        if os.path.exists(path):
            found.append(f"host state {path}")
    return found
