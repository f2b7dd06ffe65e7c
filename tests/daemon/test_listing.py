"""ListDomains, ListNodes, ListInstances, ListMigrations: shapes and contents."""

from hwdaemon import TEST_DOMAIN, TEST_UUID, wait_for


def test_list_domains_shows_the_test_domain_owned_here(daemon):
    rows = daemon.call("ListDomains")
    assert [TEST_UUID, TEST_DOMAIN, "running", "node1"] in rows
    assert all(len(r) == 4 and all(isinstance(x, str) for x in r) for r in rows)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)


def test_list_nodes(daemon):
    daemon.seed("node", "node2", "address=127.0.0.2")
    daemon.seed("node", "node3", "address=127.0.0.3", "disabled=maintenance window")
    nodes = wait_for("node2 and node3 down", lambda: (
        lambda n: n if n["node2"][2] == "down" and n["node3"][2] in ("down", "disabled")
        else None)(daemon.nodes()))
    me = nodes["node1"]
    assert me[1:4] == ["127.0.0.1", "up", "unknown"]
    assert me[4].startswith("heartbeat ")
    assert isinstance(me[5], int) and me[5] > 0
    assert nodes["node2"][1] == "127.0.0.2"
    assert "disabled: maintenance window;" in nodes["node3"][4]
    assert list(nodes) == sorted(nodes)


def test_list_instances_hides_tombstones(daemon):
    live = "11111111-1111-4111-8111-111111111111"
    gone = "22222222-2222-4222-8222-222222222222"
    daemon.seed("instance", live, "guest-a", "node2", "evacuated-from=node3")
    daemon.seed("instance", gone, "guest-b", "node2", "deleted")
    inst = wait_for("the seeded record", lambda: (
        lambda i: i if live in i else None)(daemon.instances()))
    assert inst[live][1:4] == ["guest-a", "node2", "node3"]
    assert isinstance(inst[live][4], int) and inst[live][4] > 0
    assert gone not in inst
    assert inst[TEST_UUID][1:4] == [TEST_DOMAIN, "node1", ""]


def test_list_migrations_is_empty_at_start(daemon):
    assert daemon.call("ListMigrations") == []
