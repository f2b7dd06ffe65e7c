"""hostwarden demo: a VNC-listening guest live-migrates between two compute nodes; then
a node dies, is fenced through its BMC, its guest is rebuilt on the other node, and when it
comes back its stale copy stays off; last, with automatic recovery on, the other node loses
power and its guests come back by themselves, under `hostwardenctl overview --watch`.

Run through scripts/demo (which installs dependencies and builds first)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))

import hwcluster  # noqa: E402
import hwevac  # noqa: E402
import hwinstall  # noqa: E402

GUEST = "instance-00000001"
GUEST2 = "instance-00000002"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say()
    say(f"==> {text}")


def show(node: hwcluster.Node, cmd: list[str], check: bool = True):
    say(f"    [{node.name}]# {' '.join(cmd)}")
    proc = node.run(cmd, check=check)
    out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", proc.stdout + proc.stderr)  # terminal codes
    for line in out.replace("\r", "\n").splitlines():
        if line.strip():
            say(f"        {line}")
    return proc


def graphics(node: hwcluster.Node) -> str:
    root = ET.fromstring(node.virsh("dumpxml", GUEST).stdout)
    g = root.find("./devices/graphics")
    return ET.tostring(g, encoding="unicode").strip()


def main() -> int:
    step("Installing hostwarden from the build into a staging tree (meson install --destdir)")
    stage = hwinstall.stage()
    say(f"    {hwinstall.HOOK}")
    say(f"    {hwinstall.HOOK_LINK} -> {hwinstall.HOOK}")
    try:
        return run(stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def window(node: hwcluster.Node) -> str:
    """The migration window: what migration_open4 holds right now."""
    out = node.run(["nft", "list", "set", "inet", "hostwarden", "migration_open4"],
                   check=False).stdout
    if "elements" not in out:
        return ""
    # "10.77.0.11 timeout 1m expires 59s996ms": the countdown is not a change of the window
    return re.sub(r" expires \S+", "", out.split("elements = {", 1)[1].split("}", 1)[0].strip())


def run(stage: str) -> int:
    config = ("[node]\nname = {name}\naddress = {address}\n[console]\nlisten = node\n"
              "[cluster]\nheartbeat_interval = 1s\ndown_after = 5s\n"
              "[firewall]\nmigration_sources = {peer}\nopen_window = 1min\n"
              "[peer {peer_name}]\naddress = {peer}\n"
              "{fencing}")
    bmc_password = f"demo-{os.urandom(6).hex()}"
    step("Booting two compute nodes: systemd, journald, dbus, libvirtd, QEMU (TCG),\n"
         "    shared /var/lib/nova/instances; hostwarden installed before libvirtd starts")
    t0 = time.monotonic()
    cluster = hwcluster.Cluster(2, install_dir=stage, bmc=True, bmc_password=bmc_password,
                                units=("hostwarden-firewall.service", "hostwardend.service"),
                                configs={i: config.format(name=f"node{i}", address=f"10.77.0.{10 + i}",
                                                          peer=f"10.77.0.{13 - i}",
                                                          peer_name=f"node{3 - i}",
                                                          fencing=hwevac.fencing(3 - i,
                                                                                 bmc_password))
                                         for i in (1, 2)})
    with cluster:
        node1, node2 = cluster.nodes
        say(f"    {node1.name} {node1.address}   {node2.name} {node2.address}   "
            f"(up in {time.monotonic() - t0:.1f}s)")
        step("Once per cluster, on one node: hostwardenctl init-cluster (hostwardend never makes\n"
             "    a store by itself; until a node has read its cluster's, nothing starts on it)")
        show(node1, ["hostwardenctl", "init-cluster", "--name", "demo"])
        hwinstall.wait_synced(cluster.nodes)
        show(node2, ["hostwardenctl", "status"])
        say("    /etc/hostwarden/hostwarden.conf on node2 (the BMC password elided here):")
        for line in node2.read_file("/etc/hostwarden/hostwarden.conf").splitlines():
            say(f"        {line.replace(bmc_password, '********')}")

        step("node2's firewall: migration ports 49152-49215 dropped unless the window is open")
        show(node2, ["nft", "list", "chain", "inet", "hostwarden", "input"])
        show(node2, ["nft", "list", "set", "inet", "hostwarden", "migration_open4"])
        t0 = time.monotonic()
        reachable = hwcluster.tcp_connect(node1, node2.address, 49152, timeout=1.0)
        say(f"    node1 -> node2:49152 now: {'open' if reachable else 'dropped'} "
            f"({time.monotonic() - t0:.1f}s)")

        step(f"Starting {GUEST} on node1 with its VNC console on node1's own address")
        hwcluster.define_and_start(node1, hwcluster.domain_xml(
            GUEST, graphics=f"<graphics type='vnc' listen='{node1.address}'/>"))
        show(node1, ["virsh", "domdisplay", GUEST])
        say(f"    {graphics(node1)}")
        say(textwrap.indent(textwrap.dedent(f"""\
            Without hostwarden this migration fails: QEMU on node2 would be started with
            -vnc {node1.address} and cannot bind an address node2 does not have
            ("Failed to bind socket: Cannot assign requested address")."""), "    "))

        step("Checking the constraints first (hostwarden's CheckMigration), once node1 has seen "
             "node2's heartbeat")
        for _ in range(50):
            if " up " in node1.run(["hostwardenctl", "nodes"]).stdout.split("node2", 1)[-1]:
                break
            time.sleep(0.2)
        show(node1, ["busctl", "--system", "call", "org.hostwarden.Warden1",
                     "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node", "CheckMigration",
                     "ssa{sv}", GUEST, "node2", "0"])

        step("Live-migrating it to node2 through hostwarden (hostwardenctl migrate --wait, on a "
             "terminal),\n    watching node2's window")
        seen: list[tuple[float, str]] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                w = window(node2)
                if not seen or seen[-1][1] != w:
                    seen.append((time.monotonic(), w))

        watcher = threading.Thread(target=watch)
        t0 = time.monotonic()
        watcher.start()
        # script(1) gives it a terminal: the progress bar
        cmd = ["script", "-qec", f"hostwardenctl migrate --wait {GUEST} node2", "/dev/null"]
        try:
            proc = show(node1, cmd, check=False)
        finally:
            stop.set()
            watcher.join()
        if proc.returncode != 0:
            say("    MIGRATION FAILED")
            return 1
        done = time.monotonic()
        say(f"    done in {done - t0:.1f}s")
        for t, w in seen:
            say(f"    +{t - t0:5.2f}s  window: {w or '(closed)'}")

        show(node1, ["hostwardenctl", "migrations"])

        step("The guest now runs on node2, and its console listens on node2's address")
        show(node2, ["virsh", "list", "--all"])
        show(node1, ["virsh", "list", "--all"])
        show(node2, ["virsh", "domdisplay", GUEST])
        say(f"    {graphics(node2)}")
        listen = ET.fromstring(graphics(node2)).get("listen")
        if listen != node2.address:
            say(f"    UNEXPECTED: console listens on {listen}, [console] listen = node "
                f"asks for {node2.address}")
            return 1

        step("The window after the migration: hostwardend on node2 closes it once the "
             "incoming migration has ended")
        say(f"    window: {window(node2) or '(closed)'}")
        while window(node2) and time.monotonic() - done < 45:
            time.sleep(0.5)
        say(f"    +{time.monotonic() - done:.0f}s after the migration: "
            f"{window(node2) or '(closed)'}")
        reachable = hwcluster.tcp_connect(node1, node2.address, 49152, timeout=1.0)
        say(f"    node1 -> node2:49152: {'open' if reachable else 'dropped'}")
        if reachable or window(node2):
            say("    UNEXPECTED: the window did not close")
            return 1

        step("Taking node1 out of service for maintenance, seen from node2 (shared store)")
        show(node1, ["hostwardenctl", "disable", "kernel upgrade"])
        show(node1, ["hostwardenctl", "status"])
        # node2 reads the node records at most a second late (its ListNodes listing)
        deadline = time.monotonic() + 5
        while "disabled" not in node2.run(["hostwardenctl", "nodes"]).stdout and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        out = show(node2, ["hostwardenctl", "nodes"]).stdout
        if "disabled" not in out:
            say("    UNEXPECTED: node2 does not see node1 disabled")
            return 1
        show(node1, ["hostwardenctl", "enable"])

        step("What hostwarden-hook logged on node2 (journalctl SYSLOG_IDENTIFIER=hostwarden-hook)")
        journal = node2.run(["journalctl", "-q", "--no-pager", "-o", "cat",
                             "SYSLOG_IDENTIFIER=hostwarden-hook"], check=False).stdout
        for line in journal.strip().splitlines():
            say(f"        {line}")

        if not node_failure(node1, node2, bmc_password):
            return 1
        if not automatic_recovery(node1, node2):
            return 1

        step("Powering the nodes off and removing their namespaces, mounts and files")
    left = cluster.leftovers()
    say("    nothing left behind" if not left else f"    LEFT BEHIND: {left}")
    say()
    say("Demo complete: the guest whose console was bound to its source node live-migrated")
    say("into a node whose migration ports are closed except while a migration arrives, and")
    say("on node2 its console listens where node2's [console] listen says. When node1 died,")
    say("its guest was rebuilt on node2 only once node1 was fenced, and when node1 came back")
    say("its stale copy was refused and removed: the guest never ran twice. With [recovery]")
    say("enable = yes, when node2 lost power nobody called anything: node1 fenced it through")
    say("its BMC and started its guests again by itself.")
    return 0 if not left else 1


def node_failure(node1: hwcluster.Node, node2: hwcluster.Node, bmc_password: str) -> bool:
    """node1 dies with a guest; fenced, the guest rebuilt on node2; node1 comes back."""
    disk = f"{hwcluster.INSTANCES_PATH}/{GUEST2}/disk"
    step(f"Starting {GUEST2} on node1 (autostart, its disk on the shared instances directory)")
    node1.run(f"mkdir -p $(dirname {disk}) && qemu-img create -q -f raw {disk} 1M")
    node1.run(["virsh", "define", "/dev/stdin"], input=hwcluster.domain_xml(
        GUEST2, devices=f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"))
    node1.virsh("autostart", GUEST2)
    show(node1, ["virsh", "start", GUEST2])
    uuid = node1.virsh("domuuid", GUEST2).stdout.strip()
    hwevac.wait_for(lambda: hwevac.record(node2, uuid).get("owner") == "node1")
    say(f"    its record on shared storage: {hwevac.record(node2, uuid)}")

    step("node1 loses power (its BMC, an ipmi_sim, switches it off): what node2 sees")
    t0 = time.monotonic()
    node1.bmc.ipmitool("chassis", "power", "off")
    hwevac.wait_for(lambda: not node1.alive, timeout=15)
    hwevac.wait_for(lambda: hwevac.list_nodes(node2)["node1"][2] == "down", timeout=30)
    say(f"    node1 is down for node2 after {time.monotonic() - t0:.1f}s without heartbeats")
    show(node2, ["hostwardenctl", "overview"])

    step("Evacuating node1 before it is fenced is refused: it may still run its guests")
    if show(node2, ["hostwardenctl", "evacuate", "--from", "node1"], check=False).returncode == 0:
        say("    UNEXPECTED: the evacuation of an unfenced node was allowed")
        return False

    step("Fencing node1: fence_ipmilan against its BMC (the password never reaches a log)")
    show(node2, ["hostwardenctl", "fence", "node1", "off"])
    show(node2, ["hostwardenctl", "overview"])

    step(f"Evacuating node1: {GUEST2} rebuilt on node2, same name, UUID and disk")
    t0 = time.monotonic()
    show(node2, ["hostwardenctl", "evacuate", "--from", "node1"])
    say(f"    done in {time.monotonic() - t0:.1f}s")
    show(node2, ["virsh", "list", "--all"])
    say(f"    its record: {hwevac.record(node2, uuid)}")

    step("node1 comes back (fence on: its BMC powers it on); its stale copy stays off")
    show(node2, ["hostwardenctl", "fence", "node1", "on"])
    node1.wait_powered_on()
    hwevac.wait_for(lambda: node1.virsh("domuuid", GUEST2, check=False).returncode != 0,
                    timeout=30)
    show(node1, ["virsh", "list", "--all"])
    journal = node1.run(["journalctl", "-q", "--no-pager", "-o", "cat", "-b",
                         "SYSLOG_IDENTIFIER=hostwarden-hook", "+",
                         "SYSLOG_IDENTIFIER=hostwardend"], check=False).stdout
    say("    node1's journal since it booted, about the guest:")
    for line in journal.splitlines():
        if GUEST2 in line or uuid in line:
            say(f"        {line}")
    where = [n.name for n in (node1, node2) if hwevac.running(n, GUEST2)]
    say(f"    {GUEST2} runs on: {', '.join(where) or 'no node'}; its disk "
        f"{'is still there' if node2.run(['test', '-e', disk], check=False).returncode == 0 else 'IS GONE'}")
    if where != ["node2"] or bmc_password in journal:
        say("    UNEXPECTED: the guest must run on node2 only")
        return False
    return True


RECOVERY = "[recovery]\nenable = yes\nconfirm_after = 5s\n"
RECOVERY_MESSAGE_ID = "5e0d3c1b9a7f4e26b8c4d2f6a1e93b70"


def recovery_state(node: hwcluster.Node) -> str:
    """Node.Recovery: "coordinator", "watching; coordinator: NODE", ..."""
    out = node.run(["busctl", "--system", "get-property", "org.hostwarden.Warden1",
                    "/org/hostwarden/Warden1", "org.hostwarden.Warden1.Node", "Recovery"],
                   check=False).stdout.strip()
    return out.split(" ", 1)[1].strip('"') if out.startswith("s ") else out


def overview_frames(log: str) -> list[str]:
    """The frames `hostwardenctl overview --watch` printed (not on a terminal: one after the
    other), those that changed: a frame starts with its title line."""
    frames: list[str] = []
    for line in log.splitlines():
        if line.startswith("hostwarden on ") or not frames:
            frames.append("")
        frames[-1] += line + "\n"
    changed, last = [], None
    for frame in frames:
        # the clock and the "3s ago" columns move on every frame; what happened does not
        key = re.sub(r"\d+(s|m|h|d) ago|\d\d:\d\d:\d\d", "", frame)
        if key != last:
            changed.append(frame.strip("\n"))
        last = key
    return changed


def automatic_recovery(node1: hwcluster.Node, node2: hwcluster.Node) -> bool:
    """[recovery] enable = yes; node2 loses power with both guests; node1 fences it and
    starts them again by itself, under hostwardenctl overview --watch."""
    guests = (GUEST, GUEST2)
    began = time.monotonic()
    step("Automatic recovery: [recovery] enable = yes on both nodes, then hostwardenctl reload\n"
         "    (confirm_after = 5s here, to keep the demo short; the default is 30s)")
    for n in (node1, node2):
        n.run(["sh", "-c", "cat >> /etc/hostwarden/hostwarden.conf"], input=RECOVERY)
        show(n, ["hostwardenctl", "reload"])
    say("    appended to /etc/hostwarden/hostwarden.conf on both nodes:")
    for line in RECOVERY.splitlines():
        say(f"        {line}")
    # one node takes the recovery lease in the store; both see node1 (back from the last
    # scene) and node2 up before anything is lost
    hwevac.wait_for(lambda: "coordinator" in (recovery_state(node1), recovery_state(node2))
                    and hwevac.list_nodes(node2)["node1"][2] == "up"
                    and hwevac.list_nodes(node1)["node2"][2] == "up", timeout=60)
    for n in (node1, node2):
        say(f"    [{n.name}] Recovery: {recovery_state(n)}")
    show(node2, ["virsh", "list"])

    step("node2 loses power (its BMC switches it off), with both guests; nobody calls\n"
         "    anything. On node1: hostwardenctl overview --watch")
    pid = node1.run("COLUMNS=110 hostwardenctl overview --watch >/run/demo-overview.log 2>&1 "
                    "& echo $!").stdout.strip()
    def n_frames() -> int:
        log = node1.run(["cat", "/run/demo-overview.log"], check=False).stdout
        return sum(1 for line in log.splitlines() if line.startswith("hostwarden on "))

    hwevac.wait_for(lambda: n_frames() > 0, timeout=15)  # its first screen, before the loss
    t0 = time.monotonic()
    node2.bmc.ipmitool("chassis", "power", "off")
    back = hwevac.wait_for(lambda: all(hwevac.running(node1, g) for g in guests),
                           timeout=180, interval=0.2)
    took = time.monotonic() - t0
    # one more screen after that (not on a terminal, it prints every 5 s and on changes)
    seen = n_frames()
    hwevac.wait_for(lambda: n_frames() > seen, timeout=15)
    # TERM: a background job of sh ignores SIGINT
    node1.run(["kill", "-TERM", pid], check=False)
    hwevac.wait_for(lambda: node1.run(["kill", "-0", pid], check=False).returncode != 0,
                    timeout=10)
    frames = overview_frames(node1.read_file("/run/demo-overview.log"))
    say(f"    {len(frames)} different screens of it; the first, then each change:")
    for frame in frames[:8]:
        say("    " + "-" * 100)
        for line in frame.splitlines():
            say(f"    | {line}")
    say("    " + "-" * 100)
    if not back:
        say(f"    UNEXPECTED: {', '.join(guests)} do not run on node1 after {took:.0f}s")
        show(node1, ["journalctl", "-q", "--no-pager", "-o", "cat", "-u", "hostwardend",
                     "-n", "40"], check=False)
        return False
    say(f"    both guests run on node1 {took:.1f}s after the power loss "
        "(down_after 5s + confirm_after 5s + fence + start)")

    step("What node1's hostwardend did, by itself (journalctl MESSAGE_ID=" + RECOVERY_MESSAGE_ID
         + ")")
    show(node1, ["journalctl", "-q", "--no-pager", "-o", "cat",
                 f"MESSAGE_ID={RECOVERY_MESSAGE_ID}"], check=False)
    show(node1, ["virsh", "list"])
    show(node1, ["hostwardenctl", "nodes"])
    say(f"    (this scene: {time.monotonic() - began:.0f}s)")
    return True


if __name__ == "__main__":
    sys.exit(main())
