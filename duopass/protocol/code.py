"""The DP1 code: minting L1 and L2, the code text, and the one decoder of §2.

`decode_code` turns text into a `Code` or raises `FormatError` (check 1) or `MalformedError`
(check 2). It checks structure only; signatures and everything after check 2 are `verify`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from duopass.protocol.cbor import MalformedError, bytes_head, dumps, loads, read_int
from duopass.protocol.claims import Claims, decode_claims, encode_claims
from duopass.protocol.cose import (
    L1_PROTECTED_PREFIX,
    L2_PROTECTED,
    SIG_STRUCTURE_HEAD,
    l1_protected,
    sig_structure,
    sign1,
)
from duopass.protocol.encoding import EncodingError, b45decode, b45encode
from duopass.protocol.keys import KeyId, SigningKey, kid_of, verify_signature
from duopass.protocol.limits import (
    CODE_CHARS_MAX,
    CODE_PREFIX,
    COUNTER_LIMIT,
    ED25519_SIG_BYTES,
    INT_ABS_LIMIT,
    KID_BYTES,
)

__all__ = [
    "Code",
    "Credential",
    "DynamicPart",
    "FormatError",
    "decode_code",
    "decode_credential",
    "make_code",
    "mint_credential",
    "strip_line_ending",
]


class FormatError(ValueError):
    """Text that is not a DP1 code at all (check 1)."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A decoded L1; `encoded` is its exact CBOR bytes, the key of any verification cache."""

    kid: KeyId
    claims: Claims
    encoded: bytes
    signature: bytes

    @property
    def signed(self) -> bytes:
        """The Sig_structure the issuer signed, cut from `encoded` (not kept: a terminal's
        cache holds thousands of credentials)."""
        return self.signed_message()[ED25519_SIG_BYTES:]

    def signed_message(self) -> bytes:
        """The signature followed by the Sig_structure, as libsodium's `crypto_sign_open`
        takes it: `["Signature1", protected, h'', payload]` is L1's
        `[protected, {}, payload, signature]` with the empty map an empty byte string and the
        signature cut off, so it is joined from slices of `encoded`."""
        encoded = self.encoded  # slices of bytes join faster than a memoryview's, this small
        protected_end = 1 + _L1_PROTECTED_SIZE
        return b"".join(
            (
                self.signature,
                SIG_STRUCTURE_HEAD,
                encoded[1:protected_end],
                b"\x40",
                encoded[protected_end + 1 : -_SIGNATURE_SIZE],
            )
        )


@dataclass(frozen=True, slots=True)
class DynamicPart:
    """A decoded L2: counter and wallet time, and what the device signed."""

    ctr: int
    ts: int
    signed: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Code:
    """A well-formed DP1 code: a credential, and its dynamic part unless it is a static code."""

    credential: Credential
    dynamic: DynamicPart | None


def mint_credential(claims: Claims, issuer_key: SigningKey) -> bytes:
    """An L1 (the encoded COSE_Sign1) over `claims`, signed by the day's signing key."""
    return dumps(sign1(issuer_key, l1_protected(issuer_key.kid), encode_claims(claims)))


def make_code(l1: bytes, device_key: SigningKey | None, ctr: int = 0, ts: int = 0) -> str:
    """The DP1 text: L1 alone (a static code) when `device_key` is None, else L1 and a new L2."""
    credential = loads(l1)
    if device_key is None:
        return CODE_PREFIX + b45encode(dumps([credential]))
    if not 0 <= ctr < COUNTER_LIMIT or ts < 0:
        raise ValueError("counter or timestamp out of range")
    l2 = sign1(device_key, L2_PROTECTED, dumps([ctr, ts]), external_aad=credential[3])
    return CODE_PREFIX + b45encode(dumps([credential, l2]))


def strip_line_ending(text: str) -> str:
    """Remove exactly one trailing CRLF, CR or LF, as a keyboard-wedge scanner appends (§2)."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\r", "\n")):
        return text[:-1]
    return text


def decode_code(text: str, *, known: Mapping[bytes, Credential] | None = None) -> Code:
    """Parse a scanned text into a `Code` (§2); raises FormatError or MalformedError.

    `known` maps the exact bytes of credentials decoded before to their result, so a credential
    scanned many times is parsed once; identical bytes always decode identically.
    """
    if text[-1:] in _LINE_END_CHARS:
        text = strip_line_ending(text)
    if not text.startswith(CODE_PREFIX):
        raise FormatError("not a DP1 code")
    if len(text) > CODE_CHARS_MAX:
        raise MalformedError("code too long")
    try:
        envelope_bytes = b45decode(text[_PREFIX_CHARS:])
    except EncodingError as exc:
        raise MalformedError(str(exc)) from exc
    # Every item of the envelope is typed by `_sign1_size`, so the deterministic encoding is the one
    # as long as the sizes add up to (a longer head is a longer encoding); the L1 payload is walked.
    envelope = loads(envelope_bytes, check_items=False, reencode=False)
    if type(envelope) is not list or not 1 <= len(envelope) <= 2:
        raise MalformedError("envelope is not [L1] or [L1, L2]")
    l1 = sign1_parts(envelope[0])
    l1_size = _sign1_size(l1)
    l2 = sign1_parts(envelope[1]) if len(envelope) == 2 else None
    l2_size = _sign1_size(l2) if l2 is not None else 0
    if len(envelope_bytes) != 1 + l1_size + l2_size:  # the envelope's head, L1, L2
        raise MalformedError("CBOR is not deterministically encoded")
    l1_bytes = envelope_bytes[1 : 1 + l1_size]
    credential = known.get(l1_bytes) if known is not None else None
    if credential is None:
        credential = _credential(l1, l1_bytes)
    if l2 is None:
        return _new_code(credential, None)
    if credential.claims.device_key is None:
        raise MalformedError("an L2 on a credential without cnf")
    return _new_code(credential, _decode_dynamic(l2, credential.signature))


def _new_code(credential: Credential, dynamic: DynamicPart | None) -> Code:
    """`Code(credential, dynamic)` without the frozen `__init__`'s `object.__setattr__` calls:
    each slot set through its descriptor (every scan makes a Code, a Credential, a DynamicPart)."""
    code = _new(Code)
    _SET_CREDENTIAL(code, credential)
    _SET_DYNAMIC(code, dynamic)
    return code


_new = object.__new__
_SET_CREDENTIAL = Code.__dict__["credential"].__set__
_SET_DYNAMIC = Code.__dict__["dynamic"].__set__
_SET_KID, _SET_CLAIMS, _SET_ENCODED, _SET_SIGNATURE = (
    Credential.__dict__[name].__set__ for name in ("kid", "claims", "encoded", "signature")
)
_SET_CTR, _SET_TS, _SET_SIGNED, _SET_SIGNATURE_L2 = (
    DynamicPart.__dict__[name].__set__ for name in ("ctr", "ts", "signed", "signature")
)
_LINE_END_CHARS = ("\r", "\n")
_PREFIX_CHARS = len(CODE_PREFIX)


def decode_credential(l1: object, encoded: bytes) -> Credential:
    """Check a decoded L1 array (whose deterministic encoding is `encoded`): exact protected
    header, empty unprotected map, claims."""
    return _credential(sign1_parts(l1), encoded)


def _credential(parts: tuple[bytes, bytes, bytes], encoded: bytes) -> Credential:
    protected, payload, signature = parts
    if len(protected) != len(L1_PROTECTED_PREFIX) + KID_BYTES or not protected.startswith(
        L1_PROTECTED_PREFIX
    ):
        raise MalformedError("L1 protected header is not {1: -8, 4: kid}")
    claims = decode_claims(payload)  # which walks what it must
    credential = _new(Credential)  # as `_new_code` builds a Code
    _SET_KID(credential, protected[-KID_BYTES:])
    _SET_CLAIMS(credential, claims)
    _SET_ENCODED(credential, encoded)
    _SET_SIGNATURE(credential, signature)
    return credential


def _decode_dynamic(parts: tuple[bytes, bytes, bytes], l1_signature: bytes) -> DynamicPart:
    """The L2 payload is read in place, not by `loads`: `[ctr, ts]` is an array head and two
    deterministically encoded integers, and nothing after them."""
    protected, payload, signature = parts
    if protected != L2_PROTECTED:
        raise MalformedError("L2 protected header is not {1: -8}")
    if payload[:1] != _PAIR_HEAD:
        raise MalformedError("L2 payload is not [ctr, ts]")
    ctr, at = read_int(payload, 1)
    ts, at = read_int(payload, at)
    if at != len(payload):
        raise MalformedError("CBOR is not deterministically encoded")
    if not 0 <= ctr < COUNTER_LIMIT:
        raise MalformedError("L2 counter out of range")
    if not -INT_ABS_LIMIT < ts < INT_ABS_LIMIT:
        raise MalformedError("L2 timestamp is not an integer below 2^53")
    dynamic = _new(DynamicPart)  # as `_new_code` builds a Code
    _SET_CTR(dynamic, ctr)
    _SET_TS(dynamic, ts)
    _SET_SIGNED(
        dynamic, b"".join((_L2_SIGNED_HEAD, l1_signature, bytes_head(len(payload)), payload))
    )
    _SET_SIGNATURE_L2(dynamic, signature)
    return dynamic


_PAIR_HEAD = b"\x82"


class SignerError(ValueError):
    """A signed object whose signer is not the expected key, or whose signature fails."""


def open_signed(data: bytes, public: bytes) -> bytes:
    """The payload of an untagged COSE_Sign1 (protected `{1: -8, 4: kid}`) signed by `public`:
    how bundles and journal batches are opened. Raises MalformedError or SignerError."""
    protected, payload, signature = sign1_parts(loads(data, check_items=False))
    if protected != l1_protected(kid_of(public)):
        raise SignerError("not signed by the expected key")
    if not verify_signature(public, sig_structure(protected, b"", payload), signature):
        raise SignerError("bad signature")
    return payload


def _sign1_size(parts: tuple[bytes, bytes, bytes]) -> int:
    """How many bytes a COSE_Sign1 takes, deterministically encoded: its head, the protected
    header, an empty map, the payload and the signature (from their lengths, not re-encoding)."""
    protected, payload, _ = parts
    size = 2 + _SIGNATURE_SIZE + len(protected) + len(payload)  # with the array head, empty map
    return size + _head_size(len(protected)) + _head_size(len(payload))


def _head_size(length: int) -> int:
    """How many bytes deterministic CBOR's head takes before `length` bytes."""
    return 1 if length < 24 else 2 if length < 0x100 else 3 if length < 0x10000 else 5


_SIGNATURE_SIZE = 2 + ED25519_SIG_BYTES  # a byte string's 2-byte head, the 64 bytes
_L1_PROTECTED_SIZE = 1 + len(L1_PROTECTED_PREFIX) + KID_BYTES  # with its 1-byte head
_L2_SIGNED_HEAD = b"".join((SIG_STRUCTURE_HEAD, bytes_head(len(L2_PROTECTED)), L2_PROTECTED))
_L2_SIGNED_HEAD += bytes_head(ED25519_SIG_BYTES)  # the aad is the L1 signature
"""The Sig_structure of every L2 up to the L1 signature (its external aad)."""


def sign1_parts(value: object) -> tuple[bytes, bytes, bytes]:
    """(protected, payload, signature) of an untagged COSE_Sign1 with an empty unprotected map."""
    if type(value) is not list or len(value) != 4:
        raise MalformedError("not a COSE_Sign1 array")
    protected, unprotected, payload, signature = value
    if type(protected) is not bytes or type(payload) is not bytes:
        raise MalformedError("COSE_Sign1 protected or payload is not a byte string")
    if type(unprotected) is not dict or unprotected:
        raise MalformedError("unprotected headers must be empty")
    if type(signature) is not bytes or len(signature) != ED25519_SIG_BYTES:
        raise MalformedError("signature is not 64 bytes")
    return protected, payload, signature
