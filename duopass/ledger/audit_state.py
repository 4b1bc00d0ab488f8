"""An auditor's state file: the signed checkpoint it last trusted, and the ledger key it trusts
now (version 2: where the key's rotations led, `ledger.audit_chain`), as JSON."""

from __future__ import annotations

import json
from typing import Any, Final

from duopass.ledger.checkpoint import SignedCheckpoint, open_checkpoint
from duopass.ledger.errors import LedgerError, LedgerReason
from duopass.ledger.limits import NOTE_BYTES_MAX
from duopass.ledger.note import NoteVerifier

__all__ = ["STATE_BYTES_MAX", "format_state", "parse_state", "read_state"]

STATE_BYTES_MAX: Final = 2 * NOTE_BYTES_MAX + 1024
"""An auditor's state file: one signed checkpoint, JSON-escaped, and one verifier key."""


def format_state(note: bytes, key: NoteVerifier | None = None) -> bytes:
    """An auditor's state file: the signed checkpoint it trusts and, when given, the ledger key
    it trusts now (version 2; version 1 without one: the key given to each audit)."""
    document: dict[str, Any] = {"version": 1, "checkpoint": note.decode()}
    if key is not None:
        document = {"version": 2, "checkpoint": note.decode(), "key": key.vkey()}
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode()


def _malformed() -> LedgerError:
    return LedgerError(
        LedgerReason.MALFORMED,
        'the state file is not {"version": 1, "checkpoint": "..."} or'
        ' {"version": 2, "checkpoint": "...", "key": "..."}',
    )


def read_state(data: bytes, key: NoteVerifier) -> tuple[SignedCheckpoint, NoteVerifier]:
    """The checkpoint an auditor's state file holds and the key it trusts now (`key`, the one
    the audit was given, for a version 1 file), the checkpoint verified with that key.

    Raises `LedgerError`: TOO_LARGE, MALFORMED, BAD_KEY, or the reasons of `open_checkpoint`."""
    if len(data) > STATE_BYTES_MAX:
        raise LedgerError(LedgerReason.TOO_LARGE, "the state file is too large")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise LedgerError(LedgerReason.MALFORMED, "the state file is not JSON") from exc
    if type(document) is not dict or type(document.get("checkpoint")) is not str:
        raise _malformed()
    version = document.get("version")
    if type(version) is int and version == 1 and document.keys() == {"version", "checkpoint"}:
        trusted = key
    elif (
        type(version) is int
        and version == 2
        and document.keys() == {"version", "checkpoint", "key"}
        and type(document["key"]) is str
        and len(document["key"]) <= 256
    ):
        trusted = NoteVerifier.parse(document["key"])
    else:
        raise _malformed()
    return open_checkpoint(document["checkpoint"].encode(), trusted), trusted


def parse_state(data: bytes, key: NoteVerifier) -> SignedCheckpoint:
    """The checkpoint of `read_state`."""
    return read_state(data, key)[0]
