"""Alerts (§4.4-§4.5, §5): what `risk` concluded, recorded with its evidence and on the ledger,
and offline use suspended at once where the evidence says so. A person resolves them at
`review`.

Only a person freezes. What the server does by itself on evidence is suspend offline use: the
holder's live credentials are revoked (online at once, offline with the next bundle) and the
next sync issues a credential with no offline uses. Online payments within free funds go on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.encoding import b64u_encode
from duopass.risk import SUSPENDING, AlertKind
from duopass.server.logbook import Event, note
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import devices, paging, people, tlog
from duopass.server.store.tables import Alert, Credential, Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "conflict",
    "describe",
    "jsonable",
    "listing",
    "one",
    "raise_alert",
    "raise_once",
    "shown",
    "suspend_offline",
]


def raise_alert(
    unit: Unit,
    kind: AlertKind,
    *,
    evidence: Mapping[str, Any],
    holder: Holder | None = None,
    cti: bytes | None = None,
    terminal_id: str | None = None,
    seq: int | None = None,
    pending: int = 0,
    currency: str | None = None,
    grouping: str | None = None,
) -> Alert:
    """Record an alert (and its ledger event); suspend offline use when the evidence says so.
    One of a `grouping` is open at once (a second is refused: IntegrityError)."""
    session = unit.session
    alert = Alert(
        kind=kind.value,
        created_at=unit.now,
        holder_id=holder.id if holder is not None else None,
        cti=cti,
        terminal_id=terminal_id,
        seq=seq,
        pending=pending,
        currency=currency,
        evidence=json.dumps(jsonable(evidence), sort_keys=True),
        state="open",
        grouping=grouping,
    )
    session.add(alert)
    session.flush()
    body: dict[str, Any] = {"alert": alert.id, "kind": kind.value}
    if holder is not None:
        body["holder"] = unit.keyring.digest(holder.handle)
    if cti is not None:
        body["cti"] = cti
    if terminal_id is not None and seq is not None:
        body.update(terminal=terminal_id, seq=seq)
    if pending:
        body["pending"] = pending
    tlog.append(unit, EventType.ALERT, body)
    data: dict[str, Any] = {"alert": alert.id, "kind": kind.value, "at": alert.created_at}
    emit(
        unit,
        WebhookEvent.ALERT_RAISED,
        data | ({} if terminal_id is None else {"terminal": terminal_id}),
    )
    note(
        session,
        Event.ALERT_RAISED,
        f"alert {alert.id}: {kind.value}",
        alert=alert.id,
        kind=kind.value,
        holder_id=alert.holder_id,
        terminal_id=terminal_id,
        seq=seq,
        pending=pending,
        currency=currency,
    )
    if kind in SUSPENDING and holder is not None:
        suspend_offline(unit, holder, reason=kind.value)
    return alert


def raise_once(
    unit: Unit,
    kind: AlertKind,
    *,
    grouping: str,
    repeat: Callable[[dict[str, Any]], None],
    evidence: Mapping[str, Any],
    **fields: Any,
) -> Alert | None:
    """The alert of `grouping` raised (`raise_alert` with `fields`), or, while one is open,
    counted on: `repeat` updates the open one's evidence, under a row lock so counts made at
    once add up. Of units raising at once, one raises it (the unique index on open groupings
    holds the others back until it commits, then refuses theirs) and the others count on it.
    The alert raised, or None when it was counted on the open one."""
    if _count_on_open(unit, grouping, repeat):
        return None
    try:
        with unit.session.begin_nested():
            return raise_alert(unit, kind, evidence=evidence, grouping=grouping, **fields)
    except IntegrityError:  # raised meanwhile by a unit that has now committed
        if not _count_on_open(unit, grouping, repeat):
            raise
        return None


def _count_on_open(unit: Unit, grouping: str, repeat: Callable[[dict[str, Any]], None]) -> bool:
    query = select(Alert).where(Alert.grouping == grouping, Alert.state == "open")
    found = unit.session.scalars(query.with_for_update()).one_or_none()
    if found is None:
        return False
    held = json.loads(found.evidence)
    repeat(held)
    found.evidence = json.dumps(held, sort_keys=True)
    return True


def conflict(
    unit: Unit,
    *,
    terminal_id: str,
    seq: int,
    stored: bytes,
    received: bytes,
    amount: int,
    scanned_at: int | None,
    cti: bytes | None,
) -> None:
    """Other bytes for a (terminal_id, seq) the server holds (§5.2): an alert holding both byte
    strings, once per distinct entry however often its batch is resent, naming the holder whose
    credential its code carries. It books nothing: `amount` (what the entry would have charged
    the till) waits in the evidence until a person decides at `review`."""
    session = unit.session
    digest = hashlib.sha256(received).hexdigest()
    for earlier in session.scalars(
        select(Alert.evidence).where(
            Alert.kind == AlertKind.CONFLICT.value,
            Alert.terminal_id == terminal_id,
            Alert.seq == seq,
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
        unit,
        AlertKind.CONFLICT,
        evidence=evidence,
        holder=holder,
        cti=cti if credential is not None else None,
        terminal_id=terminal_id,
        seq=seq,
    )


def suspend_offline(unit: Unit, holder: Holder, *, reason: str) -> None:
    """Revoke the holder's live credentials; from now on they are issued for online use only."""
    if not holder.offline_suspended:
        holder.offline_suspended = True
        tlog.append(unit, EventType.OFFLINE_SUSPEND, {"holder_id": holder.id})
        note(
            unit.session,
            Event.OFFLINE_SUSPENDED,
            f"offline use suspended for holder {holder.id}: {reason}",
            holder_id=holder.id,
            reason=reason,
        )
    devices.revoke_live_credentials(
        unit, holder, device_id=None, reason=f"offline suspended: {reason}"
    )


def listing(
    session: Session, *, state: str, limit: int, cursor: str | None, kind: str | None = None
) -> dict[str, Any]:
    """A page of the review queue (alerts in `state`, of `kind` if given, oldest first):
    `paging.page`'s answer."""
    listing_name = f"alerts-{state}" if kind is None else f"alerts-{state}-{kind}"
    key = paging.read_cursor(cursor, listing_name, (int,))
    after = key[0] if key is not None else 0
    query = select(Alert).where(Alert.state == state, Alert.id > after)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    rows = session.scalars(query.order_by(Alert.id).limit(limit + 1)).all()
    answer = paging.page(listing_name, rows, limit, lambda alert: (alert.id,))
    answer["items"] = shown(session, answer["items"])  # names looked up for this page only
    return answer


def one(session: Session, alert_id: int) -> dict[str, Any]:
    """One alert as staff see it (404 not_found if there is none)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such alert")
    return shown(session, [alert])[0]


def shown(session: Session, rows: Sequence[Alert]) -> list[dict[str, Any]]:
    """Alerts as staff see them: each names its holder (handle, login and name)."""
    named = people.names(session, (alert.holder_id for alert in rows))
    return [describe(alert, named.get(alert.holder_id or 0)) for alert in rows]


def describe(alert: Alert, holder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An alert; `holder` names its holder (`people.names`)."""
    who = holder or {"holder_handle": None, "holder_login": None, "holder_name": None}
    return {
        "id": alert.id,
        "kind": alert.kind,
        "created_at": alert.created_at,
        "holder_id": alert.holder_id,
        **who,
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


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return b64u_encode(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
