"""What crosses the test network: tcpdump in a node's network namespace, and a reading of
its capture (a pcap of Ethernet frames) as TCP streams.

Used to show that migration streams are encrypted: a TLS stream starts with a handshake
record and carries none of the guest's memory as it is; a plaintext one carries the memory
pages byte for byte.  Only the standard library; tcpdump from Debian's package.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import hwcluster

#: How much of each frame a Capture keeps: all of it (tcpdump's maximum).
SNAPLEN = 262144


class Capture:
    """``tcpdump -i INTERFACE FILTER`` in NODE's network namespace, into PATH (a host file),
    from the `with` until its end.  Waits until tcpdump listens; stops it by its PID.
    INTERFACE: eth0 (the node's network), or ethK on an extra link (Cluster extra_links)."""

    def __init__(self, node: hwcluster.Node, bpf_filter: str, path: str | os.PathLike,
                 interface: str = "eth0"):
        self.node, self.filter, self.path = node, bpf_filter, Path(path)
        self.interface = interface
        self.process: subprocess.Popen | None = None
        self._log = self.path.with_suffix(".log")

    def __enter__(self) -> "Capture":
        with open(self._log, "wb") as log:
            # whole frames (veth passes segments of up to 64 KiB: GSO/GRO), a 64 MiB kernel
            # buffer so that tcpdump keeps up on a loaded machine (Seen.dropped says if it
            # did not); -Z root: no switch to the tcpdump user (who could not write here);
            # -n: no name lookups
            self.process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.node.netns}", "--",
                 "tcpdump", "-i", self.interface, "-s", str(SNAPLEN), "-B", "65536", "-n",
                 "-Z", "root", "-w", str(self.path), self.filter],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while b"listening on" not in self._log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise hwcluster.HarnessError(
                    f"tcpdump did not start: {self._log.read_text(errors='replace')}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def dropped(self) -> int:
        """Packets the kernel dropped because tcpdump fell behind (its closing report)."""
        import re
        m = re.search(r"(\d+) packets? dropped by kernel", self._log.read_text(errors="replace"))
        return int(m[1]) if m else -1

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Segment:
    seq: int
    wire_len: int   # its payload's length on the wire
    payload: bytes  # what the capture kept of it


def tcp_segments(path: str | os.PathLike) -> dict[tuple, list[Segment]]:
    """{(src, sport, dst, dport): segments} of every IPv4/IPv6 TCP flow in the pcap at PATH,
    in sequence order (a retransmission is there twice)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return {}
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:  # DLT_EN10MB
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    flows: dict[tuple, list[Segment]] = {}
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "4I", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ethertype = struct.unpack(">H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 6:
            ihl = (ip[0] & 0x0F) * 4
            wire = struct.unpack(">H", ip[2:4])[0] - ihl
            src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
            tcp = ip[ihl:]
        elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 6:
            wire = struct.unpack(">H", ip[4:6])[0]
            src, dst = ip[8:24].hex(), ip[24:40].hex()
            tcp = ip[40:]
        else:
            continue
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        header = (tcp[12] >> 4) * 4
        if wire - header > 0:
            flows.setdefault((src, sport, dst, dport), []).append(Segment(
                seq, wire - header, tcp[header:header + wire - header]))
    for segments in flows.values():
        first = segments[0].seq
        segments.sort(key=lambda s: (s.seq - first) & 0xFFFFFFFF)
    return flows


def stream_length(segments: list[Segment]) -> int:
    """The bytes a flow carried: from its first sequence number to the end of its last
    segment (segments that GRO merged or a retransmission repeated count once)."""
    first = segments[0].seq
    return max(((s.seq - first) & 0xFFFFFFFF) + s.wire_len for s in segments)


@dataclass
class Flow:
    """One direction of one TCP connection, as a capture saw it."""
    src: str
    sport: int
    dst: str
    dport: int
    bytes: int
    start: bytes          # the first bytes of its first segment
    pattern_hits: int

    @property
    def tls_hello(self) -> bool:
        """It starts with a TLS handshake record (ClientHello or ServerHello)."""
        return len(self.start) >= 6 and self.start[0] == 0x16 and self.start[1] == 0x03

    def has_port(self, *ports: int) -> bool:
        return self.sport in ports or self.dport in ports


@dataclass
class Seen:
    """What a capture saw: payload bytes on the wire, flows, TLS handshakes, hits of a
    pattern in what the capture kept, packets the kernel dropped."""
    bytes: int = 0
    flows: int = 0
    client_hellos: int = 0   # flows that start with a TLS handshake record: ClientHello
    server_hellos: int = 0   # ... ServerHello
    pattern_hits: int = 0
    dropped: int = 0
    notes: list[str] = field(default_factory=list)
    per_flow: list[Flow] = field(default_factory=list)

    @property
    def tls_handshake(self) -> bool:
        return self.client_hellos > 0 and self.server_hellos > 0


def inspect(capture: Capture, pattern: bytes) -> Seen:
    """What CAPTURE (stopped) saw, PATTERN counted in every segment it kept."""
    seen = Seen(dropped=capture.dropped())
    for (src, sport, dst, dport), segments in tcp_segments(capture.path).items():
        seen.flows += 1
        seen.bytes += stream_length(segments)
        first = segments[0].payload
        # a TLS record: content type 22 (handshake), version 3.x, then the message type
        if len(first) >= 6 and first[0] == 0x16 and first[1] == 0x03:
            if first[5] == 0x01:
                seen.client_hellos += 1
            elif first[5] == 0x02:
                seen.server_hellos += 1
        hits = sum(s.payload.count(pattern) for s in segments)
        seen.pattern_hits += hits
        seen.per_flow.append(Flow(src, sport, dst, dport, stream_length(segments), first[:16],
                                  hits))
        seen.notes.append(f"{src}:{sport}->{dst}:{dport} "
                          f"{stream_length(segments)} bytes, starts {first[:6].hex()}")
    return seen
