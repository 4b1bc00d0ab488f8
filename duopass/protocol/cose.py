"""The slice of COSE (RFC 9052) DP1 uses: untagged COSE_Sign1, EdDSA, no unprotected headers."""

from __future__ import annotations

from typing import Any, Final

from duopass.protocol.cbor import bytes_head, dumps
from duopass.protocol.keys import Ed25519Signer, KeyId

__all__ = [
    "ALG_EDDSA",
    "L1_PROTECTED_PREFIX",
    "L2_PROTECTED",
    "SIG_STRUCTURE_HEAD",
    "l1_protected",
    "sig_structure",
    "sign1",
]

ALG_EDDSA: Final = -8

L2_PROTECTED: Final = dumps({1: ALG_EDDSA})
"""The only deterministic encoding of `{1: -8}`."""

L1_PROTECTED_PREFIX: Final = dumps({1: ALG_EDDSA, 4: b"\0" * 8})[:-8]
"""`{1: -8, 4: kid}` without the kid's 8 bytes: deterministic CBOR gives it one spelling."""


def l1_protected(kid: KeyId) -> bytes:
    """The L1 protected header for a signing key id."""
    return dumps({1: ALG_EDDSA, 4: kid})


SIG_STRUCTURE_HEAD: Final = b"\x84" + dumps("Signature1")  # a 4-element array, its first item


def sig_structure(protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers: `["Signature1", protected, aad, payload]`,
    deterministically encoded (joined here: the verifier builds two a code)."""
    return b"".join(
        (
            SIG_STRUCTURE_HEAD,
            bytes_head(len(protected)),
            protected,
            bytes_head(len(external_aad)),
            external_aad,
            bytes_head(len(payload)),
            payload,
        )
    )


def sign1(
    key: Ed25519Signer, protected: bytes, payload: bytes, external_aad: bytes = b""
) -> list[Any]:
    """An untagged COSE_Sign1 array `[protected, {}, payload, signature]`."""
    signature = key.sign(sig_structure(protected, external_aad, payload))
    return [protected, {}, payload, signature]
