"""Disputes (PROTOCOL §5.3): a holder disputes one of their payments within 30 days of its
booking; staff decide. Upheld, the amount the payment cost the holder is charged back to the
merchant: one double-entry movement (merchant debited, holder credited) on today's booking day,
so a closed settlement day never changes; a merchant balance below zero is the merchant's debt
to the issuer. Rejected, no money moves. Both steps are ledger events; a dispute is decided
exactly once (a second decision is 409 `conflict`, also when two race)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, paging, people, tlog
from duopass.server.services.history import DISPUTE_WINDOW_S, charged, is_offline
from duopass.server.store.disputes import Dispute
from duopass.server.store.tables import Account, Holder, Posting, Transaction
from duopass.server.unit_of_work import Unit

__all__ = ["decide", "describe", "for_holder", "for_staff", "open_dispute"]

Outcome = Literal["uphold", "reject"]


def open_dispute(unit: Unit, holder: Holder, *, entry: int, reason: str) -> Dispute:
    """Dispute the holder's payment `entry` (a transaction id from their history). Another
    holder's entry is `not_found`; not a payment, or one that no longer charges anything (a
    voided one), `not_disputable`; past 30 days of its booking `dispute_too_late`; disputed
    before (whatever came of it) `already_disputed`."""
    session = unit.session
    accounts.lock(session, holder.account_id)  # one holder's disputes open one at a time
    txn = session.get(Transaction, entry)
    own = session.scalar(
        select(Posting.id).where(
            Posting.transaction_id == entry, Posting.account_id == holder.account_id
        )
    )
    if txn is None or own is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such entry in your history")
    if session.scalar(select(Dispute.id).where(Dispute.transaction_id == entry)) is not None:
        raise Problem(ProblemCode.ALREADY_DISPUTED, "this payment is disputed already")
    merchant = _merchant_leg(session, entry)
    amount = 0
    if txn.kind == "payment":
        amount = charged(session, txn, holder_id=holder.id, holder_account=holder.account_id)
    if merchant is None or amount <= 0:
        raise Problem(ProblemCode.NOT_DISPUTABLE, "only a payment that charged you is disputed")
    if unit.now > txn.created_at + DISPUTE_WINDOW_S:
        raise Problem(
            ProblemCode.DISPUTE_TOO_LATE, "a payment is disputed within 30 days of its booking"
        )
    dispute = Dispute(
        holder_id=holder.id,
        transaction_id=entry,
        merchant_account_id=merchant.id,
        terminal_id=txn.terminal_id,
        amount=amount,
        currency=merchant.currency,
        reason=reason,
        state="open",
        opened_at=unit.now,
    )
    session.add(dispute)
    session.flush()
    body = {"dispute": dispute.id, "holder": unit.keyring.digest(holder.handle)}
    body.update(payment=entry, amount=amount, merchant=merchant.id)
    tlog.append(unit, EventType.DISPUTE_OPEN, body)
    return dispute


def _merchant_leg(session: Session, txn_id: int) -> Account | None:
    return session.scalars(
        select(Account)
        .join(Posting, Posting.account_id == Account.id)
        .where(Posting.transaction_id == txn_id, Account.kind == "merchant", Posting.amount > 0)
    ).first()


def decide(unit: Unit, *, dispute_id: int, outcome: Outcome, note: str, by: int) -> Dispute:
    """Uphold or reject an open dispute, exactly once: the state changes only from `open` in
    one conditional update (the loser of a race, or a repeat, is 409 `conflict`)."""
    session = unit.session
    state = "upheld" if outcome == "uphold" else "rejected"
    result = session.execute(
        update(Dispute)
        .where(Dispute.id == dispute_id, Dispute.state == "open")
        .values(state=state, decided_at=unit.now, decided_by=by, note=note)
        .execution_options(synchronize_session=False)
    )
    changed = int(getattr(result, "rowcount", 0) or 0)
    dispute = session.get(Dispute, dispute_id, populate_existing=True)
    if dispute is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such dispute")
    if changed != 1:
        raise Problem(ProblemCode.CONFLICT, f"this dispute was decided already: {dispute.state}")
    body: dict[str, Any] = {"dispute": dispute.id, "outcome": state, "by": by}
    if outcome == "uphold":
        txn = _charge_back(unit, dispute)
        dispute.chargeback_transaction_id = txn
        body.update(amount=dispute.amount, merchant=dispute.merchant_account_id, transaction=txn)
    tlog.append(unit, EventType.DISPUTE_DECIDE, body)
    return dispute


def _charge_back(unit: Unit, dispute: Dispute) -> int:
    """Merchant debited, holder credited, booked today (never on the payment's closed day)."""
    session = unit.session
    holder = session.get(Holder, dispute.holder_id)
    assert holder is not None
    accounts.lock_all(session, [dispute.merchant_account_id, holder.account_id])
    return accounts.post(
        unit,
        kind="chargeback",
        legs=[(dispute.merchant_account_id, -dispute.amount), (holder.account_id, dispute.amount)],
        occurred_at=unit.now,
        terminal_id=dispute.terminal_id,
        memo=f"dispute {dispute.id} of entry {dispute.transaction_id}",
    )


def describe(session: Session, dispute: Dispute, *, staff: bool = False) -> dict[str, Any]:
    """A dispute as its holder (or, with the holder named, staff) sees it."""
    payment = session.get(Transaction, dispute.transaction_id)
    assert payment is not None
    merchant = session.get(Account, dispute.merchant_account_id)
    shown: dict[str, Any] = {
        "id": dispute.id,
        "entry": dispute.transaction_id,
        "amount": dispute.amount,
        "currency": dispute.currency,
        "merchant": merchant.name.removeprefix("merchant:") if merchant else None,
        "terminal": dispute.terminal_id,
        "paid_at": payment.occurred_at,
        "booked_at": payment.created_at,
        "online": not is_offline(session, payment.id),
        "reason": dispute.reason,
        "state": dispute.state,
        "opened_at": dispute.opened_at,
        "decided_at": dispute.decided_at,
        "note": dispute.note,
        "chargeback": dispute.chargeback_transaction_id,
    }
    if staff:
        shown["merchant_account_id"] = dispute.merchant_account_id
        shown["decided_by"] = dispute.decided_by
    return shown


def for_holder(session: Session, holder_id: int, *, limit: int, cursor: str | None) -> Any:
    """The holder's disputes, newest first, a page at a time."""
    key = paging.read_cursor(cursor, "my-disputes", (int,))
    query = select(Dispute).where(Dispute.holder_id == holder_id)
    if key is not None:
        query = query.where(Dispute.id < key[0])
    rows = session.scalars(query.order_by(Dispute.id.desc()).limit(limit + 1)).all()
    answer = paging.page("my-disputes", rows, limit, lambda row: (row.id,))
    answer["items"] = [describe(session, row) for row in answer["items"]]
    return answer


def for_staff(session: Session, *, state: str, limit: int, cursor: str | None) -> Any:
    """Disputes in `state`, oldest first, each naming its holder (handle, login, name)."""
    listing = f"disputes-{state}"
    key = paging.read_cursor(cursor, listing, (int,))
    rows: Sequence[Dispute] = session.scalars(
        select(Dispute)
        .where(Dispute.state == state, Dispute.id > (key[0] if key else 0))
        .order_by(Dispute.id)
        .limit(limit + 1)
    ).all()
    answer = paging.page(listing, rows, limit, lambda row: (row.id,))
    named = people.names(session, (row.holder_id for row in answer["items"]))
    answer["items"] = [
        describe(session, row, staff=True) | dict(named.get(row.holder_id, {}))
        for row in answer["items"]
    ]
    return answer
