"""`duopass audit`'s check of the anchors a server serves (docs/anchors.md): every anchored
checkpoint it lists (`GET /v1/ledger/anchors/sizes`, each from `GET /v1/ledger/anchors/{size}`)
is the log's (signed by the ledger key of its size, where the audit followed the key's
rotations) and consistent with the audited one (a prefix of it, or a later checkpoint that
extends it), and each timestamp and cosignature found on it
verifies with the TSA trust bundle and witness keys given (a tampered one, even on an old
checkpoint, fails). The latest anchored checkpoint must also carry a valid timestamp (when
`--tsa-trust` is given) and cosignatures by a quorum of the witnesses given, and with
`--max-anchor-lag` be recent enough. Each check prints one line; any failure is a `FAILED` line.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from duopass.cli.audit_source import HttpSource, SourceError
from duopass.ledger import Checkpoint, LedgerError, LedgerReason, NoteVerifier, open_checkpoint
from duopass.ledger.cosignature import Cosignature, CosignerKey, verify_cosignatures
from duopass.ledger.limits import NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX, TREE_SIZE_MAX
from duopass.ledger.merkle import verify_consistency
from duopass.ledger.timestamp import TSA_REPLY_BYTES_MAX, TsaTrust, verify_timestamp

__all__ = ["ANCHORS_MAX", "AnchorCheck", "AnchorPolicy", "Anchors", "KeyAt", "check_anchors"]

ANCHORS_MAX = 1_000_000
"""Anchored checkpoints one audit reads at most (a server listing more is refused)."""
_SIZES_PAGE = 1000


@dataclass(frozen=True)
class Anchors:
    size: int
    note: bytes
    timestamp: bytes | None
    cosignatures: tuple[bytes, ...]


@dataclass(frozen=True)
class AnchorPolicy:
    """What the auditor trusts and asks: the TSA bundle, the witness keys, how many of them
    must have cosigned the latest anchored checkpoint, and the lag allowed (seconds, None: any),
    measured against `now` (POSIX seconds)."""

    tsa: TsaTrust | None
    witnesses: Sequence[CosignerKey]
    quorum: int
    max_lag: int | None
    now: float


@dataclass
class AnchorCheck:
    lines: list[str] = field(default_factory=list)
    failed: int = 0

    def say(self, label: str, text: str) -> None:
        self.lines.append(f"{label:<12} {text}")

    def fail(self, text: str) -> None:
        self.failed += 1
        self.say("FAILED", text)


@dataclass
class _Seen:
    """What the checks of one anchored checkpoint found: the times that verified."""

    stamped: float | None = None
    cosigned: list[Cosignature] = field(default_factory=list)


def _b64(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        raise SourceError(f"anchors: {what} is not base64 of at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise SourceError(f"anchors: {what} is not base64") from exc


def _get(source: HttpSource, path: str, params: dict[str, int] | None = None) -> object:
    try:
        answer = source.client.get(path, params=params)
    except httpx.TransportError as exc:
        raise SourceError(f"cannot reach {source.url}: {exc}", usage=True) from exc
    if answer.status_code != 200 or len(answer.content) > 4 * NOTE_BYTES_MAX:
        raise SourceError(f"GET {path} answered {answer.status_code}")
    try:
        return answer.json()
    except ValueError as exc:
        raise SourceError(f"GET {path} answered something that is not JSON") from exc


def _listed(source: HttpSource) -> list[int]:
    """Every anchored size the server lists, page by page, strictly ascending."""
    found: list[int] = []
    while True:
        after = found[-1] if found else 0
        page = _get(source, "/v1/ledger/anchors/sizes", {"after": after, "limit": _SIZES_PAGE})
        sizes = page.get("sizes") if isinstance(page, dict) else None
        if not isinstance(sizes, list) or len(sizes) > _SIZES_PAGE:
            raise SourceError("anchors: the sizes listed are not a list of one page")
        for size in sizes:
            ok = isinstance(size, int) and not isinstance(size, bool)
            if not ok or not after < size <= TREE_SIZE_MAX:
                raise SourceError("anchors: the sizes listed are not ascending tree sizes")
            after = size
        found.extend(sizes)
        if len(found) > ANCHORS_MAX:
            raise SourceError(f"anchors: the server lists more than {ANCHORS_MAX}")
        if len(sizes) < _SIZES_PAGE:
            return found


def fetch_anchors(source: HttpSource, size: int) -> Anchors:
    """The anchors the server keeps for checkpoint `size`."""
    document = _get(source, f"/v1/ledger/anchors/{size}")
    if not isinstance(document, dict) or document.get("size") != size:
        raise SourceError(f"anchors: GET /v1/ledger/anchors/{size} is not about size {size}")
    lines = document.get("cosignatures")
    if not isinstance(lines, list) or len(lines) > NOTE_SIGNATURES_MAX:
        raise SourceError("anchors: not a list of cosignature lines")
    if not all(isinstance(line, str) and len(line) <= 1024 for line in lines):
        raise SourceError("anchors: a cosignature line is one short string")
    stamp = document.get("timestamp")
    return Anchors(
        size=size,
        note=_b64(document.get("note"), "the note", NOTE_BYTES_MAX),
        timestamp=None if stamp is None else _b64(stamp, "the timestamp", TSA_REPLY_BYTES_MAX),
        cosignatures=tuple(line.encode() for line in lines),
    )


KeyAt = Callable[[int], NoteVerifier]
"""The ledger key that signs a checkpoint of a given size (the audit's chain of rotations)."""


def _anchored(found: Anchors, key_at: KeyAt, audited: Checkpoint, source: HttpSource) -> Checkpoint:
    """The anchored checkpoint, checked as the log's (signed by the ledger key of its size) and on
    one history with the audited one: a prefix of it, or (signed and anchored since the audit
    read its checkpoint) extending it."""
    anchored = open_checkpoint(found.note, key_at(found.size)).checkpoint
    if anchored.size != found.size:
        raise LedgerError(LedgerReason.TREE_SIZE, f"listed as {found.size}, is {anchored.size}")
    small, large = sorted((anchored, audited), key=lambda c: c.size)
    if small.size == large.size:
        if anchored.root != audited.root:
            raise LedgerError(LedgerReason.ROOT_MISMATCH, "the anchored checkpoint is a fork")
    elif small.size > 0:
        verify_consistency(
            size1=small.size,
            size2=large.size,
            proof=source.consistency(small.size, large.size),
            root1=small.root,
            root2=large.root,
        )
    return anchored


def check_anchors(
    source: HttpSource, key_at: KeyAt, audited: Checkpoint, policy: AnchorPolicy
) -> AnchorCheck:
    """Every check of every anchor the server lists, the latest's in detail, one line each."""
    check = AnchorCheck()
    listed = _listed(source)
    if not listed:
        if policy.tsa is not None or policy.witnesses:
            check.fail("anchors: the server has anchored no checkpoint")
        return check
    *older, last = listed
    bad_before = check.failed
    for size in older:
        _check_one(check, source, key_at, audited, policy, fetch_anchors(source, size))
    if older:
        verdict = "FAILED (above)" if check.failed > bad_before else "each OK"
        check.say("anchors", f"{len(older)} earlier anchored checkpoints checked: {verdict}")
    found = fetch_anchors(source, last)
    seen = _check_one(check, source, key_at, audited, policy, found, latest=True)
    if seen is not None:
        _check_quorum(check, policy, seen)
        _check_lag(check, policy, seen, ahead=last - audited.size)
    return check


def _check_one(
    check: AnchorCheck,
    source: HttpSource,
    key_at: KeyAt,
    audited: Checkpoint,
    policy: AnchorPolicy,
    found: Anchors,
    *,
    latest: bool = False,
) -> _Seen | None:
    """One anchored checkpoint: the log's, consistent with the audited one, its timestamp and
    cosignatures each valid. Lines for the latest; only failures for the others."""
    try:
        anchored = _anchored(found, key_at, audited, source)
    except LedgerError as exc:
        check.fail(f"anchors: the anchored checkpoint {found.size} fails: {exc}")
        return None
    seen = _Seen()
    if latest:
        behind = audited.size - anchored.size  # a stale anchor shows, it does not pass unseen
        lag = (
            "the audited one itself"
            if behind == 0
            else f"{behind} entries behind it"
            if behind > 0
            else f"{-behind} entries ahead of it (anchored since)"
        )
        check.say("anchors", f"latest anchored checkpoint {anchored.size}, consistent: {lag}")
    where = "" if latest else f" of checkpoint {found.size}"
    if found.timestamp is not None and policy.tsa is not None:
        try:
            stamped = verify_timestamp(found.timestamp, found.note, policy.tsa)
        except LedgerError as exc:
            check.fail(f"timestamp{where}: {exc}")
        else:
            seen.stamped = datetime.datetime.fromisoformat(stamped.time).timestamp()
            if latest:
                check.say("timestamp", f"OK, {stamped.time} by {stamped.tsa}")
    elif latest and policy.tsa is not None:
        check.fail("timestamp: none for the latest anchored checkpoint")
    elif latest and found.timestamp is not None:
        check.say("timestamp", "found, not checked (no --tsa-trust)")
    if policy.witnesses:
        seen.cosigned = _cosigned(check, found, policy.witnesses, where)
    elif latest and found.cosignatures:
        check.say("witnesses", f"{len(found.cosignatures)} found, not checked (no --witness)")
    return seen


def _cosigned(
    check: AnchorCheck, found: Anchors, witnesses: Sequence[CosignerKey], where: str
) -> list[Cosignature]:
    """The valid cosignatures by `witnesses`, one a witness; a bad one by them is a failure."""
    good: dict[CosignerKey, Cosignature] = {}
    for line in found.cosignatures:
        try:
            for cosignature in verify_cosignatures(found.note + line, witnesses):
                good.setdefault(cosignature.key, cosignature)
        except LedgerError as exc:
            check.fail(f"witness{where}: {exc}")
    return list(good.values())


def _check_quorum(check: AnchorCheck, policy: AnchorPolicy, seen: _Seen) -> None:
    """At least `quorum` distinct witnesses given cosigned the latest anchored checkpoint."""
    if not policy.witnesses:
        return
    by = {c.key: c for c in seen.cosigned}
    for key in policy.witnesses:
        if key in by:
            check.say("witness", f"{key.name}: cosigned at {by[key].timestamp}")
        elif policy.quorum == len(policy.witnesses):
            check.fail(f"witness: no cosignature by {key.name}")
        else:
            check.say("witness", f"{key.name}: no cosignature")
    count, given = len(by), len(policy.witnesses)
    quorum = f"{count} of {given} witnesses cosigned, quorum {policy.quorum}"
    if count >= policy.quorum:
        check.say("quorum", f"OK, {quorum}")
    elif policy.quorum < given:  # with all of them asked, each missing one failed above
        check.fail(f"quorum: {quorum}")


def _check_lag(check: AnchorCheck, policy: AnchorPolicy, seen: _Seen, *, ahead: int) -> None:
    """The latest anchor's newest verified time is at most `max_lag` before now, unless the
    latest anchored checkpoint is the audited one or extends it (nothing waits for an anchor)."""
    if policy.max_lag is None:
        return
    times = [t for t in (seen.stamped, *(c.timestamp for c in seen.cosigned)) if t is not None]
    if not times:
        check.fail("anchor lag: the latest anchored checkpoint has no verified time")
        return
    age = max(0, int(policy.now - max(times)))
    if ahead >= 0:
        which = "the audited checkpoint is anchored" if ahead == 0 else "a later one is anchored"
        check.say("anchor lag", f"OK, {which} ({age} s ago)")
    elif age <= policy.max_lag:
        check.say("anchor lag", f"OK, latest anchor {age} s old, at most {policy.max_lag}")
    else:
        check.fail(f"anchor lag: latest anchor {age} s old, more than {policy.max_lag}")
