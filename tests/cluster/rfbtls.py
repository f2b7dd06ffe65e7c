"""A small RFB (VNC) client that speaks VeNCrypt, run inside a node to play the console
proxy: `python3 - HOST PORT MODE [options as JSON]` with this file on stdin. It prints one
JSON object: {"result": "accepted" | "refused", ...}.

MODE "plain": a client without TLS picks security type 1 (None), as a plain VNC client does.
MODE "tls": RFB 3.8, security type 19 (VeNCrypt), VeNCrypt 0.2, an X509 subtype, then TLS with
Python's ssl (the options: ca, cert, key, min, max (ssl.TLSVersion names), ciphers (OpenSSL's
syntax), server_name); accepted means the server completed the handshake and ServerInit
named the guest."""

import json
import socket
import ssl
import struct
import sys

VENCRYPT = 19
X509_NONE, X509_VNC, X509_PLAIN = 260, 261, 262


def recvn(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def security_result(s):
    """0 (OK) or the failure with its reason."""
    try:
        res = struct.unpack(">I", recvn(s, 4))[0]
    except (EOFError, OSError) as e:  # ssl.SSLError: the server's alert after the handshake
        return {"result": "refused", "detail": str(e)}
    if res == 0:
        return None
    try:
        n = struct.unpack(">I", recvn(s, 4))[0]
        reason = recvn(s, n).decode(errors="replace")
    except EOFError:
        reason = ""
    return {"result": "refused", "detail": f"SecurityResult {res} {reason}"}


def server_init(s, out):
    s.sendall(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", recvn(s, 4))
    recvn(s, 16)  # pixel format
    n = struct.unpack(">I", recvn(s, 4))[0]
    out.update(result="accepted", size=[width, height], name=recvn(s, n).decode())
    return out


def main(host, port, mode, opts):
    s = socket.create_connection((host, port), timeout=30)
    version = recvn(s, 12)
    s.sendall(b"RFB 003.008\n")
    n = recvn(s, 1)[0]
    if n == 0:
        return {"result": "refused", "detail": "no security types", "version": version.decode()}
    types = list(recvn(s, n))
    out = {"types": types}
    if mode == "plain":
        s.sendall(bytes([1]))
        failed = security_result(s)
        return {**out, **failed} if failed else server_init(s, out)
    if VENCRYPT not in types:
        return {**out, "result": "refused", "detail": "no VeNCrypt"}
    s.sendall(bytes([VENCRYPT]))
    out["vencrypt"] = list(recvn(s, 2))
    s.sendall(bytes([0, 2]))
    if recvn(s, 1)[0] != 0:
        return {**out, "result": "refused", "detail": "VeNCrypt 0.2 not accepted"}
    count = recvn(s, 1)[0]
    subtypes = list(struct.unpack(f">{count}I", recvn(s, 4 * count)))
    out["subtypes"] = subtypes
    sub = next((t for t in (X509_NONE, X509_VNC, X509_PLAIN) if t in subtypes), None)
    if sub is None:
        return {**out, "result": "refused", "detail": "no X509 subtype"}
    s.sendall(struct.pack(">I", sub))
    if recvn(s, 1)[0] != 1:
        return {**out, "result": "refused", "detail": "subtype not accepted"}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(opts["ca"])
    if opts.get("cert"):
        ctx.load_cert_chain(opts["cert"], opts["key"])
    if opts.get("ciphers"):
        ctx.set_ciphers(opts["ciphers"])
    if opts.get("min"):
        ctx.minimum_version = getattr(ssl.TLSVersion, opts["min"])
    if opts.get("max"):
        ctx.maximum_version = getattr(ssl.TLSVersion, opts["max"])
    try:
        t = ctx.wrap_socket(s, server_hostname=opts.get("server_name", host))
    except (ssl.SSLError, OSError) as e:
        return {**out, "result": "refused", "detail": f"TLS handshake: {e}"}
    out.update(tls=t.version(), cipher=t.cipher()[0])
    failed = security_result(t)
    return {**out, **failed} if failed else server_init(t, out)


if __name__ == "__main__":
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], options)))
