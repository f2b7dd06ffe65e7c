#!/usr/bin/python3
"""bench/converge's anchor: one live migration driven as Nova's libvirt driver drives it
(nova/virt/libvirt/driver.py: _live_migration_operation in a thread, _live_migration_monitor
in the caller; nova/virt/libvirt/migration.py: downtime_steps, update_downtime,
should_trigger_timeout_action, find_job_type), with Nova's defaults otherwise: no
post-copy, no auto-converge, timeout action abort. Written from Nova's algorithm, not its
code. Runs on the source node (python3-libvirt) and prints one JSON object.

    nova_live_migration.py DOMAIN DEST_URI BANDWIDTH DOWNTIME_MS STEPS DELAY TIMEOUT

BANDWIDTH in MiB/s (live_migration_bandwidth); DOWNTIME_MS, STEPS, DELAY (s per GiB) and
TIMEOUT (s per GiB, 0: none) are live_migration_downtime, _downtime_steps, _downtime_delay
and live_migration_completion_timeout.
"""
import json
import sys
import threading
import time

import libvirt

#: Nova's monitor loop: a job sample every 0.5 s
SLEEP = 0.5
#: Nova's flags for a live migration with native TLS (_prepare_migration_flags,
#: _handle_native_tls); hostwarden's engine uses the same ones
FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER |
         libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_PERSIST_DEST |
         libvirt.VIR_MIGRATE_TLS)


def data_gb(memory_mib: float) -> float:
    """What Nova counts as the data to copy: the flavor's RAM in GiB, at least 2 (no disks
    here: no block migration)."""
    return max(memory_mib / 1024, 2)


def downtime_steps(downtime_ms: int, steps: int, delay: float, gb: float) -> list:
    """(start s, max downtime ms) for step 0..steps: linear from downtime/steps to downtime,
    a step every int(delay × GiB) s, in Nova's arithmetic (float division, int() at the
    end)."""
    every = int(delay * gb)
    base = downtime_ms / steps
    offset = (downtime_ms - base) / steps
    return [(int(every * i), int(base + offset * i)) for i in range(steps + 1)]


def step_for(steps: list, elapsed: float):
    """The last step whose start lies strictly before elapsed (update_downtime)."""
    found = None
    for i, (start, ms) in enumerate(steps):
        if elapsed > start:
            found = (i, start, ms)
    return found


def job(dom) -> dict:
    """Guest.get_job_info: a domain gone (undefined after its migration) is a completed job."""
    try:
        return dom.jobStats()
    except libvirt.libvirtError as e:
        if e.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
            return {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED}
        if "no RAM info was set" in (e.get_error_message() or ""):
            return {"type": libvirt.VIR_DOMAIN_JOB_NONE}  # between phases
        raise


def find_job_type(dom) -> int:
    """No job and the call has returned: still running here means it failed."""
    try:
        return libvirt.VIR_DOMAIN_JOB_FAILED if dom.isActive() else \
            libvirt.VIR_DOMAIN_JOB_COMPLETED
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return libvirt.VIR_DOMAIN_JOB_COMPLETED
        return libvirt.VIR_DOMAIN_JOB_FAILED


def completed_downtime(dest_uri: str, uuid: str):
    """The downtime libvirt measured, from the completed job's statistics. The source's
    domain is undefined by then (VIR_MIGRATE_UNDEFINE_SOURCE): the destination has them (the
    source sends them in the migration cookie), where hostwarden reads its Downtime too."""
    flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
    try:
        dconn = libvirt.open(dest_uri)
        try:
            return dconn.lookupByUUIDString(uuid).jobStats(flags).get("downtime")
        finally:
            dconn.close()
    except libvirt.libvirtError:
        return None


def main() -> int:
    name, dest_uri = sys.argv[1], sys.argv[2]
    bandwidth, downtime_ms, steps = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    delay, timeout = float(sys.argv[6]), float(sys.argv[7])

    conn = libvirt.open("qemu:///system")
    dom = conn.lookupByName(name)
    uuid = dom.UUIDString()
    gb = data_gb(dom.info()[1] / 1024)
    schedule = downtime_steps(downtime_ms, steps, delay, gb)
    completion_timeout = int(timeout * gb)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    params = {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: bandwidth,
              libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml,
              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: xml}
    op = {}

    def operation():
        # a connection of its own: the call blocks until the migration ends
        op["t0"] = time.monotonic()
        oconn = libvirt.open("qemu:///system")
        try:
            odom = oconn.lookupByUUIDString(uuid)
            op["t0"] = time.monotonic()
            odom.migrateToURI3(dest_uri, params, FLAGS)
        except libvirt.libvirtError as e:
            op["error"] = str(e)
        finally:
            op["t1"] = time.monotonic()
            oconn.close()

    thread = threading.Thread(target=operation)
    thread.start()
    start = time.monotonic()
    current = None
    taken, aborts, last = [], [], {}
    while True:
        info = job(dom)
        kind = info.get("type", libvirt.VIR_DOMAIN_JOB_NONE)
        if kind == libvirt.VIR_DOMAIN_JOB_NONE and not thread.is_alive():
            kind = find_job_type(dom)
        if kind == libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
            elapsed = time.monotonic() - start
            last = {k: info.get(k) for k in ("memory_iteration", "memory_remaining",
                                             "memory_dirty_rate")}
            if completion_timeout and elapsed > completion_timeout:
                try:
                    dom.abortJob()
                    aborts.append(round(elapsed, 2))
                except libvirt.libvirtError as e:
                    aborts.append(f"{elapsed:.2f}: {e}")
            step = step_for(schedule, elapsed)
            if step and step[2] != current:
                try:
                    dom.migrateSetMaxDowntime(step[2], 0)
                except libvirt.libvirtError:
                    pass  # Nova logs it and goes on
                current = step[2]
                taken.append((step[0], round(elapsed, 2), step[2]))
        elif kind in (libvirt.VIR_DOMAIN_JOB_COMPLETED, libvirt.VIR_DOMAIN_JOB_FAILED,
                      libvirt.VIR_DOMAIN_JOB_CANCELLED):
            break
        time.sleep(SLEEP)
    seen = time.monotonic()
    thread.join()
    done = "error" not in op
    print(json.dumps({
        "completed": done,
        "error": op.get("error", ""),
        # from the call to its return, and to when the monitor saw the end
        "seconds": op["t1"] - op["t0"],
        "monitor_seconds": seen - op["t0"],
        "downtime_ms": completed_downtime(dest_uri, uuid) if done else None,
        "steps": taken,
        "aborts": aborts,
        "completion_timeout": completion_timeout,
        "last_sample": last,
    }))
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
