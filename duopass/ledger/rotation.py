"""The ledger key's rotation (docs/server.md, "The ledger key rotates"), pure.

The log appends a `key_rotation` leaf `{"ledger_key": <new vkey>, "previous": <old vkey>}`; the
checkpoint whose tree ends with that leaf (the handover) carries the extension line
`ledger-key <new vkey>` and is signed by both keys, the old one first; every later checkpoint is
signed by the new key alone, and the old one never signs again. Whoever trusts the old key
follows the chain: the handover, signed by the key it trusts, names the next one, which proves
it holds that key by signing the same note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from duopass.ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.leaf import Leaf
from duopass.ledger.note import NoteVerifier, open_note

__all__ = [
    "EXTENSION",
    "Rotation",
    "announced_key",
    "follow",
    "handover_extension",
    "open_handover",
    "rotation_body",
    "rotation_of",
]

EXTENSION: Final = "ledger-key "
"""The handover checkpoint's extension line: this prefix, then the new key's vkey."""
_TYPE: Final = "key_rotation"


@dataclass(frozen=True, slots=True)
class Rotation:
    """A ledger key rotation read from its leaf at `index`: the handover checkpoint is the tree
    of `index + 1` leaves."""

    index: int
    previous: NoteVerifier
    new: NoteVerifier

    @property
    def handover_size(self) -> int:
        return self.index + 1


def rotation_body(previous: NoteVerifier, new: NoteVerifier) -> dict[str, str]:
    """The body of the `key_rotation` leaf that hands the log from `previous` to `new`."""
    return {"ledger_key": new.vkey(), "previous": previous.vkey()}


def _verifier(value: object, what: str) -> NoteVerifier:
    if type(value) is not str or len(value) > 256:
        raise LedgerError(LedgerReason.MALFORMED, f"{what} is not a verifier key string")
    return NoteVerifier.parse(value)


def rotation_of(index: int, leaf: Leaf) -> Rotation | None:
    """The ledger key rotation a leaf records, None for any other leaf (a daily signing key's
    `key_rotation` names a `kid`, not a `ledger_key`). Raises `LedgerError` (MALFORMED, BAD_KEY)
    for a ledger key rotation whose keys do not parse or whose names differ."""
    body: Mapping[str, Any] = leaf.body
    if leaf.type != _TYPE or "ledger_key" not in body:
        return None
    new = _verifier(body["ledger_key"], "ledger_key")
    previous = _verifier(body.get("previous"), "previous")
    if new.name != previous.name or new == previous:
        raise LedgerError(LedgerReason.MALFORMED, "a rotation names a new key of the same log")
    return Rotation(index, previous, new)


def handover_extension(new: NoteVerifier) -> str:
    return EXTENSION + new.vkey()


def announced_key(checkpoint: Checkpoint) -> NoteVerifier | None:
    """The next ledger key a handover checkpoint names, None for any other checkpoint."""
    named = [line for line in checkpoint.extensions if line.startswith(EXTENSION)]
    if not named:
        return None
    if len(named) > 1:
        raise LedgerError(LedgerReason.MALFORMED, "a checkpoint names one next ledger key")
    return NoteVerifier.parse(named[0].removeprefix(EXTENSION))


def open_handover(note: bytes, rotation: Rotation) -> SignedCheckpoint:
    """The handover checkpoint of `rotation`: of its size, naming its new key, signed by both
    keys. Raises `LedgerError`: UNVERIFIED when either key's signature is missing."""
    signed = open_checkpoint(note, rotation.previous)
    both = open_note(note, [rotation.previous, rotation.new])
    if set(both.verified_by) != {rotation.previous, rotation.new}:
        raise LedgerError(
            LedgerReason.UNVERIFIED, "the handover checkpoint is not signed by both keys"
        )
    checkpoint = signed.checkpoint
    if checkpoint.size != rotation.handover_size:
        raise LedgerError(
            LedgerReason.TREE_SIZE,
            f"the handover is of size {checkpoint.size}, not {rotation.handover_size}",
        )
    if announced_key(checkpoint) != rotation.new:
        raise LedgerError(LedgerReason.MALFORMED, "the handover does not name the new key")
    return signed


def follow(note: bytes, key: NoteVerifier) -> tuple[SignedCheckpoint, NoteVerifier]:
    """Open a checkpoint with the log key `key`; if it is a handover to another key, that key
    must have signed it too, and is returned as the one to trust from now on (a witness's
    rule: it sees no leaves, only checkpoints). Raises `LedgerError` as `open_checkpoint`."""
    signed = open_checkpoint(note, key)
    new = announced_key(signed.checkpoint)
    if new is None or new == key:
        return signed, key
    if new.name != key.name:
        raise LedgerError(LedgerReason.ORIGIN, "the next ledger key is of another log")
    verified = open_note(note, [key, new]).verified_by
    if new not in verified:
        raise LedgerError(LedgerReason.UNVERIFIED, "the handover is not signed by the next key")
    return signed, new
