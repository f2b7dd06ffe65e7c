"""A guest that keeps writing to its disk: a tiny multiboot kernel (no OS, no BIOS boot)
that writes a counter to sector 0 of the first IDE disk, flushes, increments, and starts
again, for ever. Built here from its machine code, like dirtyguest.py:

    start:  mov  esp, 0x90000           ; a stack (multiboot leaves ESP undefined)
            call select_sector0
            mov  al, 0x20 / out         ; READ SECTORS (PIO)
            call wait_drq
            mov  dx, 0x1F0 / in eax, dx / mov ebx, eax    ; the counter on the disk
            mov  ecx, 127
    skip:   in   eax, dx / loop skip    ; the rest of the sector
    loop:   inc  ebx
            call select_sector0
            mov  al, 0x30 / out         ; WRITE SECTORS (PIO)
            call wait_drq
            mov  dx, 0x1F0 / ecx, 128 / eax, ebx
    data:   out  dx, eax / loop data    ; 128 dwords = 512 bytes of the counter
            call wait_idle
            mov  dx, 0x1F7 / al, 0xE7 / out   ; FLUSH CACHE: QEMU writes its qcow2 metadata
            call wait_idle
            jmp  loop
    select_sector0:                     ; returns with dx = 0x1F7, for the command
            call wait_idle
            mov  dx, 0x1F6 / al, 0xE0 / out   ; master, LBA mode, LBA[27:24] = 0
            mov  dx, 0x1F2 / al, 1    / out   ; one sector
            mov  dx, 0x1F3 / al, 0    / out   ; LBA[7:0]   = 0
            mov  dx, 0x1F4 / al, 0    / out   ; LBA[15:8]  = 0
            mov  dx, 0x1F5 / al, 0    / out   ; LBA[23:16] = 0
            mov  dx, 0x1F7
            ret
    wait_drq:                           ; the drive has or wants the data
            in   al, dx / test al, 0x08 / jz wait_drq
            ret
    wait_idle:
            mov  dx, 0x1F7
    busy:   in   al, dx / test al, 0x80 / jnz busy
            ret

So sector 0 of the disk always holds 128 copies of one 32-bit counter that only grows
while the guest runs, and goes on from the value on the disk when the guest boots again
(a restart, or a rebuild on another node after a power loss): on a disk nothing else
writes, it never goes backwards.  A fresh disk (zeros) starts at 1.  Read it from the host
with `counter_command()` (qemu-io with --force-share while QEMU has the image open).

Boot it with hwcluster.domain_xml(..., kernel=PATH, devices=disk_xml(...)): QEMU loads
it with -kernel (multiboot v1, the "a.out kludge") at 1 MiB in 32-bit protected mode with
interrupts off; the "pc" machine's IDE controller sits at the legacy ports 0x1F0-0x1F7.
"""

from __future__ import annotations

import re
import struct

import dirtyguest


def _out(port: int, value: int) -> bytes:
    """mov dx, PORT; mov al, VALUE; out dx, al"""
    return b"\x66\xBA" + struct.pack("<H", port) + b"\xB0" + bytes([value]) + b"\xEE"


def _rel8(code: bytearray, target: int, opcode: bytes) -> None:
    """Append a short jump/loop OPCODE to TARGET (an offset into CODE)."""
    disp = target - (len(code) + len(opcode) + 1)
    if not -128 <= disp <= 127:
        raise AssertionError("short jump out of range")
    code += opcode + struct.pack("<b", disp)


def kernel() -> bytes:
    """The image (a multiboot v1 kernel of about 190 bytes)."""
    code = bytearray()
    calls: list[tuple[int, str]] = []   # (offset of a call, its target's label)
    labels: dict[str, int] = {}

    def call(label: str) -> None:
        calls.append((len(code), label))
        code.extend(b"\xE8\0\0\0\0")

    code += b"\xBC" + struct.pack("<I", 0x00090000)     # mov esp, 576 KiB (multiboot sets none)
    call("select_sector0")
    code += b"\xB0\x20\xEE"                               # mov al, 0x20; out dx, al
    call("wait_drq")
    code += b"\x66\xBA" + struct.pack("<H", 0x1F0)        # mov dx, 0x1F0
    code += b"\xED\x89\xC3"                               # in eax, dx; mov ebx, eax
    code += b"\xB9" + struct.pack("<I", 127)              # mov ecx, 127
    skip = len(code)
    code += b"\xED"                                       # in eax, dx
    _rel8(code, skip, b"\xE2")                            # loop skip
    loop = len(code)
    code += b"\x43"                                       # inc ebx
    call("select_sector0")
    code += b"\xB0\x30\xEE"                               # mov al, 0x30; out dx, al
    call("wait_drq")
    code += b"\x66\xBA" + struct.pack("<H", 0x1F0)        # mov dx, 0x1F0
    code += b"\xB9" + struct.pack("<I", 128)              # mov ecx, 128
    code += b"\x89\xD8"                                   # mov eax, ebx
    data = len(code)
    code += b"\xEF"                                       # out dx, eax
    _rel8(code, data, b"\xE2")                            # loop data
    call("wait_idle")
    code += _out(0x1F7, 0xE7)
    call("wait_idle")
    code += b"\xE9" + struct.pack("<i", loop - (len(code) + 5))  # jmp loop
    labels["select_sector0"] = len(code)
    call("wait_idle")
    code += _out(0x1F6, 0xE0)
    code += _out(0x1F2, 1)
    code += _out(0x1F3, 0)
    code += _out(0x1F4, 0)
    code += _out(0x1F5, 0)
    code += b"\x66\xBA" + struct.pack("<H", 0x1F7)        # mov dx, 0x1F7
    code += b"\xC3"                                       # ret
    labels["wait_drq"] = len(code)
    code += b"\xEC\xA8\x08"                               # in al, dx; test al, 8
    _rel8(code, labels["wait_drq"], b"\x74")              # jz wait_drq
    code += b"\xC3"                                       # ret
    labels["wait_idle"] = len(code)
    code += b"\x66\xBA" + struct.pack("<H", 0x1F7)        # mov dx, 0x1F7
    busy = len(code)
    code += b"\xEC\xA8\x80"                               # in al, dx; test al, 0x80
    _rel8(code, busy, b"\x75")                            # jnz busy
    code += b"\xC3"                                       # ret
    for site, label in calls:
        code[site + 1:site + 5] = struct.pack("<i", labels[label] - (site + 5))
    return dirtyguest.multiboot_image(code)


def disk_xml(path: str, fmt: str = "qcow2", cache: str = "none") -> str:
    """The <disk> the kernel writes to: the first IDE disk (hda), CACHE as Nova sets it
    on shared storage (none: O_DIRECT, and the mode libvirt requires to migrate a
    writable disk on a shared file system that is not a cluster file system)."""
    return (f"<disk type='file' device='disk'>"
            f"<driver name='qemu' type='{fmt}' cache='{cache}'/>"
            f"<source file='{path}'/><target dev='hda' bus='ide'/></disk>")


def counter_command(path: str, fmt: str = "qcow2") -> list[str]:
    """A command that prints sector 0 of the image at PATH (parse with parse_counter()),
    also while a QEMU has it open (--force-share: a read-only look)."""
    return ["qemu-io", "--force-share", "-r", "-f", fmt, "-c", "read -v 0 512", path]


def parse_counter(qemu_io_output: str) -> int | None:
    """The counter in sector 0 from counter_command()'s output, or None when the 128
    copies differ (a read that raced a write: read again)."""
    data = bytearray()
    for line in qemu_io_output.splitlines():
        m = re.match(r"^[0-9a-f]{8}:\s+((?:[0-9a-f]{2}\s+){1,16})", line)
        if m:
            data += bytes(int(b, 16) for b in m[1].split())
    if len(data) != 512:
        raise ValueError("no 512-byte dump in qemu-io output:\n" + qemu_io_output)
    values = set(struct.unpack("<128I", bytes(data)))
    return values.pop() if len(values) == 1 else None
