"""A holder's history (`GET /v1/wallet/history`): every movement of their account, newest first,
a page at a time. A payment names its till, venue and merchant, the time it was scanned (the
terminal's clock corrected by its last sync) and the time the server booked it (an offline
payment is booked when its journal arrives), whether it was paid online, and whether it may
still be disputed (PROTOCOL §5.3: within 30 days of its booking, once)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from duopass.server.domain import Outcome
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import paging
from duopass.server.store.disputes import Dispute
from duopass.server.store.tables import (
    Account,
    CounterSeen,
    Credential,
    JournalEntry,
    Posting,
    Terminal,
)
from duopass.server.store.tables import Transaction as Txn

__all__ = ["DISPUTE_WINDOW_S", "charged", "history", "is_offline", "seen_counters"]

DISPUTE_WINDOW_S = 30 * 86_400
"""A payment may be disputed until 30 days after the server booked it (§5.3)."""

_OFFLINE = (Outcome.BOOKED.value, Outcome.DUPLICATE.value)


def is_offline(session: Session, txn_id: int) -> bool:
    """Booked from a terminal's journal (decided offline), not by an online scan."""
    found = session.scalar(
        select(JournalEntry.seq)
        .where(JournalEntry.transaction_id == txn_id, JournalEntry.outcome.in_(_OFFLINE))
        .limit(1)
    )
    return found is not None


def charged(session: Session, txn: Txn, *, holder_id: int, holder_account: int) -> int:
    """What a payment costs the holder now (minor units, >= 0): an offline one its debit; an
    online one what its counter still charges (after an amend), nothing once voided (a void
    deletes the counter's link to the payment). The counter is looked for among the holder's
    credentials' (the counters' key), not by transaction over every counter."""
    debit = session.scalar(
        select(Posting.amount).where(
            Posting.transaction_id == txn.id, Posting.account_id == holder_account
        )
    )
    if debit is None or debit >= 0:
        return 0
    if is_offline(session, txn.id):
        return -debit
    own = select(Credential.cti).where(Credential.holder_id == holder_id)
    amount = session.scalar(
        select(CounterSeen.amount)
        .where(CounterSeen.cti.in_(own), CounterSeen.transaction_id == txn.id)
        .limit(1)
    )
    return 0 if amount is None else min(int(amount), -debit)


def history(
    session: Session,
    *,
    holder_id: int,
    holder_account: int,
    now: int,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of the holder's movements, newest first (`paging.page`'s answer)."""
    key = paging.read_cursor(cursor, "history", (int,))
    merchant_leg, merchant = aliased(Posting), aliased(Account)
    query = (
        select(Txn, Posting.amount, merchant.name, Terminal.venue, Dispute.state)
        .join(Posting, Posting.transaction_id == Txn.id)
        .outerjoin(
            merchant_leg,
            and_(
                merchant_leg.transaction_id == Txn.id,
                merchant_leg.account_id != holder_account,
                merchant_leg.account_id.in_(select(Account.id).where(Account.kind == "merchant")),
            ),
        )
        .outerjoin(merchant, merchant.id == merchant_leg.account_id)
        .outerjoin(Terminal, Terminal.id == Txn.terminal_id)
        .outerjoin(Dispute, Dispute.transaction_id == Txn.id)
        .where(Posting.account_id == holder_account)
        .order_by(Txn.id.desc())
        .limit(limit + 1)
    )
    if key is not None:
        query = query.where(Txn.id < key[0])
    rows = session.execute(query).all()
    answer = paging.page("history", rows, limit, lambda row: (row[0].id,))
    holder = (holder_id, holder_account)
    answer["items"] = [_row(session, row, holder=holder, now=now) for row in answer["items"]]
    return answer


def _row(session: Session, row: Any, *, holder: tuple[int, int], now: int) -> dict[str, Any]:
    txn, amount, merchant, venue, disputed = row
    payment = txn.kind == "payment"
    open_until = txn.created_at + DISPUTE_WINDOW_S
    disputable = (
        payment
        and disputed is None
        and now <= open_until
        and charged(session, txn, holder_id=holder[0], holder_account=holder[1]) > 0
    )
    return {
        "id": txn.id,
        "kind": txn.kind,
        "amount": int(amount),
        "occurred_at": txn.occurred_at,
        "booked_at": txn.created_at,
        "business_date": txn.business_date,
        "terminal": txn.terminal_id,
        "venue": venue,
        "merchant": _merchant_name(merchant),
        "online": (not is_offline(session, txn.id)) if payment else None,
        "disputable": disputable,
        "dispute_until": open_until if payment else None,
        "dispute": disputed,
    }


def _merchant_name(account: str | None) -> str | None:
    """A merchant account as the holder reads it: `merchant:canteen` is `canteen`, and the box
    office's `merchant:box-office:CNY` (one a currency, for ticket orders) is `box-office`."""
    if account is None:
        return None
    name = account.removeprefix("merchant:")
    return "box-office" if name.startswith("box-office:") else name


def seen_counters(session: Session, *, holder_id: int, cti: bytes) -> list[int]:
    """The counters of the holder's credential `cti` the server has seen used (online or in a
    journal), ascending: a wallet lists the codes it showed and the server has not seen as
    payments perhaps not yet uploaded. Another holder's credential is `not_found`."""
    uses = session.scalar(
        select(Credential.uses).where(Credential.cti == cti, Credential.holder_id == holder_id)
    )
    if uses is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such credential of yours")
    return list(
        session.scalars(
            select(CounterSeen.ctr)
            .where(CounterSeen.cti == cti)
            .order_by(CounterSeen.ctr)
            .limit(max(uses, 1))
        )
    )
