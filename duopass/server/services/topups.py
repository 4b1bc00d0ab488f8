"""Top-ups and refunds: idempotent by request id, double-entry, on the ledger."""

from __future__ import annotations

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
    earlier = accounts.find_request(session, request_id)
    if earlier is not None:
        if earlier.kind != "topup":
            raise Problem(Code.CONFLICT, "request id used for something else")
        return earlier
    account = accounts.lock(session, holder.account_id)
    clearing = accounts.system_account(session, "topup", account.currency)
    txn_id = accounts.post(
        session,
        kind="topup",
        legs=[(clearing.id, -amount), (account.id, amount)],
        now=now,
        occurred_at=now,
        zone=settings.zone,
        request_id=request_id,
    )
    ledger.append(
        session,
        "topup",
        now,
        settings.issuer,
        {"holder": keyring.digest(holder.handle), "amount": amount, "transaction": txn_id},
    )
    txn = session.get(Transaction, txn_id)
    assert txn is not None
    return txn


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
    earlier = accounts.find_request(session, request_id)
    if earlier is not None:
        if earlier.kind != "refund":
            raise Problem(Code.CONFLICT, "request id used for something else")
        return earlier
    account = accounts.lock(session, holder.account_id)
    accounts.lock(session, merchant_account_id)
    txn_id = accounts.post(
        session,
        kind="refund",
        legs=[(merchant_account_id, -amount), (account.id, amount)],
        now=now,
        occurred_at=now,
        zone=settings.zone,
        request_id=request_id,
    )
    ledger.append(
        session,
        "refund",
        now,
        settings.issuer,
        {
            "holder": keyring.digest(holder.handle),
            "amount": amount,
            "merchant": merchant_account_id,
            "transaction": txn_id,
        },
    )
    txn = session.get(Transaction, txn_id)
    assert txn is not None
    return txn
