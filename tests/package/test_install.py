"""The .deb on a fresh simulated compute node (issue 8): built from this tree with
packaging/build-deb, installed with `apt-get install ./hostwarden_*.deb` into a node where
the source and build trees are hidden, then: group and services there, the hook active once
libvirtd restarts (CheckNode says so before and after), `hostwardenctl status` answers, a
guest whose VNC console listens on its source's address migrates in and listens on this
node's; `apt-get purge` removes every file of the package but the operator's drop-in and
the shared state."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HW_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cluster"))
import hwcluster  # noqa: E402

sys.path.insert(0, HERE)
from cockpit_files import PAGE_DIR, page_files  # noqa: E402

DROPIN = "/etc/hostwarden/hostwarden.conf.d/50-site.conf"
SITE = """[node]
address = 10.77.0.12
[console]
listen = node
[firewall]
migration_sources = 10.77.0.11
[peer node1]
address = 10.77.0.11
"""
GUEST = "instance-0000000a"


@pytest.fixture(scope="module")
def deb():
    out = tempfile.mkdtemp(prefix="hw-deb-out-", dir="/var/tmp")
    try:
        proc = subprocess.run([os.path.join(SOURCE_DIR, "packaging", "build-deb"), out],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        debs = glob.glob(os.path.join(out, "hostwarden_*_amd64.deb"))
        assert len(debs) == 1, os.listdir(out)
        yield debs[0]
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def nodes():
    with hwcluster.Cluster(2) as cluster:  # nothing of hostwarden installed
        yield cluster
    assert cluster.leftovers() == []


def run(node, cmd, check=True, timeout=300):
    return node.run(cmd, check=check, timeout=timeout,
                    env={"DEBIAN_FRONTEND": "noninteractive"})


def test_the_deb_makes_a_node_ready_and_purge_leaves_only_the_operators_files(deb, nodes):
    node1, node2 = nodes.nodes
    # No build tree on the node: the package is all there is.
    # (a tree under /tmp is not there anyway: the node has its own /tmp)
    run(node2, f"if [ -d '{SOURCE_DIR}' ]; then mount -t tmpfs -o mode=0755 tmpfs "
               f"'{SOURCE_DIR}'; fi")
    assert run(node2, f"ls -A '{SOURCE_DIR}' 2>/dev/null || true").stdout == ""
    assert run(node2, ["test", "-e", "/usr/libexec/hostwarden/hostwarden-hook"],
               check=False).returncode != 0
    # The machine's root (the node's lower layer) may carry a container's policy-rc.d that
    # forbids maintainer scripts to start services; a compute node has none.
    run(node2, ["rm", "-f", "/usr/sbin/policy-rc.d"])
    with open(deb, "rb") as f:
        node2.write_file("/root/" + os.path.basename(deb), f.read())

    proc = run(node2, f"cd /root && apt-get install -y --no-install-recommends "
                      f"./{os.path.basename(deb)}")
    # libvirtd was not restarted (the operator did not ask): the package says what to do.
    assert "restart libvirtd for its hook to take effect" in proc.stdout + proc.stderr, \
        proc.stdout + proc.stderr
    assert run(node2, ["getent", "group", "hostwarden"]).stdout.startswith("hostwarden:")
    assert node2.unit_active("hostwardend.service"), node2.journal("-u", "hostwardend")
    assert node2.unit_active("hostwarden-firewall.service"), \
        node2.journal("-u", "hostwarden-firewall")
    # the archive pass twice a day (docs/history-and-archiving.md): its timer enabled and waiting
    assert node2.unit_active("hostwarden-archive.timer"), node2.journal("-u", "hostwarden-archive")
    assert run(node2, ["systemctl", "is-enabled", "hostwarden-archive.timer"]
               ).stdout.strip() == "enabled"
    # the package's files and links (its directories, and /lib -> usr/lib, are not its own)
    files = run(node2, 'for p in $(dpkg -L hostwarden); do [ -d "$p" ] || echo "$p"; done'
                ).stdout.split()
    assert "/usr/libexec/hostwarden/hostwarden-hook" in files
    assert "/usr/share/man/man1/hostwardenctl.1.gz" in files
    # the configuration may hold fence_options (BMC passwords): not readable by others
    assert run(node2, ["stat", "-c", "%a %U:%G", "/etc/hostwarden/hostwarden.conf"]
               ).stdout.strip() == "640 root:root"

    # The hook is installed but libvirtd started before it: CheckNode says so.
    check = run(node2, ["hostwardenctl", "check"], check=False)
    assert check.returncode != 0 and "hook-active" in check.stdout, check.stdout
    node2.write_file(DROPIN, SITE)
    run(node2, ["hostwardenctl", "reload"])
    node2.restart_libvirtd()
    check = run(node2, ["hostwardenctl", "--json", "check"], check=False).stdout
    assert '"hook-active"' in check and "is active in the running" in check, check

    status = run(node2, ["hostwardenctl", "status"]).stdout
    assert "Node: node2" in status and "10.77.0.12" in status, status
    # No store yet: hostwardend made none, and says what to do. The operator makes the
    # cluster (once, here: the only node with hostwarden).
    assert "no-identity" in status and "init-cluster" in status, status
    run(node2, ["hostwardenctl", "init-cluster", "--name", "pkgtest"])
    deadline = time.monotonic() + 30
    while "Store: dir, attached" not in run(node2, ["hostwardenctl", "status"]).stdout:
        assert time.monotonic() < deadline, run(node2, ["hostwardenctl", "status"]).stdout
        time.sleep(0.2)

    # A guest whose console listens on node1's address migrates in; node2's hook moves it.
    hwcluster.define_and_start(node1, hwcluster.domain_xml(
        GUEST, graphics=f"<graphics type='vnc' listen='{node1.address}'/>"))
    proc = hwcluster.migrate(node1, node2, GUEST, "--persistent", "--undefinesource")
    assert proc.returncode == 0, proc.stderr
    assert node2.virsh("domstate", GUEST).stdout.strip() == "running"
    graphics = ET.fromstring(node2.virsh("dumpxml", GUEST).stdout).find("./devices/graphics")
    assert graphics.get("listen") == node2.address, ET.tostring(graphics)
    # The journal explains the hook's message from the installed catalog (journalctl -x).
    explained = run(node2, ["journalctl", "-x", "--no-pager", "-q",
                            "MESSAGE_ID=1ce2263c1a85430d8ed8a955ae89cb8f"]).stdout
    assert GUEST in explained and "Subject: hostwarden rewrote a guest's console" in explained, \
        explained

    # Tab completion: commands, then domain and node names from hostwardend.
    def complete(line):
        script = ("source /usr/share/bash-completion/bash_completion; "
                  "source /usr/share/bash-completion/completions/hostwardenctl; "
                  f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; "
                  "read -ra COMP_WORDS <<< \"$COMP_LINE\"; "
                  "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=(''); "
                  "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _hostwardenctl; "
                  "printf '%s\\n' \"${COMPREPLY[@]}\"")
        return run(node2, ["bash", "-c", script]).stdout.split()
    assert complete("hostwardenctl ev") == ["evacuate"]
    assert complete("hostwardenctl migrate ") == [GUEST]
    assert complete("hostwardenctl fence ") == ["node2"]
    assert complete("hostwardenctl fence node2 o") == ["off", "on"]
    assert complete("hostwardenctl hist") == ["history"]
    assert complete("hostwardenctl archive --dr") == ["--dry-run"]
    assert complete("hostwardenctl ov") == ["overview"]
    assert complete("hostwardenctl migrations --wat") == ["--watch"]
    # rebuild takes an instance of the store (reconciliation records the guest here)
    uuid = node2.virsh("domuuid", GUEST).stdout.strip()
    for _ in range(20):
        if complete("hostwardenctl rebuild ") == [uuid]:
            break
        time.sleep(0.5)
    assert complete("hostwardenctl rebuild ") == [uuid]

    # Purge: every file of the package goes; the operator's drop-in, the shared state and
    # the guest stay.
    run(node2, ["apt-get", "purge", "-y", "hostwarden"])
    left = [p for p in files
            if run(node2, f"test -e '{p}' || test -L '{p}'", check=False).returncode == 0]
    assert left == [], left
    assert run(node2, ["test", "-f", DROPIN], check=False).returncode == 0
    assert run(node2, ["test", "-d", f"{hwcluster.INSTANCES_PATH}/.hostwarden"],
               check=False).returncode == 0
    assert run(node2, ["test", "-e", "/run/hostwarden"], check=False).returncode != 0
    assert not node2.unit_active("hostwardend.service")
    assert node2.virsh("domstate", GUEST).stdout.strip() == "running"
    node2.virsh("destroy", GUEST, check=False)
    node2.virsh("undefine", GUEST, check=False)


def deb_fields(path: str, *fields: str) -> dict[str, str]:
    out = subprocess.run(["dpkg-deb", "-f", path, *fields], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def deb_files(path: str) -> set[str]:
    out = subprocess.run(["dpkg-deb", "-c", path], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1].lstrip(".").rstrip("/") for line in out.splitlines()}


def test_the_cockpit_page_is_a_package_of_its_own_with_every_file_it_loads(deb):
    """cockpit-hostwarden (docs/cockpit.md): Architecture all, depending on Debian 12's
    cockpit-bridge and on hostwarden; every file index.html reaches is in it, and hostwarden's
    own package has no Cockpit file."""
    pages = glob.glob(os.path.join(os.path.dirname(deb), "cockpit-hostwarden_*_all.deb"))
    assert len(pages) == 1, os.listdir(os.path.dirname(deb))
    fields = deb_fields(pages[0], "Architecture", "Depends")
    assert fields["Architecture"] == "all", fields
    assert "cockpit-bridge (>= 287)" in fields["Depends"], fields
    assert re.search(r"\bhostwarden \(>= [^)]+\)", fields["Depends"]), fields
    shipped = deb_files(pages[0])
    missing = [f for f in sorted(page_files(SOURCE_DIR)) if f"{PAGE_DIR}/{f}" not in shipped]
    assert missing == [], (missing, sorted(shipped))
    assert not [p for p in deb_files(deb) if p.startswith("/usr/share/cockpit")]
