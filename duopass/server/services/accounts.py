"""Money (§4): double-entry postings in minor units, per-account locks, free funds and holds.

One sign convention for holds: an amount *held* raises `held`, an amount *released* lowers it;
both are positive numbers here (`domain.holds` says when which happens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from duopass.server import domain
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store import sql
from duopass.server.store.tables import Account, Holder, Posting, Transaction
from duopass.server.unit_of_work import Unit


def business_date(when: int, zone: ZoneInfo) -> str:
    """The day a time falls on in the issuer's time zone. A movement settles on the day it is
    booked (not the day it happened on a terminal), so a closed day never changes."""
    return datetime.fromtimestamp(when, zone).date().isoformat()


def lock(session: Session, account_id: int) -> Account:
    """The account, locked until the end of the transaction: every operation that reads or
    changes a balance or holds runs under this lock (SQLite: the database write lock)."""
    return session.scalars(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def lock_all(session: Session, account_ids: Sequence[int], *, nowait: bool = False) -> None:
    """Lock several accounts in id order, so that two units locking overlapping sets never
    deadlock (SQLite: the database write lock already serialises). `nowait`: fail at once with
    OperationalError if another transaction holds one, rather than wait while holding others."""
    if account_ids and session.get_bind().dialect.name != "sqlite":
        session.execute(
            select(Account.id)
            .where(Account.id.in_(sorted(set(account_ids))))
            .order_by(Account.id)
            .with_for_update(nowait=nowait)
        ).all()


def free_funds(account: Account) -> int:
    """Balance plus overdraft minus the holds of unseen counters (§4.1)."""
    return domain.free_funds(
        balance=account.balance, overdraft=account.overdraft, held=account.held
    )


def system_account(session: Session, kind: str, currency: str) -> Account:
    """The top-up clearing, pending or loss account of a currency, created on first use."""
    name = f"{kind}:{currency}"
    account = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    if account is None:
        account = Account(kind=kind, name=name, currency=currency, balance=0, overdraft=0, held=0)
        session.add(account)
        session.flush()
    return account


def system_accounts(session: Session, currency: str) -> list[int]:
    """The ids of the pending and loss accounts of a currency that exist."""
    names = [f"pending:{currency}", f"loss:{currency}"]
    return list(session.scalars(select(Account.id).where(Account.name.in_(names))))


def find_request(session: Session, request_id: str) -> Transaction | None:
    return session.scalars(
        select(Transaction).where(Transaction.request_id == request_id)
    ).one_or_none()


def post(
    unit: Unit,
    *,
    kind: str,
    legs: Sequence[tuple[int, int]],
    occurred_at: int,
    request_id: str | None = None,
    request_fingerprint: bytes | None = None,
    terminal_id: str | None = None,
    memo: str = "",
    released: Mapping[int, int] | None = None,
    txn_id: int | None = None,
) -> int:
    """Book one movement: `legs` are (account id, amount) and sum to zero; returns its id.
    `released` holds (account id → amount) are released in the same update as the balance.
    `txn_id`: its id, taken ahead (`sql.SETTLED_NUMBERED`): then nothing here waits for an
    answer (`sql.Raw.later`). Prepared SQL on the driver (no ORM objects): this is on every
    payment's path."""
    released = released or {}
    assert released.keys() <= {a for a, _ in legs}, "holds are released on a leg's account"
    assert all(amount >= 0 for amount in released.values()), "a release is positive"
    now = unit.now
    day = business_date(now, unit.settings.zone)
    row = _transaction(
        kind, legs, now=now, day=day, occurred_at=occurred_at, terminal_id=terminal_id, memo=memo
    )
    db = sql.raw(unit.session)
    row.update(request_id=request_id, request_fingerprint=request_fingerprint)
    if txn_id is None:
        (txn_id,) = db.one(sql.INSERT_TRANSACTION, row)
    elif not db.is_sqlite and len({a for a, _ in legs}) == len(legs):
        params: dict[str, object] = {**row, "id": txn_id}
        for n, (account_id, amount) in enumerate(legs):
            params.update({f"a{n}": account_id, f"m{n}": amount})
            params[f"r{n}"] = released.get(account_id, 0)
        db.later(sql.movement_writes(len(legs)), params)
        return int(txn_id)
    else:
        db.later(sql.INSERT_NUMBERED_TRANSACTION, {**row, "id": txn_id})
    db.later(sql.INSERT_POSTING, _postings(txn_id, legs), many=True)
    db.later(
        sql.CHANGE_BALANCE,
        [{"id": a, "amount": m, "released": released.get(a, 0)} for a, m in legs],
        many=True,
    )
    return int(txn_id)


def _transaction(
    kind: str,
    legs: Sequence[tuple[int, int]],
    *,
    now: int,
    day: str,
    occurred_at: int,
    terminal_id: str | None,
    memo: str,
) -> dict[str, object]:
    """A transaction's row, once its legs are known to balance."""
    assert sum(amount for _, amount in legs) == 0, "postings must balance"
    assert all(amount for _, amount in legs), "no empty legs"
    return {
        "kind": kind,
        "created_at": now,
        "occurred_at": occurred_at,
        "business_date": day,
        "terminal_id": terminal_id,
        "memo": memo[:200],
    }


def _postings(txn_id: int, legs: Sequence[tuple[int, int]]) -> list[dict[str, int]]:
    return [{"transaction_id": txn_id, "account_id": a, "amount": m} for a, m in legs]


class Movements:
    """Movements booked together at the end of a unit (a journal batch): one INSERT of their
    transactions (ids returned in order), one of their postings, and one UPDATE per account of
    the summed balance and hold changes. `add` returns the movement's number, `write` the ids."""

    def __init__(self, unit: Unit) -> None:
        self.session, self.now = unit.session, unit.now
        self.day = business_date(unit.now, unit.settings.zone)
        self.transactions: list[dict[str, object]] = []
        self.legs: list[list[tuple[int, int]]] = []
        self.balance: dict[int, int] = {}
        self.held: dict[int, int] = {}

    def add(
        self,
        *,
        kind: str,
        legs: Sequence[tuple[int, int]],
        occurred_at: int,
        terminal_id: str | None = None,
        memo: str = "",
    ) -> int:
        self.transactions.append(
            _transaction(
                kind,
                legs,
                now=self.now,
                day=self.day,
                occurred_at=occurred_at,
                terminal_id=terminal_id,
                memo=memo,
            )
        )
        self.legs.append(list(legs))
        for account_id, amount in legs:
            self.balance[account_id] = self.balance.get(account_id, 0) + amount
        return len(self.transactions) - 1

    def release(self, account_id: int, amount: int) -> None:
        """Release `amount` (>= 0) of the account's holds when the batch is written."""
        self.held[account_id] = self.held.get(account_id, 0) - amount

    def hold(self, account_id: int, amount: int) -> None:
        """Hold `amount` (>= 0) more (a void gives a counter its hold back)."""
        self.held[account_id] = self.held.get(account_id, 0) + amount

    def unwritten(self, account_id: int) -> tuple[int, int]:
        """(balance, held) changes of an account not yet written."""
        return self.balance.get(account_id, 0), self.held.get(account_id, 0)

    def write(self) -> list[int]:
        """Write everything added; returns the transactions' ids, in the order added."""
        ids: list[int] = []
        db = sql.raw(self.session)
        if self.transactions:
            ids = self._insert_transactions(db)
            db.many(
                sql.INSERT_POSTING,
                (
                    row
                    for txn_id, legs in zip(ids, self.legs, strict=True)
                    for row in _postings(txn_id, legs)
                ),
            )
        touched = sorted(self.balance.keys() | self.held.keys())
        db.many(
            sql.CHANGE_BALANCE,
            (
                {"id": a, "amount": self.balance.get(a, 0), "released": -self.held.get(a, 0)}
                for a in touched
                if self.balance.get(a, 0) or self.held.get(a, 0)
            ),
        )
        return ids

    def _insert_transactions(self, db: sql.Raw) -> list[int]:
        """Insert the transactions in one statement; their ids, in order. SQLite cannot say in
        which order a multi-row RETURNING answers (SQLAlchemy would insert row by row): there
        the one writer's rows take the ids after the largest, one by one, so the last id names
        them all."""
        if db.is_sqlite:
            self.session.flush()  # what the session holds goes first, as a session insert would
            db.many(sql.INSERT_TRANSACTIONS, self.transactions)
            last = int(db.one(sql.LAST_ROWID)[0])
            return list(range(last - len(self.transactions) + 1, last + 1))
        table = cast(Table, Transaction.__table__)  # Core, not the ORM's bulk path
        rows = self.session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            self.transactions,
        )
        return [int(txn_id) for txn_id in rows.scalars()]


def hold(session: Session, account_id: int, amount: int) -> None:
    """Hold `amount` (>= 0) of the account's free funds (a credential's counters, §4.1)."""
    assert amount >= 0
    if amount:
        sql.raw(session).run(sql.CHANGE_HELD, {"id": account_id, "delta": amount})


def release(session: Session, account_id: int, amount: int) -> None:
    """Release `amount` (>= 0) of the account's holds; callers release a hold at most once."""
    assert amount >= 0
    if amount:
        sql.raw(session).run(sql.CHANGE_HELD, {"id": account_id, "delta": -amount})


def create_merchant(session: Session, name: str, currency: str) -> int:
    """A merchant's account (the card office's books name it `merchant:<name>`)."""
    if session.scalars(select(Account.id).where(Account.name == f"merchant:{name}")).first():
        raise Problem(ProblemCode.CONFLICT, f"merchant {name!r} exists")
    account = Account(
        kind="merchant",
        name=f"merchant:{name}",
        currency=currency,
        balance=0,
        overdraft=0,
        held=0,
        unconfirmed_released=0,
    )
    session.add(account)
    session.flush()
    return account.id


def merchant(session: Session, account_id: int) -> Account:
    """A merchant's account, or NOT_FOUND: a refund or a till must name a real merchant."""
    account = session.get(Account, account_id)
    if account is None or account.kind != "merchant":
        raise Problem(ProblemCode.NOT_FOUND, "no such merchant account")
    return account


def describe(session: Session, account_id: int) -> dict[str, Any]:
    """One account as the card office sees it, or NOT_FOUND."""
    row = session.get(Account, account_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such account")
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "currency": row.currency,
        "balance": row.balance,
        "overdraft": row.overdraft,
        "held": row.held,
        "free_funds": free_funds(row),
    }


def books(session: Session) -> int:
    """The closed loop's check: every account's balance summed (zero while the books hold)."""
    return int(session.scalar(select(func.coalesce(func.sum(Account.balance), 0))) or 0)


STATEMENT_LINES_MAX = 50


def statement(session: Session, holder_id: int) -> dict[str, Any]:
    """A holder's account and latest movements, dated when they happened (the device's time)."""
    account = session.scalars(
        select(Account).join(Holder, Holder.account_id == Account.id).where(Holder.id == holder_id)
    ).one()
    rows = session.execute(
        select(Transaction.kind, Transaction.occurred_at, Transaction.business_date, Posting.amount)
        .join(Posting, Posting.transaction_id == Transaction.id)
        .where(Posting.account_id == account.id)
        .order_by(Transaction.id.desc())
        .limit(STATEMENT_LINES_MAX)
    )
    return {
        "currency": account.currency,
        "balance": account.balance,
        "overdraft": account.overdraft,
        "held": account.held,
        "free_funds": free_funds(account),
        "recent": [
            {"kind": k, "occurred_at": t, "business_date": d, "amount": a} for k, t, d, a in rows
        ],
    }
