"""pytest fixtures for hostwarden's simulated-cluster tests.

Fixtures:
- ``make_cluster(n_nodes=2, **kw)``: factory; boots a `hwcluster.Cluster`
  and returns it.  Every cluster it made is torn down when the test ends
  (passed, failed or interrupted), and the test then fails if anything of
  them is left (netns, cgroups, directories, mounts, processes).
- ``cluster``: a fresh 2-node cluster for one test.
- ``module_cluster``: one 2-node cluster shared by the tests of a module
  (tests must clean up the guests they create).
- ``record_timing(label, seconds)``: report a measured duration in the
  summary at the end of the run.
- ``record_fault_round(store, operation, fault, held, during)``: count a fault
  round (suite `faults`) in the "fault rounds" summary, which is also written
  to $HW_FAULT_REPORT when set: per store and (operation, fault) pair, the
  rounds whose fault landed while the operation was going, those it missed
  (reported apart: they prove nothing about the fault), and the invariants.

Nothing is skipped: when the machine cannot run simulated nodes (not root,
libvirtd or systemd missing, ...), every test here fails with the reason.
"""

from __future__ import annotations

import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hwcluster  # noqa: E402  (after the path fix above)

_timings: list[tuple[str, float]] = []
_stale_removed: list[str] = []
_fault_rounds: list[tuple[str, str, str, bool, bool]] = []


@pytest.fixture(scope="session", autouse=True)
def _cluster_environment():
    """Fail (never skip) every test if simulated nodes cannot run here."""
    problems = hwcluster.check_environment()
    if problems:
        pytest.fail(
            "simulated compute nodes cannot run on this machine:\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )
    # Whatever a killed earlier run left behind (only dead PIDs' names).
    _stale_removed.extend(hwcluster.cleanup_stale())
    yield


class _ClusterFactory:
    """Boots clusters and guarantees their teardown."""

    def __init__(self, record):
        self._clusters: list[hwcluster.Cluster] = []
        self._record = record

    def __call__(self, n_nodes: int = 2, **kwargs) -> hwcluster.Cluster:
        cluster = hwcluster.Cluster(n_nodes, **kwargs)
        # Registered before start(): a failing boot is torn down too.
        self._clusters.append(cluster)
        cluster.start()
        self._record(f"boot {n_nodes} node(s) until libvirtd answers", cluster.boot_seconds)
        return cluster

    def close(self) -> None:
        errors = []
        for cluster in reversed(self._clusters):
            try:
                cluster.teardown()
            except Exception as e:  # noqa: BLE001 - tear down the others first
                errors.append(f"{cluster.tag}: {e}")
            errors += [f"{cluster.tag}: left behind {x}" for x in cluster.leftovers()]
        self._clusters.clear()
        if errors:
            pytest.fail("cluster teardown failed:\n  " + "\n  ".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def record_timing():
    def record(label: str, seconds: float | None) -> None:
        if seconds is not None:
            _timings.append((label, seconds))
    return record


@pytest.fixture(scope="session")
def record_fault_round():
    def record(store: str, operation: str, fault: str, held: bool, during: bool) -> None:
        """DURING: the operation was still going when the fault hit."""
        _fault_rounds.append((store, operation, fault, held, during))
    return record


def fault_report() -> list[str]:
    by: dict[tuple[str, str, str], list[int]] = {}
    for store, op, fault, held, during in _fault_rounds:
        c = by.setdefault((store, op, fault), [0, 0, 0])
        c[0 if during else 1] += 1
        c[2] += held
    lines = [f"{store:<4} {op:<8} {fault:<32} landed {landed:>2}, missed {missed:>2} "
             f"(not counted), invariants held in {held:>2} of {landed + missed:>2}"
             for (store, op, fault), (landed, missed, held) in by.items()]
    n = len(_fault_rounds)
    landed = sum(1 for r in _fault_rounds if r[4])
    held = sum(1 for r in _fault_rounds if r[3])
    lines.append(f"total: {n} rounds ({landed} landed, {n - landed} missed), every invariant "
                 f"held in {held}")
    return lines


@pytest.fixture
def make_cluster(record_timing):
    factory = _ClusterFactory(record_timing)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def cluster(make_cluster) -> hwcluster.Cluster:
    return make_cluster(2)


@pytest.fixture(scope="module")
def module_cluster(record_timing):
    factory = _ClusterFactory(record_timing)
    try:
        yield factory(2)
    finally:
        factory.close()


def pytest_terminal_summary(terminalreporter):
    if _stale_removed:
        terminalreporter.section("hwcluster: removed leftovers of killed earlier runs")
        for item in _stale_removed:
            terminalreporter.write_line(item)
    if _fault_rounds:
        terminalreporter.section("fault rounds")
        for line in fault_report():
            terminalreporter.write_line(line)
        if os.environ.get("HW_FAULT_REPORT"):
            # appended: the faults suites run side by side (scripts/test removes it first)
            with open(os.environ["HW_FAULT_REPORT"], "a") as f:
                f.write("\n".join(fault_report()) + "\n")
    if not _timings:
        return
    terminalreporter.section("hwcluster timings")
    by_label: dict[str, list[float]] = {}
    for label, seconds in _timings:
        by_label.setdefault(label, []).append(seconds)
    for label, values in by_label.items():
        with contextlib.suppress(ValueError):
            terminalreporter.write_line(
                f"{label}: n={len(values)} min={min(values):.2f}s "
                f"max={max(values):.2f}s mean={sum(values) / len(values):.2f}s"
            )
