"""packaging/rpm/hostwarden.spec (issue 8): `rpmbuild -bb` succeeds here (Debian's rpm,
--nodeps) through packaging/build-rpm; the package carries every file the .deb does, the
systemd scriptlets, the group, and the configuration as %config(noreplace)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile

SOURCE_DIR = os.environ.get(
    "HW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cockpit_files import PAGE_DIR, page_files  # noqa: E402


def rpmq(rpm: str, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, rpm], capture_output=True, text=True,
                          check=True).stdout


def test_rpmbuild_builds_the_spec_with_scriptlets_and_noreplace_config():
    out = tempfile.mkdtemp(prefix="hw-rpm-out-", dir="/var/tmp")
    try:
        proc = subprocess.run([os.path.join(SOURCE_DIR, "packaging", "build-rpm"), out],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        rpms = glob.glob(os.path.join(out, "hostwarden-*.x86_64.rpm"))
        assert len(rpms) == 1, os.listdir(out)
        rpm = rpms[0]

        files = set(rpmq(rpm, "-l").split())
        for path in ("/usr/libexec/hostwarden/hostwarden-hook",
                     "/usr/libexec/hostwarden/hostwardend",
                     "/usr/libexec/hostwarden/hostwarden-firewall",
                     "/usr/bin/hostwardenctl",
                     "/etc/libvirt/hooks/qemu.d/50-hostwarden",
                     "/usr/lib/systemd/system/hostwardend.service",
                     "/usr/lib/systemd/system/hostwarden-firewall.service",
                     "/usr/lib/systemd/system/hostwarden-archive.service",
                     "/usr/lib/systemd/system/hostwarden-archive.timer",
                     "/usr/lib/sysusers.d/hostwarden.conf",
                     "/usr/share/dbus-1/system.d/org.hostwarden.Warden1.conf",
                     "/usr/share/polkit-1/actions/org.hostwarden.policy",
                     "/usr/lib/systemd/catalog/hostwarden.catalog"):
            assert path in files, (path, sorted(files))
        assert any(p.startswith("/usr/share/man/man1/hostwardenctl.1") for p in files)

        flags = dict(line.split(" ", 1)[::-1] for line in rpmq(
            rpm, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]").splitlines())
        assert flags["/etc/hostwarden/hostwarden.conf"] == "cn", flags  # config(noreplace)
        modes = dict(line.rsplit(" ", 1)[::-1] for line in rpmq(
            rpm, "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]"
        ).splitlines())
        # it may hold fence_options (BMC passwords): not readable by others
        assert modes["/etc/hostwarden/hostwarden.conf"] == "-rw-r----- root:root", modes

        scripts = rpmq(rpm, "--scripts")
        assert "groupadd -r hostwarden" in scripts
        assert "preset hostwardend.service hostwarden-firewall.service" in scripts, scripts
        assert "disable --now hostwardend.service" in scripts, scripts
        assert "try-restart hostwardend.service" in scripts, scripts
        assert "preset hostwarden-archive.timer" in scripts, scripts

        # the Cockpit page: a noarch subpackage with every file it loads, none in hostwarden
        pages = glob.glob(os.path.join(out, "cockpit-hostwarden-*.noarch.rpm"))
        assert len(pages) == 1, os.listdir(out)
        shipped = set(rpmq(pages[0], "-l").split())
        missing = [f for f in sorted(page_files(SOURCE_DIR)) if f"{PAGE_DIR}/{f}" not in shipped]
        assert missing == [], (missing, sorted(shipped))
        requires = rpmq(pages[0], "--requires")
        assert "cockpit-bridge >= 287" in requires and "hostwarden >= " in requires, requires
        assert not [p for p in files if p.startswith("/usr/share/cockpit")]
    finally:
        shutil.rmtree(out, ignore_errors=True)
