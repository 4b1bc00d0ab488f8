"""A software WebAuthn authenticator for tests: an EC P-256 key of its own (`cryptography`),
attestation `none`, and assertions it really signs (authenticator data and the client data's
SHA-256, WebAuthn §6.3.3), as a browser would hand them to the page (`toJSON()`). Nothing of
the server's is imitated: the server verifies these bytes with the `webauthn` library."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from duopass.protocol.encoding import b64u_decode, b64u_encode

_UP, _UV, _AT = 0x01, 0x04, 0x40


@dataclass
class Authenticator:
    """One passkey: made by `create`, used by `get` (each use moves the counter by `step`)."""

    origin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    user_handle: bytes = b""
    rp_id: str = ""

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        return json.dumps({**data, "crossOrigin": False}).encode()

    def _auth_data(self, rp_id: str, flags: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """`navigator.credentials.create(options)`: a new credential, attestation `none`."""
        self.rp_id = options["rp"]["id"]
        self.user_handle = b64u_decode(options["user"]["id"])
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = self._auth_data(self.rp_id, _UP | _UV | _AT, attested + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cid = b64u_encode(self.credential_id)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u_encode(client_data),
                "attestationObject": b64u_encode(attestation),
                "transports": ["internal", "hybrid"],
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        step: int = 1,
        verified: bool = True,
    ) -> dict[str, Any]:
        """`navigator.credentials.get(options)`: an assertion signed by this passkey's key."""
        self.sign_count += step
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        flags = _UP | (_UV if verified else 0)
        auth_data = self._auth_data(options.get("rpId", self.rp_id), flags)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        cid = b64u_encode(self.credential_id)
        return {
            "id": cid,
            "rawId": cid,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u_encode(client_data),
                "authenticatorData": b64u_encode(auth_data),
                "signature": b64u_encode(signature),
                "userHandle": b64u_encode(self.user_handle),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }
