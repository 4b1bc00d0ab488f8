"""The latest signed checkpoint kept outside the database: `ledger-checkpoint.json` in the data
directory, replaced atomically each time the server signs a new checkpoint (once the signing unit
has committed), so that a database restored from an older backup, or another tree, is seen for
what it is (`services.rollback`).

Beside the signed note it keeps what each terminal was told at that moment: the journal seq the
server had acknowledged and the bundle version last sent, and the latest bundle version. They are
what a restore may take back from terminals that already acted on them. Nothing in it is secret
(the note is public at `/v1/ledger/checkpoint`); it is its owner's only, as the data dir is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duopass.ledger import Checkpoint, LedgerError, NoteVerifier, open_checkpoint
from duopass.lockfile import locked
from duopass.server.files import replace_atomically

__all__ = [
    "FILE_NAME",
    "OUTSIDE_BYTES_MAX",
    "OutsideError",
    "OutsideRecord",
    "read",
    "set_aside",
    "write",
]

FILE_NAME = "ledger-checkpoint.json"
_LOCK_NAME = ".ledger-checkpoint.lock"
FORMAT = "duopass-outside-checkpoint/1"
OUTSIDE_BYTES_MAX = 16 * 1024 * 1024
"""The file's largest size: some 100 000 terminals' positions."""


class OutsideError(ValueError):
    """The outside checkpoint cannot be read or does not verify; the message says which."""


@dataclass(frozen=True)
class OutsideRecord:
    """A signed checkpoint and the terminals' positions when it was signed."""

    note: bytes
    bundle_seq: int = 0
    terminals: Mapping[str, tuple[int, int | None]] = field(default_factory=dict)
    """Terminal id: (acknowledged journal seq, bundle version last sent)."""

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "checkpoint": self.note.decode(),
            "bundle_seq": self.bundle_seq,
            "terminals": {name: list(pair) for name, pair in sorted(self.terminals.items())},
        }
        return json.dumps(document, indent=1).encode() + b"\n"

    def checkpoint(self, verifier: NoteVerifier) -> Checkpoint:
        """The checkpoint, its signature verified with the ledger's key."""
        try:
            return open_checkpoint(self.note, verifier).checkpoint
        except LedgerError as exc:
            raise OutsideError(f"{FILE_NAME} does not verify with the ledger key: {exc}") from exc


def path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def read(data_dir: Path) -> OutsideRecord | None:
    """The record in `data_dir`, None if there is none yet; OutsideError if it is damaged."""
    try:
        with path(data_dir).open("rb") as handle:
            data = handle.read(OUTSIDE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutsideError(f"cannot read {FILE_NAME}: {exc.strerror}") from exc
    if len(data) > OUTSIDE_BYTES_MAX:
        raise OutsideError(f"{FILE_NAME} is larger than {OUTSIDE_BYTES_MAX} bytes")
    return parse(data)


def parse(data: bytes) -> OutsideRecord:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OutsideError(f"{FILE_NAME} is not JSON") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise OutsideError(f"{FILE_NAME} is not a {FORMAT} document")
    note, seq, terminals = (document.get(k) for k in ("checkpoint", "bundle_seq", "terminals"))
    if not isinstance(note, str) or not _count(seq) or not isinstance(terminals, dict):
        raise OutsideError(f"{FILE_NAME} lacks its checkpoint, bundle_seq or terminals")
    positions: dict[str, tuple[int, int | None]] = {}
    for name, pair in terminals.items():
        if not (isinstance(pair, list) and len(pair) == 2 and _count(pair[0])):
            raise OutsideError(f"{FILE_NAME}: terminal {name[:64]!r} has no position")
        if pair[1] is not None and not _count(pair[1]):
            raise OutsideError(f"{FILE_NAME}: terminal {name[:64]!r} has no bundle version")
        positions[name] = (pair[0], pair[1])
    return OutsideRecord(note.encode(), int(seq or 0), positions)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def write(data_dir: Path, record: OutsideRecord, size: int, verifier: NoteVerifier) -> bool:
    """Replace the record with `record` (its checkpoint of `size` leaves) unless the one there
    is larger already (another process signed a newer one first); False when left alone."""
    with locked(data_dir / _LOCK_NAME):  # every process replaces it in turn
        try:
            current = read(data_dir)
            if current is not None and current.checkpoint(verifier).size > size:
                return False
        except OutsideError:
            pass  # damaged: the new one replaces it
        replace_atomically(path(data_dir), record.to_json())
    return True


def set_aside(data_dir: Path, now: int) -> Path | None:
    """Rename the record out of the way (kept as evidence of what was lost); its new name."""
    kept = data_dir / f"ledger-checkpoint.rolled-back-{now}.json"
    with locked(data_dir / _LOCK_NAME):  # every process replaces it in turn
        try:
            os.replace(path(data_dir), kept)
        except FileNotFoundError:
            return None
    return kept
