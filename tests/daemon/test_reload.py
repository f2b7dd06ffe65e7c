"""Reload(): a broken drop-in is refused naming file and line; a good one is taken."""

from hwdaemon import ERR


def test_reload_refuses_a_broken_drop_in_and_takes_the_fixed_one(daemon):
    dropin = daemon.tmp / "conf" / "hostwarden.conf.d" / "50-test.conf"
    try:
        dropin.write_text("[migration]\n\nmax_concurrent = lots\n")
        name, msg = daemon.error("Reload")
        assert name == ERR + "ConfigInvalid"
        assert "50-test.conf:3" in msg, msg
        assert "max_concurrent" in msg
        assert daemon.prop("Address") == "127.0.0.1"

        dropin.write_text("[node]\naddress = 127.0.0.9\n")
        with daemon.signals() as sig:
            assert daemon.call("Reload") is None
            iface, changed, invalidated = sig.wait("PropertiesChanged")
        assert iface == "org.hostwarden.Warden1.Node"
        assert {"Name", "Address", "Store", "FirewallState"} <= set(changed) | set(invalidated)
        assert daemon.prop("Address") == "127.0.0.9"
    finally:
        dropin.unlink(missing_ok=True)
        daemon.call("Reload")
    assert daemon.prop("Address") == "127.0.0.1"
