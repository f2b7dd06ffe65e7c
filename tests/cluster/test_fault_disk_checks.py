"""The faults suite's per-round disk check (faults_power.read_disks, counter_problem) can
fail: on real qcow2 images (Nova's layout: an overlay of a raw image), made and read on the
host with qemu-img and qemu-io (no cluster; 1-3 s), a counter that went
backwards (an older copy of the disk put back), one that did not move, a torn read and an
image `qemu-img check` finds damaged are each reported."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile

import pytest

import faults_power


class Host:
    """read_disks() runs its one command through node.run(): here, on the host."""

    name = "host"

    def run(self, argv, timeout=120):
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=True)


def qemu_io(path: str, command: str) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, path], check=True,
                   capture_output=True)


def counter(byte: int) -> int:
    """The counter of a sector filled with BYTE (qemu-io write -P BYTE)."""
    return byte * 0x01010101


@pytest.fixture
def images():
    d = tempfile.mkdtemp(prefix="hw-diskcheck-", dir="/var/tmp")
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", f"{d}/base", "1M"],
                       check=True)
        for name in ("a", "b"):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                            f"{d}/base", f"{d}/{name}"], check=True)
        yield d
    finally:
        shutil.rmtree(d)


def judge(path: str, last: int) -> tuple[str, bool]:
    value, err = faults_power.read_disks(Host(), [path])[path]
    return faults_power.counter_problem(last, value, err)


def test_the_disk_check_finds_what_it_must(images):
    a, b = f"{images}/a", f"{images}/b"
    qemu_io(a, "write -P 5 0 512")
    shutil.copy(a, f"{a}.old")
    qemu_io(a, "write -P 7 0 512")
    assert faults_power.read_disks(Host(), [a, b]) == {a: (counter(7), ""),
                                                       b: (0, "")}
    assert judge(a, counter(5)) == ("", False)
    assert judge(a, counter(7)) == (f"the counter did not move from {counter(7)}", True)

    # the older copy put back: backwards, and no reading again mends that
    shutil.copy(f"{a}.old", a)
    assert judge(a, counter(7)) == (
        f"the counter went backwards: {counter(7)} -> {counter(5)}", False)

    # half the sector written: a torn read (read again)
    qemu_io(b, "write -P 9 0 256")
    assert judge(b, 0) == ("a torn read", True)

    # the refcount block zeroed: qemu-img check finds the clusters in use unaccounted for
    with open(a, "r+b") as f:
        header = f.read(104)
        cluster_size = 1 << struct.unpack(">I", header[20:24])[0]
        f.seek(struct.unpack(">Q", header[48:56])[0])
        block = struct.unpack(">Q", f.read(8))[0]
        f.seek(block)
        f.write(bytes(cluster_size))
    problem, again = judge(a, counter(5) - 1)
    assert problem.startswith("qemu-img check (rc 2)") and "ERROR" in problem, problem
    assert again
