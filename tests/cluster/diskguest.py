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

kernel(ticks=N) builds a *paced* guest (the faults suite's): it first loads a GDT and an
IDT of its own (every vector -> a handler that sends EOI to both PICs and returns), remaps
the PICs with only IRQ0 (the PIT, set to TIMER_HZ) and IRQ14 (the IDE disk) unmasked, and
turns interrupts on; it waits for its disk with `hlt` between two status reads (woken by
the disk's IRQ, or the next tick) and sleeps N ticks after each write.  The unpaced guest
polls the status port all the time, and TCG spends a host core on that; the paced one
writes about TIMER_HZ / N times a second at 1-2 % of a core (measured on the host with
an I/O-throttled disk: unpaced with ticks=5 but polling, 8.5 %; paced, 1.9 %).

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


#: The rate of the timer a paced kernel (kernel(ticks=...)) sleeps on.
TIMER_HZ = 100
_PIT_HZ = 1193182
#: Where a paced kernel builds its interrupt table (256 gates, 2 KiB; the stack is above).
_IDT = 0x00080000


def kernel(ticks: int = 0) -> bytes:
    """The image (a multiboot v1 kernel of 176 bytes).  TICKS > 0: a paced guest (about
    400 bytes) that waits for its disk with hlt and sleeps TICKS periods of a TIMER_HZ
    timer after each write, so it writes at most TIMER_HZ / TICKS times a second and
    leaves the host's CPU idle in between (the unpaced guest polls its disk's status port
    all the time: TCG spends a whole host core on it)."""
    if not 0 <= ticks < 1 << 31:
        raise ValueError(f"ticks must be between 0 and 2^31, got {ticks}")
    code = bytearray()
    calls: list[tuple[int, str]] = []   # (offset of a call, its target's label)
    absolute: list[tuple[int, str]] = []  # (offset of an imm32/disp32, its label's address)
    labels: dict[str, int] = {}

    def call(label: str) -> None:
        calls.append((len(code), label))
        code.extend(b"\xE8\0\0\0\0")

    def address_of(label: str) -> None:
        absolute.append((len(code), label))
        code.extend(b"\0\0\0\0")

    code += b"\xBC" + struct.pack("<I", 0x00090000)     # mov esp, 576 KiB (multiboot sets none)
    if ticks:
        _timer_setup(code, address_of, labels)
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
    if ticks:
        code += b"\xB9" + struct.pack("<I", ticks)      # mov ecx, TICKS
        sleep = len(code)
        code += b"\xF4"                                 # hlt: until the next tick
        _rel8(code, sleep, b"\xE2")                     # loop sleep
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
    if ticks:
        code += b"\x75\x03\xF4"                           # jnz ret; hlt: until an IRQ
        _rel8(code, labels["wait_drq"], b"\xEB")          # jmp wait_drq
    else:
        _rel8(code, labels["wait_drq"], b"\x74")          # jz wait_drq
    code += b"\xC3"                                       # ret
    labels["wait_idle"] = len(code)
    code += b"\x66\xBA" + struct.pack("<H", 0x1F7)        # mov dx, 0x1F7
    busy = len(code)
    code += b"\xEC\xA8\x80"                               # in al, dx; test al, 0x80
    if ticks:
        code += b"\x74\x03\xF4"                           # jz ret; hlt: until an IRQ
        _rel8(code, busy, b"\xEB")                        # jmp busy
    else:
        _rel8(code, busy, b"\x75")                        # jnz busy
    code += b"\xC3"                                       # ret
    if ticks:
        _timer_data(code, labels)
    for site, label in calls:
        code[site + 1:site + 5] = struct.pack("<i", labels[label] - (site + 5))
    base = dirtyguest.LOAD + dirtyguest.HEADER_LEN
    for site, label in absolute:
        code[site:site + 4] = struct.pack("<I", base + labels[label])
    return dirtyguest.multiboot_image(code)


def _timer_setup(code: bytearray, address_of, labels: dict[str, int]) -> None:
    """A paced kernel's start: its own GDT (multiboot's may be gone: an interrupt loads CS
    from it), an IDT whose 256 gates all lead to "irq" (EOI, iret), the PICs remapped
    (IRQ0 at vector 0x20) with only IRQ0, IRQ2 (the slave) and IRQ14 (the IDE disk: it
    wakes the waits for the disk) unmasked, the PIT at TIMER_HZ, interrupts on.
    "irq" touches no register but EAX (saved), so the disk loop may be interrupted anywhere."""
    code += b"\x0F\x01\x15"                          # lgdt [gdtr]
    address_of("gdtr")
    code += b"\xEA"                                    # jmp 0x08:reload
    address_of("reload")
    code += struct.pack("<H", 0x08)
    labels["reload"] = len(code)
    code += b"\x66\xB8\x10\x00"                       # mov ax, 0x10
    code += b"\x8E\xD8\x8E\xC0\x8E\xD0"               # mov ds, ax; mov es, ax; mov ss, ax
    code += b"\xBF" + struct.pack("<I", _IDT)          # mov edi, IDT
    code += b"\xB9" + struct.pack("<I", 256)           # mov ecx, 256
    fill = len(code)
    code += b"\xB8"                                    # mov eax, irq
    address_of("irq")
    code += b"\x66\x89\x07"                            # mov [edi], ax       offset 15:0
    code += b"\x66\xC7\x47\x02\x08\x00"                # mov word [edi+2], 0x08   selector
    code += b"\x66\xC7\x47\x04\x00\x8E"                # mov word [edi+4], 0x8E00 interrupt gate
    code += b"\xC1\xE8\x10"                            # shr eax, 16
    code += b"\x66\x89\x47\x06"                        # mov [edi+6], ax     offset 31:16
    code += b"\x83\xC7\x08"                            # add edi, 8
    _rel8(code, fill, b"\xE2")                         # loop fill
    code += b"\x0F\x01\x1D"                            # lidt [idtr]
    address_of("idtr")
    for port, value in ((0x20, 0x11), (0xA0, 0x11),     # ICW1: init, ICW4 follows
                        (0x21, 0x20), (0xA1, 0x28),     # ICW2: vectors 0x20, 0x28
                        (0x21, 0x04), (0xA1, 0x02),     # ICW3: the slave on IRQ2
                        (0x21, 0x01), (0xA1, 0x01),     # ICW4: 8086 mode
                        (0x21, 0xFA), (0xA1, 0xBF)):    # masks: IRQ0, 2 (the slave), 14
        code += _out(port, value)
    divisor = _PIT_HZ // TIMER_HZ
    code += _out(0x43, 0x34)                            # PIT channel 0, lo/hi, rate generator
    code += _out(0x40, divisor & 0xFF)
    code += _out(0x40, divisor >> 8)
    code += b"\xFB"                                    # sti


def _timer_data(code: bytearray, labels: dict[str, int]) -> None:
    """The interrupt handler and the descriptor tables _timer_setup() loads."""
    labels["irq"] = len(code)
    code += b"\x50\xB0\x20\xE6\xA0\xE6\x20"            # push eax; EOI to both PICs
    code += b"\x58\xCF"                                  # pop eax; iret
    while len(code) % 8:
        code += b"\x00"
    labels["gdt"] = len(code)
    code += struct.pack("<3Q", 0,
                        0x00CF9A000000FFFF,             # 0x08: code, flat, 32-bit
                        0x00CF92000000FFFF)             # 0x10: data, flat
    base = dirtyguest.LOAD + dirtyguest.HEADER_LEN
    labels["gdtr"] = len(code)
    code += struct.pack("<HI", 3 * 8 - 1, base + labels["gdt"])
    labels["idtr"] = len(code)
    code += struct.pack("<HI", 256 * 8 - 1, _IDT)


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
