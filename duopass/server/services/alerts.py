"""Detection and response (§4.4-§4.5, §5): alerts with their evidence, offline use suspended at
once, and the review queue where a person freezes an account or moves a pending amount to the
holder or to the loss account (a conflict's amount too, booked to the merchant only then).

Only a person freezes. What the server does by itself on evidence is suspend offline use: the
holder's live credentials are revoked (online at once, offline with the next bundle) and the
next sync issues a credential with no offline uses. Online payments within free funds go on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.encoding import b64u_encode
from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, ledger, people
from duopass.server.store.tables import Alert, Credential, Holder, Terminal


class Kind(StrEnum):
    """What an alert is about; added, never renamed (they are in the ledger and in reports)."""

    RELAY_SUSPECTED = "relay_suspected"
    """A counter accepted twice with `ts` within `freshness_s`: a double scan or a photo."""
    CLONE = "clone"
    """A counter accepted twice with `ts` further apart: the device key is on two phones."""
    USES_EXCEEDED = "uses_exceeded"
    ABOVE_MARK = "above_mark"
    """A counter above the mark the wallet reported at refresh."""
    REVOKED_ACCEPTED = "revoked_accepted"
    """Accepted under a bundle that already revoked the credential (or froze the subject)."""
    NEGATIVE_FUNDS = "negative_funds"
    """A duplicate took the holder's free funds below zero."""
    PENDING = "pending"
    """An entry that could not be settled: its amount waits in the pending account."""
    CONFLICT = "conflict"
    """Different bytes for a (terminal, seq) the server already holds: nothing booked (§5.2)."""
    GAP = "gap"
    """A batch that starts past the terminal's acknowledged entries, or breaks the hash chain."""
    MISSING_ENTRY = "missing_entry"
    """An online verdict whose journal entry never came within the late window: now final."""


SUSPENDING = frozenset(
    {Kind.CLONE, Kind.USES_EXCEEDED, Kind.ABOVE_MARK, Kind.REVOKED_ACCEPTED, Kind.NEGATIVE_FUNDS}
)
"""Evidence that suspends offline use at once (§4.5)."""


class Action(StrEnum):
    """What a reviewer does with an alert."""

    DISMISS = "dismiss"
    FREEZE = "freeze"
    TO_HOLDER = "to_holder"
    """Charge the pending amount to the holder (debit holder, credit pending). A conflict's
    amount is first booked to the till's merchant against pending (§5.2)."""
    TO_LOSS = "to_loss"
    """Write the pending amount off (debit loss, credit pending); a conflict's as above."""


def raise_alert(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    kind: Kind,
    *,
    now: int,
    evidence: Mapping[str, Any],
    holder: Holder | None = None,
    cti: bytes | None = None,
    terminal_id: str | None = None,
    seq: int | None = None,
    pending: int = 0,
    currency: str | None = None,
) -> Alert:
    """Record an alert (and its ledger event); suspend offline use when the evidence says so."""
    alert = Alert(
        kind=kind.value,
        created_at=now,
        holder_id=holder.id if holder is not None else None,
        cti=cti,
        terminal_id=terminal_id,
        seq=seq,
        pending=pending,
        currency=currency,
        evidence=json.dumps(_jsonable(evidence), sort_keys=True),
        state="open",
    )
    session.add(alert)
    session.flush()
    body: dict[str, Any] = {"alert": alert.id, "kind": kind.value}
    if holder is not None:
        body["holder"] = keyring.digest(holder.handle)
    if cti is not None:
        body["cti"] = cti
    if terminal_id is not None and seq is not None:
        body.update(terminal=terminal_id, seq=seq)
    if pending:
        body["pending"] = pending
    ledger.append(session, "alert", now, settings.issuer, body)
    if kind in SUSPENDING and holder is not None:
        suspend_offline(session, settings, holder, reason=kind.value, now=now)
    return alert


def conflict(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    terminal_id: str,
    seq: int,
    stored: bytes,
    received: bytes,
    amount: int,
    scanned_at: int | None,
    cti: bytes | None,
    now: int,
) -> None:
    """Other bytes for a (terminal_id, seq) the server holds (§5.2): an alert holding both byte
    strings, once per distinct entry however often its batch is resent, naming the holder whose
    credential its code carries. It books nothing: `amount` (what the entry would have charged
    the till) waits in the evidence until a person decides at `review`."""
    digest = hashlib.sha256(received).hexdigest()
    for earlier in session.scalars(
        select(Alert.evidence).where(
            Alert.kind == Kind.CONFLICT.value, Alert.terminal_id == terminal_id, Alert.seq == seq
        )
    ):
        if json.loads(earlier).get("received_sha256") == digest:
            return
    credential = session.get(Credential, cti) if cti is not None else None
    holder = session.get(Holder, credential.holder_id) if credential is not None else None
    evidence: dict[str, Any] = {
        "stored": stored,
        "received": received,
        "received_sha256": digest,
        "amount": amount,
    }
    if scanned_at is not None:
        evidence["scanned_at"] = scanned_at
    raise_alert(
        session,
        settings,
        keyring,
        Kind.CONFLICT,
        now=now,
        evidence=evidence,
        holder=holder,
        cti=cti if credential is not None else None,
        terminal_id=terminal_id,
        seq=seq,
    )


def suspend_offline(
    session: Session, settings: Settings, holder: Holder, *, reason: str, now: int
) -> None:
    """Revoke the holder's live credentials; from now on they are issued for online use only."""
    if not holder.offline_suspended:
        holder.offline_suspended = True
        ledger.append(session, "offline_suspend", now, settings.issuer, {"holder_id": holder.id})
    people.revoke_live_credentials(
        session, settings, holder, device_id=None, reason=f"offline suspended: {reason}", now=now
    )


def listing(session: Session, *, state: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Alert).where(Alert.state == state, Alert.id > after).order_by(Alert.id).limit(limit)
    )
    return [describe(alert) for alert in rows]


def describe(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "created_at": alert.created_at,
        "holder_id": alert.holder_id,
        "cti": b64u_encode(alert.cti) if alert.cti is not None else None,
        "terminal_id": alert.terminal_id,
        "seq": alert.seq,
        "pending": alert.pending,
        "currency": alert.currency,
        "evidence": json.loads(alert.evidence),
        "state": alert.state,
        "resolution": alert.resolution,
        "note": alert.note,
    }


def review(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    alert_id: int,
    action: Action,
    note: str,
    by: int,
    now: int,
) -> Alert:
    """Resolve an open alert. Moving money needs a pending amount; freezing needs a holder."""
    alert = session.scalars(select(Alert).where(Alert.id == alert_id).with_for_update()).first()
    if alert is None:
        raise Problem(Code.NOT_FOUND, "no such alert")
    if alert.state != "open":
        raise Problem(Code.CONFLICT, "alert already resolved")
    holder = session.get(Holder, alert.holder_id) if alert.holder_id is not None else None
    if action in (Action.FREEZE, Action.TO_HOLDER) and holder is None:
        raise Problem(Code.CONFLICT, "this alert names no holder")
    if action in (Action.TO_HOLDER, Action.TO_LOSS):
        if alert.kind == Kind.CONFLICT.value and not alert.pending:
            _book_conflict(session, settings, alert, now)
        if not alert.pending or alert.currency is None:
            raise Problem(Code.CONFLICT, "nothing pending on this alert")
        _move_pending(session, settings, alert, holder if action is Action.TO_HOLDER else None, now)
    if action is Action.FREEZE:
        assert holder is not None
        people.set_frozen(
            session,
            settings,
            keyring,
            holder,
            frozen=True,
            reason=note or alert.kind,
            by=by,
            now=now,
        )
    alert.state, alert.resolution, alert.note = "resolved", action.value, note[:200]
    alert.resolved_by, alert.resolved_at = by, now
    ledger.append(
        session,
        "review",
        now,
        settings.issuer,
        {"alert": alert.id, "action": action.value, "by": by},
    )
    return alert


def _book_conflict(session: Session, settings: Settings, alert: Alert, now: int) -> None:
    """A person decided to book a conflicting entry (§5.2): its amount is credited to the till's
    merchant against pending now, on today's booking day, for `_move_pending` to move on to the
    holder or the loss account in the same transaction. An entry that charged nothing (a
    refusal, an identity check, unreadable bytes) leaves nothing to book."""
    evidence = json.loads(alert.evidence)
    amount = int(evidence.get("amount", 0))
    terminal = session.get(Terminal, alert.terminal_id) if alert.terminal_id else None
    if not amount or terminal is None or terminal.currency is None:
        return
    merchant = terminal.merchant_account_id
    assert merchant is not None, "a till has a merchant"
    pending = accounts.system_account(session, "pending", terminal.currency)
    wanted = [merchant, pending.id, accounts.system_account(session, "loss", terminal.currency).id]
    holder = session.get(Holder, alert.holder_id) if alert.holder_id is not None else None
    if holder is not None:
        wanted.append(holder.account_id)
    accounts.lock_all(session, wanted)  # in id order, before any balance changes
    scanned_at = int(evidence.get("scanned_at", now))
    txn = accounts.post(
        session,
        kind="pending",
        legs=[(pending.id, -amount), (merchant, amount)],
        now=now,
        occurred_at=scanned_at,
        zone=settings.zone,
        terminal_id=terminal.id,
        memo=f"seq {alert.seq}: conflict, alert {alert.id}",
    )
    ledger.append(
        session,
        "conflict_booked",
        now,
        settings.issuer,
        {
            "alert": alert.id,
            "terminal": terminal.id,
            "seq": alert.seq,
            "amount": amount,
            "transaction": txn,
        },
    )
    alert.pending, alert.currency = amount, terminal.currency


def _move_pending(
    session: Session, settings: Settings, alert: Alert, holder: Holder | None, now: int
) -> None:
    assert alert.currency is not None
    pending = accounts.system_account(session, "pending", alert.currency)
    if holder is not None:
        target = accounts.lock(session, holder.account_id).id
    else:
        target = accounts.system_account(session, "loss", alert.currency).id
    txn = accounts.post(
        session,
        kind="review",
        legs=[(target, -alert.pending), (pending.id, alert.pending)],
        now=now,
        occurred_at=now,
        zone=settings.zone,
        memo=f"alert {alert.id}",
    )
    ledger.append(
        session,
        "pending_move",
        now,
        settings.issuer,
        {
            "alert": alert.id,
            "amount": alert.pending,
            "transaction": txn,
            "to_loss": int(holder is None),
        },
    )
    alert.pending = 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return b64u_encode(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
