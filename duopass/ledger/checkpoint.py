"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint): a log's signed tree head as note text.

The text is the origin line, the tree size in decimal (no leading zeroes), the base64 root hash,
then optional non-empty extension lines, each ending in a newline. A checkpoint is trusted only
as a signed note verified with the log's key; the key's name should equal the origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.ledger._text import b64decode, b64encode, has_control, parse_decimal
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import CHECKPOINT_EXTENSIONS_MAX, HASH_BYTES, TREE_SIZE_MAX
from duopass.ledger.merkle import RootHash
from duopass.ledger.note import Note, NoteSigner, NoteVerifier, open_note, sign_note

__all__ = [
    "Checkpoint",
    "SignedCheckpoint",
    "format_checkpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]


def _malformed(detail: str) -> LedgerError:
    return LedgerError(LedgerReason.MALFORMED, detail)


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line or has_control(line):
        raise _malformed(f"{what} is one non-empty line without control characters")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The tree head of log `origin`: `size` leaves with `root`, plus opaque extension lines."""

    origin: str
    size: int
    root: RootHash
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "the origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= TREE_SIZE_MAX:
            raise _malformed(f"impossible tree size {self.size}")
        if len(self.root) != HASH_BYTES:
            raise LedgerError(LedgerReason.HASH_LENGTH, "the root is not a 32-byte hash")
        if len(self.extensions) > CHECKPOINT_EXTENSIONS_MAX:
            raise LedgerError(LedgerReason.TOO_LARGE, "too many extension lines")
        for line in self.extensions:
            _check_line(line, "an extension")


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint opened from a signed note whose log signature verified."""

    checkpoint: Checkpoint
    note: Note


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint's note text."""
    lines = [checkpoint.origin, str(checkpoint.size), b64encode(checkpoint.root)]
    return "".join(line + "\n" for line in [*lines, *checkpoint.extensions])


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly: every line in its one allowed spelling."""
    if not text.endswith("\n"):
        raise _malformed("checkpoint text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise _malformed("a checkpoint has an origin, a size and a root")
    if len(lines) > 3 + CHECKPOINT_EXTENSIONS_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "too many extension lines")
    origin, size, root, *extensions = lines
    return Checkpoint(
        origin=origin,
        size=parse_decimal(size, "the tree size", limit=TREE_SIZE_MAX),
        root=RootHash(b64decode(root, "the root hash")),
        extensions=tuple(extensions),
    )


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> bytes:
    """The checkpoint as a signed note, signed by each of `signers` in order (the log's first)."""
    return sign_note(format_checkpoint(checkpoint), signers)


def open_checkpoint(
    data: bytes, log_key: NoteVerifier, *, origin: str | None = None
) -> SignedCheckpoint:
    """Verify a signed checkpoint with the log's key and parse it.

    The origin must equal `origin`, by default the key's name. Other signatures (witness
    cosignatures, rotated keys) are ignored; checking them is the caller's policy.
    """
    note = open_note(data, [log_key])
    checkpoint = parse_checkpoint(note.text)
    expected = log_key.name if origin is None else origin
    if checkpoint.origin != expected:
        raise LedgerError(
            LedgerReason.ORIGIN, f"checkpoint of {checkpoint.origin!r}, not {expected!r}"
        )
    return SignedCheckpoint(checkpoint, note)
