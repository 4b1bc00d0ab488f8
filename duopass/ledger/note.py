"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519: keys, signing, strict opening.

A signed note is its text (ending in a newline), a blank line, then one line per signature:
`— <key name> base64(key hash || signature)`, the dash being U+2014. The key hash is the first
4 bytes of SHA-256(name || 0x0A || 0x01 || public key), 0x01 naming Ed25519. Key strings:
verifier `<name>+<hex key hash>+base64(0x01 || public key)` and signer
`PRIVATE+KEY+<name>+<hex key hash>+base64(0x01 || seed)`. Opening a note ignores signatures by
unknown keys, refuses the note if a known key's signature fails, and demands at least one that
verifies. Ed25519 is checked by libsodium, which refuses small-order and non-canonical keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NewType, Protocol

import nacl.exceptions
import nacl.signing

from duopass.ledger._text import b64decode, b64encode, has_control
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX

__all__ = [
    "KeyHash",
    "Note",
    "NoteKey",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "key_hash",
    "open_note",
    "parse_note",
    "sign_note",
    "split_key",
]

KeyHash = NewType("KeyHash", int)
"""A note key's 32-bit id: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""

_ED25519 = b"\x01"
_KEY_BYTES = 32
_SIG_BYTES = 64
_SIG_PREFIX = "\N{EM DASH} "
_SIGNER_PREFIX = "PRIVATE+KEY+"


def _bad_key(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.BAD_KEY, detail)


def _malformed(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.MALFORMED, detail)


def _is_key_name(name: str) -> bool:
    """Non-empty, without Unicode spaces, plus signs or control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and not has_control(name)
    )


def key_hash(name: str, public_key: bytes, key_type: bytes = _ED25519) -> KeyHash:
    """The 32-bit key hash of a key: SHA-256(name || 0x0A || type || key)[:4] (type 0x01 for a
    signed note's Ed25519 key, 0x04 for a witness's cosignature key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + key_type + public_key).digest()
    return KeyHash(int.from_bytes(digest[:4], "big"))


def split_key(
    fields: list[str], key_type: bytes = _ED25519, kind: str = "an Ed25519 key"
) -> tuple[str, KeyHash, bytes]:
    """Check `name`, `hex hash`, `base64(type || key material)`; return them decoded."""
    if len(fields) != 3 or not _is_key_name(fields[0]):
        raise _bad_key("a key string is <name>+<hash>+<key>")
    name, hash_hex, encoded = fields
    if len(hash_hex) != 8 or any(c not in "0123456789abcdef" for c in hash_hex):
        raise _bad_key("a key hash is 8 lowercase hex digits")
    try:
        material = b64decode(encoded, "key")
    except LedgerError as exc:
        raise _bad_key("the key is not canonical base64") from exc
    if len(material) != 1 + _KEY_BYTES or material[:1] != key_type:
        raise _bad_key(f"not {kind}")
    return name, KeyHash(int(hash_hex, 16)), material[1:]


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name, key hash and public key."""

    name: str
    key_hash: KeyHash
    public_key: bytes

    def __post_init__(self) -> None:
        if not _is_key_name(self.name) or len(self.public_key) != _KEY_BYTES:
            raise _bad_key("a verifier needs a valid key name and a 32-byte key")
        if key_hash(self.name, self.public_key) != self.key_hash:
            raise _bad_key("the key hash does not match the name and key")

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse `<name>+<hash>+<base64(0x01 || public key)>`, checking the key hash."""
        name, hash_value, public = split_key(vkey.split("+", 2))
        return cls(name, hash_value, public)

    def vkey(self) -> str:
        """The verifier key string `parse` reads."""
        return f"{self.name}+{self.key_hash:08x}+{b64encode(_ED25519 + self.public_key)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `text`."""
        if len(signature) != _SIG_BYTES:
            return False
        try:
            nacl.signing.VerifyKey(self.public_key).verify(text, signature)
        except (nacl.exceptions.CryptoError, ValueError):
            return False
        return True


class NoteKey(Protocol):
    """An Ed25519 private key that signs without showing itself (`protocol.keys.Ed25519Signer`
    is one; so is a key in an HSM, `server.hsm`): its 32-byte public half, and `sign`."""

    @property
    def public(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True, eq=False)
class _SeedKey:
    """A `NoteKey` from a seed held in memory."""

    key: nacl.signing.SigningKey

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self.key.sign(message).signature)


@dataclass(frozen=True, slots=True, eq=False)
class NoteSigner:
    """An Ed25519 note signing key: a seed in memory (`from_seed`, `parse`), or any
    `NoteKey`, such as a key in an HSM (`from_signer`). The seed stays out of `repr`."""

    name: str
    key_hash: KeyHash
    _key: NoteKey = field(repr=False)

    def __post_init__(self) -> None:
        if key_hash(self.name, self._key.public) != self.key_hash:
            raise _bad_key("the key hash does not match the name and key")

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        """A signer named `name` from a 32-byte Ed25519 seed."""
        if len(seed) != _KEY_BYTES:
            raise _bad_key("a signer needs a valid key name and a 32-byte seed")
        return cls.from_signer(name, _SeedKey(nacl.signing.SigningKey(seed)))

    @classmethod
    def from_signer(cls, name: str, key: NoteKey) -> NoteSigner:
        """A signer named `name` that signs with `key` (whose private half it never sees)."""
        if not _is_key_name(name) or len(key.public) != _KEY_BYTES:
            raise _bad_key("a signer needs a valid key name and a 32-byte key")
        return cls(name, key_hash(name, key.public), key)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A new random signer (libsodium's random source)."""
        return cls.from_seed(name, bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def parse(cls, skey: str) -> NoteSigner:
        """Parse `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`, checking the key hash."""
        if not skey.startswith(_SIGNER_PREFIX):
            raise _bad_key("a signer key starts with PRIVATE+KEY+")
        name, hash_value, seed = split_key(skey.removeprefix(_SIGNER_PREFIX).split("+", 2))
        signer = cls.from_seed(name, seed)
        if signer.key_hash != hash_value:
            raise _bad_key("the key hash does not match the name and key")
        return signer

    def skey(self) -> str:
        """The private signer key string `parse` reads: a secret. A key whose seed is not in
        memory (in an HSM) has none."""
        if not isinstance(self._key, _SeedKey):
            raise _bad_key("this key's private half is not in memory: it has no signer key string")
        seed = b64encode(_ED25519 + bytes(self._key.key))
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_hash:08x}+{seed}"

    @property
    def key(self) -> NoteKey:
        """The key that signs (a seed in memory, or another `NoteKey` such as one in an HSM)."""
        return self._key

    @property
    def in_memory(self) -> bool:
        """Whether the private half is a seed in this process (a key file), not in an HSM."""
        return isinstance(self._key, _SeedKey)

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier key."""
        return NoteVerifier(self.name, self.key_hash, self._key.public)

    def sign(self, text: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `text`."""
        return self._key.sign(text)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key hash and the signature bytes after the hash."""

    name: str
    key_hash: KeyHash
    signature: bytes

    def line(self) -> str:
        payload = self.key_hash.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {b64encode(payload)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note. `verified_by` is empty until `open_note` has checked it."""

    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[NoteVerifier, ...] = ()


def _check_text(text: str) -> None:
    if not text.endswith("\n") or has_control(text):
        raise _malformed("note text must end in a newline and hold no other control character")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """The signed note: `text`, a blank line, then one signature line per signer, in order."""
    _check_text(text)
    if not signers:
        raise ValueError("a note needs at least one signer")
    message = text.encode()
    lines = [NoteSignature(s.name, s.key_hash, s.sign(message)).line() for s in signers]
    return (text + "\n" + "".join(lines)).encode()


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise _malformed("a signature line starts with an em dash and a space")
    name, space, encoded = line.removeprefix(_SIG_PREFIX).partition(" ")
    if not space or not _is_key_name(name):
        raise _malformed("a signature line is: dash, key name, signature")
    payload = b64decode(encoded, "signature")
    if len(payload) < 5:
        raise _malformed("a signature is a key hash and at least one byte")
    return NoteSignature(name, KeyHash(int.from_bytes(payload[:4], "big")), payload[4:])


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines, strictly, without verifying anything."""
    if len(data) > NOTE_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, f"a note is at most {NOTE_BYTES_MAX} bytes")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("a note is UTF-8") from exc
    if has_control(whole) or not whole.endswith("\n"):
        raise _malformed("a note ends in a newline and holds no other control character")
    blank = whole.rfind("\n\n")  # the text ends at the last blank line
    if blank < 0:
        raise _malformed("a note has a blank line before its signatures")
    lines = whole[blank + 2 : -1].split("\n")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "too many signature lines")
    if lines == [""]:
        raise _malformed("a note has at least one signature")
    return Note(whole[: blank + 1], tuple(_parse_signature(line) for line in lines))


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse a signed note and check every signature by a key in `verifiers`.

    Signatures by other keys (another name or key hash) are ignored. Any failing signature by a
    known key refuses the note, as does a note with no verifying one or with the same known key
    signing twice.
    """
    note = parse_note(data)
    known = {(v.name, v.key_hash): v for v in verifiers}
    message = note.text.encode()
    verified: list[NoteVerifier] = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_hash))
        if verifier is None:
            continue
        if verifier in verified:
            raise _malformed(f"{signature.name} signed the note twice")
        if not verifier.verify(message, signature.signature):
            raise LedgerError(LedgerReason.BAD_SIGNATURE, f"bad signature by {signature.name}")
        verified.append(verifier)
    if not verified:
        raise LedgerError(LedgerReason.UNVERIFIED, "no signature by a known key")
    return Note(note.text, note.signatures, tuple(verified))
