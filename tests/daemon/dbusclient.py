"""A small D-Bus client (stdlib only) for the daemon suite: method calls with typed values
and error names, signals, all on one unix socket. Running busctl or gdbus for each call cost
a process start per call, most of the suite's time on a loaded machine.

Types: y b n q i u x t d s o g, arrays, structs, dict entries and variants. Values: str,
bool, int, float; arrays are lists, a{..} dicts, structs lists; a variant is written from
a (signature, value) pair and read as a Variant.
"""

import os
import socket
import struct

ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4,
         "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1, "h": 4}
FIXED = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q",
         "d": "d", "h": "I"}

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
FLAG_ALLOW_INTERACTIVE_AUTHORIZATION = 0x4
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL, F_DESTINATION, F_SENDER, \
    F_SIGNATURE = range(1, 9)
FIELD_TYPES = {F_PATH: "o", F_INTERFACE: "s", F_MEMBER: "s", F_ERROR_NAME: "s",
               F_REPLY_SERIAL: "u", F_DESTINATION: "s", F_SENDER: "s", F_SIGNATURE: "g"}


class Variant(tuple):
    """A variant read from the bus: (signature, value)."""

    @property
    def signature(self):
        return self[0]

    @property
    def value(self):
        return self[1]


class DBusError(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def split_signature(sig):
    """'ssa{sv}' -> ['s', 's', 'a{sv}']: the complete types of a signature."""
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _type_end(sig, i):
    while sig[i] == "a":
        i += 1
    if sig[i] in "({":
        depth = 0
        while True:
            if sig[i] in "({":
                depth += 1
            elif sig[i] in ")}":
                depth -= 1
            i += 1
            if depth == 0:
                return i
    return i + 1


class Writer:
    def __init__(self):
        self.buf = bytearray()

    def pad(self, n):
        self.buf += b"\0" * (-len(self.buf) % n)

    def write(self, t, v):
        c = t[0]
        if c in FIXED:
            self.pad(ALIGN[c])
            self.buf += struct.pack("<" + FIXED[c], int(v) if c == "b" else v)
        elif c in "so":
            b = v.encode()
            self.pad(4)
            self.buf += struct.pack("<I", len(b)) + b + b"\0"
        elif c == "g":
            b = v.encode()
            self.buf += struct.pack("<B", len(b)) + b + b"\0"
        elif c == "v":
            vt, vv = v
            self.write("g", vt)
            self.write(vt, vv)
        elif c == "a":
            et = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(ALIGN[et[0]])
            start = len(self.buf)
            items = v.items() if et[0] == "{" else v
            for item in items:
                self.write(et, item)
            struct.pack_into("<I", self.buf, at, len(self.buf) - start)
        elif c in "({":
            self.pad(8)
            for st, sv in zip(split_signature(t[1:-1]), v):
                self.write(st, sv)
        else:
            raise ValueError(f"cannot write type {t}")


class Reader:
    def __init__(self, buf, pos=0):
        self.buf = buf
        self.pos = pos

    def align(self, n):
        self.pos += -self.pos % n

    def read(self, t):
        c = t[0]
        if c in FIXED:
            self.align(ALIGN[c])
            (v,) = struct.unpack_from("<" + FIXED[c], self.buf, self.pos)
            self.pos += struct.calcsize(FIXED[c])
            return bool(v) if c == "b" else v
        if c in "so":
            self.align(4)
            (n,) = struct.unpack_from("<I", self.buf, self.pos)
            v = bytes(self.buf[self.pos + 4:self.pos + 4 + n]).decode()
            self.pos += 4 + n + 1
            return v
        if c == "g":
            n = self.buf[self.pos]
            v = bytes(self.buf[self.pos + 1:self.pos + 1 + n]).decode()
            self.pos += 1 + n + 1
            return v
        if c == "v":
            vt = self.read("g")
            return Variant((vt, self.read(vt)))
        if c == "a":
            et = t[1:]
            self.align(4)
            (n,) = struct.unpack_from("<I", self.buf, self.pos)
            self.pos += 4
            self.align(ALIGN[et[0]])
            end = self.pos + n
            items = []
            while self.pos < end:
                items.append(self.read(et))
            return dict(items) if et[0] == "{" else items
        if c in "({":
            self.align(8)
            return [self.read(st) for st in split_signature(t[1:-1])]
        raise ValueError(f"cannot read type {t}")


class Message:
    def __init__(self, mtype, flags, serial, fields, body):
        self.type = mtype
        self.flags = flags
        self.serial = serial
        self.fields = fields
        self.body = body

    @property
    def member(self):
        return self.fields.get(F_MEMBER)

    @property
    def interface(self):
        return self.fields.get(F_INTERFACE)

    @property
    def path(self):
        return self.fields.get(F_PATH)


class Connection:
    """One connection to a bus at a unix:path= address, authenticated as this process's uid."""

    def __init__(self, address, timeout=30):
        path = dict(kv.split("=", 1) for kv in address.split(":", 1)[1].split(","))["path"]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.rbuf = bytearray()
        self.serial = 0
        self.pending = []  # messages read while waiting for a reply
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._auth_line()
        if not line.startswith(b"OK "):
            raise ConnectionError(f"bus refused authentication: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.unique_name = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "Hello")[0]

    def _auth_line(self):
        while b"\r\n" not in self.rbuf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("bus closed the connection during authentication")
            self.rbuf += chunk
        line, _, rest = bytes(self.rbuf).partition(b"\r\n")
        self.rbuf = bytearray(rest)
        return line

    def close(self):
        self.sock.close()

    def send(self, mtype, fields, sig="", args=(), flags=0):
        self.serial += 1
        body = Writer()
        for t, v in zip(split_signature(sig), args):
            body.write(t, v)
        if sig:
            fields = {**fields, F_SIGNATURE: sig}
        h = Writer()
        h.buf += struct.pack("<cBBBII", b"l", mtype, flags, 1, len(body.buf), self.serial)
        h.write("a(yv)", [(code, (FIELD_TYPES[code], v)) for code, v in fields.items()])
        h.pad(8)
        self.sock.sendall(bytes(h.buf) + bytes(body.buf))
        return self.serial

    def _recv_exact(self, n):
        while len(self.rbuf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the bus closed the connection")
            self.rbuf += chunk

    def receive(self):
        """The next message from the socket (blocks up to the socket's timeout)."""
        self._recv_exact(16)
        endian, mtype, flags, _, blen, serial, flen = struct.unpack_from("<cBBBIII",
                                                                         self.rbuf, 0)
        if endian != b"l":
            raise ValueError("big-endian messages are not supported here")
        hlen = 16 + flen
        hlen += -hlen % 8
        self._recv_exact(hlen + blen)
        r = Reader(self.rbuf, 12)
        fields = {code: v.value for code, v in r.read("a(yv)")}
        body = []
        sig = fields.get(F_SIGNATURE, "")
        if sig:
            br = Reader(self.rbuf[hlen:hlen + blen])
            body = [br.read(t) for t in split_signature(sig)]
        del self.rbuf[:hlen + blen]
        return Message(mtype, flags, serial, fields, body)

    def call(self, dest, path, iface, member, sig="", args=(), interactive=False):
        """The reply's body (a list); DBusError on an error reply."""
        fields = {F_PATH: path, F_MEMBER: member, F_DESTINATION: dest}
        if iface:
            fields[F_INTERFACE] = iface
        serial = self.send(METHOD_CALL, fields, sig, args,
                           FLAG_ALLOW_INTERACTIVE_AUTHORIZATION if interactive else 0)
        while True:
            m = self.receive()
            if m.fields.get(F_REPLY_SERIAL) == serial:
                if m.type == ERROR:
                    raise DBusError(m.fields.get(F_ERROR_NAME),
                                    m.body[0] if m.body and isinstance(m.body[0], str) else "")
                return m.body
            self.pending.append(m)
