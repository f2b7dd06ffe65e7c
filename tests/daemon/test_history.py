"""The history of operations and its archive (issue 21, docs/history-and-archiving.md):
GetHistory's and Archive's arguments, who may call them, the records a fence, a migration,
a rebuild and a drain leave, that they outlive a restart of hostwardend, and an archive
pass over records written with old times (hw-seed-store writes them: the test holds the
clock, not the daemon)."""

import json
import subprocess
import time
import uuid

import pytest

from hwdaemon import (ERR, INVALID_ARGS, MIGRATION, TEST_DOMAIN, TEST_UUID, domain_xml, stop_pid,
                      wait_for)

DAY = 86400 * 10**6
OLD_UUID = "00000000-0000-4000-8000-0000000000d1"
YOUNG_UUID = "00000000-0000-4000-8000-0000000000d2"
# (id, kind, mode, domain, domain_name, node, source, destination, result, error,
#  caller_uid, caller, started, finished, downtime, bytes)
KIND, MODE, DOMAIN, NAME, NODE, SOURCE, DEST, RESULT, ERROR, UID, CALLER = range(1, 12)
STARTED, FINISHED, DOWNTIME, BYTES = range(12, 16)


def now_usec():
    return time.time_ns() // 1000


def history(d, dom="", since=0, **kw):
    return d.call("GetHistory", "st", dom, since, **kw)


def ctl(d, *args):
    return subprocess.run([d.exe("ctl/hostwardenctl")] + list(args), env=d.env,
                          capture_output=True, text=True, timeout=60)


def test_get_history_argument_errors(daemon):
    name, msg = daemon.error("GetHistory", "st", "a\nb", 0)
    assert name == INVALID_ARGS, msg
    assert "domain name or a UUID" in msg
    # nanoseconds where microseconds were meant: a unit mistake, said so
    name, msg = daemon.error("GetHistory", "st", "", time.time_ns())
    assert name == INVALID_ARGS, msg
    assert "microseconds" in msg
    name, msg = daemon.error("GetHistory", "s", "")
    assert name == INVALID_ARGS, msg


def test_archive_argument_errors(daemon):
    name, msg = daemon.error("Archive", "s", "yes")
    assert name == INVALID_ARGS, msg


def test_fence_is_recorded_with_its_caller(daemon):
    t0 = now_usec()
    daemon.seed("node", "node2", "address=127.0.0.2")
    assert daemon.call("Fence", "ss", "node2", "status") == "off"
    rows = [r for r in history(daemon, since=t0) if r[KIND] == "fence"]
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r[MODE], r[NODE], r[SOURCE], r[DEST], r[RESULT], r[ERROR]) == \
        ("status", "node1", "node1", "node2", "off", "")
    assert r[UID] == 0  # the suite calls as root
    assert r[CALLER].startswith(":")  # the caller's unique bus name: its polkit subject
    assert t0 <= r[STARTED] <= r[FINISHED] <= now_usec()


def test_failed_fence_is_recorded_with_its_error(daemon):
    t0 = now_usec()
    daemon.seed("node", "node4", "address=127.0.0.4")
    name, _ = daemon.error("Fence", "ss", "node4", "off")
    assert name == ERR + "FenceFailed"
    rows = [r for r in history(daemon, since=t0) if r[KIND] == "fence"]
    assert [(r[DEST], r[RESULT]) for r in rows] == [("node4", "failed")]
    assert rows[0][ERROR]


@pytest.fixture(scope="module")
def failed_migration(daemon):
    """A Migrate of the test domain to node2 (libvirt's test driver cannot migrate: it ends
    failed), and the time before it was asked for."""
    t0 = now_usec()
    path = daemon.call("Migrate", "ssa{sv}", TEST_DOMAIN, "node2", {})
    wait_for("the migration to end", lambda: daemon.prop("State", path, MIGRATION)
             in ("failed", "aborted", "completed"), timeout=30)
    return path, t0


def test_migration_is_recorded_when_it_ends(daemon, failed_migration):
    path, t0 = failed_migration
    mid = path.rsplit("/", 1)[1]
    rows = wait_for("the migration's record", lambda: [
        r for r in history(daemon, TEST_DOMAIN, t0) if r[KIND] == "migration"])
    assert len(rows) == 1, rows
    r = rows[0]
    assert mid in r[0]  # the record's id carries the migration's
    assert (r[MODE], r[DOMAIN], r[NAME], r[SOURCE], r[DEST], r[RESULT]) == \
        ("live", TEST_UUID, TEST_DOMAIN, "node1", "node2", "failed")
    assert r[ERROR] == daemon.prop("Error", path, MIGRATION)
    assert r[UID] == 0 and r[CALLER].startswith(":")
    # by UUID too, and not for another domain or a later since
    assert [x[0] for x in history(daemon, TEST_UUID.upper(), t0)] == [r[0]]
    assert history(daemon, "no-such-domain", t0) == []
    assert history(daemon, TEST_DOMAIN, now_usec() + 10**6) == []
    # read-only: anybody may read it
    assert r[0] in [x[0] for x in history(daemon, uid="nobody")]


def test_history_outlives_a_restart_and_shows_in_hostwardenctl(daemon, failed_migration):
    path, t0 = failed_migration
    before = history(daemon, since=t0)
    assert before
    stop_pid(daemon.daemon)
    daemon.start_daemon()
    daemon.wait_property("StoreState", "attached")
    assert history(daemon, since=t0) == before
    # ListMigrations forgot it (a new daemon); the history did not
    assert path not in [m[6] for m in daemon.call("ListMigrations")]
    out = ctl(daemon, "history", TEST_DOMAIN, "--json", "--since", "@%d" % (t0 // 10**6))
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [x["id"] for x in rows] == [r[0] for r in before if r[NAME] == TEST_DOMAIN]
    assert rows[0]["result"] == "failed" and rows[0]["caller_uid"] == 0
    assert rows[0]["duration_usec"] == rows[0]["finished"] - rows[0]["started"]
    out = ctl(daemon, "history")
    assert out.returncode == 0 and "record(s) listed" in out.stdout, out
    out = ctl(daemon, "history", "--since", "ninety days")
    assert out.returncode == 1 and "--since=ninety days: expected" in out.stderr, out


def test_archive_moves_old_records_and_purges(daemon):
    now = now_usec()
    old = subprocess.run([daemon.exe("tests/hw-seed-store"), str(daemon.tmp / "state"),
                          "history", "node2", OLD_UUID, "old-vm", str(now - 100 * DAY)],
                         capture_output=True, text=True, check=True).stdout.strip()
    daemon.seed("history", "node1", YOUNG_UUID, "young-vm", str(now - 10 * DAY))
    daemon.seed("instance", OLD_UUID, "old-vm", "node2", "deleted", f"time={now - 95 * DAY}")
    daemon.seed("definition", OLD_UUID, stdin="<domain><name>old-vm</name></domain>")
    daemon.seed("instance", YOUNG_UUID, "young-vm", "node2", "deleted", f"time={now - DAY}")

    # a dry run says what would move, and moves nothing
    planned = daemon.call("Archive", "b", True)
    assert sorted((a[0], a[1], a[2], a[5]) for a in planned) == sorted([
        ("archive", "history", old, "dry-run"), ("archive", "instance", OLD_UUID, "dry-run")])
    assert old in [r[0] for r in history(daemon)]

    done = daemon.call("Archive", "b", False)
    assert sorted((a[0], a[1], a[2], a[3], a[5]) for a in done) == sorted([
        ("archive", "history", old, "old-vm", "done"),
        ("archive", "instance", OLD_UUID, "old-vm", "done")])
    ids = [r[0] for r in history(daemon)]
    assert old not in ids
    assert any(r[NAME] == "young-vm" for r in history(daemon))
    state = daemon.tmp / "state"
    assert (state / "archive" / "history" / old).exists()
    assert (state / "archive" / "instances" / OLD_UUID).exists()
    assert (state / "archive" / "definitions" / f"{OLD_UUID}.xml").exists()
    assert not (state / "instances" / OLD_UUID).exists()
    assert not (state / "definitions" / f"{OLD_UUID}.xml").exists()
    assert (state / "instances" / YOUNG_UUID).exists()
    # a second pass finds nothing left to do
    assert daemon.call("Archive", "b", False) == []

    # purge_after = 0s: archived entries go at the next pass
    daemon.write_config(extra="[history]\npurge_after = 0s\n")
    daemon.call("Reload")
    try:
        out = ctl(daemon, "archive", "--json")
        assert out.returncode == 0, out.stderr
        purged = json.loads(out.stdout)
        assert sorted((a["action"], a["key"]) for a in purged) == sorted([
            ("purge", old), ("purge", OLD_UUID)])
        assert not (state / "archive" / "history" / old).exists()
        assert not (state / "archive" / "definitions" / f"{OLD_UUID}.xml").exists()
    finally:
        daemon.write_config()
        daemon.call("Reload")


def test_archive_waits_for_another_nodes_lease(daemon):
    state = daemon.tmp / "state"
    (state / "leases").mkdir(exist_ok=True)
    lease = state / "leases" / "archive"
    lease.write_text("holder=node3\ntoken=%s\nexpires=%d\ngeneration=1\n"
                     % ("ab" * 16, now_usec() + 600 * 10**6))
    try:
        name, msg = daemon.error("Archive", "b", False)
        assert name == ERR + "Busy", msg
        assert "node3" in msg
        # hostwarden-archive.service takes 75 for success: the holder runs the pass
        out = ctl(daemon, "archive")
        assert out.returncode == 75 and "node3" in out.stderr, out
        # a dry run changes nothing and needs no lease
        assert daemon.call("Archive", "b", True) is not None
    finally:
        lease.unlink()
    # expired: taken over
    lease.write_text("holder=node3\ntoken=%s\nexpires=%d\ngeneration=1\n"
                     % ("ab" * 16, now_usec() - 10**6))
    assert daemon.call("Archive", "b", False) is not None
    assert not lease.exists()  # released at the end of the pass


def test_rebuilds_are_recorded_rebuilt_or_refused(daemon):
    t0 = now_usec()
    daemon.seed("node", "node3", "address=127.0.0.3")
    wait_for("node3 down", lambda: daemon.nodes()["node3"][2] == "down")
    daemon.call("ForceDown", "sb", "node3", True)
    try:
        u = str(uuid.uuid4())
        name = "hist-" + u[:8]
        daemon.seed("instance", u, name, "node3")
        daemon.seed("definition", u, stdin=domain_xml(name, u))
        assert daemon.call("Rebuild", "ssa{sv}", u, "node3", {}) is None
        unknown = str(uuid.uuid4())
        err, _ = daemon.error("Rebuild", "ssa{sv}", unknown, "node3", {})
        assert err == ERR + "NoSuchDomain"
        rows = {r[DOMAIN]: r for r in history(daemon, since=t0) if r[KIND] == "rebuild"}
        assert (rows[u][NAME], rows[u][SOURCE], rows[u][DEST], rows[u][RESULT],
                rows[u][ERROR], rows[u][UID]) == (name, "node3", "node1", "rebuilt", "", 0)
        assert (rows[unknown][RESULT], rows[unknown][DEST]) == ("refused", "node1")
        assert rows[unknown][ERROR]
    finally:
        daemon.call("ForceDown", "sb", "node3", False)


def test_a_drain_and_its_migrations_are_recorded_with_its_caller(daemon):
    t0 = now_usec()
    try:
        paths = daemon.call("EvacuateLive", "sa{sv}", "node2", {})
        assert paths
        for p in paths:
            wait_for("the migration to end", lambda p=p: daemon.prop(
                "State", p, MIGRATION) in ("failed", "aborted", "completed"), timeout=30)
    finally:
        daemon.call("Enable")
    rows = history(daemon, since=t0)
    drains = [r for r in rows if r[KIND] == "drain"]
    assert [(r[MODE], r[SOURCE], r[DEST], r[RESULT], r[UID]) for r in drains] == \
        [(f"{len(paths)}-migrations", "node1", "node2", "queued", 0)]
    ids = {p.rsplit("/", 1)[1] for p in paths}
    migrations = [r for r in rows if r[KIND] == "migration" and r[0].split("-")[1] in ids]
    assert len(migrations) == len(paths), rows
    # the caller of EvacuateLive is the caller of each migration it queued
    assert {(r[UID], r[CALLER]) for r in migrations} == {(0, drains[0][CALLER])}


def test_the_timer_has_the_seeds_schedule(daemon):
    """hostwarden-archive.timer: 00:01 and 05:00 (the seeds' archive and purge times) with
    up to an hour of jitter, each time a calendar systemd accepts; its service runs
    'hostwardenctl archive' and takes 75 (the lease is another node's) for success."""
    units = daemon.source / "units"
    timer = (units / "hostwarden-archive.timer").read_text().splitlines()
    calendars = [line.split("=", 1)[1] for line in timer if line.startswith("OnCalendar=")]
    assert calendars == ["*-*-* 00:01:00", "*-*-* 05:00:00"]
    assert "RandomizedDelaySec=1h" in timer
    assert "WantedBy=timers.target" in timer
    for c in calendars:
        subprocess.run(["systemd-analyze", "calendar", c], check=True, capture_output=True)
    service = (units / "hostwarden-archive.service.in").read_text().splitlines()
    assert "ExecStart=@bindir@/hostwardenctl --no-ask-password archive" in service
    assert "SuccessExitStatus=75" in service
