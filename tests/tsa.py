"""A Time-Stamping Authority of our own for tests: a throwaway CA, a TSA certificate with the
critical timeStamping extended key usage, and an HTTP server on 127.0.0.1 answering each
`application/timestamp-query` with `openssl ts -reply`. The token embeds the TSA's certificate
only (`-chain` names just it): rfc3161-client refuses a reply that also carries the CA's."""

from __future__ import annotations

import datetime
import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
certs = $dir/tsa.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


@dataclass(frozen=True)
class Authority:
    """The TSA's files: `trust` is the bundle an auditor is given (TSA certificate, then CA)."""

    folder: Path
    tsa_pem: bytes
    ca_pem: bytes

    @property
    def trust(self) -> bytes:
        return self.tsa_pem + self.ca_pem

    def reply(self, query: bytes) -> bytes:
        done = subprocess.run(
            ["openssl", "ts", "-reply", "-config", str(self.folder / "tsa.cnf"),
             "-queryfile", "/dev/stdin", "-chain", str(self.folder / "tsa.pem")],
            input=query, capture_output=True, check=True,
        )  # fmt: skip
        return done.stdout


def make_authority(folder: Path, name: str = "duopass test TSA") -> Authority:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("duopass test CA", ca_key, ("duopass test CA", ca_key))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        _certificate(name, key, ("duopass test CA", ca_key))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_pem = tsa.public_bytes(serialization.Encoding.PEM)
    (folder / "tsa.pem").write_bytes(tsa_pem)
    (folder / "tsa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(CONFIG.format(dir=folder))
    return Authority(folder, tsa_pem, ca.public_bytes(serialization.Encoding.PEM))


@contextmanager
def serving(authority: Authority) -> Iterator[str]:
    """The TSA on 127.0.0.1 (a free port) for the block; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if self.headers.get("Content-Type") != "application/timestamp-query" or length > 4096:
                self.send_error(400)
                return
            reply = authority.reply(self.rfile.read(length))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
