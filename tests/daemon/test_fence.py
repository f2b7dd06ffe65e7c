"""Fence(s node, s action) with the stand-in agent (tests/daemon/fence-standin)."""

from hwdaemon import ERR, INVALID_ARGS, wait_for


def test_fence_argument_errors(daemon):
    name, msg = daemon.error("Fence", "ss", "bad name!", "off")
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("Fence", "ss", "node2", "reboot")
    assert name == INVALID_ARGS, msg
    assert "reboot" in msg
    name, msg = daemon.error("Fence", "ss", "node1", "off")
    assert name == INVALID_ARGS, msg


def test_fence_unknown_peer_or_no_agent(daemon):
    name, msg = daemon.error("Fence", "ss", "node9", "status")
    assert name == ERR + "NoSuchNode", msg
    name, msg = daemon.error("Fence", "ss", "node3", "status")
    assert name == ERR + "NoSuchNode", msg
    assert "fence_agent" in msg


def test_fence_off_records_the_result(daemon):
    daemon.seed("node", "node2", "address=127.0.0.2")
    assert daemon.call("Fence", "ss", "node2", "off") == "off"
    row = wait_for("node2 fenced off in ListNodes",
                   lambda: (lambda r: r if r[3] == "off" else None)(daemon.nodes()["node2"]))
    assert row[3] == "off"


def test_fence_status_answers(daemon):
    daemon.seed("node", "node2", "address=127.0.0.2")
    assert daemon.call("Fence", "ss", "node2", "status") == "off"


def test_fence_agent_failure(daemon):
    daemon.seed("node", "node4", "address=127.0.0.4")
    name, msg = daemon.error("Fence", "ss", "node4", "off")
    assert name == ERR + "FenceFailed", msg
    assert "node4" in msg
