"""Node properties: each one's type and value on a fresh daemon."""

import subprocess

from hwdaemon import NODE, NODE_PATH, BUS_NAME

TYPES = {
    "Name": "s", "Address": "s", "Version": "s", "Store": "s", "StoreState": "s",
    "StoreDetail": "s", "FirewallState": "s", "State": "s", "DisabledReason": "s",
    "DisabledSince": "t", "ForcedDownBy": "s", "ForcedDownSince": "t", "FenceState": "s",
    "FenceTime": "t",
}


def test_every_property_has_its_type(daemon):
    for prop, t in TYPES.items():
        assert daemon.get(prop)[0] == t, prop


def test_introspection_lists_exactly_these_properties(daemon):
    out = subprocess.run(["busctl", f"--address={daemon.address}", "introspect", BUS_NAME,
                          NODE_PATH, NODE], capture_output=True, text=True, check=True).stdout
    props = {line.split()[0].lstrip(".") for line in out.splitlines()
             if " property " in line}
    assert props == set(TYPES)


def test_values_of_a_fresh_node(daemon):
    assert daemon.prop("Name") == "node1"
    assert daemon.prop("Address") == "127.0.0.1"
    assert daemon.prop("Store") == "dir"
    assert daemon.prop("StoreState") == "attached"
    assert str(daemon.tmp / "state") in daemon.prop("StoreDetail")
    assert daemon.prop("FirewallState") == "disabled"
    assert daemon.prop("State") == "enabled"
    assert daemon.prop("DisabledReason") == ""
    assert daemon.prop("DisabledSince") == 0
    assert daemon.prop("ForcedDownBy") == ""
    assert daemon.prop("ForcedDownSince") == 0
    assert daemon.prop("FenceState") == "unknown"
    assert daemon.prop("FenceTime") == 0


def test_version_is_the_executables(daemon):
    out = subprocess.run([daemon.exe("dbus/hostwardend"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert daemon.prop("Version")
    assert daemon.prop("Version") in out
