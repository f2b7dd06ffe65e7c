"""Disable / Enable / ForceDown / ForceDownWithOptions: validation, errors, state, signals."""

import pytest

from hwdaemon import ERR, INVALID_ARGS, stop_pid, wait_for


@pytest.mark.parametrize("reason", ["", "x" * 256, "two\nlines", "bell\x07"])
def test_disable_refuses_a_bad_reason(daemon, reason):
    name, msg = daemon.error("Disable", "s", reason)
    assert name == INVALID_ARGS
    assert "Expected a reason of 1 to 255 characters" in msg
    assert daemon.prop("State") == "enabled"


def test_disable_then_enable(daemon):
    with daemon.signals() as sig:
        assert daemon.call("Disable", "s", "kernel upgrade") is None
        sig.wait("NodeChanged", ["node1", "disabled"])
        changed = sig.wait("PropertiesChanged", lambda a: "State" in a[1])
        assert changed[0] == "org.hostwarden.Warden1.Node"
        assert changed[1]["State"].value == "disabled"
        assert changed[1]["DisabledReason"].value == "kernel upgrade"
    assert daemon.prop("State") == "disabled"
    assert daemon.prop("DisabledReason") == "kernel upgrade"
    assert daemon.prop("DisabledSince") > 0
    row = daemon.nodes()["node1"]
    assert row[2] == "disabled"
    assert "disabled: kernel upgrade;" in row[4]
    # the hook's view (docs/runtime-dir.md): a marker under HOSTWARDEN_RUNTIME_DIR
    marker = daemon.tmp / "run" / "node" / "disabled"
    assert marker.exists()

    with daemon.signals() as sig:
        assert daemon.call("Enable") is None
        sig.wait("NodeChanged", ["node1", "enabled"])
    assert daemon.prop("State") == "enabled"
    assert daemon.prop("DisabledReason") == ""
    assert daemon.prop("DisabledSince") == 0
    assert daemon.nodes()["node1"][2] == "up"
    assert not marker.exists()


def test_force_down_refuses_a_bad_node_name(daemon):
    name, msg = daemon.error("ForceDown", "sb", "bad name!", True)
    assert name == INVALID_ARGS
    assert "Expected a node name" in msg


def test_force_down_refuses_this_node(daemon):
    name, msg = daemon.error("ForceDown", "sb", "node1", True)
    assert name == INVALID_ARGS
    assert "cannot force itself down" in msg
    name, msg = daemon.error("ForceDown", "sb", "node1", False)
    assert name == INVALID_ARGS
    assert "--insist" in msg


def test_force_down_of_an_unknown_node(daemon):
    name, msg = daemon.error("ForceDown", "sb", "node9", True)
    assert name == ERR + "NoSuchNode"
    assert "'node9'" in msg


def test_force_down_with_options_checks_the_options(daemon):
    name, msg = daemon.error("ForceDownWithOptions", "sba{sv}", "node2", True,
                             {"force": ("b", True)})
    assert name == INVALID_ARGS
    assert "Unknown option 'force'; expected insist (b)" in msg
    name, msg = daemon.error("ForceDownWithOptions", "sba{sv}", "node2", True,
                             {"insist": ("s", "yes")})
    assert name == INVALID_ARGS
    assert "must be a boolean" in msg


def test_force_down_of_a_live_peer_needs_insist(daemon):
    daemon.seed("node", "node5", "address=127.0.0.5")
    beat = daemon.heartbeat("node5")  # node5 alive while the test runs
    try:
        wait_for("node5 up", lambda: daemon.nodes()["node5"][2] == "up")
        name, msg = daemon.error("ForceDown", "sb", "node5", True)
        assert name == ERR + "NodeUp", msg
        assert "node5" in msg
        assert daemon.call("ForceDownWithOptions", "sba{sv}", "node5", True,
                           {"insist": ("b", True)}) is None
    finally:
        stop_pid(beat)
    assert daemon.nodes()["node5"][2] == "forced-down"


def test_force_down_of_a_stale_peer(daemon):
    daemon.seed("node", "node6", "address=127.0.0.6")
    # never another heartbeat: down after [cluster] down_after (1 s)
    wait_for("node6 down", lambda: daemon.nodes()["node6"][2] == "down", timeout=10)
    with daemon.signals() as sig:
        assert daemon.call("ForceDown", "sb", "node6", True) is None
        sig.wait("NodeChanged", ["node6", "forced-down"])
    assert daemon.nodes()["node6"][2] == "forced-down"
    with daemon.signals() as sig:
        assert daemon.call("ForceDown", "sb", "node6", False) is None
        sig.wait("NodeChanged", ["node6", "up"])
    assert daemon.nodes()["node6"][2] == "down"


def test_forced_down_by_a_peer_and_taken_back_with_insist(daemon):
    # a peer's word that this node is off, written where peers write it
    daemon.seed("node", "node1", "forced-down=uid 0 on node2")
    wait_for("ForcedDownBy", lambda: daemon.prop("ForcedDownBy") == "uid 0 on node2")
    assert daemon.prop("ForcedDownSince") > 0
    marker = daemon.tmp / "run" / "node" / "forced-down"
    wait_for("the forced-down marker", marker.exists)
    name, msg = daemon.error("ForceDown", "sb", "node1", False)
    assert name == INVALID_ARGS
    assert "cannot take back its own forced-down state" in msg
    assert daemon.call("ForceDownWithOptions", "sba{sv}", "node1", False,
                       {"insist": ("b", True)}) is None
    assert daemon.prop("ForcedDownBy") == ""
    assert daemon.prop("ForcedDownSince") == 0
    assert daemon.nodes()["node1"][2] == "up"
    assert not marker.exists()
