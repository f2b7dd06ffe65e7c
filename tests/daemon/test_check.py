"""CheckNode and CheckMigration: argument checks, errors, the a(sss) shape."""

from hwdaemon import ERR, INVALID_ARGS, TEST_DOMAIN

SEVERITIES = {"ok", "warning", "error"}
NODE_CODES = {"store", "secret-file-mode", "libvirt-listen", "libvirt-certificate",
              "migration-tls", "disk-leases", "firewall", "console-exposure",
              "instances-path", "instances-writable", "peer-resolvable", "migration-ports"}


def check_shape(rows):
    assert rows, "no findings"
    for r in rows:
        assert len(r) == 3 and all(isinstance(x, str) for x in r), r
        assert r[0] in SEVERITIES, r
        assert r[2], r


def test_check_node_findings(daemon):
    rows = daemon.call("CheckNode")
    check_shape(rows)
    codes = {r[1] for r in rows}
    assert NODE_CODES <= codes, NODE_CODES - codes
    assert codes & {"hook-installed", "hook-active"}


def test_check_node_works_without_a_store(no_store):
    rows = no_store.call("CheckNode")
    check_shape(rows)
    assert NODE_CODES <= {r[1] for r in rows}


def test_check_migration_argument_errors(daemon):
    name, msg = daemon.error("CheckMigration", "ssa{sv}", "", "node2", {})
    assert name == INVALID_ARGS, msg
    name, msg = daemon.error("CheckMigration", "ssa{sv}", TEST_DOMAIN, "", {})
    assert name == INVALID_ARGS, msg


def test_check_migration_unknown_destination(daemon):
    name, msg = daemon.error("CheckMigration", "ssa{sv}", TEST_DOMAIN, "node9", {})
    assert name == ERR + "NoSuchNode"
    assert "node9" in msg


def test_check_migration_unknown_domain(daemon):
    name, msg = daemon.error("CheckMigration", "ssa{sv}", "no-such-guest", "node2", {})
    assert name == ERR + "NoSuchDomain"
    assert "no-such-guest" in msg


def test_check_migration_findings(daemon):
    rows = daemon.call("CheckMigration", "ssa{sv}", TEST_DOMAIN, "node2", {})
    check_shape(rows)
