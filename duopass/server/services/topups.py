"""Top-ups and refunds: idempotent by request id (bound to its request), double-entry, on the
ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, idempotency, ledger
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
    """Credit the holder from top-up clearing; the same request again returns the first, and
    another request under the same id is refused."""
    account = accounts.lock(session, holder.account_id)
    fingerprint = idempotency.money(
        "topup", holder_account=account.id, amount=amount, currency=account.currency
    )
    earlier = _earlier(session, request_id, fingerprint)
    if earlier is not None:
        return earlier
    clearing = accounts.system_account(session, "topup", account.currency)
    event = {"holder": keyring.digest(holder.handle), "amount": amount}
    return _book(
        session,
        settings,
        "topup",
        [(clearing.id, -amount), (account.id, amount)],
        request_id=request_id,
        fingerprint=fingerprint,
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
    """Move money back from a merchant to the holder (a returned purchase): in the holder's
    currency, and at most what the merchant has taken in and not yet refunded."""
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
    merchant = accounts.lock(session, merchant_account_id)
    if merchant.currency != account.currency:
        raise Problem(
            Code.CONFLICT, f"the merchant books {merchant.currency}, not {account.currency}"
        )
    if amount > merchant.balance:
        raise Problem(
            Code.NO_FUNDS, f"the merchant has taken in {merchant.balance}, less than the refund"
        )
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
        fingerprint=fingerprint,
        now=now,
        event=event,
    )


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
    session: Session,
    settings: Settings,
    kind: str,
    legs: list[tuple[int, int]],
    *,
    request_id: str,
    fingerprint: bytes,
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
        request_fingerprint=fingerprint,
    )
    ledger.append(session, kind, now, settings.issuer, {**event, "transaction": txn_id})
    txn = session.get(Transaction, txn_id)
    assert txn is not None
    return txn
