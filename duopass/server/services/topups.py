"""Top-ups and refunds: idempotent by request id (bound to its request), double-entry, on the
tlog; a new one screened by the risk policy (`top_up`, `refund` points) and counted."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.risk import Signal
from duopass.risk.points import Point, Subject
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, idempotency, risk_engine, tlog
from duopass.server.store.tables import Holder, Transaction
from duopass.server.unit_of_work import Unit


def top_up(unit: Unit, holder: Holder, *, amount: int, request_id: str) -> Transaction:
    """Credit the holder from top-up clearing; the same request again returns the first, and
    another request under the same id is refused."""
    session = unit.session
    account = accounts.lock(session, holder.account_id)
    fingerprint = idempotency.money(
        "topup", holder_account=account.id, amount=amount, currency=account.currency
    )
    earlier = _earlier(session, request_id, fingerprint)
    if earlier is not None:
        return earlier
    _screen(unit, Point.TOP_UP, holder, amount)
    clearing = accounts.system_account(session, "topup", account.currency)
    event = {"holder": unit.keyring.digest(holder.handle), "amount": amount}
    return _book(
        unit,
        EventType.TOPUP,
        [(clearing.id, -amount), (account.id, amount)],
        request_id=request_id,
        fingerprint=fingerprint,
        event=event,
    )


def refund(
    unit: Unit, holder: Holder, *, merchant_account_id: int, amount: int, request_id: str
) -> Transaction:
    """Move money back from a merchant to the holder (a returned purchase): in the holder's
    currency, and at most what the merchant has taken in and not yet refunded."""
    session = unit.session
    accounts.merchant(session, merchant_account_id)
    account = accounts.lock(session, holder.account_id)
    fingerprint = idempotency.money(
        "refund",
        holder_account=account.id,
        amount=amount,
        currency=account.currency,
        merchant_account=merchant_account_id,
    )
    earlier = _earlier(session, request_id, fingerprint)
    if earlier is not None:
        return earlier
    _screen(unit, Point.REFUND, holder, amount)
    merchant = accounts.lock(session, merchant_account_id)
    if merchant.currency != account.currency:
        raise Problem(
            ProblemCode.CONFLICT, f"the merchant books {merchant.currency}, not {account.currency}"
        )
    if amount > merchant.balance:
        raise Problem(
            ProblemCode.NO_FUNDS,
            f"the merchant has taken in {merchant.balance}, less than the refund",
        )
    event = {
        "holder": unit.keyring.digest(holder.handle),
        "amount": amount,
        "merchant": merchant_account_id,
    }
    return _book(
        unit,
        EventType.REFUND,
        [(merchant_account_id, -amount), (account.id, amount)],
        request_id=request_id,
        fingerprint=fingerprint,
        event=event,
    )


def _screen(unit: Unit, point: Point, holder: Holder, amount: int) -> None:
    """The risk policy on a new top-up or refund (`risk_engine.Refused` when it refuses), then
    the request counted for the holder. A repeat of an earlier request is neither."""
    subject = Subject(risk_engine.holder_key(holder.id))
    risk_engine.screen(unit, point, subject, {"amount": amount, "staff": True}, holder=holder)
    signal = Signal.TOP_UP if point is Point.TOP_UP else Signal.REFUND
    risk_engine.observe(unit, signal, subject)


def _earlier(session: Session, request_id: str, fingerprint: bytes) -> Transaction | None:
    """The transaction a retry of this request already booked, if any. The same id with another
    kind, holder, amount, currency or merchant is refused: answering it with the first request's
    transaction would say money moved that did not. (Every row with a request id has its
    fingerprint, migration 0005 computed those of older rows, so a missing one is refused too.)"""
    earlier = accounts.find_request(session, request_id)
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise idempotency.refuse("this request id")
    return earlier


def _book(
    unit: Unit,
    kind: EventType,
    legs: list[tuple[int, int]],
    *,
    request_id: str,
    fingerprint: bytes,
    event: dict[str, Any],
) -> Transaction:
    """Post the movement and its ledger event in the unit's transaction."""
    txn_id = accounts.post(
        unit,
        kind=kind.value,
        legs=legs,
        occurred_at=unit.now,
        request_id=request_id,
        request_fingerprint=fingerprint,
    )
    tlog.append(unit, kind, {**event, "transaction": txn_id})
    txn = unit.session.get(Transaction, txn_id)
    assert txn is not None
    return txn
