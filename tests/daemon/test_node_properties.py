"""Node properties: each one's type and value on a fresh daemon."""

import subprocess
import xml.etree.ElementTree as ET

from hwdaemon import NODE

TYPES = {
    "Name": "s", "Address": "s", "Version": "s", "Store": "s", "StoreState": "s",
    "StoreDetail": "s", "FirewallState": "s", "State": "s", "DisabledReason": "s",
    "DisabledSince": "t", "ForcedDownBy": "s", "ForcedDownSince": "t", "FenceState": "s",
    "FenceTime": "t", "Recovery": "s", "ConfigWarnings": "as",
}


def test_every_property_has_its_type(daemon):
    for prop, t in TYPES.items():
        assert daemon.get(prop)[0] == t, prop
    assert {k: t for k, (t, _) in daemon.props().items()} == TYPES


def test_introspection_lists_exactly_these_properties(daemon):
    xml = daemon.call("Introspect", iface="org.freedesktop.DBus.Introspectable")
    iface = next(i for i in ET.fromstring(xml).iter("interface") if i.get("name") == NODE)
    assert {p.get("name"): p.get("type") for p in iface.iter("property")} == TYPES


def test_values_of_a_fresh_node(daemon):
    p = {k: v for k, (_, v) in daemon.props().items()}
    assert p["Name"] == "node1"
    assert p["Address"] == "127.0.0.1"
    assert p["Store"] == "dir"
    assert p["StoreState"] == "attached"
    assert str(daemon.tmp / "state") in p["StoreDetail"]
    assert p["FirewallState"] == "disabled"
    assert p["State"] == "enabled"
    assert p["DisabledReason"] == ""
    assert p["DisabledSince"] == 0
    assert p["ForcedDownBy"] == ""
    assert p["ForcedDownSince"] == 0
    assert p["FenceState"] == "unknown"
    assert p["FenceTime"] == 0
    assert p["Recovery"] == "off"  # [recovery] enable = no, the default


def test_version_is_the_executables(daemon):
    out = subprocess.run([daemon.exe("dbus/hostwardend"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert daemon.prop("Version")
    assert daemon.prop("Version") in out
