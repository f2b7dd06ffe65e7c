"""A guest that never lets a live migration converge: a 64-byte multiboot kernel that writes
one word into every 4 KiB page between 2 MiB and END over and over, so every page of that
range is always dirty again. Built here from its machine code (no assembler needed):

    start:  mov  edi, 0x00200000
            mov  ecx, END
    loop:   mov  [edi], eax
            add  edi, 4096
            cmp  edi, ecx
            jb   loop
            inc  eax
            mov  edi, 0x00200000
            jmp  loop

Boot it with hwcluster.domain_xml(..., kernel=PATH). QEMU loads it with -kernel
(multiboot v1, the "a.out kludge": flag 16 and load addresses in the header) at 1 MiB and
enters it in 32-bit protected mode.
"""

from __future__ import annotations

import struct

LOAD = 0x00100000
MAGIC = 0x1BADB002
FLAGS = 0x00010000  # address fields valid


HEADER_LEN = 32  # the multiboot header below; the code starts after it


def multiboot_image(code: bytes) -> bytes:
    """A multiboot v1 kernel: the header (address fields valid: loaded at LOAD, entry right
    after the header) and CODE."""
    checksum = (-(MAGIC + FLAGS)) & 0xFFFFFFFF
    header = struct.pack("<8I", MAGIC, FLAGS, checksum,
                         LOAD,                       # header_addr
                         LOAD,                       # load_addr
                         0,                          # load_end_addr: the whole file
                         0,                          # bss_end_addr: none
                         LOAD + HEADER_LEN)          # entry
    return header + bytes(code)


#: Where kernel() stops writing by default (exclusive): 48 MiB, inside a 64 MiB guest.
DIRTY_END = 0x03000000


def kernel(end: int = DIRTY_END) -> bytes:
    """The image; END (exclusive) must lie inside the guest's RAM."""
    code = bytearray()
    code += b"\xBF" + struct.pack("<I", 0x00200000)  # mov edi, 2 MiB
    code += b"\xB9" + struct.pack("<I", end)         # mov ecx, END
    loop = len(code)
    code += b"\x89\x07"                               # mov [edi], eax
    code += b"\x81\xC7" + struct.pack("<I", 4096)    # add edi, 4096
    code += b"\x39\xCF"                               # cmp edi, ecx
    code += b"\x72" + struct.pack("<b", loop - (len(code) + 2))  # jb loop
    code += b"\x40"                                   # inc eax
    code += b"\xBF" + struct.pack("<I", 0x00200000)  # mov edi, 2 MiB
    code += b"\xEB" + struct.pack("<b", loop - (len(code) + 2))  # jmp loop
    return multiboot_image(code)



#: The word pattern_kernel() fills the guest's memory with (little-endian in memory).
PATTERN_WORD = 0x5A17C3E9
#: Two XOR halves of PATTERN_WORD: the kernel computes the word, so the image itself never
#: holds it (a capture that finds it saw guest memory, not the kernel file).
_PATTERN_A, _PATTERN_B = 0x0F0F1234, 0x0F0F1234 ^ PATTERN_WORD


def pattern_bytes(words: int = 16) -> bytes:
    """What a capture looks for: WORDS copies of PATTERN_WORD, as they lie in guest memory
    (and in a plaintext migration stream, which carries memory pages as they are)."""
    return struct.pack("<I", PATTERN_WORD) * words


def pattern_kernel(end: int = 0x01000000) -> bytes:
    """A multiboot kernel that fills the guest's memory from 2 MiB to END with PATTERN_WORD,
    then halts with interrupts off (the memory stays as it is):

        mov  eax, A
        xor  eax, B          ; eax = PATTERN_WORD
        mov  edi, 0x00200000
        mov  ecx, (END - 2 MiB) / 4
        cld
        rep stosd
    halt: hlt
        jmp  halt
    """
    code = bytearray()
    code += b"\xB8" + struct.pack("<I", _PATTERN_A)                 # mov eax, A
    code += b"\x35" + struct.pack("<I", _PATTERN_B)                 # xor eax, B
    code += b"\xBF" + struct.pack("<I", 0x00200000)                 # mov edi, 2 MiB
    code += b"\xB9" + struct.pack("<I", (end - 0x00200000) // 4)   # mov ecx, words
    code += b"\xFC"                                                  # cld
    code += b"\xF3\xAB"                                              # rep stosd
    code += b"\xF4"                                                  # hlt
    code += b"\xEB\xFD"                                              # jmp hlt
    image = multiboot_image(code)
    assert pattern_bytes(1) not in image
    return image
