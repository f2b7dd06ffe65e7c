"""Abort, ForceComplete and the timeout action at every phase of a migration, live and
block (issue 19, item 7): the guest ends where the last accepted word of the operator says,
no accepted request is lost (every call gets an answer), and what a block migration made on
the destination (temporary pools `hostwarden-*`, partial copies) is removed on every path
that made it. The firewall is on (test_migration.CONFIG).

How each phase is held: queued (max_concurrent = 1, another migration runs); preparing (the
destination's libvirtd stopped with SIGSTOP holds the preflight there); copying disks (a
block migration at 4 MiB/s); copying memory (a guest that dirties memory faster than the
bandwidth: it never converges by itself); switchover (ForceComplete pauses the guest, then an
Abort races the end); adopted (hostwardend killed while the migration runs: the restarted
daemon follows libvirt's job, and must also clean what the dead one made).

Where each (control, phase) pair is covered; M = test_migration.py, C = this module:

| phase \ control        | Abort                                | ForceComplete                          | timeout action                              |
|------------------------|--------------------------------------|----------------------------------------|---------------------------------------------|
| queued, live           | M test_max_concurrent_queues_the_rest | refused, NotRunning (untested)         | not armed before the copy                   |
| preparing, live        | C test_abort_while_preparing_is_kept…[live] | refused, NotRunning: same test   | not armed before the copy                   |
| preparing, block       | C test_abort_while_preparing_is_kept…[block] | refused, NotRunning: same test  | not armed before the copy                   |
| copying disks, block   | C test_abort_while_copying_disks…     | C test_force_complete_while_copying_disks… | abort: C test_timeout_action_abort…; force_complete: C test_timeout_action_force_complete_while_copying_disks |
| copying memory, live   | M test_abort_leaves_a_non_converging… | M test_force_complete_lands… (+ post-copy: M test_force_complete_switches…) | M test_timeout_action_fires_after… (both) |
| copying memory, block  | C test_controls_while_a_block_migration_copies_memory[Abort] | C test_controls_while_a_block_migration_copies_memory[ForceComplete] | as live: the policy does not tell the phases apart |
| switchover (paused)    | C test_the_last_word_wins_at_the_switchover; M test_an_aborted_migration_of_a_paused… | accepted, changes nothing (paused already; untested) | fires once; finds the guest paused: M test_timeout_action_force_complete_keeps… |
| adopted, live          | C test_abort_while_adopted[live]      | M test_a_migration_in_flight_when_hostwardend_dies… | not armed (the new daemon has no options) |
| adopted, block         | C test_abort_while_adopted[block]     | C test_force_complete_of_an_adopted_block_migration | not armed (the new daemon has no options) |
| ended while no daemon ran, block | (libvirt's abort) C test_a_block_migration_that_ends_while_hostwardend_is_away… | - | - |

"not armed": the timeout action is the caller's option, which a restarted hostwardend does
not know; it is not applied before the copy starts (the clock starts with the copy).

The metrics (issue 24, docs/metrics.md) are checked here too, at the end: this module's
cluster completes, aborts and refuses what they count.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid as uuidlib

import pytest

import hwcluster
from hwevac import wait_for
from test_migration import (BUS, BUSCTL, KERNEL, MIG_IFACE, SLOW, domstate,  # noqa: F401
                            guest, kill_and_adopt, mig_call, migrate, nodes, persistent, props,
                            wait_final, wait_running, window_open)

IMAGE_DIR = "/var/lib/libvirt/images"  # node-local: a block migration copies it


@pytest.fixture
def block_guest(nodes):
    """A guest on node1 with a local 48 MiB-filled qcow2 disk; removed after the test from
    both nodes, with its image."""
    made = []

    def start(name, dirty=False):
        image = f"{IMAGE_DIR}/{name}.qcow2"
        node1 = nodes.node(1)
        node1.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "64M"])
        node1.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 48M", image])
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk>")
        hwcluster.define_and_start(node1, hwcluster.domain_xml(
            name, uuid=str(uuidlib.uuid4()), devices=disk, kernel=KERNEL if dirty else None))
        made.append((name, image))
        return image
    yield start
    for name, image in made:
        for n in nodes.nodes:
            n.virsh("destroy", name, check=False)
            n.virsh("undefine", name, check=False)
            n.run(["rm", "-f", image])


def disk_copy_under_way(node, path) -> bool:
    out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE, "State",
                             "DiskProcessed"]).stdout
    state, done = [json.loads(line)["data"] for line in out.splitlines()]
    assert state in ("preparing", "running"), state
    return state == "running" and done > 0


def file_exists(node, path) -> bool:
    return node.run(["test", "-e", path], check=False).returncode == 0


def no_leftovers_on_destination(node1, node2, image, removed=True):
    """Nothing of a failed block migration stays on the destination: libvirt leaves the
    copy it created there, hostwardend removes it (removed=False: the migration ended
    before libvirt created one)."""
    if removed:
        assert f"removed the partial copy {image} on node2" in node1.journal("-u", "hostwardend")
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout
    assert not file_exists(node2, image), f"the partial copy {image} stayed on node2"
    assert wait_for(lambda: not window_open(node2), 15), "the migration window stayed open"


@pytest.mark.parametrize("mode", ["live", "block"])
def test_abort_while_preparing_is_kept_until_the_copy_would_start(nodes, guest, block_guest,
                                                                   mode):
    """The destination's libvirtd does not answer (stopped): the migration is preparing
    (its preflight waits for the destination). An Abort then is answered only once the
    migration has ended, aborted, without the copy ever starting; a ForceComplete meanwhile
    is refused, not kept (the Abort is the last accepted word). Block: nothing was made on
    the destination, and nothing is left there."""
    node1, node2 = nodes.nodes
    name = f"ctl-prep-{mode}"
    if mode == "block":
        image = block_guest(name)
        opts = ("block", "b", "true", "bandwidth", "t", "4")
    else:
        guest(name)
        opts = ()
    node2.run("kill -STOP $(pidof libvirtd)")
    try:
        path = migrate(node1, name, "node2", *opts)
        assert props(node1, path)["State"] == "preparing"
        answer = {}
        caller = threading.Thread(
            target=lambda: answer.update(proc=mig_call(node1, path, "Abort")))
        caller.start()
        caller.join(3)
        assert caller.is_alive(), "Abort answered while the migration was still preparing"
        proc = mig_call(node1, path, "ForceComplete")
        assert proc.returncode != 0 and "preparing" in proc.stderr, proc.stderr
    finally:
        node2.run("kill -CONT $(pidof libvirtd)")
    caller.join(60)
    assert answer["proc"].returncode == 0, answer["proc"].stderr
    final = wait_final(node1, path)
    assert final["State"] == "aborted", final
    assert "before the copy started" in final["Error"], final
    assert final["MemoryProcessed"] == 0, final
    assert domstate(node1, name) == "running" and persistent(node1, name)
    assert domstate(node2, name) is None
    if mode == "block":
        no_leftovers_on_destination(node1, node2, image, removed=False)


def test_abort_while_copying_disks_cleans_the_destination(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-abort")
    path = migrate(node1, "ctl-blk-abort", "node2", "block", "b", "true", "bandwidth", "t",
                   "4")
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    assert file_exists(node2, image)  # the copy being made
    proc = mig_call(node1, path, "Abort")
    assert proc.returncode == 0, proc.stderr  # answered after the end: the guest stayed
    final = props(node1, path)
    assert final["State"] == "aborted", final
    assert domstate(node1, "ctl-blk-abort") == "running"
    assert domstate(node2, "ctl-blk-abort") is None
    no_leftovers_on_destination(node1, node2, image)
    # the source's disk is whole
    out = node1.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 48M",
                     image]).stdout
    assert "read 50331648/50331648 bytes" in out, out


def test_force_complete_while_copying_disks_lands_the_guest_running(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-force")
    path = migrate(node1, "ctl-blk-force", "node2", "block", "b", "true", "bandwidth", "t",
                   "4", "post-copy", "b", "false")
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    assert mig_call(node1, path, "ForceComplete").returncode == 0
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "completed", final
    assert domstate(node2, "ctl-blk-force") == "running"  # paused to complete, resumed there
    assert domstate(node1, "ctl-blk-force") is None
    assert file_exists(node2, image)
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout


def test_timeout_action_abort_while_copying_disks_cleans_the_destination(nodes, block_guest):
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-timeout")
    # 2 s per GiB, counted as 2 GiB (memory) + 1 (disk): 6 s, the copy takes 12 s
    path = migrate(node1, "ctl-blk-timeout", "node2", "block", "b", "true", "bandwidth", "t",
                   "4", "completion-timeout", "t", "2", "timeout-action", "s", "abort")
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "aborted" and "completion-timeout" in final["Error"], final
    assert domstate(node1, "ctl-blk-timeout") == "running"
    no_leftovers_on_destination(node1, node2, image)


def test_the_last_word_wins_at_the_switchover(nodes, guest):
    """ForceComplete pauses a guest that never converges, then an Abort races the end of
    the copy. Either the Abort is answered with success and the guest runs on the source
    (resumed), or it is refused as too late and the guest runs on the destination; never
    an accepted Abort with the guest gone."""
    node1, node2 = nodes.nodes
    guest("ctl-switch", dirty=True)
    path = migrate(node1, "ctl-switch", "node2", *SLOW)
    wait_running(node1, path)
    assert mig_call(node1, path, "ForceComplete").returncode == 0
    answer = {}
    caller = threading.Thread(target=lambda: answer.update(proc=mig_call(node1, path, "Abort")))
    caller.start()
    caller.join(60)
    final = wait_final(node1, path)
    proc = answer["proc"]
    if proc.returncode == 0:
        assert final["State"] == "aborted", final
        assert domstate(node1, "ctl-switch") == "running"
        assert domstate(node2, "ctl-switch") is None
    else:
        assert "completed before the abort took effect" in proc.stderr, proc.stderr
        assert final["State"] == "completed", final
        assert domstate(node2, "ctl-switch") == "running"
        assert domstate(node1, "ctl-switch") is None


def disks_copied_memory_under_way(node, path) -> bool:
    out = node.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE, "State",
                             "DiskTotal", "DiskProcessed", "MemoryProcessed"]).stdout
    state, total, done, memory = [json.loads(line)["data"] for line in out.splitlines()]
    assert state in ("preparing", "running"), state
    return total > 0 and done >= total and memory > 0


@pytest.mark.parametrize("control", ["Abort", "ForceComplete"])
def test_controls_while_a_block_migration_copies_memory(nodes, block_guest, control):
    """The disks are copied (libvirt mirrors them from then on), the memory of a guest that
    dirties it faster than the bandwidth is being copied. ForceComplete pauses the guest, the
    migration completes, the guest runs on the destination with its disk. Abort: the guest
    runs on here, and the copy made on the destination is removed."""
    node1, node2 = nodes.nodes
    name = f"ctl-blk-mem-{control.lower()}"
    image = block_guest(name, dirty=True)
    path = migrate(node1, name, "node2", "block", "b", "true", *SLOW)
    assert wait_for(lambda: disks_copied_memory_under_way(node1, path), 90), props(node1, path)
    proc = mig_call(node1, path, control)
    assert proc.returncode == 0, proc.stderr
    if control == "Abort":
        final = props(node1, path)  # answered once it has ended
        assert final["State"] == "aborted", final
        assert domstate(node1, name) == "running" and domstate(node2, name) is None
        no_leftovers_on_destination(node1, node2, image)
        return
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "completed", final
    assert domstate(node2, name) == "running"  # paused to complete, resumed there
    assert domstate(node1, name) is None
    out = node2.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 48M",
                     image]).stdout
    assert "read 50331648/50331648 bytes" in out, out
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout


def test_timeout_action_force_complete_while_copying_disks(nodes, block_guest):
    """The completion timeout passes while the disks are still being copied: the guest is
    paused then (force_complete without post-copy), the copy goes on to the end, and the
    guest runs on the destination, resumed."""
    node1, node2 = nodes.nodes
    image = block_guest("ctl-blk-tfc")
    # 2 s per GiB, counted as 2 GiB (memory) + 1 (disk): 6 s, the disk copy takes 12 s
    path = migrate(node1, "ctl-blk-tfc", "node2", "block", "b", "true", "bandwidth", "t", "4",
                   "post-copy", "b", "false", "completion-timeout", "t", "2",
                   "timeout-action", "s", "force_complete")
    mig_id = path.rsplit("/", 1)[1]

    def paused_by_the_timeout():
        p = props(node1, path)
        assert p["State"] in ("preparing", "running"), p
        return domstate(node1, "ctl-blk-tfc") == "paused"
    assert wait_for(paused_by_the_timeout, 60), props(node1, path)
    out = node1.run(BUSCTL + ["--json=short", "get-property", BUS, path, MIG_IFACE,
                              "DiskTotal", "DiskRemaining"]).stdout
    total, remaining = [json.loads(line)["data"] for line in out.splitlines()]
    assert total > 0 and remaining > 0, (total, remaining)  # still copying the disk
    final = wait_final(node1, path, timeout=120)
    assert final["State"] == "completed", final
    assert f"Migration {mig_id}: completion timeout, forcing completion" in \
        node1.journal("-u", "hostwardend")
    assert domstate(node2, "ctl-blk-tfc") == "running"
    assert domstate(node1, "ctl-blk-tfc") is None
    assert file_exists(node2, image)
    assert "hostwarden-" not in node2.virsh("pool-list", "--all").stdout


@pytest.mark.parametrize("mode", ["live", "block"])
def test_abort_while_adopted(nodes, guest, block_guest, mode):
    """hostwardend is killed while it migrates a guest that never converges; the restarted
    daemon adopts libvirt's job. An Abort of the adopted migration is answered once it has
    ended, with the guest running here; for block, the pool and the partial copy the dead
    daemon made on the destination are removed by the new one."""
    node1, node2 = nodes.nodes
    name = f"ctl-adopt-{mode}"
    if mode == "block":
        image = block_guest(name, dirty=True)
        path = migrate(node1, name, "node2", "block", "b", "true", *SLOW)
        assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    else:
        guest(name, dirty=True)
        wait_running(node1, migrate(node1, name, "node2", *SLOW))
    adopted = kill_and_adopt(node1, name)
    proc = mig_call(node1, adopted, "Abort")
    assert proc.returncode == 0, proc.stderr  # answered after the end: the guest stayed
    final = props(node1, adopted)
    assert final["State"] == "aborted", final
    assert domstate(node1, name) == "running" and persistent(node1, name)
    assert domstate(node2, name) is None
    proc = mig_call(node1, adopted, "ForceComplete")
    assert proc.returncode != 0, proc.stdout  # ended: nothing to force
    if mode == "block":
        no_leftovers_on_destination(node1, node2, image)


def test_force_complete_of_an_adopted_block_migration(nodes, block_guest):
    """As test_migration's adopted ForceComplete, for a block migration: it lands on the
    destination with its disk, and the temporary pool the dead daemon made there is gone."""
    node1, node2 = nodes.nodes
    image = block_guest("ctl-adopt-force", dirty=True)
    path = migrate(node1, "ctl-adopt-force", "node2", "block", "b", "true", *SLOW)
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    adopted = kill_and_adopt(node1, "ctl-adopt-force")
    assert mig_call(node1, adopted, "ForceComplete").returncode == 0
    final = wait_final(node1, adopted, timeout=120)
    assert final["State"] == "completed", final
    assert domstate(node2, "ctl-adopt-force") == "running"
    assert domstate(node1, "ctl-adopt-force") is None
    out = node2.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 48M",
                     image]).stdout
    assert "read 50331648/50331648 bytes" in out, out
    assert wait_for(lambda: "hostwarden-" not in node2.virsh("pool-list", "--all").stdout, 15), \
        node2.virsh("pool-list", "--all").stdout


def test_a_block_migration_that_ends_while_hostwardend_is_away_is_cleaned_at_its_start(
        nodes, block_guest):
    """hostwardend stops answering (SIGSTOP) while its block migration copies the disk; the
    migration is aborted in libvirt meanwhile (virsh domjobabort), so no daemon sees it end.
    Killed then, hostwardend restarts, finds no migration to adopt, and removes the pool and
    the partial copy its predecessor noted (/run/hostwarden/outgoing/<uuid>)."""
    node1, node2 = nodes.nodes
    image = block_guest("ctl-away", dirty=True)
    path = migrate(node1, "ctl-away", "node2", "block", "b", "true", "bandwidth", "t", "4",
                   "post-copy", "b", "false")
    assert wait_for(lambda: disk_copy_under_way(node1, path), 60), props(node1, path)
    pid = node1.run(["systemctl", "show", "-P", "MainPID", "hostwardend"]).stdout.strip()
    node1.run(["kill", "-STOP", pid])
    try:
        assert node1.run(["ls", "/run/hostwarden/outgoing"]).stdout.strip(), "no note kept"
        node1.virsh("domjobabort", "ctl-away")
        assert wait_for(lambda: "Unbounded" not in node1.virsh("domjobinfo", "ctl-away",
                                                               check=False).stdout, 30)
        assert file_exists(node2, image)  # libvirt leaves the partial copy
    finally:
        node1.run(["kill", "-KILL", pid])
    assert wait_for(lambda: node1.run(["systemctl", "show", "-P", "MainPID", "hostwardend"])
                    .stdout.strip() not in ("0", pid), 30)
    assert wait_for(lambda: not file_exists(node2, image), 30), \
        f"the partial copy {image} stayed on node2"
    assert domstate(node1, "ctl-away") == "running" and domstate(node2, "ctl-away") is None
    no_leftovers_on_destination(node1, node2, image)
    assert node1.run(["ls", "/run/hostwarden/outgoing"]).stdout.strip() == ""


# ---- metrics (issue 24) ---------------------------------------------------------------------

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's prometheus-node-exporter's
TEXTFILE = f"{TEXTFILE_DIR}/hostwarden.prom"  # [metrics] textfile's default


def metrics(node) -> dict[str, float] | None:
    """The samples of node's textfile, by series as written ('name{labels}'); None before it
    exists."""
    proc = node.run(["cat", TEXTFILE], check=False)
    if proc.returncode != 0:
        return None
    samples = {}
    for line in proc.stdout.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def test_metrics_count_what_happened_and_pass_promtool(nodes, guest):
    """After a live migration that completes, one that is aborted and a start the hook
    refuses, node1's textfile (node_exporter's directory, made before hostwardend starts:
    its sandbox lets it write only to a directory that existed then) says so, series by
    series, within seconds, with mode 0644, and `promtool check metrics` has nothing to say
    about it."""
    node1, node2 = nodes.nodes
    node1.run(["mkdir", "-p", TEXTFILE_DIR])
    node1.run("systemctl restart hostwardend.service")  # counters from zero
    seen = wait_for(lambda: (m := metrics(node1)) and m.get('hostwarden_nodes{state="up"}') == 2
                    and m.get("hostwarden_store_attached") == 1 and m, timeout=60)
    assert seen, metrics(node1)
    refused_before = seen['hostwarden_hook_refusals_total{reason="owned-elsewhere"}']

    uuid = guest("met-live")
    completed = wait_final(node1, migrate(node1, "met-live", "node2"))
    assert completed["State"] == "completed"
    guest("met-abort", dirty=True)
    path = migrate(node1, "met-abort", "node2", *SLOW)
    wait_running(node1, path)
    assert mig_call(node1, path, "Abort").returncode == 0
    aborted = wait_final(node1, path, timeout=30)
    assert aborted["State"] == "aborted"
    # met-live is node2's now: node1's hook refuses to start a copy of it
    assert wait_for(lambda: node1.run(["test", "-e", f"/run/hostwarden/deny/{uuid}"],
                                      check=False).returncode == 0)
    node1.write_file("/root/met-live.xml", hwcluster.domain_xml("met-live", uuid=uuid))
    proc = node1.virsh("create", "/root/met-live.xml", check=False)
    assert proc.returncode != 0 and "records it as node 'node2''s" in proc.stderr, proc.stderr

    expected = {
        'hostwarden_migrations_started_total{mode="live"}': 2,
        'hostwarden_migrations_total{mode="live",result="completed"}': 1,
        'hostwarden_migrations_total{mode="live",result="aborted"}': 1,
        'hostwarden_migrations_total{mode="live",result="failed"}': 0,
        'hostwarden_migrations_total{mode="block",result="completed"}': 0,
        'hostwarden_domain_migrations_total{domain="met-live"}': 1,
        'hostwarden_domain_migrations_total{domain="met-abort"}': 1,
        'hostwarden_migration_duration_seconds_count{mode="live"}': 1,
        'hostwarden_migration_duration_seconds_bucket{mode="live",le="+Inf"}': 1,
        'hostwarden_migration_downtime_seconds_count{mode="live"}': 1,
        'hostwarden_migration_data_processed_bytes_count{mode="live"}': 2,
        'hostwarden_hook_refusals_total{reason="owned-elsewhere"}': refused_before + 1,
        'hostwarden_migrations_in_flight{state="running"}': 0,
        'hostwarden_nodes{state="up"}': 2,
        'hostwarden_nodes{state="down"}': 0,
        'hostwarden_node_state{node="node2",state="up",fence="unknown"}': 1,
        'hostwarden_maintenance_state{state="off"}': 1,
        'hostwarden_drains_total{result="queued"}': 0,
    }

    def differences():
        m = metrics(node1)
        return {k: (m.get(k), v) for k, v in expected.items() if m.get(k) != v}
    # a second after the outcomes (the timer's 15 s would do too, later)
    assert wait_for(lambda: not differences(), timeout=10), differences()

    m = metrics(node1)
    assert 0 < m['hostwarden_migration_duration_seconds_sum{mode="live"}'] < 120
    # the idle guest's switchover: a few ms, measured
    assert 0 < m['hostwarden_migration_downtime_seconds_sum{mode="live"}'] < 5
    # both migrations' bytes, the aborted one's too, as each Migration object reported them
    # at its end (an idle guest's zero pages cross as a few bytes each, so no fixed floor)
    sent = sum(p["MemoryProcessed"] + p["DiskProcessed"] for p in (completed, aborted))
    assert sent > 0
    assert m['hostwarden_migration_data_processed_bytes_sum{mode="live"}'] == sent
    assert m["hostwarden_store_heartbeat_duration_seconds_count"] > 0
    # cumulative buckets: each at least the one before, +Inf the count
    buckets = [v for k, v in m.items()
               if k.startswith("hostwarden_store_heartbeat_duration_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == \
        m["hostwarden_store_heartbeat_duration_seconds_count"]
    assert node1.run(["stat", "-c", "%a", TEXTFILE]).stdout.strip() == "644"

    check = subprocess.run(["promtool", "check", "metrics"], input=node1.read_file(TEXTFILE),
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), \
        check.stdout + check.stderr


def test_metrics_textfile_emptied_by_a_reload_is_removed(nodes):
    """[metrics] textfile emptied and reloaded: the file node_exporter would otherwise serve,
    frozen, for ever is removed at the next write (every 15 s by default)."""
    node1 = nodes.node(1)
    node1.run(["mkdir", "-p", TEXTFILE_DIR])
    dropin = "/etc/hostwarden/hostwarden.conf.d/90-no-metrics.conf"
    if not wait_for(lambda: metrics(node1) is not None, timeout=5):
        node1.run("systemctl restart hostwardend.service")  # the directory is new to it
    assert wait_for(lambda: metrics(node1) is not None, timeout=60)
    try:
        node1.write_file(dropin, "[metrics]\ntextfile =\n")
        node1.run(["hostwardenctl", "reload"])
        assert wait_for(lambda: metrics(node1) is None, timeout=20), \
            "the textfile stayed after [metrics] textfile was emptied"
    finally:
        node1.run(["rm", "-f", dropin])
        node1.run(["hostwardenctl", "reload"])
