"""Ed25519 keys, key ids and the key file format, with libsodium's verification rules.

Signatures are checked by libsodium (PyNaCl), which refuses small-order and non-canonical public
keys, a small-order R and S >= L. OpenSSL, and so the `cryptography` package, accepts a
small-order key with R = identity and S = 0 for every message: never verify codes with it.

Key files are JSON Web Keys (RFC 8037, `kty` OKP, `crv` Ed25519) with our `kid`:
`{"kty": "OKP", "crv": "Ed25519", "kid": b64u(kid), "x": b64u(public)[, "d": b64u(seed)]}`.
This module turns such bytes into keys and back; reading and writing files is the caller's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NewType, Protocol

import nacl.bindings
import nacl.signing
from nacl._sodium import (  # type: ignore[import-not-found]  # PyNaCl's libsodium, no stubs
    ffi as _ffi,
)
from nacl._sodium import lib as _sodium

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.limits import (
    ED25519_KEY_BYTES,
    ED25519_SEED_BYTES,
    ED25519_SIG_BYTES,
    KEY_FILE_BYTES_MAX,
    KID_BYTES,
)

__all__ = [
    "Ed25519Signer",
    "KeyFileError",
    "KeyId",
    "SigningKey",
    "is_usable_public_key",
    "kid_of",
    "public_key_from_jwk",
    "verify_signature",
    "verify_signed_message",
]

KeyId = NewType("KeyId", bytes)
"""First 8 bytes of SHA-256 of a raw 32-byte Ed25519 public key (§1)."""


class KeyFileError(ValueError):
    """Bytes that are not a key file this module writes."""


def kid_of(public: bytes) -> KeyId:
    """The key id of a raw public key."""
    return KeyId(hashlib.sha256(public).digest()[:KID_BYTES])


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification under libsodium's rules; any malformed input is simply invalid."""
    if len(signature) != ED25519_SIG_BYTES:
        return False
    return verify_signed_message(public, signature + message)


def verify_signed_message(public: bytes, signed_message: bytes) -> bool:
    """`verify_signature` of a 64-byte signature followed by its message, as libsodium takes
    them (a caller that can join them in one copy saves one).

    libsodium's `crypto_sign_open` itself, without PyNaCl's wrapper: given no buffer for the
    message (NULL, which libsodium allows) it only verifies, where the wrapper allocates a
    buffer the size of the message, has the message copied into it and copied out again as
    bytes, and raises an exception for a bad signature (a test compares both)."""
    if len(public) != ED25519_KEY_BYTES or len(signed_message) < ED25519_SIG_BYTES:
        return False
    return _open(_NULL, _NULL, signed_message, len(signed_message), public) == 0


_open: Callable[[object, object, bytes, int, bytes], int] = _sodium.crypto_sign_open
_NULL: object = _ffi.NULL


def is_usable_public_key(public: bytes) -> bool:
    """True for a canonical point of the prime-order subgroup: what an issuer enrols."""
    if len(public) != ED25519_KEY_BYTES:
        return False
    return bool(nacl.bindings.crypto_core_ed25519_is_valid_point(public))


class Ed25519Signer(Protocol):
    """What signs with an Ed25519 private key without showing it: a `SigningKey`, or a key that
    never leaves a hardware security module (`server.hsm`). Its public half and key id, and
    `sign`, the 64-byte signature of a message."""

    @property
    def public(self) -> bytes: ...

    @property
    def kid(self) -> KeyId: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 private key, kept as its 32-byte seed."""

    seed: bytes
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != ED25519_SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "public", bytes(key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """A new key from the operating system's random source."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def kid(self) -> KeyId:
        return kid_of(self.public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte deterministic Ed25519 signature of `message`."""
        key: nacl.signing.SigningKey = object.__getattribute__(self, "_key")
        return bytes(key.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid.hex()})"

    def to_jwk(self) -> bytes:
        """The private key file's bytes."""
        return _jwk_bytes(self.public, self.seed)

    def public_jwk(self) -> bytes:
        """The public key file's bytes."""
        return _jwk_bytes(self.public, None)

    @classmethod
    def from_jwk(cls, data: bytes) -> SigningKey:
        """Parse a private key file; refuses one whose `x` or `kid` does not match `d`."""
        fields = _jwk_fields(data)
        if "d" not in fields:
            raise KeyFileError("not a private key: no 'd'")
        seed = _jwk_bytes_field(fields, "d")
        if len(seed) != ED25519_SEED_BYTES:
            raise KeyFileError("'d' is not a 32-byte seed")
        key = cls(seed)
        if _jwk_bytes_field(fields, "x") != key.public:
            raise KeyFileError("'x' does not match 'd'")
        return key


def public_key_from_jwk(data: bytes) -> bytes:
    """The raw public key in a key file (public or private)."""
    fields = _jwk_fields(data)
    public = _jwk_bytes_field(fields, "x")
    if len(public) != ED25519_KEY_BYTES:
        raise KeyFileError("'x' is not 32 bytes")
    return public


def _jwk_bytes(public: bytes, seed: bytes | None) -> bytes:
    fields = {"kty": "OKP", "crv": "Ed25519", "kid": b64u_encode(kid_of(public))}
    fields["x"] = b64u_encode(public)
    if seed is not None:
        fields["d"] = b64u_encode(seed)
    return (json.dumps(fields, indent=1) + "\n").encode()


def _jwk_fields(data: bytes) -> dict[str, object]:
    if len(data) > KEY_FILE_BYTES_MAX:
        raise KeyFileError("key file too large")
    try:
        fields = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, nesting past the stack
        raise KeyFileError("key file is not JSON") from exc
    if not isinstance(fields, dict):
        raise KeyFileError("key file is not a JSON object")
    if fields.get("kty") != "OKP" or fields.get("crv") != "Ed25519":
        raise KeyFileError("not an Ed25519 JSON Web Key")
    public = _jwk_bytes_field(fields, "x")
    if "kid" in fields and _jwk_bytes_field(fields, "kid") != kid_of(public):
        raise KeyFileError("'kid' does not match 'x'")
    return fields


def _jwk_bytes_field(fields: dict[str, object], name: str) -> bytes:
    value = fields.get(name)
    if not isinstance(value, str):
        raise KeyFileError(f"'{name}' missing or not a string")
    try:
        return b64u_decode(value)
    except EncodingError as exc:
        raise KeyFileError(f"'{name}' is not unpadded base64url") from exc
