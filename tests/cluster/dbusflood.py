"""A D-Bus client that keeps many method calls in flight at once, on one or several
connections to the system bus: what a local user can throw at hostwardend (issue 19 item 5).

It speaks the wire protocol itself (the nodes have no Python D-Bus binding): EXTERNAL
authentication, Hello, then pipelined calls without waiting for their answers. Run inside a
node as the user under test:

    python3 dbusflood.py --connections 4 --in-flight 25 --until FILE --max-seconds 60 \
        CALL [CALL...]

CALL is PATH,INTERFACE,MEMBER[,SIGNATURE,ARG...] with SIGNATURE made of s (string) and
the empty a{sv} ("a{sv}"); each connection cycles through the calls. Every answer is
counted by its outcome ("ok" or the error name, with the first message of each error) and
the call is sent again (after --resend-delay if it was refused), until FILE exists or
--max-seconds passed (--once: each call slot is sent once). The summary is one JSON object
on stdout: {"counts": {outcome: n}, "messages": {error: [distinct messages]},
"unanswered": n, "slowest": s, "seconds": s}.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import struct
import time

BUS_SOCKET = "/run/dbus/system_bus_socket"
DEST = "org.hostwarden.Warden1"


def _pad(buf: bytearray, align: int) -> None:
    buf.extend(b"\0" * (-len(buf) % align))


def _string(buf: bytearray, s: str, code: str = "s") -> None:
    data = s.encode()
    if code == "g":
        buf.append(len(data))
    else:
        _pad(buf, 4)
        buf.extend(struct.pack("<I", len(data)))
    buf.extend(data + b"\0")


def _body(signature: str, args: list[str]) -> bytearray:
    buf = bytearray()
    args = list(args)
    i = 0
    while i < len(signature):
        if signature[i] == "s":
            _string(buf, args.pop(0))
            i += 1
        elif signature.startswith("a{sv}", i):  # always empty
            _pad(buf, 4)
            buf.extend(struct.pack("<I", 0))
            _pad(buf, 8)
            i += 5
        else:
            raise ValueError(f"signature {signature!r} not supported")
    return buf


def message(serial: int, path: str, interface: str, member: str, signature: str = "",
            args: list[str] | None = None, dest: str = DEST) -> bytes:
    body = _body(signature, args or [])
    fields = bytearray()
    for code, sig, value in ((1, "o", path), (2, "s", interface), (3, "s", member),
                             (6, "s", dest), (8, "g", signature)):
        if code == 8 and not signature:
            continue
        _pad(fields, 8)
        fields.append(code)
        _string(fields, sig, "g")
        _string(fields, value, sig)
    head = bytearray(b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(fields)))
    head.extend(fields)
    _pad(head, 8)
    return bytes(head + body)


def parse(data: bytes):
    """(type, reply_serial, error_name, first string of the body or None, total length) of
    the message at the start of data, or None when it is not all there yet."""
    if len(data) < 16:
        return None
    order = "<" if data[0:1] == b"l" else ">"
    mtype = data[1]
    body_len, _serial, fields_len = struct.unpack(order + "III", data[4:16])
    head_len = 16 + fields_len + (-(16 + fields_len) % 8)
    total = head_len + body_len
    if len(data) < total:
        return None
    reply_serial, error_name, signature = None, None, ""
    pos = 16
    while pos < 16 + fields_len:
        pos += -pos % 8
        code, sig_len = data[pos], data[pos + 1]
        sig = data[pos + 2:pos + 2 + sig_len].decode()
        pos += 3 + sig_len
        if sig in ("s", "o"):
            pos += -pos % 4
            n = struct.unpack(order + "I", data[pos:pos + 4])[0]
            value = data[pos + 4:pos + 4 + n].decode(errors="replace")
            pos += 5 + n
        elif sig == "g":
            n = data[pos]
            value = data[pos + 1:pos + 1 + n].decode()
            pos += 2 + n
        elif sig == "u":
            pos += -pos % 4
            value = struct.unpack(order + "I", data[pos:pos + 4])[0]
            pos += 4
        else:
            raise ValueError(f"header field type {sig!r} not expected")
        if code == 5:
            reply_serial = value
        elif code == 4:
            error_name = value
        elif code == 8:
            signature = value
    text = None
    if signature.startswith("s") and body_len >= 4:
        n = struct.unpack(order + "I", data[head_len:head_len + 4])[0]
        text = data[head_len + 4:head_len + 4 + n].decode(errors="replace")
    return mtype, reply_serial, error_name, text, total


class Connection:
    def __init__(self, calls: list[tuple], in_flight: int, dest: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ.get("HW_FLOOD_BUS", BUS_SOCKET))
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode()
                          + b"\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            line += self.sock.recv(1)
        if not line.startswith(b"OK"):
            raise RuntimeError(f"authentication refused: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.calls, self.in_flight, self.dest = calls, in_flight, dest
        self.serial, self.next_call = 1, 0
        self.pending: dict[int, float] = {}
        self.buf = b""
        self.sock.sendall(message(1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                                  dest="org.freedesktop.DBus"))
        self.pending[1] = time.monotonic()

    def send_one(self) -> None:
        path, iface, member, sig, args = self.calls[self.next_call % len(self.calls)]
        self.next_call += 1
        self.serial += 1
        self.pending[self.serial] = time.monotonic()
        self.sock.sendall(message(self.serial, path, iface, member, sig, args, self.dest))

    def answers(self):
        """(outcome, message, seconds) of each answer that arrived."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the bus closed the connection")
        self.buf += chunk
        while True:
            m = parse(self.buf)
            if m is None:
                return
            mtype, reply_serial, error_name, text, total = m
            self.buf = self.buf[total:]
            if mtype not in (2, 3) or reply_serial not in self.pending:
                continue  # signals (NameAcquired)
            took = time.monotonic() - self.pending.pop(reply_serial)
            if reply_serial == 1:
                continue  # Hello
            yield ("ok" if mtype == 2 else error_name), text, took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--in-flight", type=int, default=200, help="per connection")
    ap.add_argument("--until", help="stop once this file exists")
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--once", action="store_true", help="send each slot once, then wait")
    ap.add_argument("--resend-delay", type=float, default=0.02,
                    help="seconds before a refused call is sent again")
    ap.add_argument("--dest", default=DEST)
    ap.add_argument("--started", help="created once every connection sent its calls")
    ap.add_argument("calls", nargs="+")
    opts = ap.parse_args()
    calls = []
    for spec in opts.calls:
        parts = spec.split(",")
        calls.append((parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else "",
                      parts[4:]))

    conns = [Connection(calls, opts.in_flight, opts.dest) for _ in range(opts.connections)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
        for _ in range(opts.in_flight):
            c.send_one()
    if opts.started:
        open(opts.started, "w").close()
    started = time.monotonic()
    deadline = started + opts.max_seconds
    counts: dict[str, int] = {}
    messages: dict[str, list[str]] = {}  # the distinct messages of each error, a few
    slowest = 0.0
    resend: list[tuple[float, Connection]] = []
    stopping = opts.once
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not stopping and opts.until and os.path.exists(opts.until):
            stopping = True
        if stopping and not any(c.pending for c in conns):
            break
        for key, _ in sel.select(timeout=0.01):
            c = key.data
            for outcome, text, took in c.answers():
                counts[outcome] = counts.get(outcome, 0) + 1
                seen = messages.setdefault(outcome, []) if outcome != "ok" else None
                if seen is not None and (text or "") not in seen and len(seen) < 8:
                    seen.append(text or "")
                slowest = max(slowest, took)
                if not stopping:
                    resend.append((now + (opts.resend_delay if outcome != "ok" else 0), c))
        due = [r for r in resend if r[0] <= time.monotonic()]
        resend = [r for r in resend if r[0] > time.monotonic()]
        for _, c in due:
            c.send_one()
    unanswered = sum(len(c.pending) for c in conns)
    print(json.dumps({"counts": counts, "messages": messages, "unanswered": unanswered,
                      "slowest": round(slowest, 3),
                      "seconds": round(time.monotonic() - started, 3)}))


if __name__ == "__main__":
    main()
