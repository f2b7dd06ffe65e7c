"""Install hostwarden from a build directory into a staging tree (a meson DESTDIR),
which the harness copies over a simulated node's root before it boots, as a package would
install it: /usr/libexec/hostwarden/hostwarden-hook, the qemu.d link, /etc/hostwarden."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, Iterator

import hwcluster

SOURCE_DIR = os.environ.get(
    "HW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("HW_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))

# hostwardend's Node interface, for `busctl call *NODE_API METHOD ...`
BUSCTL = ["busctl", "--system"]
NODE_API = ["org.hostwarden.Warden1", "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node"]

HOOK = "/usr/libexec/hostwarden/hostwarden-hook"
HOOK_LINK = "/etc/libvirt/hooks/qemu.d/50-hostwarden"


def _merge_usr(dest: str) -> None:
    """Debian 12 has a merged /usr (/lib -> usr/lib): move what meson installed under /lib,
    /bin or /sbin to /usr, as dpkg ends up with, so copying the tree over a root works."""
    for top in ("lib", "bin", "sbin"):
        src = os.path.join(dest, top)
        if not os.path.isdir(src) or os.path.islink(src) or not os.path.islink("/" + top):
            continue
        target = os.path.join(dest, "usr", top)
        os.makedirs(target, exist_ok=True)
        shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(src)


def stage(build_dir: str = BUILD_DIR) -> str:
    """`meson install --destdir` into a new directory under /var/tmp; returns its path.

    The caller removes it (shutil.rmtree) when done."""
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        raise RuntimeError(f"{build_dir} is not a configured build directory (run scripts/build)")
    dest = tempfile.mkdtemp(prefix="hw-stage-", dir="/var/tmp")
    try:
        subprocess.run(["meson", "install", "-C", build_dir, "--no-rebuild", "--quiet",
                        "--destdir", dest], check=True, capture_output=True, text=True)
        _merge_usr(dest)
        for path in (HOOK, HOOK_LINK):
            if not os.path.lexists(dest + path):
                raise RuntimeError(f"meson install did not install {path}")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


SYNCED = "/run/hostwarden/node/synced"


def synced(node) -> bool:
    """Has NODE's hostwardend read the cluster store since the node booted?"""
    return node.run(["test", "-e", SYNCED], check=False).returncode == 0


def wait_synced(nodes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not synced(node):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{node.name}: hostwardend has not read the store in {timeout} s:\n"
                    + node.run(["hostwardenctl", "status"], check=False).stdout)
            time.sleep(0.2)


def init_cluster(cluster: hwcluster.Cluster, name: str = "hwtest") -> None:
    """What an operator does once for a new cluster: `hostwardenctl init-cluster` on one node;
    then every node whose hostwardend runs reads the store (and starts guests) by itself."""
    cluster.node(1).run(["hostwardenctl", "init-cluster", "--name", name])
    wait_synced([n for n in cluster.nodes if n.unit_active("hostwardend.service")])


def node_config(i: int, n: int = 2, extra: str = "", heartbeat: str | None = "500ms",
                down_after: str = "3s", peer_lines: Callable[[int], str] | None = None) -> str:
    """hostwarden.conf of node I (nodeI, 10.77.0.1I) in a cluster of N, in this order:
    [node]; [cluster] with heartbeats fast enough for a test (heartbeat=None: no [cluster]
    section, hostwardend's defaults); EXTRA as it is (more [cluster] lines first, such as
    hwevac.etcd_config(), then the test's own sections); and a [peer nodeJ] with its address
    for every other node J of 1..N, followed by peer_lines(J) (more lines of that section).
    A peer in N that the cluster does not start is one configured but never up."""
    text = f"[node]\nname = node{i}\naddress = 10.77.0.1{i}\n"
    if heartbeat is not None:
        text += f"[cluster]\nheartbeat_interval = {heartbeat}\ndown_after = {down_after}\n"
    text += extra
    for j in range(1, n + 1):
        if j != i:
            text += f"[peer node{j}]\naddress = 10.77.0.1{j}\n"
            text += peer_lines(j) if peer_lines else ""
    return text


#: The firewall as production runs it: the migration ports open only in a migration's window,
#: to the nodes of the test network.
FIREWALL = "[firewall]\nmigration_sources = 10.77.0.0/24 fd77::/64\n"


def with_firewall(n: int, configs) -> dict[int, str]:
    """Every node's hostwarden.conf with the firewall on, unless its text has a [firewall]
    section of its own (a test that turns it off says why there)."""
    if configs is None or isinstance(configs, str):
        configs = {i: configs or "" for i in range(1, n + 1)}
    return {i: text if "[firewall]" in text else text + "\n" + FIREWALL
            for i, text in ((i, configs.get(i) or "") for i in range(1, n + 1))}


@contextlib.contextmanager
def installed_cluster(n: int, **kwargs) -> Iterator[hwcluster.Cluster]:
    """A started hwcluster.Cluster of N nodes, every one with this build installed
    (kwargs go to hwcluster.Cluster) and its firewall on (with_firewall), and, where
    hostwardend runs, a cluster initialized and read by every node. At the end it is torn
    down, the staging tree removed, and nothing may be left behind."""
    dest = stage()
    kwargs["configs"] = with_firewall(n, kwargs.get("configs"))
    units = tuple(kwargs.get("units", ()))
    if "hostwarden-firewall.service" not in units:
        kwargs["units"] = units + ("hostwarden-firewall.service",)
    cluster = hwcluster.Cluster(n, install_dir=dest, **kwargs)
    try:
        cluster.start()
        if "hostwardend.service" in cluster.units:
            init_cluster(cluster)
        yield cluster
    finally:
        cluster.teardown()
        shutil.rmtree(dest, ignore_errors=True)
        assert cluster.leftovers() == []
