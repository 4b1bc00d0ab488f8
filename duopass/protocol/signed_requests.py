"""How a terminal proves itself (a format §8 leaves to the implementation; see
docs/protocol-core.md): enrolment with a one-time code and a proof of possession, then every
request signed with the terminal key.

Request headers: `Duopass-Terminal: <id>`, `Duopass-Time: <unix seconds>`,
`Duopass-Signature: <b64url Ed25519 signature>` over

    "duopass-terminal-request-v1\\n" METHOD "\\n" PATH?QUERY "\\n" TIME "\\n" hex(SHA-256(body))

Every terminal endpoint is idempotent (scans by (terminal, seq), journals by seq, bundles are
reads), so a replayed request inside the time window changes nothing.
"""

from __future__ import annotations

import hashlib

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode, parse_digits
from duopass.protocol.keys import SigningKey, verify_signature
from duopass.protocol.limits import REQUEST_TIME_DIGITS_MAX

__all__ = [
    "REQUEST_WINDOW_S",
    "SIGNATURE_HEADER",
    "TERMINAL_HEADER",
    "TIME_HEADER",
    "device_enrolment_message",
    "device_sign_in_message",
    "enrolment_message",
    "request_message",
    "sign_request",
    "verify_request",
]

TERMINAL_HEADER = "Duopass-Terminal"
TIME_HEADER = "Duopass-Time"
SIGNATURE_HEADER = "Duopass-Signature"
REQUEST_WINDOW_S = 300
"""A signed request is accepted this far from the server's clock, either way."""


def enrolment_message(terminal_id: str, enrol_code: str, public_key: bytes) -> bytes:
    """What a terminal signs with its new key to prove it holds it."""
    return (
        b"duopass-terminal-enrol-v1\n"
        + terminal_id.encode()
        + b"\n"
        + enrol_code.encode()
        + b"\n"
        + public_key
    )


def device_enrolment_message(login: str, public_key: bytes) -> bytes:
    """What a wallet signs with its new device key to prove it holds it (docs/server.md)."""
    return b"duopass-device-enrol-v1\n" + login.encode() + b"\n" + public_key


def device_sign_in_message(login: str, challenge: bytes) -> bytes:
    """What a wallet signs with its enrolled device key to sign in without a password: the
    server's one-time challenge, bound to the login (docs/server.md)."""
    return b"duopass-device-signin-v1\n" + login.encode() + b"\n" + challenge


def request_message(method: str, target: str, time: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"duopass-terminal-request-v1\n{method.upper()}\n{target}\n{time}\n{digest}".encode()


def sign_request(
    key: SigningKey, terminal_id: str, *, method: str, target: str, time: int, body: bytes
) -> dict[str, str]:
    """The headers that authenticate one request."""
    signature = key.sign(request_message(method, target, time, body))
    return {
        TERMINAL_HEADER: terminal_id,
        TIME_HEADER: str(time),
        SIGNATURE_HEADER: b64u_encode(signature),
    }


def verify_request(
    public: bytes, *, method: str, target: str, time: str, signature: str, body: bytes, now: int
) -> bool:
    """Whether the signed headers prove the terminal key, within the time window."""
    try:
        seconds = parse_digits(time, digits_max=REQUEST_TIME_DIGITS_MAX)
        raw = b64u_decode(signature)
    except EncodingError:
        return False
    if abs(seconds - now) > REQUEST_WINDOW_S:
        return False
    return verify_signature(public, request_message(method, target, seconds, body), raw)
