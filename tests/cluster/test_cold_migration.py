"""Cold migration (issue 21 item 1) on real nodes: MigrateCold shuts the guest down, copies
its local qcow2 disk to the destination over libvirt's storage streams, defines and starts
it there and waits in state verify; Revert brings it back exactly as it was, Confirm removes
the source's copy and only the files the migration copied; a power-off of either node while
in verify loses nothing; bad arguments, unknown IDs and a Confirm of a live migration get
clear errors."""

from __future__ import annotations

import json
import re
import time
import uuid as uuidlib

import pytest

import hwcluster
import hwinstall
from hwevac import wait_for

BUS = "org.hostwarden.Warden1"
BUSCTL, NODE = hwinstall.BUSCTL, hwinstall.NODE_API
MIG_IFACE = "org.hostwarden.Warden1.Migration"
# no OS answers ACPI in these guests: destroyed after shutdown_timeout
EXTRA = """[migration]
shutdown_timeout = 3s
"""
IMAGES = "/var/lib/libvirt/images"  # node-local, not shared


@pytest.fixture(scope="module")
def nodes(record_timing):
    with hwinstall.installed_cluster(
            2, units=("hostwardend.service", "hostwarden-firewall.service"),
            configs={i: hwinstall.node_config(i, extra=EXTRA) for i in (1, 2)}) as cluster:
        yield cluster


def call(node, method, sig, *args, check=True):
    proc = node.run(BUSCTL + ["--json=short", "call", *NODE, method, sig, *args], check=check)
    return json.loads(proc.stdout)["data"] if check else proc


def migrate_cold(node, dom, dest, *opts):
    args = [str(len(opts) // 3), *opts] if opts else ["0"]
    return call(node, "MigrateCold", "ssa{sv}", dom, dest, *args)[0]


def prop(node, path, name):
    out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE, name]).stdout
    return json.loads(out)["data"]


def mig_call(node, path, method, check=True):
    return node.run(BUSCTL + ["--timeout=180", "call", BUS, path, MIG_IFACE, method],
                    check=check, timeout=200)


def wait_state(node, path, states, timeout=180.0):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = prop(node, path, "State")
        if state in states:
            return state
        if state in ("completed", "failed", "aborted"):
            break
        time.sleep(0.3)  # poll interval: the loop ends on the state or the deadline
    raise AssertionError(f"{path}: {state}, not {states}: {prop(node, path, 'Error')}")


def domstate(node, name):
    proc = node.virsh("domstate", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def identity(node, name):
    """UUID and MACs of the domain's definition."""
    xml = node.virsh("dumpxml", "--inactive", name).stdout
    return (re.search(r"<uuid>([^<]+)</uuid>", xml)[1],
            sorted(re.findall(r"<mac address='([^']+)'", xml)))


def checksum(node, image):
    """The disk's content as the guest sees it (not the qcow2 file's bytes)."""
    out = node.run(f"qemu-img convert -U -f qcow2 -O raw {image} /tmp/ck.raw && "
                   f"sha256sum /tmp/ck.raw && rm -f /tmp/ck.raw").stdout
    return out.split()[0]


def exists(node, path):
    return node.run(["test", "-e", path], check=False).returncode == 0


@pytest.fixture
def guest(nodes):
    """A guest with a local qcow2 disk holding patterns, and a NIC with a fixed MAC."""
    made = []

    def make(name, running=True, data_mib=0, graphics=None):
        node1 = nodes.node(1)
        image = f"{IMAGES}/{name}-{uuidlib.uuid4().hex[:8]}.qcow2"
        node1.run(["mkdir", "-p", IMAGES])
        node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, f"{64 + data_mib}M"])
        node1.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4M",
                   "-c", "write -P 0xa5 40M 2M", image])
        if data_mib:
            node1.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x33 64M {data_mib}M", image])
        mac = "52:54:00:%02x:%02x:%02x" % tuple(uuidlib.uuid4().bytes[:3])
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>"
                f"<interface type='user'><mac address='{mac}'/><model type='virtio'/>"
                f"</interface>")
        xml = hwcluster.domain_xml(name, uuid=str(uuidlib.uuid4()), devices=disk,
                                   graphics=graphics)
        if running:
            hwcluster.define_and_start(node1, xml)
        else:
            node1.write_file(f"/tmp/{name}.xml", xml)
            node1.virsh("define", f"/tmp/{name}.xml")
        made.append((name, image))
        return image
    yield make
    for name, image in made:
        for n in nodes.nodes:
            if not n.alive:
                continue
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
            n.run(["rm", "-f", image])


def test_cold_migration_reverts_exactly_and_confirms_only_its_copies(nodes, guest,
                                                                    record_timing):
    node1, node2 = nodes.nodes
    # its console listens on node1's address: on node2 QEMU could not bind it
    image = guest("cold1", graphics=f"<graphics type='vnc' listen='{node1.address}'/>")
    before = checksum(node1, image)
    uuid, macs = identity(node1, "cold1")
    # a file of the same directory that the migration does not copy, on both nodes
    bystander = f"{IMAGES}/bystander-{uuid[:8]}.raw"
    for n in nodes.nodes:
        n.run(["qemu-img", "create", "-q", "-f", "raw", bystander, "1M"])

    started = time.monotonic()
    path = migrate_cold(node1, "cold1", "node2")
    assert prop(node1, path, "Mode") == "cold"
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        out = node1.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                                  "State", "DiskTotal", "DiskProcessed"]).stdout
        state, total, done = [json.loads(line)["data"] for line in out.splitlines()]
        seen.append((state, total, done))
        if state in ("verify", "completed", "failed", "aborted"):
            break
        time.sleep(0.2)  # poll interval: the loop ends on a final state or the deadline
    assert state == "verify", (seen, prop(node1, path, "Error"))
    record_timing("cold migration to verify", time.monotonic() - started)
    dones = [d for _, _, d in seen]
    assert dones == sorted(dones), seen  # never backwards
    assert prop(node1, path, "DiskTotal") >= 6 * 1024 * 1024
    assert prop(node1, path, "DiskProcessed") == prop(node1, path, "DiskTotal")
    # the guest runs only on the destination; the source keeps its shut-off copy and file
    assert domstate(node2, "cold1") == "running"
    assert domstate(node1, "cold1") == "shut off"
    assert exists(node1, image) and exists(node2, image)
    assert checksum(node2, image) == before
    assert identity(node2, "cold1") == (uuid, macs)
    # the console listen rewritten for the destination ([console] listen = 0.0.0.0)
    assert "listen='0.0.0.0'" in node2.virsh("dumpxml", "--inactive", "cold1").stdout
    assert f"listen='{node1.address}'" in node1.virsh("dumpxml", "--inactive", "cold1").stdout
    # the source copy is refused by the deny list
    proc = node1.virsh("start", "cold1", check=False)
    assert proc.returncode != 0 and "node2" in proc.stderr, proc.stderr
    # ListMigrations shows it, in verify, mode cold
    rows = call(node1, "ListMigrations", "")[0]
    assert [r for r in rows if r[6] == path][0][4:6] == ["verify", "cold"], rows
    # the sparse copy: the destination's file is no bigger on disk than the source's
    used = [int(n.run(["du", "-k", image]).stdout.split()[0]) for n in nodes.nodes]
    assert used[1] <= used[0] + 64, used

    # Confirm and Revert go through polkit: a user without a rule is refused, naming the
    # action, and the migration stays in verify
    node1.run("id alice >/dev/null 2>&1 || useradd -M alice")
    for verb in ("Confirm", "Revert"):
        proc = node1.run(["setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--",
                          *BUSCTL, "call", BUS, path, MIG_IFACE, verb], check=False)
        assert proc.returncode != 0, (verb, proc.stdout)
        assert "org.hostwarden.migrate" in proc.stderr, (verb, proc.stderr)
        assert prop(node1, path, "State") == "verify"

    # Revert: the destination's copy and file go, the guest runs here as it was
    mig_call(node1, path, "Revert")
    assert prop(node1, path, "State") == "aborted"
    assert "Reverted" in prop(node1, path, "Error")
    assert domstate(node1, "cold1") == "running"
    assert domstate(node2, "cold1") is None
    assert not exists(node2, image)
    assert checksum(node1, image) == before
    assert identity(node1, "cold1") == (uuid, macs)
    assert f"listen='{node1.address}'" in node1.virsh("dumpxml", "--inactive", "cold1").stdout
    assert exists(node2, bystander)

    # again, and Confirm: the source's copy and its file go, the destination's stay
    path = migrate_cold(node1, "cold1", "node2")
    wait_state(node1, path, ("verify",))
    mig_call(node1, path, "Confirm")
    assert prop(node1, path, "State") == "completed"
    assert domstate(node1, "cold1") is None
    assert not exists(node1, image)
    assert exists(node1, bystander) and exists(node2, bystander)
    assert domstate(node2, "cold1") == "running"
    assert checksum(node2, image) == before
    assert identity(node2, "cold1") == (uuid, macs)
    # nothing transient left behind
    for n in nodes.nodes:
        assert "hostwarden-" not in n.virsh("pool-list", "--all").stdout
        n.run(["rm", "-f", bystander])
    # both are in the history: reverted (aborted), then confirmed (completed)
    rows = json.loads(ctl(node1, "history", "--json", "cold1").stdout)
    mine = [r for r in rows if r["kind"] == "migration"]
    assert {(r["mode"], r["result"]) for r in mine} == \
        {("cold", "aborted"), ("cold", "completed")}, rows
    confirmed = [r for r in mine if path.rsplit("/", 1)[1] in r["id"]]
    assert len(confirmed) == 1 and confirmed[0]["result"] == "completed", rows
    assert confirmed[0]["destination"] == "node2"


def test_a_shut_off_guest_moves_shut_off_and_a_failure_leaves_it_here(nodes, guest):
    node1, node2 = nodes.nodes
    image = guest("cold2", running=False)
    # a file in its place on the destination: never overwritten, the migration fails
    node2.run(["mkdir", "-p", IMAGES])
    node2.write_file(image, "not yours\n")
    path = migrate_cold(node1, "cold2", "node2")
    assert wait_state(node1, path, ("failed",)) == "failed"
    assert "never overwrites" in prop(node1, path, "Error")
    assert node2.read_file(image) == "not yours\n"
    assert domstate(node1, "cold2") == "shut off" and domstate(node2, "cold2") is None
    node2.run(["rm", "-f", image])

    path = migrate_cold(node1, "cold2", "node2", "shutdown-timeout", "t", "1")
    wait_state(node1, path, ("verify",))
    assert domstate(node2, "cold2") == "shut off"  # not started: it was not running
    mig_call(node1, path, "Confirm")
    assert domstate(node1, "cold2") is None and not exists(node1, image)


def test_bad_arguments_unknown_ids_and_live_migrations_get_clear_errors(nodes, guest):
    node1, _ = nodes.nodes
    proc = call(node1, "MigrateCold", "ssa{sv}", "", "node2", "0", check=False)
    assert proc.returncode != 0 and "Expected a domain name or UUID" in proc.stderr
    proc = call(node1, "MigrateCold", "ssa{sv}", "x", "node2", "1", "block", "b", "true",
                check=False)
    assert "Unknown option 'block'; expected shutdown-timeout" in proc.stderr, proc.stderr
    proc = call(node1, "MigrateCold", "ssa{sv}", "x", "node9", "0", check=False)
    assert "No peer 'node9'" in proc.stderr, proc.stderr
    proc = call(node1, "MigrateCold", "ssa{sv}", "no-such", "node2", "0", check=False)
    assert "No domain 'no-such'" in proc.stderr, proc.stderr

    # Confirm and Revert of a live migration
    hwcluster.define_and_start(node1, hwcluster.domain_xml("live1"))
    try:
        path = call(node1, "Migrate", "ssa{sv}", "live1", "node2", "0")[0]
        wait_state(node1, path, ("completed",))
        for verb in ("Confirm", "Revert"):
            proc = mig_call(node1, path, verb, check=False)
            assert proc.returncode != 0, proc.stdout
            assert "NotRunning" in proc.stderr or "is a live migration" in proc.stderr
            assert "only a cold migration waits in state verify" in proc.stderr, proc.stderr
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", "live1", check=False)
            n.virsh("undefine", "live1", check=False)


def ctl(node, *args, check=True):
    return node.run(["hostwardenctl", *args], check=check, timeout=300)


def wait_verify_again(node, path, timeout=120.0):
    """After a restart: the migration object is back (the same path), in verify."""
    def state():
        proc = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                                  "State"], check=False)
        return json.loads(proc.stdout)["data"] if proc.returncode == 0 else None
    assert wait_for(lambda: state() == "verify", timeout=timeout), state()


def both_copies_stay(node1, node2, name, image, seconds):
    """Observed for SECONDS (several reconciliation passes: heartbeat 500 ms, settle 2 s):
    neither copy nor file goes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert domstate(node1, name) == "shut off", domstate(node1, name)
        assert domstate(node2, name) is not None
        assert exists(node1, image) and exists(node2, image)
        time.sleep(0.5)  # sampling period of an observation window: nothing may change


def test_a_power_off_of_either_node_in_verify_loses_nothing(nodes, guest, record_timing):
    node1, node2 = nodes.nodes
    image = guest("cold3")
    before = checksum(node1, image)
    ident = identity(node1, "cold3")

    out = ctl(node1, "migrate", "--cold", "--wait", "cold3", "node2").stdout
    assert "is in verify" in out, out
    mid = re.search(r"Migration ([0-9a-f]{16}) of cold3 to node2", out)[1]
    path = f"/org/hostwarden/Warden1/migration/{mid}"
    assert "migration confirm " + mid in out and "migration revert " + mid in out, out
    assert domstate(node2, "cold3") == "running"

    # the destination loses power: its copy comes back shut off, nothing else changes
    started = time.monotonic()
    node2.kill()
    node2.boot()
    hwinstall.wait_synced([node2])
    record_timing("destination power cycle", time.monotonic() - started)
    assert prop(node1, path, "State") == "verify"
    assert domstate(node2, "cold3") == "shut off"
    both_copies_stay(node1, node2, "cold3", image, 8)

    # the source loses power: its restarted hostwardend finds the migration in the store
    started = time.monotonic()
    node1.kill()
    node1.boot()
    hwinstall.wait_synced([node1])
    wait_verify_again(node1, path)
    record_timing("source power cycle", time.monotonic() - started)
    assert prop(node1, path, "Mode") == "cold"
    assert prop(node1, path, "Destination") == "node2"
    both_copies_stay(node1, node2, "cold3", image, 8)
    # the source's copy is still refused
    proc = node1.virsh("start", "cold3", check=False)
    assert proc.returncode != 0 and "node2" in proc.stderr, proc.stderr

    # Revert still brings it back exactly as it was (it was running: it runs)
    out = ctl(node1, "migration", "revert", mid).stdout
    assert f"Migration {mid} reverted" in out, out
    assert domstate(node1, "cold3") == "running"
    assert domstate(node2, "cold3") is None and not exists(node2, image)
    assert checksum(node1, image) == before
    assert identity(node1, "cold3") == ident

    # again, power off the source, and Confirm after
    out = ctl(node1, "--json", "migrate", "--cold", "cold3", "node2").stdout
    path = json.loads(out)["path"]
    mid = path.rsplit("/", 1)[1]
    wait_state(node1, path, ("verify",))
    node1.kill()
    node1.boot()
    hwinstall.wait_synced([node1])
    wait_verify_again(node1, path)
    shown = json.loads(ctl(node1, "--json", "migration", "confirm", mid).stdout)
    assert shown["state"] == "completed", shown
    assert domstate(node1, "cold3") is None and not exists(node1, image)
    assert domstate(node2, "cold3") == "running"
    assert checksum(node2, image) == before
    assert identity(node2, "cold3") == ident


def test_hostwardenctl_errors_for_unknown_ids_and_live_migrations(nodes):
    node1, _ = nodes.nodes
    proc = ctl(node1, "migration", "confirm", "0123456789abcdef", check=False)
    assert proc.returncode == 1
    assert "No migration '0123456789abcdef' on this node" in proc.stderr, proc.stderr
    proc = ctl(node1, "migration", "revert", "nonsense", check=False)
    assert proc.returncode == 1 and "'nonsense' is no migration ID" in proc.stderr
    proc = ctl(node1, "migrate", "--cold", "--block", "x", "node2", check=False)
    assert proc.returncode == 1 and "--cold copies the disks itself" in proc.stderr
    proc = ctl(node1, "migrate", "--cold", "no-such", "node2", check=False)
    assert proc.returncode == 1 and "No domain 'no-such'" in proc.stderr, proc.stderr
    hwcluster.define_and_start(node1, hwcluster.domain_xml("live2"))
    try:
        out = ctl(node1, "migrate", "--wait", "live2", "node2").stdout
        mid = re.search(r"Migration ([0-9a-f]{16})", out)[1]
        proc = ctl(node1, "migration", "confirm", mid, check=False)
        assert proc.returncode == 1
        assert "is a live migration: only a cold migration waits in state verify" in \
            proc.stderr, proc.stderr
    finally:
        for n in nodes.nodes:
            n.virsh("destroy", "live2", check=False)
            n.virsh("undefine", "live2", check=False)


def test_confirm_window_confirms_by_itself_and_a_second_migration_is_busy(nodes, guest):
    node1, node2 = nodes.nodes
    conf = "/etc/hostwarden/hostwarden.conf"
    original = node1.read_file(conf)
    image = guest("cold4")
    node1.write_file(conf, original.replace("[migration]\n",
                                            "[migration]\nconfirm_window = 10s\n", 1))
    try:
        ctl(node1, "reload")
        path = migrate_cold(node1, "cold4", "node2")
        wait_state(node1, path, ("verify",))
        mid = path.rsplit("/", 1)[1]
        # the instance is the migration's until it ends: a new one is Busy, naming it
        proc = call(node1, "MigrateCold", "ssa{sv}", "cold4", "node2", "0", check=False)
        assert "waiting in verify" in proc.stderr and f"migration confirm {mid}" in \
            proc.stderr, proc.stderr
        # nobody confirms: confirm_window does
        assert wait_state(node1, path, ("completed",), timeout=120) == "completed"
        assert domstate(node1, "cold4") is None and not exists(node1, image)
        assert domstate(node2, "cold4") == "running" and exists(node2, image)
        assert "confirm_window passed" in node1.journal("-u", "hostwardend.service")
    finally:
        node1.write_file(conf, original)
        ctl(node1, "reload")


def test_check_migration_in_cold_mode(nodes, guest):
    """What live migration refuses for this guest (a local disk; shut off) CheckMigration
    with option cold finds no error in, and MigrateCold makes the same check before it
    starts."""
    node1, _ = nodes.nodes
    guest("cold5", running=False)

    def check(*opts):
        args = [str(len(opts) // 3), *opts] if opts else ["0"]
        rows = call(node1, "CheckMigration", "ssa{sv}", "cold5", "node2", *args)[0]
        return {code: sev for sev, code, _ in rows}
    live = check()
    assert live.get("domain-shutoff") == "error" and live.get("local-disk") == "error", live
    cold = check("cold", "b", "true")
    assert "error" not in cold.values(), cold
    assert "local-disk" not in cold and "domain-shutoff" not in cold, cold
    # a paused guest cannot shut down: an error cold, found before MigrateCold touches it
    node1.virsh("start", "--paused", "cold5")
    cold = check("cold", "b", "true")
    assert cold.get("domain-paused") == "error", cold
    path = migrate_cold(node1, "cold5", "node2")
    assert wait_state(node1, path, ("failed",)) == "failed"
    assert "domain-paused" in prop(node1, path, "Error")
    assert domstate(node1, "cold5") == "paused"


def test_hostwardend_killed_during_the_copy_undoes_it_when_restarted(nodes, guest):
    """Before the record moved, the copy is noted in the runtime directory: the restarted
    daemon removes the files it created on the destination and starts the guest again."""
    node1, node2 = nodes.nodes
    image = guest("cold6", data_mib=768)  # long enough a copy to be caught in the middle
    path = migrate_cold(node1, "cold6", "node2", "shutdown-timeout", "t", "0")

    def copying():
        out = node1.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                                  "State", "DiskProcessed"]).stdout
        state, done = [json.loads(line)["data"] for line in out.splitlines()]
        assert state in ("preparing", "running"), (state, prop(node1, path, "Error"))
        return state == "running" and done > 0
    assert wait_for(copying, timeout=120)
    node1.run(["systemctl", "kill", "-s", "KILL", "hostwardend.service"])
    # systemd starts it again (Restart=on-failure); it undoes the copy
    assert wait_for(lambda: domstate(node1, "cold6") == "running", timeout=120), \
        node1.journal("-u", "hostwardend.service")[-3000:]
    assert wait_for(lambda: not exists(node2, image), timeout=60), \
        node2.journal("-u", "libvirtd.service")[-3000:]
    assert domstate(node2, "cold6") is None
    journal = node1.journal("-u", "hostwardend.service")
    assert "was cut short when hostwardend stopped during its copy" in journal, \
        journal[-3000:]
    assert node1.run("ls /run/hostwarden/cold").stdout.strip() == ""
    assert exists(node1, image)
    for n in nodes.nodes:  # the dead daemon's transient pools went too
        assert "hostwarden-" not in n.virsh("pool-list", "--all").stdout
