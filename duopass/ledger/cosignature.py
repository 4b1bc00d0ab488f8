"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature) with Ed25519: witness keys,
cosigning a checkpoint and checking cosignatures, pure.

A cosignature is a note signature line by the witness's key: key ID
SHA-256(name || 0x0A || 0x04 || public key)[:4], and the signature is an 8-byte big-endian
timestamp followed by the Ed25519 signature of `cosignature/v1\\ntime <timestamp>\\n` and the
checkpoint's note text. Witness verifier keys are vkeys of signature type 0x04.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from duopass.ledger._text import b64encode
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.note import KeyHash, NoteSignature, key_hash, parse_note, split_key

__all__ = [
    "Cosignature",
    "Cosigner",
    "CosignerKey",
    "cosign",
    "cosigned_message",
    "verify_cosignatures",
]

_COSIGNATURE = b"\x04"
_KEY_BYTES, _SIG_BYTES, _TIME_BYTES = 32, 64, 8
_TIME_MAX = 2**63 - 1
_SIGNER_PREFIX = "PRIVATE+KEY+"


def _bad_key(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.BAD_KEY, detail)


def _key_hash(name: str, public_key: bytes) -> KeyHash:
    return key_hash(name, public_key, _COSIGNATURE)


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a `cosignature/v1` signs: the header, the time line, then the checkpoint text."""
    if not 0 <= timestamp <= _TIME_MAX:
        raise LedgerError(LedgerReason.MALFORMED, "a cosignature time is 0 to 2^63-1")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A trusted witness: its name, key ID and Ed25519 public key."""

    name: str
    key_hash: KeyHash
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> CosignerKey:
        """Parse `<name>+<hash>+base64(0x04 || public key)`, checking the key hash."""
        name, hash_value, public = split_key(
            vkey.strip().split("+", 2), _COSIGNATURE, "an Ed25519 cosignature key (type 0x04)"
        )
        if _key_hash(name, public) != hash_value:
            raise _bad_key("the key hash does not match the name and key")
        return cls(name, hash_value, public)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{b64encode(_COSIGNATURE + self.public_key)}"


@dataclass(frozen=True, slots=True, eq=False)
class Cosigner:
    """A witness's signing key. Its seed stays out of `repr`."""

    name: str
    _key: nacl.signing.SigningKey = field(repr=False)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Cosigner:
        if not name or any(c.isspace() or c == "+" for c in name) or len(seed) != _KEY_BYTES:
            raise _bad_key("a cosigner needs a valid key name and a 32-byte seed")
        return cls(name, nacl.signing.SigningKey(seed))

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls.from_seed(name, bytes(nacl.signing.SigningKey.generate()))

    @property
    def key(self) -> CosignerKey:
        public = bytes(self._key.verify_key)
        return CosignerKey(self.name, _key_hash(self.name, public), public)

    def sign(self, text: str, timestamp: int) -> NoteSignature:
        """The cosignature of checkpoint note text `text` at `timestamp` (POSIX seconds)."""
        signature = self._key.sign(cosigned_message(text, timestamp)).signature
        payload = timestamp.to_bytes(_TIME_BYTES, "big") + bytes(signature)
        return NoteSignature(self.name, self.key.key_hash, payload)


def cosign(note: bytes, cosigner: Cosigner, timestamp: int) -> bytes:
    """`note` (a signed checkpoint) with `cosigner`'s cosignature line appended."""
    text = parse_note(note).text
    return note + cosigner.sign(text, timestamp).line().encode()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A cosignature that verified: by whom, and the time it states."""

    key: CosignerKey
    timestamp: int


def verify_cosignatures(note: bytes, keys: Sequence[CosignerKey]) -> list[Cosignature]:
    """The cosignatures on `note` by `keys`, each verified; lines by other keys are ignored.

    A known witness's line that fails (wrong length, bad signature) or that appears twice
    refuses the note (BAD_SIGNATURE / MALFORMED); the caller decides how many it needs."""
    parsed = parse_note(note)
    known = {(k.name, k.key_hash): k for k in keys}
    found: list[Cosignature] = []
    for line in parsed.signatures:
        key = known.get((line.name, line.key_hash))
        if key is None:
            continue
        if any(c.key == key for c in found):
            raise LedgerError(LedgerReason.MALFORMED, f"{key.name} cosigned twice")
        if len(line.signature) != _TIME_BYTES + _SIG_BYTES:
            raise LedgerError(LedgerReason.BAD_SIGNATURE, f"bad cosignature by {key.name}")
        timestamp = int.from_bytes(line.signature[:_TIME_BYTES], "big")
        try:
            message = cosigned_message(parsed.text, timestamp)
            nacl.signing.VerifyKey(key.public_key).verify(message, line.signature[_TIME_BYTES:])
        except (nacl.exceptions.CryptoError, ValueError, LedgerError) as exc:
            raise LedgerError(LedgerReason.BAD_SIGNATURE, f"bad cosignature by {key.name}") from exc
        found.append(Cosignature(key, timestamp))
    return found
