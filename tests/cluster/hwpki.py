"""The test clusters' PKI: a CA made at test time with gnutls' certtool, and certificates
for the simulated nodes, laid out as libvirt, QEMU and etcd expect them on a real node.

Production nodes get their certificates from the operator's CA; the tests make one per
test process (one CA for every cluster of the run, so a certificate of one cluster is
trusted by another: tests that need a foreign CA make a second `Pki`).  ECDSA P-256 keys
by default (certtool makes one in about 10 ms).  The nodes' libvirt/QEMU certificates are
RSA-2048 (about 0.1 s a key here): libvirt and QEMU refuse a certificate whose key usage
lacks key encipherment, which an ECDSA key cannot have (certtool leaves it out); a node's
files are made once per run and name (`node_files`), whatever the number of clusters.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
from dataclasses import dataclass

#: How long the test certificates are valid.  Tests of expiry make their own.
DAYS = 365


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, PEM text."""
    cert: str
    key: str


def _certtool(*args: str) -> None:
    proc = subprocess.run(["certtool", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"certtool {' '.join(args)} failed: {proc.stderr.strip()}")


class Pki:
    """A CA in its own temporary directory; `issue()` signs certificates with it."""

    def __init__(self, name: str = "hostwarden test CA", days: int = DAYS):
        self.dir = tempfile.mkdtemp(prefix="hwt-pki-")
        self._serial = 0
        self._node_files: dict[tuple, dict[str, tuple[str, int]]] = {}
        self._key = os.path.join(self.dir, "ca-key.pem")
        self._cert = os.path.join(self.dir, "ca-cert.pem")
        _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", self._key)
        self._write("ca.info", f'cn = "{name}"\nca\ncert_signing_key\ncrl_signing_key\n'
                    f"expiration_days = {days}\n")
        _certtool("--generate-self-signed", "--load-privkey", self._key,
                  "--template", os.path.join(self.dir, "ca.info"), "--outfile", self._cert)
        with open(self._cert) as f:
            self.ca_cert = f.read()

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def issue(self, cn: str, names: tuple[str, ...] = (), server: bool = True,
              client: bool = True, days: int = DAYS, key_type: str = "ecdsa") -> Issued:
        """A certificate for CN with subject alternative names NAMES (host names or IP
        addresses), usable as a TLS server and/or client certificate; KEY_TYPE "ecdsa"
        (P-256) or "rsa" (2048 bits)."""
        self._serial += 1
        base = f"{self._serial:04d}"
        key = os.path.join(self.dir, base + "-key.pem")
        cert = os.path.join(self.dir, base + "-cert.pem")
        bits = ("--bits", "2048") if key_type == "rsa" else ()
        _certtool("--generate-privkey", f"--key-type={key_type}", *bits, "--outfile", key)
        lines = [f'cn = "{cn}"', "signing_key", "encryption_key", f"expiration_days = {days}"]
        for n in (cn, *names):
            try:
                ipaddress.ip_address(n)
                lines.append(f'ip_address = "{n}"')
            except ValueError:
                lines.append(f'dns_name = "{n}"')
        if server:
            lines.append("tls_www_server")
        if client:
            lines.append("tls_www_client")
        template = self._write(base + ".info", "\n".join(lines) + "\n")
        _certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate",
                  self._cert, "--load-ca-privkey", self._key, "--template", template,
                  "--outfile", cert)
        with open(cert) as c, open(key) as k:
            return Issued(c.read(), k.read())

    def node_files(self, name: str, addresses: tuple[str, ...]) -> dict[str, tuple[str, int]]:
        """{path: (content, mode)} of libvirt's and QEMU's PKI layout on node NAME, whose
        certificate names its host name and ADDRESSES (libvirt checks the peer's name
        against the URI's host; QEMU's migration TLS against the migration address).
        Paths are relative to the node's root, as the harness's files are."""
        cached = self._node_files.get((name, addresses))
        if cached is not None:
            return cached
        issued = self.issue(name, addresses, key_type="rsa")
        ca = (self.ca_cert, 0o644)
        cert = (issued.cert, 0o644)
        # libvirtd and QEMU read the key; QEMU runs as libvirt-qemu when the security
        # driver drops privileges, so its copy is group-readable by that group (the
        # harness sets the owner).  Keys are never world-readable.
        key = (issued.key, 0o600)
        qkey = (issued.key, 0o640)
        files = {
            "etc/pki/CA/cacert.pem": ca,
            "etc/pki/libvirt/servercert.pem": cert,
            "etc/pki/libvirt/private/serverkey.pem": key,
            "etc/pki/libvirt/clientcert.pem": cert,
            "etc/pki/libvirt/private/clientkey.pem": key,
            "etc/pki/qemu/ca-cert.pem": ca,
            "etc/pki/qemu/server-cert.pem": cert,
            "etc/pki/qemu/server-key.pem": qkey,
            "etc/pki/qemu/client-cert.pem": cert,
            "etc/pki/qemu/client-key.pem": qkey,
        }
        self._node_files[(name, addresses)] = files
        return files

    def cleanup(self) -> None:
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


_shared: Pki | None = None


def shared() -> Pki:
    """The run's CA (made on first use, removed at exit)."""
    global _shared
    if _shared is None:
        import atexit
        _shared = Pki()
        atexit.register(_shared.cleanup)
    return _shared
