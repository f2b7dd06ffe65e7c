"""Fixtures of the daemon suite (tests/daemon/README.md); the harness is hwdaemon.py."""

import os

import pytest

from hwdaemon import Daemon, Polkit, polkit_available


@pytest.fixture(scope="module")
def daemon():
    """hostwardend with a dir store, peers node2 (stand-in fence agent), node3 (none) and
    node4 (an agent that fails); one per test module."""
    if os.geteuid() != 0:
        pytest.fail("the daemon suite runs as root (CI does): hostwardend's root callers skip "
                    "polkit, and the polkit tests start polkitd")
    with Daemon() as d:
        yield d


@pytest.fixture(scope="session")
def no_store():
    """hostwardend whose store was never initialized (StoreState no-identity); shared by the
    modules: nothing it accepts changes its state."""
    with Daemon(store=False) as d:
        yield d


@pytest.fixture(scope="module")
def polkit_daemon():
    """hostwardend with a real polkitd on its bus, in a private mount namespace."""
    why = polkit_available()
    if why:
        pytest.fail(why)
    with Daemon() as d:
        pk = Polkit(d)
        pk.start()
        d.polkit = pk
        yield d


@pytest.fixture(autouse=True)
def show_daemon_log(request):
    """On a failure, the daemon's log is in the report."""
    yield
    for name in ("daemon", "no_store", "polkit_daemon"):
        if name in request.fixturenames:
            d = request.getfixturevalue(name)
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                print(f"--- hostwardend log ({name}) ---\n{d.daemon_log()[-6000:]}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
