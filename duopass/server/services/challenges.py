"""The one-time challenges an enrolled device signs to sign in (`passwordless.device_sign_in`): the
time issued and a nonce under a server MAC, so issuing one stores nothing; a used one is
remembered until it expires (`UsedChallenge`), so each signs in once."""

from __future__ import annotations

import hashlib
import hmac
import os

from duopass.server.keyring import Keyring

__all__ = ["CHALLENGE_TTL_S", "challenge", "issued_at"]

CHALLENGE_TTL_S = 120
_CHALLENGE_NONCE_BYTES = 16
_CHALLENGE_MAC_BYTES = 16


def challenge(keyring: Keyring, now: int) -> tuple[bytes, int]:
    """A one-time challenge for device sign-in, valid `CHALLENGE_TTL_S`: its time and a nonce,
    authenticated by a server MAC, so issuing one stores nothing."""
    body = now.to_bytes(8, "big") + os.urandom(_CHALLENGE_NONCE_BYTES)
    return body + _mac(keyring, body), now + CHALLENGE_TTL_S


def _mac(keyring: Keyring, body: bytes) -> bytes:
    mac = hmac.new(keyring.digest_key, b"duopass-challenge-v1\n" + body, hashlib.sha256)
    return mac.digest()[:_CHALLENGE_MAC_BYTES]


def issued_at(keyring: Keyring, data: bytes, now: int) -> int | None:
    """When the challenge was issued, if it is ours and still valid."""
    body, mac = data[:-_CHALLENGE_MAC_BYTES], data[-_CHALLENGE_MAC_BYTES:]
    if len(body) != 8 + _CHALLENGE_NONCE_BYTES:
        return None
    if not hmac.compare_digest(mac, _mac(keyring, body)):
        return None
    issued = int.from_bytes(body[:8], "big")
    return issued if issued <= now <= issued + CHALLENGE_TTL_S else None
