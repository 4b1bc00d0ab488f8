"""`duopass audit`'s check of the anchors a server serves (`GET /v1/ledger/anchors`,
docs/anchors.md): the anchored checkpoint is the log's and consistent with the audited one, its
RFC 3161 timestamp verifies against the TSA trust bundle given, and each witness key given
cosigned it. Each check prints one line; any failure is a `FAILED` line."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from duopass.cli.audit_source import HttpSource, SourceError
from duopass.ledger import Checkpoint, LedgerError, LedgerReason, NoteVerifier, open_checkpoint
from duopass.ledger.cosignature import CosignerKey, verify_cosignatures
from duopass.ledger.limits import NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX
from duopass.ledger.merkle import verify_consistency
from duopass.ledger.timestamp import TSA_REPLY_BYTES_MAX, TsaTrust, verify_timestamp

__all__ = ["AnchorCheck", "Anchors", "check_anchors", "fetch_anchors"]


@dataclass(frozen=True)
class Anchors:
    size: int
    note: bytes
    timestamp: bytes | None
    cosignatures: tuple[bytes, ...]


@dataclass
class AnchorCheck:
    lines: list[str] = field(default_factory=list)
    failed: int = 0

    def say(self, label: str, text: str) -> None:
        self.lines.append(f"{label:<12} {text}")

    def fail(self, text: str) -> None:
        self.failed += 1
        self.say("FAILED", text)


def _b64(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        raise SourceError(f"anchors: {what} is not base64 of at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise SourceError(f"anchors: {what} is not base64") from exc


def fetch_anchors(source: HttpSource) -> Anchors | None:
    """The anchors the server serves, None if it has none (404)."""
    try:
        answer = source.client.get("/v1/ledger/anchors")
    except httpx.TransportError as exc:
        raise SourceError(f"cannot reach {source.url}: {exc}", usage=True) from exc
    if answer.status_code == 404:
        return None
    if answer.status_code != 200 or len(answer.content) > 4 * NOTE_BYTES_MAX:
        raise SourceError(f"GET /v1/ledger/anchors answered {answer.status_code}")
    try:
        document = answer.json()
    except ValueError as exc:
        raise SourceError("GET /v1/ledger/anchors answered something that is not JSON") from exc
    lines = document.get("cosignatures") if isinstance(document, dict) else None
    size = document.get("size") if isinstance(document, dict) else None
    if not isinstance(lines, list) or len(lines) > NOTE_SIGNATURES_MAX or not isinstance(size, int):
        raise SourceError("anchors: not a size and a list of cosignature lines")
    if not all(isinstance(line, str) and len(line) <= 1024 for line in lines):
        raise SourceError("anchors: a cosignature line is one short string")
    stamp = document.get("timestamp")
    return Anchors(
        size=size,
        note=_b64(document.get("note"), "the note", NOTE_BYTES_MAX),
        timestamp=None if stamp is None else _b64(stamp, "the timestamp", TSA_REPLY_BYTES_MAX),
        cosignatures=tuple(line.encode() for line in lines),
    )


def _anchored(
    found: Anchors, key_at: Callable[[int], NoteVerifier], audited: Checkpoint, source: HttpSource
) -> Checkpoint:
    """The anchored checkpoint, checked as the log's (signed by the ledger key of its size)
    and a prefix of the audited one."""
    anchored = open_checkpoint(found.note, key_at(found.size)).checkpoint
    if anchored.size > audited.size:
        raise LedgerError(LedgerReason.TREE_SIZE, f"anchored size {anchored.size} > {audited.size}")
    if anchored.size == audited.size:
        if anchored.root != audited.root:
            raise LedgerError(LedgerReason.ROOT_MISMATCH, "the anchored checkpoint is a fork")
    elif anchored.size > 0:
        proof = source.consistency(anchored.size, audited.size)
        verify_consistency(
            size1=anchored.size,
            size2=audited.size,
            proof=proof,
            root1=anchored.root,
            root2=audited.root,
        )
    return anchored


def check_anchors(
    source: HttpSource,
    key_at: Callable[[int], NoteVerifier],
    audited: Checkpoint,
    tsa: TsaTrust | None,
    witnesses: Sequence[CosignerKey],
) -> AnchorCheck:
    """Every check of the anchors the server serves, one line each."""
    check = AnchorCheck()
    found = fetch_anchors(source)
    if found is None:
        if tsa is not None or witnesses:
            check.fail("anchors: the server has anchored no checkpoint")
        return check
    try:
        anchored = _anchored(found, key_at, audited, source)
    except LedgerError as exc:
        check.fail(f"anchors: the anchored checkpoint {found.size} is not the log's: {exc}")
        return check
    behind = audited.size - anchored.size  # a stale anchor shows, it does not pass unseen
    lag = "the audited one itself" if behind == 0 else f"{behind} entries behind the audited one"
    check.say("anchors", f"checkpoint {anchored.size}, consistent with it: {lag}")
    _check_timestamp(check, found, tsa)
    _check_cosignatures(check, found, witnesses)
    return check


def _check_timestamp(check: AnchorCheck, found: Anchors, tsa: TsaTrust | None) -> None:
    if found.timestamp is None:
        if tsa is not None:
            check.fail("timestamp: none for the anchored checkpoint")
        return
    if tsa is None:
        check.say("timestamp", "found, not checked (no --tsa-trust)")
        return
    try:
        stamped = verify_timestamp(found.timestamp, found.note, tsa)
    except LedgerError as exc:
        check.fail(f"timestamp: {exc}")
        return
    check.say("timestamp", f"OK, {stamped.time} by {stamped.tsa}")


def _check_cosignatures(
    check: AnchorCheck, found: Anchors, witnesses: Sequence[CosignerKey]
) -> None:
    if not witnesses:
        if found.cosignatures:
            check.say("witnesses", f"{len(found.cosignatures)} found, not checked (no --witness)")
        return
    try:
        good = verify_cosignatures(found.note + b"".join(found.cosignatures), witnesses)
    except LedgerError as exc:
        check.fail(f"witness: {exc}")
        return
    by = {c.key: c for c in good}
    for key in witnesses:
        if key in by:
            check.say("witness", f"{key.name}: cosigned at {by[key].timestamp}")
        else:
            check.fail(f"witness: no cosignature by {key.name}")
