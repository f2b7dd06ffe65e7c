"""Simulated compute nodes for hostwarden's integration tests.

A *node* is a real systemd (with journald, dbus, polkit, libvirtd, virtlogd)
booted inside its own PID, mount and UTS namespaces, on an overlayfs whose
lower layer is the host's ``/`` and whose upper layer lives on a tmpfs that
only the node can see.  Every node gets its own network namespace with one
veth into a bridge that lives in one more network namespace, so nodes reach
each other over IPv4 (10.77.0.0/24) and IPv6 (fd77::/64) and nothing else.
One host directory (under /var/tmp) is bind-mounted as
``/var/lib/nova/instances`` in every node: the shared storage that live
migration needs.  Guests are QEMU/TCG (``<domain type='qemu'>``).

Typical use::

    with Cluster(2) as cluster:
        node1, node2 = cluster.nodes
        define_and_start(node1, domain_xml("vm1"))
        proc = migrate(node1, node2, "vm1")
        assert proc.returncode == 0, proc.stderr

Everything a cluster creates is named ``hwt-<pid>-<seq>-...`` (network
namespaces, cgroups, the temporary directory) and is removed on every exit
path: the context manager, an ``atexit`` hook, SIGINT/SIGTERM (turned into
KeyboardInterrupt and deferred while a teardown runs), and, should the test
process be SIGKILLed, a parent-death signal that kills every node's PID 1 (the
kernel then kills the node's whole PID namespace); `cleanup_stale()` removes
what such a run left behind.  `leftovers()` reports whatever is still there.

How a node boots (see `_INIT_SCRIPT`): the harness runs
``nsenter --net=<node netns> unshare -m -p -u -f --propagation private sh
init.sh``; the script moves itself into the node's own cgroups, mounts the
overlay, copies an optional install tree (a meson DESTDIR) and the node's
generated files into it, mounts proc (with /proc/sys read-only except
/proc/sys/net), a read-only sysfs of the node's network namespace, the node's
cgroup subtrees, a private /dev, tmpfs /run and /tmp and the shared
directory, pivots into the overlay and execs ``unshare -C
/lib/systemd/systemd --system --unit=hwt-node.target`` as PID 1.

Only the Python standard library is used.  Must run as root.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import hwpki

__all__ = [
    "Cluster",
    "Node",
    "HarnessError",
    "NodeCommandError",
    "domain_xml",
    "define_and_start",
    "migrate",
    "tcp_connect",
    "peer_uri",
    "leftovers",
    "cleanup_stale",
    "check_environment",
    "pid_alive",
    "NODE_TARGET",
    "INSTANCES_PATH",
]

#: Prefix of every name this process creates (netns, cgroups, temp dirs).
PREFIX = f"hwt-{os.getpid()}-"
#: Where temporary directories (node state and the shared storage) live.
#: Deliberately not /tmp: nodes get their own tmpfs /tmp, and the host's /tmp
#: must never be seen by a booting systemd (systemd-tmpfiles empties it).
TMP_PARENT = "/var/tmp"
#: The systemd target every node boots into (written by the harness).
NODE_TARGET = "hwt-node.target"
#: The shared storage, as seen inside every node.
INSTANCES_PATH = "/var/lib/nova/instances"
#: libvirtd's plain TCP port (libvirtd-tcp.socket): closed on the nodes, as in production.
LIBVIRT_TCP_PORT = 16509
#: libvirtd's TLS port (libvirtd-tls.socket), where peers reach it as in production.
LIBVIRT_TLS_PORT = 16514
#: The nova user and group of every node, as Ubuntu's nova-common creates them (a system
#: user with a fixed id, home /var/lib/nova, no login shell): the shared storage is theirs,
#: and the same id on every node is what makes ownership on shared storage mean anything.
NOVA_UID = NOVA_GID = 64060

# cgroups: every node gets a cgroup of its own, named like its netns, below
# the test process's cgroup in *every* hierarchy (on this host: the v1
# controllers, name=systemd and the cgroup2 "unified" one), and systemd runs
# in a cgroup namespace rooted there.  So the nodes' systemd instances never
# share /system.slice & co., the controllers they mount themselves show only
# their own subtree, and their processes stay below the test process's own
# cgroups (e.g. a memory cgroup the test runner is confined to).
_CGROUP_ROOT = "/sys/fs/cgroup"

# Environment of every command run inside a node (the test process's own
# environment, e.g. a pyenv PATH, means nothing there).
_NODE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "PAGER": "cat",
    "LIBVIRT_DEFAULT_URI": "qemu:///system",
}

# Units that must not run in a node: they would touch the host's kernel
# (sysctl, binfmt, modules, clock, kernel filesystems), scan or trim the
# host's disks, or are useless noise in a container.  Most are already
# skipped by ConditionVirtualization=!container; masking makes it explicit.
_MASKED_UNITS = (
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "systemd-timesyncd.service",
    "systemd-pstore.service",
    "systemd-random-seed.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "systemd-repart.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-hwdb-update.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-journald-audit.socket",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "systemd-tmpfiles-clean.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "logrotate.timer",
    "man-db.timer",
    "getty.target",
    "console-getty.service",
    "libvirt-guests.service",
    # Debian's etcd-server enables its unit: the etcd tests run their own members
    "etcd.service",
)

# Units the node target pulls in.  libvirtd is socket-activated as Debian
# ships it (libvirtd.socket + libvirtd-tls.socket for port 16514, peers reach it
# through qemu+tls:// as in production; with socket activation libvirtd rejects
# --listen and ignores listen_tls), and it is also started at boot so that it is
# up (hooks discovered) when the node is ready.  Nothing listens on 16509 (TCP
# without TLS), as on a production node.
_NODE_UNITS = (
    "dbus.socket",
    "dbus.service",
    "systemd-journald.service",
    "virtlogd.socket",
    "virtlockd.socket",
    "libvirtd.socket",
    "libvirtd-ro.socket",
    "libvirtd-admin.socket",
    "libvirtd-tls.socket",
    "libvirtd.service",
)

# The node's init script, run by `unshare -f` as PID 1 of the node's new PID
# namespace, in a private copy of the host's mount namespace, inside the
# node's network namespace.  Parameters come from the environment (HWT_*).
_INIT_SCRIPT = r"""#!/bin/sh
# hostwarden test harness: boot one simulated compute node (see hwcluster.py).
set -eu
dir=$HWT_NODE_DIR
root=$dir/root
rw=$dir/rw

# Into the node's own cgroups (created by the harness), in every hierarchy.
for d in $HWT_CGROUP_DIRS; do
    echo 0 > "$d/cgroup.procs"
done

# /proc is still the host's here, so /proc/self is our PID as the host sees
# it; the harness needs it to nsenter the node and to kill it (after checking
# that the PID is in the node's cgroup, so a recycled PID is never killed).
read -r hostpid _ < /proc/self/stat
echo "$hostpid" > "$dir/pid.tmp"
mv "$dir/pid.tmp" "$dir/pid"

# Root filesystem: overlay of the host's / with the node's own upper layer,
# on a tmpfs the harness mounted at $rw (it outlives a power-off: the node's
# "disk").  The first boot finds it empty.
first_boot=
if [ ! -d "$rw/upper" ]; then
    first_boot=1
    mkdir "$rw/upper" "$rw/work"
fi
mount -t overlay -o "lowerdir=/,upperdir=$rw/upper,workdir=$rw/work" hwt-root "$root"

# The host's enablement state (timers, getty, multi-user services) is not
# the node's: the node target names what it wants.  Only on the first boot:
# what the node enabled itself stays enabled.
if [ -n "$first_boot" ]; then
    for w in "$root"/etc/systemd/system/*.wants; do
        [ -e "$w" ] && rm -rf "$w"
    done
fi

# Install tree (meson DESTDIR) first, then the harness' files, which win.
if [ -n "${HWT_INSTALL_DIR:-}" ]; then
    cp -a "$HWT_INSTALL_DIR/." "$root/"
fi
cp -a "$dir/files/." "$root/"

# /proc, read-only /proc/sys except the node's own /proc/sys/net.
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
mount -o remount,bind,ro,nosuid,nodev,noexec "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then
    mount --bind /dev/null "$root/proc/sysrq-trigger"
fi

# A sysfs of the node's own network namespace (read-only, like nspawn), and
# the node's cgroup subtrees where systemd expects the hybrid layout; systemd
# mounts the v1 controllers itself (inside its cgroup namespace).
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec hwt-cgroup "$root/sys/fs/cgroup"
mkdir "$root/sys/fs/cgroup/systemd"
mount --bind "$HWT_CGROUP_SYSTEMD" "$root/sys/fs/cgroup/systemd"
if [ -n "${HWT_CGROUP_UNIFIED:-}" ]; then
    mkdir "$root/sys/fs/cgroup/unified"
    mount --bind "$HWT_CGROUP_UNIFIED" "$root/sys/fs/cgroup/unified"
fi

# A private /dev: nothing the node does there reaches the host's devtmpfs.
mount -t tmpfs -o mode=0755,nosuid hwt-dev "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mkdir -m 755 "$root/dev/net" "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mknod -m 666 "$root/dev/net/tun" c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
# Anything opening the console writes to the node's console.log (systemd
# itself logs to the journal; this file mostly holds this script's errors).
touch "$root/dev/console"
mount --bind /proc/self/fd/1 "$root/dev/console"

mount -t tmpfs -o mode=0755,nosuid,nodev hwt-run "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev hwt-tmp "$root/tmp"

# The shared storage; with HWT_STORAGE_LATE=1 it is only reachable at /run/hwt-storage, and
# Node.mount_storage() mounts it later (a boot before the shared storage is mounted).
mkdir -p "$root$HWT_INSTANCES_PATH"
if [ "${HWT_STORAGE_LATE:-0}" = 1 ]; then
    mkdir -p "$root/run/hwt-storage"
    mount --bind "$HWT_SHARED_DIR" "$root/run/hwt-storage"
else
    mount --bind "$HWT_SHARED_DIR" "$root$HWT_INSTANCES_PATH"
fi

hostname "$HWT_HOSTNAME"

# Make the overlay the root of this mount namespace and drop the host's
# mounts (the node must not pin them, e.g. other nodes' netns files).
cd "$root"
mkdir run/hwt-oldroot
pivot_root . run/hwt-oldroot
cd /
umount -l /run/hwt-oldroot
rmdir /run/hwt-oldroot
# Shared, as systemd makes / on a host (it leaves it alone in a container): a file system
# mounted after a service started (PrivateMounts=, ProtectSystem=) reaches it. The node's
# mounts were made private from the host's by unshare, so nothing goes back there.
mount --make-rshared /

# A cgroup namespace rooted at the node's cgroups, then systemd as PID 1.
exec env -i container=hwt-node "HWT_NODE=$HWT_CGROUP" "PATH=$HWT_PATH" \
    unshare --cgroup /lib/systemd/systemd --system "--unit=$HWT_TARGET"
"""


class HarnessError(RuntimeError):
    """The harness could not set up, run or tear down a cluster."""


class NodeCommandError(subprocess.CalledProcessError):
    """A command run inside a node failed; str() shows its output."""

    def __init__(self, node: str, returncode: int, cmd, output, stderr):
        super().__init__(returncode, cmd, output, stderr)
        self.node = node

    def __str__(self) -> str:
        def show(data) -> str:
            if isinstance(data, bytes):
                data = data.decode(errors="replace")
            return (data or "").strip()[-4000:]

        return (
            f"[{self.node}] command {self.cmd!r} exited with status "
            f"{self.returncode}\n--- stdout ---\n{show(self.output)}\n"
            f"--- stderr ---\n{show(self.stderr)}"
        )


# --------------------------------------------------------------------------
# Small helpers


def _run(argv: Sequence[str], check: bool = True, timeout: float = 60, **kw):
    """Run a host command, capturing text output; raise HarnessError on failure."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, **kw
    )
    if check and proc.returncode != 0:
        raise HarnessError(
            f"{shlex.join(argv)} exited with {proc.returncode}: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _ip(*args: str, check: bool = True):
    return _run(["ip", *args], check=check)


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _host_mounts() -> list[str]:
    """Mount points of the test process's mount namespace."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with octal escapes for blanks.
            points.append(_unescape(line.split()[4]))
    return points


def _rmdir_tree(path: str) -> None:
    """Remove a cgroup directory tree bottom-up (cgroupfs only allows rmdir)."""
    if not os.path.isdir(path):
        return
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        for d in dirnames:
            _rmdir_retry(os.path.join(dirpath, d))
    _rmdir_retry(path)


def _rmdir_retry(path: str, timeout: float = 5.0) -> None:
    # Dying tasks can keep a cgroup busy for a moment after their PID 1 died.
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _safe_rmtree(path: str) -> None:
    """rm -rf PATH, but refuse if anything is mounted below it on the host."""
    if not os.path.exists(path):
        return
    real = os.path.realpath(path)
    busy = [m for m in _host_mounts() if m == real or m.startswith(real + "/")]
    if busy:
        raise HarnessError(f"refusing to delete {real}: still mounted: {busy}")
    shutil.rmtree(real)


def _unescape(field: str) -> str:
    """Undo /proc/self/mountinfo's octal escapes (\\040 for a blank, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _cgroup_hierarchies() -> dict[str, str]:
    """{label: directory of the test process's cgroup} for every hierarchy.

    Labels: "systemd" (name=systemd), "unified" (cgroup2) and the v1
    controller names ("cpu", "memory,..." as mounted).
    """
    mounts = []  # (mount point, fstype, super options)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields, rfields = left.split(), right.split()
            if rfields[0] in ("cgroup", "cgroup2") and fields[3] == "/":
                mounts.append((_unescape(fields[4]), rfields[0], set(rfields[2].split(","))))
    found: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if hid == "0":
                label = "unified"
                match = [m for m in mounts if m[1] == "cgroup2"]
            else:
                wanted = set(controllers.split(","))
                label = "systemd" if "name=systemd" in wanted else controllers
                match = [m for m in mounts if m[1] == "cgroup" and wanted <= m[2]]
            if match:
                found[label] = os.path.normpath(match[0][0] + path)
    return found


def _netns_names() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def check_environment() -> list[str]:
    """Return human-readable reasons why clusters cannot run here (empty: OK)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the cluster tests must run as root (uid 0)")
    tools = (
        "ip", "nsenter", "unshare", "setpriv", "mount", "pivot_root", "tar",
        "virsh", "/usr/sbin/libvirtd", "/lib/systemd/systemd",
        "qemu-system-x86_64", "dbus-daemon", "journalctl", "systemctl", "certtool",
    )
    for tool in tools:
        if not (os.access(tool, os.X_OK) if "/" in tool else shutil.which(tool)):
            problems.append(f"required program not found: {tool}")
    if "systemd" not in _cgroup_hierarchies():
        problems.append("no name=systemd cgroup hierarchy mounted (need the cgroup v1 "
                        "hybrid layout, like the host's /sys/fs/cgroup/systemd)")
    for name, kind in (("libvirt-qemu", "user"), ("kvm", "group"), ("libvirt-qemu", "group")):
        try:
            (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
        except KeyError:
            problems.append(f"{kind} {name!r} must exist (libvirt's qemu driver needs it)")
    if not os.path.isdir(TMP_PARENT):
        problems.append(f"{TMP_PARENT} does not exist")
    return problems


# --------------------------------------------------------------------------
# Signals and exit: every live cluster is torn down.

_live: set["Cluster"] = set()
_live_lock = threading.RLock()
_teardown_depth = 0
_deferred_signal: int | None = None
_saved_handlers: dict[int, object] = {}


def _on_signal(signum, frame):
    global _deferred_signal
    if _teardown_depth > 0 and _deferred_signal is None:
        # Do not interrupt a teardown: remember, re-raise once it is done.
        # A second signal gets through (a teardown that hangs can be left).
        _deferred_signal = signum
        return
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _install_signal_handlers() -> None:
    """SIGINT/SIGTERM -> KeyboardInterrupt (so `with`/finally/fixtures run)."""
    if threading.current_thread() is not threading.main_thread() or _saved_handlers:
        return
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        current = signal.getsignal(signum)
        if current in (default, signal.SIG_DFL):
            _saved_handlers[signum] = current
            signal.signal(signum, _on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in list(_saved_handlers.items()):
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, handler)
        del _saved_handlers[signum]


@atexit.register
def _teardown_all_at_exit() -> None:
    with _live_lock:
        clusters = list(_live)
    for cluster in clusters:
        try:
            cluster.teardown()
        except Exception as e:  # noqa: BLE001 - last resort, report and go on
            print(f"hwcluster: teardown at exit failed: {e}")


# --------------------------------------------------------------------------
# Files written into a node

#: A node file: its content (mode 0644, root's), ("symlink", target), (content, mode) or
#: (content, mode, "user:group").
NodeFile = str | tuple


def _owner_ids(owner: str) -> tuple[int, int]:
    """(uid, gid) of "user:group", names as the host (hence the node) knows them."""
    user, _, group = owner.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        if user != "nova":  # the nodes' own (_nova_account_files)
            raise
        uid = NOVA_UID
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        if group != "nova":
            raise
        gid = NOVA_GID
    return uid, gid


def _write_node_file(root: str, rel: str, content: NodeFile) -> None:
    """Write one of Node._files() below ROOT (the tree `cp -a` copies into the node)."""
    dest = os.path.join(root, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if isinstance(content, tuple) and content[0] == "symlink":
        os.symlink(content[1], dest)
        return
    if isinstance(content, tuple):
        text, mode, *owner = content
    else:
        text, mode, owner = content, 0o644, []
    data = text.encode() if isinstance(text, str) else text
    # created 0600 and only then written: a key is never readable by others, not even
    # for a moment (cp -a copies mode and owner into the node)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        if owner:
            os.fchown(fd, *_owner_ids(owner[0]))
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _nova_account_files() -> dict[str, NodeFile]:
    """/etc/passwd, group, shadow and gshadow with a nova system user and group (NOVA_UID)
    added to the host's, unless the host has them already."""
    try:
        pwd.getpwnam("nova")
        return {}
    except KeyError:
        pass
    lines = {
        "passwd": f"nova:x:{NOVA_UID}:{NOVA_GID}::/var/lib/nova:/usr/sbin/nologin",
        "group": f"nova:x:{NOVA_GID}:",
        "shadow": "nova:!:19000::::::",
        "gshadow": "nova:!::",
    }
    files: dict[str, NodeFile] = {}
    for name, line in lines.items():
        path = f"/etc/{name}"
        st = os.stat(path)
        text = Path(path).read_text()
        if text and not text.endswith("\n"):
            text += "\n"
        owner = f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}"
        files[f"etc/{name}"] = (text + line + "\n", st.st_mode & 0o7777, owner)
    return files


# --------------------------------------------------------------------------
# Nodes


class Node:
    """One simulated compute node (systemd + libvirtd in namespaces).

    Attributes: ``index`` (1-based), ``name`` ("node1"), ``address`` (IPv4),
    ``address6`` (IPv6), ``netns`` (its network namespace), ``pid`` (host
    PID of its systemd, None before boot), ``dir`` (its host state dir),
    ``host_uuid`` (libvirt's host UUID), ``link_addresses`` (the IPv4 address
    of its ``ethK`` on extra link K, K = 1.., see Cluster's extra_links).
    """

    def __init__(self, cluster: "Cluster", index: int):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index}"
        self.address = f"10.77.0.{10 + index}"
        self.address6 = f"fd77::{10 + index}"
        #: extra link K (1..): the node's eth<K>, 10.77.K.(10+index)/24 and fd77:K::(10+index)/64
        self.link_addresses = {k: f"10.77.{k}.{10 + index}"
                               for k in range(1, cluster.extra_links + 1)}
        self.netns = f"{cluster.tag}-{self.name}"
        self.cgroup = f"{cluster.tag}-{self.name}"
        self.cgroup_dirs: dict[str, str] = {}  # hierarchy label -> our cgroup dir
        self.dir = os.path.join(cluster.tmpdir, self.name)
        self.host_uuid = str(uuidlib.uuid4())
        self.pid: int | None = None
        self.process: subprocess.Popen | None = None
        self.boot_seconds: float | None = None
        self.ready = False  # booted and libvirtd answered
        self.bmc: Bmc | None = None
        self.storage_late = False  # the next boot only: see boot()
        self._boot_started: float | None = None

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.address} pid={self.pid}>"

    # -- running things inside ------------------------------------------

    def _nsenter(self) -> list[str]:
        if self.pid is None or not self.alive:
            raise HarnessError(f"{self.name} is not running")
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-n", "-r", "-w", "--"]

    def run(self, cmd: str | Sequence[str], check: bool = True, input=None,
            timeout: float = 120, env: Mapping[str, str] | None = None):
        """Run CMD inside the node; return a CompletedProcess (text unless input is bytes).

        A string is run with ``/bin/sh -c``; a sequence is exec'd as is.
        With check=True a non-zero exit raises NodeCommandError.
        """
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        proc = subprocess.run(
            self._nsenter() + argv,
            input=input,
            capture_output=True,
            text=not isinstance(input, (bytes, bytearray)),
            timeout=timeout,
            env={**_NODE_ENV, **(env or {})},
        )
        if check and proc.returncode != 0:
            raise NodeCommandError(self.name, proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def virsh(self, *args: str, check: bool = True, timeout: float = 120):
        """``virsh -c qemu:///system ARGS`` inside the node."""
        return self.run(["virsh", "-c", "qemu:///system", *args], check=check, timeout=timeout)

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Create or replace PATH (absolute, inside the node) with CONTENT."""
        if not path.startswith("/"):
            raise ValueError(f"node path must be absolute: {path!r}")
        data = content.encode() if isinstance(content, str) else content
        q = shlex.quote(path)
        self.run(
            f"mkdir -p \"$(dirname {q})\" && cat > {q}.hwt-tmp && "
            f"chmod {mode:o} {q}.hwt-tmp && mv -f {q}.hwt-tmp {q}",
            input=data,
        )

    def read_file(self, path: str) -> str:
        """Text of PATH inside the node."""
        return self.run(["cat", path]).stdout

    def install(self, stage_dir: str | os.PathLike) -> None:
        """Copy a meson DESTDIR tree over the running node's root (like at boot).

        libvirtd only discovers hooks when it starts: call
        `restart_libvirtd()` afterwards.
        """
        stage = Path(stage_dir)
        if not stage.is_dir():
            raise HarnessError(f"install tree {stage} is not a directory")
        tar = subprocess.run(["tar", "-C", str(stage), "-cf", "-", "."],
                             capture_output=True, check=True)
        self.run(["tar", "-C", "/", "--no-overwrite-dir", "-xpf", "-"], input=tar.stdout)
        self.run(["systemctl", "daemon-reload"])

    def restart_libvirtd(self, timeout: float = 60) -> None:
        """Restart libvirtd (re-discovers hooks) and wait until it answers."""
        self.run(["systemctl", "restart", "libvirtd.service"], timeout=timeout)
        self._wait_libvirtd(time.monotonic() + timeout)

    def systemctl(self, *args: str, check: bool = True):
        return self.run(["systemctl", "--no-pager", *args], check=check)

    def system_state(self) -> str:
        """systemd's overall state: starting, running, degraded, ..."""
        return self.run(["systemctl", "is-system-running"], check=False).stdout.strip()

    def failed_units(self) -> list[str]:
        out = self.run(["systemctl", "list-units", "--failed", "--plain",
                        "--no-legend", "--no-pager"], check=False).stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def unit_active(self, unit: str) -> bool:
        return self.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0

    def journal(self, *args: str) -> str:
        """Text of the node's journal (extra journalctl ARGS, e.g. "-u", "libvirtd")."""
        return self.run(["journalctl", "--no-pager", "-q", "-o", "short-monotonic", *args],
                        check=False).stdout

    def console_log(self) -> str:
        """What the node's PID 1 wrote to its console (boot status lines, errors)."""
        try:
            return Path(self.dir, "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle --------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the node's PID 1 runs (checked by PID *and* cgroup)."""
        if self.pid is None or not pid_alive(self.pid):
            return False
        try:
            cgroups = Path(f"/proc/{self.pid}/cgroup").read_text()
        except OSError:
            return False
        return f"/{self.cgroup}" in cgroups

    def _boot_env(self) -> dict[str, str]:
        return {
            "PATH": _NODE_ENV["PATH"],
            "HWT_PATH": _NODE_ENV["PATH"],
            "HWT_NODE_DIR": self.dir,
            "HWT_CGROUP": self.cgroup,
            "HWT_CGROUP_DIRS": " ".join(self.cgroup_dirs.values()),
            "HWT_CGROUP_SYSTEMD": self.cgroup_dirs["systemd"],
            "HWT_CGROUP_UNIFIED": self.cgroup_dirs.get("unified", ""),
            "HWT_INSTALL_DIR": self.cluster._install_dir_for(self.index) or "",
            "HWT_SHARED_DIR": self.cluster.shared_dir,
            "HWT_INSTANCES_PATH": INSTANCES_PATH,
            "HWT_HOSTNAME": self.name,
            "HWT_TARGET": NODE_TARGET,
            "HWT_STORAGE_LATE": "1" if self.storage_late else "0",
        }

    def _boot_argv(self) -> list[str]:
        return [
            "nsenter", f"--net=/run/netns/{self.netns}", "--",
            "unshare", "--mount", "--pid", "--uts", "--fork",
            "--kill-child=SIGKILL", "--propagation", "private",
            "/bin/sh", os.path.join(self.dir, "init.sh"),
        ]

    def _spawn(self) -> None:
        """Start the node's init (non-blocking). Must run in a long-lived thread."""
        argv = self._boot_argv()
        # If the test process dies (even by SIGKILL), the kernel kills
        # unshare, and --kill-child makes it take the node's PID 1 (hence the
        # whole PID namespace) along.  PR_SET_PDEATHSIG fires when the
        # *thread* that forked exits, so only use it from the main thread.
        if threading.current_thread() is threading.main_thread():
            argv = ["setpriv", "--pdeathsig", "SIGKILL", "--"] + argv
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, "pid"))
        log = open(os.path.join(self.dir, "console.log"), "ab")
        try:
            self._boot_started = time.monotonic()
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self._boot_env(), start_new_session=True,  # no terminal SIGINT for nodes
            )
        finally:
            log.close()

    def boot(self, timeout: float = 60, storage_late: bool = False) -> None:
        """Boot a node that was powered off or killed again, with its disk
        (root overlay layer) as it was; waits until it is ready.  With
        storage_late, the shared storage is not mounted at instances_path
        until mount_storage()."""
        if self.alive:
            raise HarnessError(f"{self.name} is running")
        self._forget_boot()
        self.storage_late = storage_late
        try:
            self._spawn()
        finally:
            self.storage_late = False
        self.wait_ready(timeout)

    def mount_storage(self) -> None:
        """Mount the shared storage at instances_path of a node booted with
        storage_late, in the node's mount namespace (services see it as they
        see a remote file system mounted after they started)."""
        self.run(["mount", "--bind", "/run/hwt-storage", INSTANCES_PATH])

    def _forget_boot(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.pid = None
        self.process = None
        self.ready = False
        self.boot_seconds = None

    def wait_powered_on(self, timeout: float = 60) -> None:
        """After a power-on through the node's BMC: wait until the new boot is ready."""
        self._forget_boot()
        self._boot_started = time.monotonic()
        self.wait_ready(timeout)

    def _check_cancel(self) -> None:
        if self.cluster._cancel.is_set():
            raise HarnessError(f"{self.name}: wait cancelled")

    def _fail(self, what: str) -> HarnessError:
        tail = "\n".join(self.console_log().splitlines()[-40:])
        return HarnessError(f"{self.name}: {what}\n--- console.log (tail) ---\n{tail}")

    def _wait_pid(self, deadline: float) -> None:
        pidfile = os.path.join(self.dir, "pid")
        while self.pid is None:
            self._check_cancel()
            if os.path.exists(pidfile):
                self.pid = int(Path(pidfile).read_text())
                return
            if self.process is not None and self.process.poll() is not None:
                raise self._fail(f"init exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise self._fail("init did not start")
            time.sleep(0.01)

    def _wait_libvirtd(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            self._check_cancel()
            proc = self.run(["virsh", "-c", "qemu:///system", "version"], check=False, timeout=30)
            if proc.returncode == 0:
                return
            last = proc.stderr.strip()
            time.sleep(0.1)
        raise self._fail(f"libvirtd does not answer: {last}")

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until systemd finished booting and libvirtd answers.

        Raises HarnessError (with the console log) if the node died or timed
        out.  A ``degraded`` boot counts as booted; tests decide about it.
        """
        deadline = time.monotonic() + timeout
        self._wait_pid(deadline)
        state = ""
        while time.monotonic() < deadline:
            self._check_cancel()
            if not self.alive:
                raise self._fail("systemd exited during boot")
            # Before systemd set up its private socket this fails: retry.
            state = self.system_state()
            if state in ("running", "degraded"):
                break
            # "offline"/"unknown": systemd not reachable yet (early boot).
            if state in ("maintenance", "stopping"):
                raise self._fail(f"boot failed: system state {state!r}")
            time.sleep(0.05)
        else:
            raise self._fail(f"boot did not finish in {timeout}s (state {state!r})")
        self._wait_libvirtd(deadline)
        self.ready = True
        if self.boot_seconds is None and self._boot_started is not None:
            self.boot_seconds = time.monotonic() - self._boot_started

    def poweroff(self, timeout: float = 20) -> None:
        """Clean shutdown (systemctl poweroff inside), SIGKILL of PID 1 after TIMEOUT.

        A node that never finished booting is killed at once: its systemd
        may not even listen for a poweroff yet.
        """
        if self.ready:
            self._request_poweroff()
        self._shutdown(timeout if self.ready else 0)

    def _request_poweroff(self) -> None:
        if self.alive:
            with contextlib.suppress(Exception):
                # --no-block: systemd kills everything, including us, anyway.
                self.run(["systemctl", "--no-block", "poweroff"], check=False, timeout=10)

    def _shutdown(self, timeout: float) -> None:
        """Wait up to TIMEOUT for PID 1 to exit, then kill what is left.

        In order: SIGKILL of PID 1 (the kernel kills its PID namespace),
        reaping our unshare process (killing it if need be: --kill-child
        takes PID 1 along), and SIGKILL of anything still in the node's
        cgroup (only node processes can be there).
        """
        self._read_pidfile()
        deadline = time.monotonic() + timeout
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kill()
        if self.process is not None and self.process.poll() is None:
            try:
                # It exits as soon as its child (PID 1) is gone.
                self.process.wait(timeout=5 if self.pid is not None else 0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._kill_cgroup_members()
        self.ready = False

    def _read_pidfile(self) -> None:
        pidfile = os.path.join(self.dir, "pid")
        if self.pid is None and os.path.exists(pidfile):
            # Written after a start() that gave up waiting for it.
            with contextlib.suppress(ValueError):
                self.pid = int(Path(pidfile).read_text())

    def _cgroup_members(self) -> list[int]:
        base = self.cgroup_dirs.get("systemd")
        pids: list[int] = []
        if base and os.path.isdir(base):
            for dirpath, _, files in os.walk(base):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError):
                        text = Path(dirpath, "cgroup.procs").read_text()
                        pids += [int(p) for p in text.split()]
        return pids

    def _kill_cgroup_members(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (pids := self._cgroup_members()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the node's PID 1 (a simulated crash): the kernel kills its
        whole PID namespace.  Waits until it is gone."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.alive and time.monotonic() < deadline:
                time.sleep(0.02)
        self.ready = False

    # -- configuration written before boot -------------------------------

    def _files(self) -> dict[str, "NodeFile"]:
        """Files copied over the node's root before systemd starts.

        Values are contents (mode 0644, root's), ("symlink", target), (content, mode) or
        (content, mode, "user:group").
        """
        c = self.cluster
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for n in c.nodes:
            hosts.append(f"{n.address}\t{n.name}")
        for n in c.nodes:
            hosts.append(f"{n.address6}\t{n.name}")
        libvirtd_conf = (
            "# Written by the hostwarden test harness.\n"
            "# Peers connect to libvirtd-tls.socket (16514) with certificates of the\n"
            "# run's CA (hwpki.py): libvirt's defaults, listen_tls = 1, auth_tls = none\n"
            "# (the client certificate is the authentication).\n"
            f'host_uuid = "{self.host_uuid}"\n'
        )
        files: dict[str, NodeFile] = {
            "etc/hostname": f"{self.name}\n",
            "etc/hosts": "\n".join(hosts) + "\n",
            "etc/machine-id": uuidlib.uuid4().hex + "\n",
            "etc/libvirt/libvirtd.conf": libvirtd_conf,
            # libvirt's defaults otherwise: QEMU runs as libvirt-qemu, dynamic_ownership = 1,
            # the default security driver (none on this kernel: no AppArmor, SELinux off;
            # tests/cluster/README.md).  No cgroup controllers: the node's v1 hierarchies
            # are not delegated to it.  stdio_handler = file: no virtlogd round trip.
            "etc/libvirt/qemu.conf": (
                "# Written by the hostwarden test harness.\n"
                + (f'user = "{c.qemu_user}"\ngroup = "{c.qemu_user}"\n' if c.qemu_user else "")
                + "cgroup_controllers = [ ]\n"
                'stdio_handler = "file"\n'
                f'migration_host = "{self.address}"\n'
            ),
            # Debian's default is "--timeout 120": libvirtd would exit when
            # idle and come back on the next connection (re-reading hooks).
            "etc/default/libvirtd": 'LIBVIRTD_ARGS=""\n',
            "etc/systemd/journald.conf.d/hwt.conf": (
                "[Journal]\nStorage=volatile\nRateLimitBurst=0\nForwardToConsole=no\n"
            ),
            f"etc/systemd/system/{NODE_TARGET}": self._target_unit(),
        }
        files.update(_nova_account_files())
        # libvirt's and QEMU's PKI, from the run's CA: the certificate names the node's
        # host name and both addresses (peers' URIs and QEMU's migration use addresses).
        pki = c.pki.node_files(self.name, (self.address, self.address6))
        for rel, (content, mode) in pki.items():
            if rel.startswith("etc/pki/qemu/") and mode & 0o040:
                files[rel] = (content, mode, "root:libvirt-qemu")
            else:
                files[rel] = (content, mode)
        for unit in _MASKED_UNITS:
            files[f"etc/systemd/system/{unit}"] = ("symlink", "/dev/null")
        config = c._config_for(self.index)
        if config is not None:
            files["etc/hostwarden/hostwarden.conf"] = config
        for path, content in c._extra_files_for(self.index).items():
            files[path.lstrip("/")] = content
        return files

    def _target_unit(self) -> str:
        units = list(_NODE_UNITS) + list(self.cluster.units)
        return (
            "[Unit]\n"
            "Description=hostwarden simulated compute node\n"
            "Requires=basic.target\n"
            "After=basic.target\n"
            f"Wants={' '.join(units)}\n"
            f"After={' '.join(units)}\n"
            "AllowIsolate=yes\n"
        )

    def _prepare(self) -> None:
        """Create the node's host dir: init script, files tree, mount points."""
        for sub in ("root", "rw", "files"):
            os.makedirs(os.path.join(self.dir, sub))
        Path(self.dir, "init.sh").write_text(_INIT_SCRIPT)
        # The node's disk: the upper layer of its root overlay lives on this
        # tmpfs, mounted here (not inside the node) so that it outlives a
        # power-off; teardown unmounts it.
        _run(["mount", "-t", "tmpfs", "-o", "mode=0755", f"{self.cluster.tag}-rw",
              os.path.join(self.dir, "rw")])
        files_root = os.path.join(self.dir, "files")
        for rel, content in self._files().items():
            _write_node_file(files_root, rel, content)
        for label, parent in _cgroup_hierarchies().items():
            if any(c.isspace() for c in parent):
                raise HarnessError(f"cgroup path with blanks not supported: {parent!r}")
            path = os.path.join(parent, self.cgroup)
            os.mkdir(path)
            self.cgroup_dirs[label] = path
            if os.path.exists(os.path.join(path, "cpuset.cpus")):
                # A v1 cpuset cgroup starts empty and accepts no task.
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    value = Path(parent, knob).read_text().strip()
                    Path(path, knob).write_text(value)
        # What a BMC's power-on runs (the same boot as _spawn's, without the
        # test process as parent).
        env = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self._boot_env().items())
        Path(self.dir, "boot.sh").write_text(
            "#!/bin/sh\n# Boot the simulated node (hwcluster.py); used by its BMC.\n" + env +
            "exec " + " ".join(shlex.quote(a) for a in self._boot_argv()) + "\n")


# --------------------------------------------------------------------------
# BMCs

#: Where the simulated nodes' BMCs listen (on the bridge); node N's on UDP port BMC_PORT_BASE + N.
BMC_ADDRESS = "10.77.0.254"
BMC_PORT_BASE = 7000
BMC_USER = "admin"

_BMC_POWER_SCRIPT = r"""#!/bin/sh
# ipmi_sim chassis_control of one simulated node (hwcluster.py):
#   get power        -> "power:1" while the node's PID 1 runs, else "power:0"
#   set power 0|1    -> SIGKILL of its PID 1 (disk kept) | boot it again
dir=$1 cgroup=$2
shift 2
alive() {
    pid=$(cat "$dir/pid" 2>/dev/null) || return 1
    grep -qF "/$cgroup" "/proc/$pid/cgroup" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ]
}
case "$1 $2" in
"get power")
    if alive; then echo power:1; else echo power:0; fi ;;
"set power")
    echo "$(date '+%T.%N') power $3" >> "$dir/bmc/power.log"
    if [ "$3" = 0 ]; then
        if alive; then
            kill -KILL "$pid"
            n=0
            while alive && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
        fi
    elif ! alive; then
        rm -f "$dir/pid"
        setsid /bin/sh "$dir/boot.sh" </dev/null >>"$dir/console.log" 2>&1 &
    fi ;;
esac
exit 0
"""


def bmc_fence_options(cluster: "Cluster", index: int) -> str:
    """fence_ipmilan's options (key=value lines) for the BMC of node INDEX of CLUSTER
    (usable before the cluster started, e.g. in its nodes' configurations)."""
    return (f"ip={BMC_ADDRESS}\nipport={BMC_PORT_BASE + index}\nusername={BMC_USER}\n"
            f"password={cluster.bmc_password}\nlanplus=1\ncipher=3\n")


class Bmc:
    """A simulated BMC for one node: Debian's ipmi_sim speaking IPMI over LAN
    (lanplus) on BMC_ADDRESS:port, whose chassis power control powers the
    node off (SIGKILL of its PID 1, its disk kept) and on (boots it again).
    Attributes: ``address``, ``port``, ``user``, ``password``."""

    def __init__(self, node: Node):
        self.node = node
        self.address = BMC_ADDRESS
        self.port = BMC_PORT_BASE + node.index
        self.user = BMC_USER
        self.password = node.cluster.bmc_password
        self.dir = os.path.join(node.dir, "bmc")
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"<Bmc {self.node.name} {self.address}:{self.port}>"

    def fence_options(self) -> str:
        """fence_ipmilan's options (key=value lines) for this BMC."""
        return bmc_fence_options(self.node.cluster, self.node.index)

    def start(self) -> None:
        """Starts ipmi_sim; again after stop() too (a BMC that died and came back)."""
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        power = os.path.join(self.dir, "power.sh")
        Path(power).write_text(_BMC_POWER_SCRIPT)
        os.chmod(power, 0o755)
        auths = "none md2 md5 straight"
        Path(self.dir, "lan.conf").write_text(
            f'name "{self.node.cluster.tag}-{self.node.name}"\n'
            "set_working_mc 0x20\n"
            "  startlan 1\n"
            f"    addr {self.address} {self.port}\n"
            "    priv_limit admin\n"
            f"    allowed_auths_callback {auths}\n"
            f"    allowed_auths_user {auths}\n"
            f"    allowed_auths_operator {auths}\n"
            f"    allowed_auths_admin {auths}\n"
            f"    guid {uuidlib.uuid4().hex}\n"
            "  endlan\n"
            f'  chassis_control "{power} {self.node.dir} {self.node.cgroup}"\n'
            f'  user 2 true "{self.user}" "{self.password}" admin 10 md5\n')
        Path(self.dir, "bmc.emu").write_text(
            "mc_setbmc 0x20\n"
            "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
            "mc_enable 0x20\n")
        argv = ["nsenter", f"--net=/run/netns/{self.node.cluster.bridge_netns}", "--",
                "ipmi_sim", "-n", "-c", os.path.join(self.dir, "lan.conf"),
                "-f", os.path.join(self.dir, "bmc.emu"), "-s", os.path.join(self.dir, "state")]
        if threading.current_thread() is threading.main_thread():
            argv = ["setpriv", "--pdeathsig", "SIGKILL", "--"] + argv
        log = open(os.path.join(self.dir, "ipmi_sim.log"), "wb")
        try:
            # HWT_NODE names it as ours for leftovers() and cleanup_stale().
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={"PATH": _NODE_ENV["PATH"], "HWT_NODE": f"{self.node.cgroup}-bmc"},
                start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(f"{self}: ipmi_sim did not start: "
                                   + Path(self.dir, "ipmi_sim.log").read_text(errors="replace"))
            time.sleep(0.02)

    def _listening(self) -> bool:
        out = _run(["ip", "netns", "exec", self.node.cluster.bridge_netns, "ss", "-Hlun",
                    f"sport = :{self.port}"], check=False).stdout
        return bool(out.strip())

    def ipmitool(self, *args: str, check: bool = True):
        """ipmitool (lanplus) against this BMC from the bridge's namespace."""
        return _run(["ip", "netns", "exec", self.node.cluster.bridge_netns, "ipmitool",
                     "-I", "lanplus", "-C", "3", "-H", self.address, "-p", str(self.port),
                     "-U", self.user, "-P", self.password, *args], check=check, timeout=30)

    def power_log(self) -> str:
        try:
            return Path(self.dir, "power.log").read_text()
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


# --------------------------------------------------------------------------
# Clusters


class Cluster:
    """N simulated compute nodes on one bridge, sharing one instances dir.

    Cluster(n_nodes=2, install_dir=None, configs=None, files=None, units=(),
            boot_timeout=60)

    - install_dir: a meson DESTDIR tree copied over every node's root before
      boot (``cp -a STAGE/. ROOT/``), or {node_index: tree} for some nodes.
    - configs: /etc/hostwarden/hostwarden.conf content for every node, or
      {node_index: content}.
    - files: {path: content} written into every node before boot, or
      {node_index: {path: content}}.
    - units: extra units the node target wants (e.g. "hostwardend.service").
    - bmc: give every node a simulated BMC (Bmc; ``node.bmc``), bmc_password
      its admin password (default: random; ``cluster.bmc_password``).
    - pki: the CA whose certificates the nodes get (hwpki.Pki; default: the run's,
      ``hwpki.shared()``).
    - extra_links: that many more networks between the nodes, each on a bridge of its own
      (``br<K>`` in the switch namespace): node N's ``eth<K>`` is 10.77.K.(10+N)/24 and
      fd77:K::(10+N)/64 (``node.link_addresses[K]``), not named in /etc/hosts: a
      dedicated migration network, or an uplink a test bridges guests onto.
    - qemu_user: qemu.conf's user and group (default: libvirt's, libvirt-qemu).  "root"
      only where a test needs what QEMU cannot do as libvirt-qemu here: post-copy
      (userfaultfd, with vm.unprivileged_userfaultfd = 0 on this host; README).

    Node indices are 1-based and match the names (node1 = 10.77.0.11).
    Use as a context manager; `start()`/`teardown()` are also public and
    `teardown()` is idempotent.
    """

    _seq = 0
    _seq_lock = threading.Lock()

    def __init__(self, n_nodes: int = 2, install_dir=None, configs=None, files=None,
                 units: Iterable[str] = (), boot_timeout: float = 60, bmc: bool = False,
                 bmc_password: str | None = None, pki: "hwpki.Pki | None" = None,
                 qemu_user: str | None = None, extra_links: int = 0):
        if not 1 <= n_nodes <= 200:
            raise ValueError("n_nodes must be between 1 and 200")
        if not 0 <= extra_links <= 8:
            raise ValueError("extra_links must be between 0 and 8")
        with Cluster._seq_lock:
            Cluster._seq += 1
            seq = Cluster._seq
        self.tag = f"{PREFIX}{seq}"
        self.n_nodes = n_nodes
        self.install_dir = self._per_node("install_dir", install_dir, (str, os.PathLike))
        self.configs = self._per_node("configs", configs, str)
        self.files = self._per_node("files", files, Mapping)
        self.units = tuple(units)
        self.boot_timeout = boot_timeout
        self.tmpdir = ""
        self.shared_dir = ""
        self.bridge_netns = f"{self.tag}-sw"
        self.with_bmc = bmc
        #: The BMCs' admin password (known before start, for the nodes' fence_options).
        self.bmc_password = bmc_password or f"bmc-{uuidlib.uuid4().hex[:12]}"
        self.bmcs: list[Bmc] = []
        self.pki = pki or hwpki.shared()
        self.qemu_user = qemu_user
        self.extra_links = extra_links
        self.nodes: list[Node] = []
        self.boot_seconds: float | None = None
        self._started = False
        self._torn_down = False
        self._cancel = threading.Event()

    def _per_node(self, what: str, value, kind) -> dict[int, object]:
        """Normalise a 'same for all nodes' or {node_index: value} argument."""
        if value is None:
            return {}
        per_node = isinstance(value, Mapping) and (
            kind is not Mapping or all(isinstance(k, int) for k in value))
        if per_node:
            bad = [k for k in value if not (isinstance(k, int) and 1 <= k <= self.n_nodes)]
            if bad:
                raise ValueError(f"{what}: node indices are 1..{self.n_nodes}, got {bad}")
            return dict(value)
        if not isinstance(value, kind):
            raise TypeError(f"{what}: unexpected {type(value).__name__}")
        return {i: value for i in range(1, self.n_nodes + 1)}

    def _install_dir_for(self, index: int) -> str | None:
        path = self.install_dir.get(index)
        if path is None:
            return None
        path = os.path.realpath(os.fspath(path))
        if not os.path.isdir(path):
            raise HarnessError(f"install tree {path} is not a directory")
        return path

    def _config_for(self, index: int) -> str | None:
        return self.configs.get(index)

    def _extra_files_for(self, index: int) -> Mapping[str, str]:
        return self.files.get(index, {})

    def __repr__(self) -> str:
        return f"<Cluster {self.tag} nodes={[n.name for n in self.nodes]}>"

    def __enter__(self) -> "Cluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def __iter__(self):
        return iter(self.nodes)

    def node(self, name_or_index: str | int) -> Node:
        """A node by name ("node2") or 1-based index (2)."""
        for n in self.nodes:
            if name_or_index in (n.name, n.index):
                return n
        raise KeyError(name_or_index)

    # -- start --------------------------------------------------------------

    def start(self) -> None:
        """Create network, dirs and cgroups; boot all nodes in parallel."""
        if self._started:
            raise HarnessError("cluster already started")
        problems = check_environment()
        if problems:
            raise HarnessError("cannot run simulated nodes here:\n  " + "\n  ".join(problems))
        self._started = True
        with _live_lock:
            _live.add(self)
            _install_signal_handlers()
        t0 = time.monotonic()
        try:
            self.tmpdir = tempfile.mkdtemp(prefix=self.tag + "-", dir=TMP_PARENT)
            os.chmod(self.tmpdir, 0o755)
            self.shared_dir = os.path.join(self.tmpdir, "shared")
            os.mkdir(self.shared_dir)
            # as Nova's packages leave /var/lib/nova/instances: the nova user's, 0755
            os.chown(self.shared_dir, NOVA_UID, NOVA_GID)
            os.chmod(self.shared_dir, 0o755)
            self.nodes = [Node(self, i) for i in range(1, self.n_nodes + 1)]
            self._setup_network()
            for n in self.nodes:
                n._prepare()
            if self.with_bmc:
                for n in self.nodes:
                    bmc = Bmc(n)
                    self.bmcs.append(bmc)
                    n.bmc = bmc
                    bmc.start()
            # Popen from this thread (see Node._spawn), then wait in parallel.
            for n in self.nodes:
                n._spawn()
            self._parallel(lambda n: n.wait_ready(self.boot_timeout))
        except BaseException:
            self.teardown()
            raise
        self.boot_seconds = time.monotonic() - t0

    def _parallel(self, fn) -> list:
        """Run fn(node) for every node concurrently; re-raise the first error.

        On an error or KeyboardInterrupt the other workers are cancelled
        (wait loops check `_cancel`) so that the teardown can start at once.
        """
        if len(self.nodes) == 1:
            return [fn(self.nodes[0])]
        pool = ThreadPoolExecutor(max_workers=min(16, len(self.nodes)),
                                  thread_name_prefix=self.tag)
        try:
            futures = [pool.submit(fn, n) for n in self.nodes]
            return [f.result() for f in futures]
        except BaseException:
            self._cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _setup_network(self) -> None:
        """Bridge namespace with br0; per node a netns with eth0 veth'd into br0."""
        sw = self.bridge_netns
        _ip("netns", "add", sw)
        _ip("-n", sw, "link", "set", "lo", "up")
        _ip("-n", sw, "link", "add", "br0", "type", "bridge",
            "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
        _ip("-n", sw, "link", "set", "br0", "up")
        # The BMCs' address (one UDP port per node's BMC, see Bmc).
        _ip("-n", sw, "addr", "add", f"{BMC_ADDRESS}/24", "dev", "br0")
        for n in self.nodes:
            _ip("netns", "add", n.netns)
            # Both ends are created directly in our namespaces: the host's
            # own network never sees an interface.
            _ip("-n", sw, "link", "add", f"v{n.index}", "type", "veth",
                "peer", "name", "eth0", "netns", n.netns)
            _ip("-n", sw, "link", "set", f"v{n.index}", "master", "br0", "up")
            _ip("-n", n.netns, "link", "set", "lo", "up")
            _ip("-n", n.netns, "addr", "add", f"{n.address}/24", "dev", "eth0")
            # nodad: usable at once, no duplicate address detection wait.
            _ip("-n", n.netns, "addr", "add", f"{n.address6}/64", "dev", "eth0", "nodad")
            _ip("-n", n.netns, "link", "set", "eth0", "up")
        for k in range(1, self.extra_links + 1):
            self._setup_link(k)

    def _setup_link(self, k: int) -> None:
        """Extra link K: bridge br<K> in the switch namespace, eth<K> in every node."""
        sw = self.bridge_netns
        _ip("-n", sw, "link", "add", f"br{k}", "type", "bridge",
            "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
        _ip("-n", sw, "link", "set", f"br{k}", "up")
        for n in self.nodes:
            _ip("-n", sw, "link", "add", f"v{n.index}l{k}", "type", "veth",
                "peer", "name", f"eth{k}", "netns", n.netns)
            _ip("-n", sw, "link", "set", f"v{n.index}l{k}", "master", f"br{k}", "up")
            _ip("-n", n.netns, "addr", "add", f"{n.link_addresses[k]}/24", "dev", f"eth{k}")
            _ip("-n", n.netns, "addr", "add", f"fd77:{k}::{10 + n.index}/64", "dev", f"eth{k}",
                "nodad")
            _ip("-n", n.netns, "link", "set", f"eth{k}", "up")

    # -- teardown -------------------------------------------------------------

    def leftovers(self) -> list[str]:
        """What of this cluster still exists (see `leftovers()`)."""
        return leftovers(self.tag + "-")

    def teardown(self) -> None:
        """Power every node off and remove everything this cluster created.

        Idempotent; safe after a partial start.  Raises HarnessError if
        something could not be removed (after trying everything).
        """
        global _teardown_depth, _deferred_signal
        if self._torn_down or not self._started:
            return
        with _live_lock:
            _teardown_depth += 1
        errors: list[str] = []
        try:
            # BMCs first: none may power a node on again during teardown.
            for bmc in self.bmcs:
                try:
                    bmc.stop()
                except Exception as e:  # noqa: BLE001
                    errors.append(f"{bmc}: {e}")
            # Ask all booted nodes at once, then wait for each: shutdowns
            # overlap.  Nodes still booting are killed outright.
            for n in self.nodes:
                if n.ready:
                    n._request_poweroff()
            for n in self.nodes:
                try:
                    n._shutdown(timeout=15 if n.ready else 0)
                except Exception as e:  # noqa: BLE001 - go on removing the rest
                    errors.append(f"{n.name}: {e}")
            for n in self.nodes:
                for path in n.cgroup_dirs.values():
                    try:
                        _rmdir_tree(path)
                    except OSError as e:
                        errors.append(f"cgroup {path}: {e}")
            for ns in [n.netns for n in self.nodes] + [self.bridge_netns]:
                if ns in _netns_names():
                    proc = _ip("netns", "delete", ns, check=False)
                    if proc.returncode != 0:
                        errors.append(f"netns {ns}: {proc.stderr.strip()}")
            for n in self.nodes:
                rw = os.path.join(n.dir, "rw")
                if os.path.realpath(rw) in _host_mounts():
                    proc = _run(["umount", "-l", rw], check=False)
                    if proc.returncode != 0:
                        errors.append(f"umount {rw}: {proc.stderr.strip()}")
            if self.tmpdir:
                try:
                    _safe_rmtree(self.tmpdir)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
            left = self.leftovers()
            if left:
                errors.append("left behind: " + "; ".join(left))
        finally:
            self._torn_down = True
            with _live_lock:
                _live.discard(self)
                _teardown_depth -= 1
                pending = _deferred_signal if _teardown_depth == 0 else None
                if pending is not None:
                    _deferred_signal = None
                if not _live:
                    _restore_signal_handlers()
        if errors:
            raise HarnessError(f"teardown of {self.tag} incomplete:\n  " + "\n  ".join(errors))
        if pending is not None:
            raise KeyboardInterrupt(f"signal {signal.Signals(pending).name} during teardown")


# --------------------------------------------------------------------------
# Leftovers


def leftovers(prefix: str = PREFIX) -> list[str]:
    """Everything named PREFIX* that still exists (default: this process's).

    Checks network namespaces, cgroups, temporary directories, host mounts
    below them and node processes (any process whose root is in one of our
    node overlays, i.e. a still-running node).  Empty list: all clean.
    """
    found = [f"netns {ns}" for ns in _netns_names() if ns.startswith(prefix)]
    found += [f"cgroup {d}" for d in _cgroup_candidates() if os.path.basename(d).startswith(prefix)]
    tmp = [os.path.join(TMP_PARENT, d) for d in sorted(os.listdir(TMP_PARENT))
           if d.startswith(prefix)]
    found += [f"directory {d}" for d in tmp]
    for m in _host_mounts():
        if any(m == d or m.startswith(d + "/") for d in tmp) or (
                os.path.basename(m).startswith(prefix)):
            found.append(f"mount {m}")
    # Node processes: their cgroups are gone once they are; but also catch
    # processes of a node whose cgroup was never created or was escaped.
    for pid, env in _process_environs():
        if any(f"{var}={prefix}".encode() in env for var in ("HWT_CGROUP", "HWT_NODE")):
            found.append(f"process {pid} ({_comm(pid)})")
    return found


def _cgroup_candidates() -> list[str]:
    """Entries of our own cgroup dirs and of the hierarchies' roots."""
    dirs = set()
    for parent in _cgroup_hierarchies().values():
        root = parent
        while os.path.dirname(root) != _CGROUP_ROOT and root != _CGROUP_ROOT:
            root = os.path.dirname(root)
        for base in {parent, root}:
            with contextlib.suppress(FileNotFoundError):
                dirs.update(os.path.join(base, d) for d in os.listdir(base)
                            if os.path.isdir(os.path.join(base, d)))
    return sorted(dirs)


def _process_environs():
    """(pid, environment bytes) of every process we may read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            yield int(entry), Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def cleanup_stale() -> list[str]:
    """Remove what dead test processes (hwt-<pid>- with no such PID) left.

    Returns what was removed.  Never touches the names of a living PID.
    """
    def dead(name: str) -> bool:
        m = re.match(r"hwt-(\d+)-", name)
        return bool(m) and int(m[1]) != os.getpid() and not pid_alive(int(m[1]))

    removed = []
    # Processes first (still-running nodes of a dead run, by PID).
    for pid, env in _process_environs():
        m = re.search(rb"HWT_(?:CGROUP|NODE)=(hwt-\d+-[^\0]*)", env)
        if m and dead(m[1].decode()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                removed.append(f"process {pid}")
    time.sleep(0.2 if removed else 0)
    for d in _cgroup_candidates():
        if os.path.basename(d).startswith("hwt-") and dead(os.path.basename(d)):
            with contextlib.suppress(OSError):
                _rmdir_tree(d)
                removed.append(f"cgroup {d}")
    for ns in _netns_names():
        if ns.startswith("hwt-") and dead(ns):
            if _ip("netns", "delete", ns, check=False).returncode == 0:
                removed.append(f"netns {ns}")
    for d in sorted(os.listdir(TMP_PARENT)):
        if d.startswith("hwt-") and dead(d):
            top = os.path.join(TMP_PARENT, d)
            for m in _host_mounts():  # the nodes' disks (tmpfs)
                if m.startswith(top + "/"):
                    if _run(["umount", "-l", m], check=False).returncode == 0:
                        removed.append(f"mount {m}")
            with contextlib.suppress(Exception):
                _safe_rmtree(os.path.join(TMP_PARENT, d))
                removed.append(f"directory {TMP_PARENT}/{d}")
    return removed


# --------------------------------------------------------------------------
# Guests and migration


def domain_xml(name: str, uuid: str | None = None, graphics: str | None = None,
               memory_mib: int = 64, vcpus: int = 1, devices: str = "",
               kernel: str | None = None) -> str:
    """A minimal TCG guest: no disk (SeaBIOS finds nothing to boot and idles).

    graphics: a raw device snippet, e.g. "<graphics type='vnc' listen='10.77.0.11'/>".
    devices: more raw device XML.
    kernel: a kernel image QEMU boots directly (<os><kernel>) instead of the firmware's
    boot order.
    """
    uuid = uuid or str(uuidlib.uuid4())
    name = xml_escape(name)
    extra = "\n".join(s for s in (graphics, devices) if s)
    boot = f"<kernel>{xml_escape(kernel)}</kernel>" if kernel else "<boot dev='hd'/>"
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <currentMemory unit='MiB'>{memory_mib}</currentMemory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    {boot}
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    {extra}
  </devices>
</domain>
"""


def define_and_start(node: Node, xml: str, timeout: float = 60) -> str:
    """Define XML persistently on NODE and start it; return the domain name."""
    m = re.search(r"<name>([^<]+)</name>", xml)
    if not m:
        raise ValueError("domain XML has no <name>")
    name = m[1]
    node.run(["virsh", "-c", "qemu:///system", "define", "/dev/stdin"], input=xml,
             timeout=timeout)
    node.virsh("start", name, timeout=timeout)
    return name


def peer_uri(dst: Node, ipv6: bool = False) -> str:
    """How a peer reaches DST's libvirt: qemu+tls://ADDRESS/system, hostwarden's default."""
    host = f"[{dst.address6}]" if ipv6 else dst.address
    return f"qemu+tls://{host}/system"


def migrate(src: Node, dst: Node, domain: str, *extra_args: str, ipv6: bool = False,
            timeout: float = 180):
    """``virsh migrate --live --p2p DOMAIN qemu+tls://DST/system EXTRA_ARGS`` on SRC.

    Returns the CompletedProcess (check=False) so tests can inspect stderr.
    Pass e.g. "--persistent", "--undefinesource", "--verbose", "--tls" as extra args.
    """
    return src.run(
        ["virsh", "-c", "qemu:///system", "migrate", "--live", "--p2p", domain,
         peer_uri(dst, ipv6), *extra_args],
        check=False, timeout=timeout,
    )


def tcp_connect(node: Node, host: str, port: int, timeout: float = 3.0) -> bool:
    """True if a real TCP connection from inside NODE to HOST:PORT succeeds."""
    script = (
        "import socket,sys\n"
        f"s=socket.create_connection(({host!r},{port}),timeout={timeout})\n"
        "s.close()\n"
    )
    return node.run(["/usr/bin/python3", "-c", script], check=False,
                    timeout=timeout + 10).returncode == 0
