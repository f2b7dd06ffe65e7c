"""A TLS proxy in front of one etcd member that loses answers (run inside a test node).

    etcd_lossy_proxy.py LISTEN_PORT UPSTREAM_URL STATE_DIR KEY...

Listens on 127.0.0.1:LISTEN_PORT with STATE_DIR/cert.pem and key.pem, and forwards every
request to UPSTREAM_URL (https, with the CA STATE_DIR/ca.pem and the client certificate
STATE_DIR/client.pem, client-key.pem). The first transaction (/v3/kv/txn) that compares
each KEY is forwarded and committed by etcd, and its answer is never sent: the connection
is closed, as by a member that dies after committing. Each loss is logged, one line "KEY
succeeded=BOOL", to STATE_DIR/lost.

The test's own tool (tests/cluster/test_evacuation.py): not part of hostwarden.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import urllib.parse


def main() -> None:
    port, upstream, state, keys = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    pending = set(keys)
    lock = threading.Lock()
    up = urllib.parse.urlsplit(upstream)
    client = ssl.create_default_context(cafile=os.path.join(state, "ca.pem"))
    client.load_cert_chain(os.path.join(state, "client.pem"),
                           os.path.join(state, "client-key.pem"))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as etcd's own gateway

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {"Content-Type": "application/json"}
            if self.headers.get("Authorization"):
                headers["Authorization"] = self.headers["Authorization"]
            conn = http.client.HTTPSConnection(up.hostname, up.port, context=client,
                                               timeout=30)
            conn.request("POST", self.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if self.path == "/v3/kv/txn":
                req = json.loads(body)
                key = base64.b64decode(req["compare"][0]["key"]).decode()
                with lock:
                    lose = key in pending
                    pending.discard(key)
                if lose:
                    with open(os.path.join(state, "lost"), "a") as f:
                        f.write(f"{key} succeeded={json.loads(data).get('succeeded', False)}\n")
                    self.close_connection = True
                    return  # committed, and not a byte of the answer
            self.send_response(resp.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(os.path.join(state, "cert.pem"), os.path.join(state, "key.pem"))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
