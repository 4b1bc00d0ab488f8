"""An auditor's state file: the signed checkpoint it last trusted, as JSON."""

from __future__ import annotations

import json
from typing import Final

from duopass.ledger.checkpoint import SignedCheckpoint, open_checkpoint
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import NOTE_BYTES_MAX
from duopass.ledger.note import NoteVerifier

__all__ = ["STATE_BYTES_MAX", "format_state", "parse_state"]

STATE_BYTES_MAX: Final = 2 * NOTE_BYTES_MAX + 1024
"""An auditor's state file: one signed checkpoint, JSON-escaped."""


def format_state(note: bytes) -> bytes:
    """An auditor's state file: the signed checkpoint it trusts, as JSON."""
    document = {"version": 1, "checkpoint": note.decode()}
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode()


def parse_state(data: bytes, key: NoteVerifier) -> SignedCheckpoint:
    """The checkpoint an auditor's state file holds, verified with the log's key.

    Raises `LedgerError`: TOO_LARGE, MALFORMED, or the reasons of `open_checkpoint`."""
    if len(data) > STATE_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "the state file is too large")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise LedgerError(LedgerReason.MALFORMED, "the state file is not JSON") from exc
    if (
        type(document) is not dict
        or document.keys() != {"version", "checkpoint"}
        or type(document["version"]) is not int
        or document["version"] != 1
        or type(document["checkpoint"]) is not str
    ):
        raise LedgerError(
            LedgerReason.MALFORMED, 'the state file is not {"version": 1, "checkpoint": "..."}'
        )
    return open_checkpoint(document["checkpoint"].encode(), key)
