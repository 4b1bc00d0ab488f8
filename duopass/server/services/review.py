"""The review queue (§4.5, §5.2): a person resolves an alert: dismisses it, freezes the holder,
or moves its pending amount to the holder or to the loss account (a conflicting entry's amount
is booked to the till's merchant only then), or releases a request the risk policy held for
review (`risk_records`: its next one goes through)."""

from __future__ import annotations

import json

from sqlalchemy import select

from duopass.ledger.events import EventType
from duopass.risk import AlertKind, ReviewAction
from duopass.server import logbook
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, holders, tlog
from duopass.server.store.tables import Alert, Holder, Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["review"]


def review(unit: Unit, *, alert_id: int, action: ReviewAction, note: str, by: int) -> Alert:
    """Resolve an open alert. Moving money needs a pending amount; freezing needs a holder."""
    session, now = unit.session, unit.now
    alert = session.scalars(select(Alert).where(Alert.id == alert_id).with_for_update()).first()
    if alert is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such alert")
    if alert.state != "open":
        raise Problem(ProblemCode.CONFLICT, "alert already resolved")
    holder = session.get(Holder, alert.holder_id) if alert.holder_id is not None else None
    if action in (ReviewAction.FREEZE, ReviewAction.TO_HOLDER) and holder is None:
        raise Problem(ProblemCode.CONFLICT, "this alert names no holder")
    if action is ReviewAction.RELEASE and (
        alert.kind != AlertKind.RISK_DECISION.value
        or json.loads(alert.evidence).get("action") != "review"
    ):
        raise Problem(ProblemCode.CONFLICT, "only a request held for risk review is released")
    if action in (ReviewAction.TO_HOLDER, ReviewAction.TO_LOSS):
        if alert.kind == AlertKind.CONFLICT.value and not alert.pending:
            _book_conflict(unit, alert)
        if not alert.pending or alert.currency is None:
            raise Problem(ProblemCode.CONFLICT, "nothing pending on this alert")
        _move_pending(unit, alert, holder if action is ReviewAction.TO_HOLDER else None)
    if action is ReviewAction.FREEZE:
        assert holder is not None
        holders.set_frozen(unit, holder, frozen=True, reason=note or alert.kind, by=by)
    alert.state, alert.resolution, alert.note = "resolved", action.value, note[:200]
    alert.resolved_by, alert.resolved_at = by, now
    tlog.append(unit, EventType.REVIEW, {"alert": alert.id, "action": action.value, "by": by})
    logbook.note(
        session,
        logbook.Event.ALERT_REVIEWED,
        f"alert {alert.id} resolved: {action.value}",
        alert=alert.id,
        action=action.value,
        holder_id=alert.holder_id,
        by=by,
    )
    return alert


def _book_conflict(unit: Unit, alert: Alert) -> None:
    """A person decided to book a conflicting entry (§5.2): its amount is credited to the till's
    merchant against pending now, on today's booking day, for `_move_pending` to move on to the
    holder or the loss account in the same transaction. An entry that charged nothing (a
    refusal, an identity check, unreadable bytes) leaves nothing to book."""
    session = unit.session
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
    scanned_at = int(evidence.get("scanned_at", unit.now))
    txn = accounts.post(
        unit,
        kind="pending",
        legs=[(pending.id, -amount), (merchant, amount)],
        occurred_at=scanned_at,
        terminal_id=terminal.id,
        memo=f"seq {alert.seq}: conflict, alert {alert.id}",
    )
    tlog.append(
        unit,
        EventType.CONFLICT_BOOKED,
        {
            "alert": alert.id,
            "terminal": terminal.id,
            "seq": alert.seq,
            "amount": amount,
            "transaction": txn,
        },
    )
    alert.pending, alert.currency = amount, terminal.currency


def _move_pending(unit: Unit, alert: Alert, holder: Holder | None) -> None:
    assert alert.currency is not None
    session = unit.session
    pending = accounts.system_account(session, "pending", alert.currency)
    if holder is not None:
        target = accounts.lock(session, holder.account_id).id
    else:
        target = accounts.system_account(session, "loss", alert.currency).id
    txn = accounts.post(
        unit,
        kind="review",
        legs=[(target, -alert.pending), (pending.id, alert.pending)],
        occurred_at=unit.now,
        memo=f"alert {alert.id}",
    )
    tlog.append(
        unit,
        EventType.PENDING_MOVE,
        {
            "alert": alert.id,
            "amount": alert.pending,
            "transaction": txn,
            "to_loss": int(holder is None),
        },
    )
    alert.pending = 0
