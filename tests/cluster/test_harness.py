"""Tests of the simulated-cluster harness itself (hwcluster.py)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hwcluster

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# A booted pair of nodes


def test_nodes_boot_to_running(module_cluster):
    for node in module_cluster.nodes:
        state = node.system_state()
        assert state in ("running", "degraded"), f"{node.name}: system state {state!r}"
        if state == "degraded":
            # Visible with -s / in the failure report; only libvirtd matters.
            print(f"{node.name} degraded, failed units: {node.failed_units()}")
        assert node.unit_active("libvirtd.service"), node.journal("-u", "libvirtd")
        assert node.unit_active("dbus.service")
        assert node.unit_active("systemd-journald.service")
        assert node.run(["hostname"]).stdout.strip() == node.name
        assert node.boot_seconds is not None and node.boot_seconds < 15
    assert module_cluster.boot_seconds < 15


def test_libvirtd_answers_with_distinct_host_uuids(module_cluster):
    uuids = set()
    for node in module_cluster.nodes:
        assert "libvirt" in node.virsh("version").stdout
        assert node.virsh("hostname").stdout.strip() == node.name
        caps = node.virsh("capabilities").stdout
        assert f"<uuid>{node.host_uuid}</uuid>" in caps
        # TCG only: a guest of type 'qemu' must be possible.
        assert "<domain type='qemu'" in caps
        uuids.add(node.host_uuid)
    assert len(uuids) == len(module_cluster.nodes)


def test_nodes_reach_each_other_over_ipv4_and_ipv6(module_cluster):
    for a, b in itertools.permutations(module_cluster.nodes, 2):
        # Real TCP connects to the peer's libvirtd (libvirtd-tls.socket).
        port = hwcluster.LIBVIRT_TLS_PORT
        assert hwcluster.tcp_connect(a, b.address, port), (a, b.address)
        assert hwcluster.tcp_connect(a, b.address6, port), (a, b.address6)
        # ... and by name, through the /etc/hosts the harness wrote.
        assert hwcluster.tcp_connect(a, b.name, port), (a, b.name)
        # libvirt itself over TLS, with the run's CA (what p2p migration uses), by
        # address and by name: the certificate names both.
        for ipv6 in (False, True):
            out = a.virsh("-c", hwcluster.peer_uri(b, ipv6), "hostname").stdout
            assert out.strip() == b.name
        assert a.virsh("-c", f"qemu+tls://{b.name}/system", "hostname").stdout.strip() == b.name
        # No plain TCP, as on a production node.
        assert not hwcluster.tcp_connect(a, b.address, hwcluster.LIBVIRT_TCP_PORT, timeout=1)


def test_network_is_isolated(module_cluster):
    node = module_cluster.nodes[0]
    links = node.run(["ip", "-o", "link", "show"]).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    assert names == ["eth0", "lo"]
    assert "default" not in node.run(["ip", "route", "show"]).stdout
    assert "default" not in node.run(["ip", "-6", "route", "show"]).stdout
    # Nothing listens on libvirt's ports outside the nodes' namespaces.
    for port in (hwcluster.LIBVIRT_TCP_PORT, hwcluster.LIBVIRT_TLS_PORT):
        assert not hwcluster.tcp_connect(node, "10.77.0.1", port, timeout=1)


def test_shared_directory_is_the_same_in_every_node(module_cluster):
    node1, node2 = module_cluster.nodes
    path = f"{hwcluster.INSTANCES_PATH}/probe-{os.getpid()}"
    node1.write_file(path, "written by node1\n")
    assert node2.read_file(path) == "written by node1\n"
    assert Path(module_cluster.shared_dir, os.path.basename(path)).read_text() == "written by node1\n"
    node2.run(["rm", path])
    assert node1.run(["test", "-e", path], check=False).returncode == 1


def test_nodes_run_production_defaults(module_cluster):
    """The PKI, the nova account and libvirt's own defaults (QEMU as libvirt-qemu,
    dynamic_ownership) as on a Debian compute node (README: what still differs)."""
    node1, node2 = module_cluster.nodes
    stat = "stat -c '%a %U:%G' "
    for path, want in (("/etc/pki/CA/cacert.pem", "644 root:root"),
                       ("/etc/pki/libvirt/private/serverkey.pem", "600 root:root"),
                       ("/etc/pki/libvirt/private/clientkey.pem", "600 root:root"),
                       ("/etc/pki/qemu/server-key.pem", "640 root:libvirt-qemu"),
                       ("/etc/pki/qemu/client-key.pem", "640 root:libvirt-qemu"),
                       (hwcluster.INSTANCES_PATH, "755 nova:nova")):
        assert node1.run(stat + path).stdout.strip() == want, path
    assert node1.run("id -u nova; id -g nova").stdout.split() == [str(hwcluster.NOVA_UID)] * 2
    conf = node1.read_file("/etc/libvirt/qemu.conf")
    for key in ("user", "group", "dynamic_ownership", "security_driver"):
        assert f"\n{key} " not in conf, conf
    # A disk that Nova created (nova's) is QEMU's while the guest runs, nova's again after:
    # libvirt's dynamic ownership, with QEMU as libvirt-qemu.
    disk = f"{hwcluster.INSTANCES_PATH}/hwt-own/disk"
    node1.run(f"install -d -o nova -g nova {os.path.dirname(disk)} && "
              f"qemu-img create -q -f qcow2 {disk} 16M && chown nova:nova {disk}")
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
               f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>")
    name = hwcluster.define_and_start(node1, hwcluster.domain_xml("hwt-own", devices=devices))
    try:
        assert node1.run("ps -o user= -C qemu-system-x86_64").stdout.split() == ["libvirt-qemu"]
        assert node1.run(stat + disk).stdout.split()[1] == "libvirt-qemu:libvirt-qemu"
    finally:
        node1.virsh("destroy", name, check=False)
        node1.virsh("undefine", name, check=False)
    assert node1.run(stat + disk).stdout.split()[1] == "nova:nova"
    node1.run(["rm", "-r", os.path.dirname(disk)])


def test_node_roots_are_private(module_cluster):
    node1, node2 = module_cluster.nodes
    node1.write_file("/etc/hwt-probe", "node1 only\n")
    node1.write_file("/tmp/hwt-probe", "node1 only\n")
    assert not os.path.exists("/etc/hwt-probe")
    assert not os.path.exists("/tmp/hwt-probe")
    assert node2.run(["test", "-e", "/etc/hwt-probe"], check=False).returncode == 1
    assert node2.run(["test", "-e", "/tmp/hwt-probe"], check=False).returncode == 1
    node1.run(["rm", "/etc/hwt-probe", "/tmp/hwt-probe"])
    # Each node has its own PID namespace with systemd as PID 1 ...
    assert node1.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    # ... and its own cgroup subtree: the other node's units are not visible.
    units = node1.run(["ls", "/sys/fs/cgroup/systemd/system.slice"]).stdout.split()
    assert "libvirtd.service" in units
    assert node1.pid != node2.pid


def test_journal_has_the_boot(module_cluster):
    journal = module_cluster.nodes[0].journal()
    assert f"Reached target {hwcluster.NODE_TARGET}" in journal or "Startup finished" in journal
    assert "libvirtd" in journal


# --------------------------------------------------------------------------
# Install trees, configuration, hooks


def _hook_stage(tmp_path: Path) -> Path:
    """A DESTDIR-like tree with a qemu.d hook that logs its arguments."""
    stage = tmp_path / "stage"
    hook = stage / "etc/libvirt/hooks/qemu.d/50-hwt-test"
    hook.parent.mkdir(parents=True)
    hook.write_text(
        "#!/bin/sh\n"
        "# test hook: log 'NAME OP SUBOP' and let everything pass\n"
        'echo "$1 $2 $3" >> /var/log/hwt-hook.log\n'
        "cat > /dev/null\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    (stage / "usr/share/hwt-test").mkdir(parents=True)
    (stage / "usr/share/hwt-test/marker").write_text("installed\n")
    return stage


def test_install_tree_config_and_hooks(make_cluster, tmp_path, record_timing):
    stage = _hook_stage(tmp_path)
    cluster = make_cluster(
        2,
        install_dir={1: stage},  # node1 at boot; node2 below, while running
        configs={1: "[node]\nname = node1\n", 2: "[node]\nname = node2\n"},
        files={"/etc/hwt-extra.conf": "extra\n"},
    )
    node1, node2 = cluster.nodes
    assert node1.read_file("/usr/share/hwt-test/marker") == "installed\n"
    assert node2.run(["test", "-e", "/usr/share/hwt-test/marker"], check=False).returncode == 1
    for node in cluster.nodes:
        assert node.read_file("/etc/hostwarden/hostwarden.conf") == f"[node]\nname = {node.name}\n"
        assert node.read_file("/etc/hwt-extra.conf") == "extra\n"
    assert not os.path.exists("/usr/share/hwt-test")  # the host is untouched

    node2.install(stage)
    node2.restart_libvirtd()
    assert node2.read_file("/usr/share/hwt-test/marker") == "installed\n"

    name = f"hook-{os.getpid()}"
    t0 = time.monotonic()
    hwcluster.define_and_start(node1, hwcluster.domain_xml(name))
    record_timing("define + start a 64 MiB TCG guest", time.monotonic() - t0)
    assert f"{name} prepare begin" in node1.read_file("/var/log/hwt-hook.log")
    assert f"{name} started begin" in node1.read_file("/var/log/hwt-hook.log")

    proc = hwcluster.migrate(node1, node2, name, "--persistent", "--undefinesource")
    assert proc.returncode == 0, proc.stderr
    # The destination's hook ran: installed into a running node + restart.
    log2 = node2.read_file("/var/log/hwt-hook.log")
    assert f"{name} migrate begin" in log2
    assert f"{name} prepare begin" in log2
    assert f"{name} stopped end" in node1.read_file("/var/log/hwt-hook.log")


# --------------------------------------------------------------------------
# Teardown on every exit path


def _assert_clean(prefix: str) -> None:
    assert hwcluster.leftovers(prefix) == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in netns
    mounts = Path("/proc/self/mountinfo").read_text()
    assert prefix not in mounts
    assert hwcluster.INSTANCES_PATH not in mounts


def test_teardown_leaves_nothing(record_timing):
    with hwcluster.Cluster(2) as cluster:
        node1, node2 = cluster.nodes
        hwcluster.define_and_start(node1, hwcluster.domain_xml("running-at-teardown"))
        t0 = time.monotonic()
    record_timing("teardown of 2 nodes (one with a running guest)", time.monotonic() - t0)
    assert not any(n.alive for n in cluster.nodes)
    _assert_clean(cluster.tag + "-")


def test_an_extra_link_is_a_network_of_its_own():
    """extra_links=1: eth1 on every node, reaching the others' eth1 addresses over br1
    only (eth0's bridge does not carry it), and nothing left behind."""
    with hwcluster.Cluster(2, extra_links=1) as cluster:
        node1, node2 = cluster.nodes
        links = node1.run(["ip", "-o", "link", "show"]).stdout
        names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
        assert names == ["eth0", "eth1", "lo"]
        assert node2.link_addresses[1] == "10.77.1.12"
        route = node1.run(["ip", "-o", "route", "get", node2.link_addresses[1]]).stdout
        assert " dev eth1 " in route, route
        assert hwcluster.tcp_connect(node1, node2.link_addresses[1], hwcluster.LIBVIRT_TLS_PORT)
        # the second link's bridge has the nodes' second ports, eth0's bridge does not
        sw = ["ip", "netns", "exec", cluster.bridge_netns, "bridge", "link", "show"]
        ports = subprocess.run(sw, capture_output=True, text=True, check=True).stdout
        assert "v1l1" in ports and "master br1" in ports.split("v1l1", 1)[1].splitlines()[0]
    _assert_clean(cluster.tag + "-")


def test_teardown_after_an_exception_in_the_body():
    with pytest.raises(RuntimeError, match="test body failed"):
        with hwcluster.Cluster(2) as cluster:
            raise RuntimeError("test body failed")
    assert not any(n.alive for n in cluster.nodes)
    _assert_clean(cluster.tag + "-")


def test_teardown_after_a_node_was_killed():
    # A node that dies abruptly (a simulated host crash) is also cleaned up.
    with hwcluster.Cluster(2) as cluster:
        node1, node2 = cluster.nodes
        node2.kill()
        assert not node2.alive
        assert node1.virsh("version").returncode == 0
    _assert_clean(cluster.tag + "-")


def _fence_ipmilan(node: hwcluster.Node, bmc: hwcluster.Bmc, action: str):
    """The real fence agent, run inside NODE, options on stdin (fence-agents' protocol)."""
    return node.run(["fence_ipmilan"], input=bmc.fence_options() + f"action={action}\n",
                    check=False, timeout=60)


def test_bmc_powers_a_node_off_and_on_with_its_disk_kept(record_timing):
    """ipmi_sim BMCs: fence_ipmilan in node2 powers node1 off (its systemd is SIGKILLed),
    reports it off, powers it on again; node1 boots with what it wrote before."""
    with hwcluster.Cluster(2, bmc=True) as cluster:
        node1, node2 = cluster.nodes
        node1.write_file("/var/lib/hwt-disk-test", "kept\n")
        status = _fence_ipmilan(node2, node1.bmc, "status")
        assert status.returncode == 0 and "Status: ON" in status.stdout, status
        old_pid = node1.pid
        t0 = time.monotonic()
        off = _fence_ipmilan(node2, node1.bmc, "off")
        record_timing("fence off", time.monotonic() - t0)
        assert off.returncode == 0, off
        assert not node1.alive and not hwcluster.pid_alive(old_pid)
        status = _fence_ipmilan(node2, node1.bmc, "status")
        assert status.returncode == 2 and "Status: OFF" in status.stdout, status
        # A wrong password is refused by the BMC (and the node stays off).
        bad = node2.run(["fence_ipmilan"], check=False, timeout=60, input=(
            node1.bmc.fence_options().replace(node1.bmc.password, "wrong") + "action=on\n"))
        assert bad.returncode == 1
        assert not node1.alive
        on = _fence_ipmilan(node2, node1.bmc, "on")
        assert on.returncode == 0, on
        node1.wait_powered_on()
        assert node1.pid != old_pid
        assert node1.read_file("/var/lib/hwt-disk-test") == "kept\n"
        assert node1.virsh("version").returncode == 0
        assert "power 0" in node1.bmc.power_log() and "power 1" in node1.bmc.power_log()
        # And the harness can boot a killed node again, too.
        node2.kill()
        node2.boot()
        assert node2.virsh("version").returncode == 0
    _assert_clean(cluster.tag + "-")


def test_teardown_when_a_pytest_test_fails(tmp_path):
    """The fixtures tear down after a failing test body (inner pytest run)."""
    inner = tmp_path / "inner"
    inner.mkdir()
    # Re-export this directory's conftest (fixtures and hooks) to the inner run.
    (inner / "conftest.py").write_text(textwrap.dedent(f"""\
        import importlib.util, sys
        sys.path.insert(0, {HARNESS_DIR!r})
        _spec = importlib.util.spec_from_file_location(
            "hwt_outer_conftest", {os.path.join(HARNESS_DIR, "conftest.py")!r})
        _mod = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_mod)
        globals().update({{k: v for k, v in vars(_mod).items() if not k.startswith("__")}})
        """))
    (inner / "test_inner.py").write_text(textwrap.dedent("""\
        import os
        def test_body_raises(cluster):
            with open(os.environ["HWT_INNER_PID_FILE"], "w") as f:
                f.write(str(os.getpid()))
            assert cluster.nodes[0].virsh("version").returncode == 0
            raise RuntimeError("deliberate failure in a test body")
        """))
    pid_file = tmp_path / "inner.pid"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "HWT_INNER_PID_FILE": str(pid_file)},
    )
    assert "deliberate failure in a test body" in proc.stdout, proc.stdout + proc.stderr
    assert "1 failed" in proc.stdout, proc.stdout
    assert "error" not in proc.stdout.splitlines()[-1], proc.stdout  # no teardown error
    _assert_clean(f"hwt-{pid_file.read_text()}-")


_SIGNAL_CHILD = """\
import sys, time
sys.path.insert(0, {harness_dir!r})
import hwcluster
with hwcluster.Cluster({n}) as cluster:
    hwcluster.define_and_start(cluster.nodes[0], hwcluster.domain_xml("vm"))
    print("ready", *[n.pid for n in cluster.nodes], flush=True)
    time.sleep(300)
"""


def _start_signal_child(tmp_path: Path, n_nodes: int):
    script = tmp_path / "child.py"
    script.write_text(_SIGNAL_CHILD.format(harness_dir=HARNESS_DIR, n=n_nodes))
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    line = child.stdout.readline()
    if not line.startswith("ready"):
        child.kill()
        pytest.fail(f"child did not boot its cluster: {line}{child.stderr.read()}")
    return child, [int(p) for p in line.split()[1:]]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_teardown_on_signal(tmp_path, signum):
    child, node_pids = _start_signal_child(tmp_path, 2)
    try:
        os.kill(child.pid, signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in stderr, stderr
    assert not any(hwcluster.pid_alive(pid) for pid in node_pids)
    _assert_clean(f"hwt-{child.pid}-")


def test_sigkill_of_the_test_process_kills_the_nodes(tmp_path):
    child, node_pids = _start_signal_child(tmp_path, 1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    # Parent-death signal -> unshare dies -> --kill-child SIGKILLs PID 1.
    deadline = time.monotonic() + 10
    while any(hwcluster.pid_alive(p) for p in node_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(hwcluster.pid_alive(p) for p in node_pids)
    prefix = f"hwt-{child.pid}-"
    assert hwcluster.leftovers(prefix), "a SIGKILLed run cannot clean up itself"
    removed = hwcluster.cleanup_stale()
    assert any(prefix in r for r in removed), removed
    _assert_clean(prefix)
