"""What the operator types is checked where they look (issue 24, item 3): a misspelt key is
ignored, as before, but no longer only in the journal: the ConfigWarnings property lists it
with its file, line and the closest known key, `hostwardenctl reload` prints it, and
CheckNode (`hostwardenctl check`) reports it as config-warnings."""

import subprocess

TYPO = "[migration]\nmax_concurent = 2\n"
HINT = "unknown key 'max_concurent' in [migration], ignored; did you mean 'max_concurrent'?"


def ctl(d, *args):
    return subprocess.run([d.exe("ctl/hostwardenctl"), "--no-ask-password"] + list(args),
                          env=d.env, capture_output=True, text=True, timeout=60)


def config_findings(d):
    return [(sev, msg) for sev, code, msg in d.call("CheckNode") if code == "config-warnings"]


def test_a_misspelt_key_is_said_by_reload_check_and_the_property(daemon):
    d = daemon
    assert d.get("ConfigWarnings") == ("as", [])
    assert config_findings(d) == [("ok", "The configuration was read without warnings")]
    d.write_config(extra=TYPO)
    try:
        proc = ctl(d, "reload")
        assert proc.returncode == 0, proc.stderr  # taken: a warning is not an error
        conf = d.tmp / "conf" / "hostwarden.conf"
        line = conf.read_text().splitlines().index("max_concurent = 2") + 1
        where = f"{conf}:{line}: {HINT}"
        assert proc.stderr == f"warning: {where}\n", proc.stderr
        assert d.get("ConfigWarnings") == ("as", [where])
        assert config_findings(d) == [("warning", where)]
    finally:
        d.write_config()
        assert ctl(d, "reload").returncode == 0
    assert d.get("ConfigWarnings") == ("as", [])
    proc = ctl(d, "reload")
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_configuration_with_errors_changes_nothing_not_even_the_warnings(daemon):
    d = daemon
    d.write_config(extra=TYPO)
    try:
        assert ctl(d, "reload").returncode == 0
        before = d.get("ConfigWarnings")
        d.write_config(extra=TYPO + "bandwidth = fast\n")
        proc = ctl(d, "reload")
        assert proc.returncode == 1
        assert "bandwidth" in proc.stderr and "expected" in proc.stderr, proc.stderr
        assert d.get("ConfigWarnings") == before
    finally:
        d.write_config()
        assert ctl(d, "reload").returncode == 0
