"""Without a cluster store every Node method but CheckNode, Reload and ListMigrations is
refused with StoreUnavailable."""

import pytest

from hwdaemon import ERR, TEST_DOMAIN, TEST_UUID

CALLS = [
    ("Disable", "s", ("x",)),
    ("Enable", "", ()),
    ("ForceDown", "sb", ("node2", True)),
    ("ForceDownWithOptions", "sba{sv}", ("node2", True, {})),
    ("Fence", "ss", ("node2", "status")),
    ("EvacuateLive", "sa{sv}", ("", {})),
    ("Rebuild", "ssa{sv}", (TEST_UUID, "node2", {})),
    ("EvacuateFrom", "sa{sv}", ("node2", {})),
    ("ListDomains", "", ()),
    ("CheckMigration", "ssa{sv}", (TEST_DOMAIN, "node2", {})),
    ("Migrate", "ssa{sv}", (TEST_DOMAIN, "node2", {})),
    ("ListNodes", "", ()),
    ("ListInstances", "", ()),
    ("GetHistory", "st", ("", 0)),
    ("Archive", "b", (True,)),
]


def test_store_state_is_no_identity(no_store):
    assert no_store.prop("StoreState") == "no-identity"
    assert "init-cluster" in no_store.prop("StoreDetail")


@pytest.mark.parametrize("method,sig,args", CALLS, ids=[c[0] for c in CALLS])
def test_refused_without_a_store(no_store, method, sig, args):
    name, msg = no_store.error(method, sig, *args)
    assert name == ERR + "StoreUnavailable"
    assert "no-identity" in msg


def test_these_work_without_a_store(no_store):
    assert no_store.call("ListMigrations") == []
    assert no_store.call("CheckNode")
    assert no_store.call("Reload") is None
