"""Top-ups and refunds: idempotent by request id, double-entry, on the ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, ledger
from duopass.server.store.tables import Holder, Transaction


def top_up(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    holder: Holder,
    *,
    amount: int,
    request_id: str,
    now: int,
) -> Transaction:
    """Credit the holder from top-up clearing; the same request id again returns the first."""
    earlier = _earlier(session, request_id, "topup")
    if earlier is not None:
        return earlier
    account = accounts.lock(session, holder.account_id)
    clearing = accounts.system_account(session, "topup", account.currency)
    event = {"holder": keyring.digest(holder.handle), "amount": amount}
    return _book(
        session,
        settings,
        "topup",
        [(clearing.id, -amount), (account.id, amount)],
        request_id=request_id,
        now=now,
        event=event,
    )


def refund(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    holder: Holder,
    *,
    merchant_account_id: int,
    amount: int,
    request_id: str,
    now: int,
) -> Transaction:
    """Move money back from a merchant to the holder (a returned purchase)."""
    accounts.merchant(session, merchant_account_id)
    earlier = _earlier(session, request_id, "refund")
    if earlier is not None:
        return earlier
    account = accounts.lock(session, holder.account_id)
    accounts.lock(session, merchant_account_id)
    event = {
        "holder": keyring.digest(holder.handle),
        "amount": amount,
        "merchant": merchant_account_id,
    }
    return _book(
        session,
        settings,
        "refund",
        [(merchant_account_id, -amount), (account.id, amount)],
        request_id=request_id,
        now=now,
        event=event,
    )


def _earlier(session: Session, request_id: str, kind: str) -> Transaction | None:
    """The transaction a retry of this request already booked, if any."""
    earlier = accounts.find_request(session, request_id)
    if earlier is not None and earlier.kind != kind:
        raise Problem(Code.CONFLICT, "request id used for something else")
    return earlier


def _book(
    session: Session,
    settings: Settings,
    kind: str,
    legs: list[tuple[int, int]],
    *,
    request_id: str,
    now: int,
    event: dict[str, Any],
) -> Transaction:
    """Post the movement and its ledger event in the caller's transaction."""
    txn_id = accounts.post(
        session,
        kind=kind,
        legs=legs,
        now=now,
        occurred_at=now,
        zone=settings.zone,
        request_id=request_id,
    )
    ledger.append(session, kind, now, settings.issuer, {**event, "transaction": txn_id})
    txn = session.get(Transaction, txn_id)
    assert txn is not None
    return txn
