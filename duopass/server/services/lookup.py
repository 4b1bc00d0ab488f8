"""What the card office looks up about holders: a search by login, number, name or e-mail; one
holder whole (account, personal data, devices, credentials); and their history, a page at a
time: online scans, journal entries and alerts.

A scan or journal entry is the holder's when it used a counter of one of their credentials
(`counters_seen`): acceptances, online and offline. A refusal is not tied to a holder unless it
raised an alert (listed with their alerts).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, Subquery, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from duopass.protocol.encoding import b64u_encode
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, alerts, paging
from duopass.server.store.people import Erasure, HolderPerson
from duopass.server.store.tables import (
    Account,
    Alert,
    CounterSeen,
    Credential,
    Device,
    Holder,
    JournalEntry,
    Scan,
)

__all__ = ["alerts_of", "holder", "journal_of", "scans_of", "search"]

DEVICES_SHOWN_MAX = 50
CREDENTIALS_SHOWN_MAX = 20


def _state(row: Holder, erased: bool) -> str:
    if erased:
        return "erased"
    if row.frozen:
        return "frozen"
    return "offline_suspended" if row.offline_suspended else "active"


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, case aside, its wildcards escaped."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, *, q: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Holders whose login, number, name or e-mail holds `q` (any case), by id."""
    after = paging.read_cursor(cursor, "holders", (int,))
    query = (
        select(Holder, HolderPerson, Account, Erasure.holder_id)
        .join(Account, Account.id == Holder.account_id)
        .outerjoin(HolderPerson, HolderPerson.holder_id == Holder.id)
        .outerjoin(Erasure, Erasure.holder_id == Holder.id)
        .order_by(Holder.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Holder.id > after[0])
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (
                        Holder.login,
                        HolderPerson.number,
                        HolderPerson.name,
                        HolderPerson.email,
                    )
                )
            )
        )
    items = [
        {
            "id": row.id,
            "handle": row.handle,
            "login": row.login,
            "name": person.name if person else None,
            "number": person.number if person else None,
            "state": _state(row, erased is not None),
            "balance": account.balance,
            "currency": account.currency,
        }
        for row, person, account, erased in session.execute(query)
    ]
    return paging.page("holders", items, limit, lambda item: (item["id"],))


def _by_handle(session: Session, handle: str) -> Holder:
    row = session.scalars(select(Holder).where(Holder.handle == handle)).one_or_none()
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such holder")
    return row


def holder(session: Session, handle: str) -> dict[str, Any]:
    """One holder as the card office sees them, or NOT_FOUND."""
    row = _by_handle(session, handle)
    person = session.get(HolderPerson, row.id)
    erasure = session.get(Erasure, row.id)
    devices = session.scalars(
        select(Device)
        .where(Device.holder_id == row.id)
        .order_by(Device.id.desc())
        .limit(DEVICES_SHOWN_MAX)
    )
    credentials = session.scalars(
        select(Credential)
        .where(Credential.holder_id == row.id)
        .order_by(Credential.iat.desc(), Credential.gen.desc())
        .limit(CREDENTIALS_SHOWN_MAX)
    )
    return {
        "id": row.id,
        "handle": row.handle,
        "login": row.login,
        "state": _state(row, erasure is not None),
        "frozen": row.frozen,
        "offline_suspended": row.offline_suspended,
        "second_factor": row.totp_secret is not None,
        "person": None
        if person is None
        else {
            "name": person.name,
            "number": person.number,
            "email": person.email,
            "phone": person.phone,
        },
        "erased": None
        if erasure is None
        else {
            "at": erasure.erased_at,
            "by": erasure.erased_by,
            "ledger_index": erasure.ledger_index,
        },
        "account": accounts.describe(session, row.account_id),
        "devices": [
            {"id": d.id, "enrolled_at": d.enrolled_at, "revoked_at": d.revoked_at} for d in devices
        ],
        "credentials": [_credential(c) for c in credentials],
    }


def _erasure(row: Erasure) -> dict[str, int]:
    return {"at": row.erased_at, "by": row.erased_by, "ledger_index": row.ledger_index}


def _credential(row: Credential) -> dict[str, Any]:
    return {
        "cti": b64u_encode(row.cti),
        "device_id": row.device_id,
        "gen": row.gen,
        "state": row.state,
        "offline": row.offline,
        "uses": row.uses,
        "iat": row.iat,
        "exp": row.exp,
    }


def _counters_of(holder_id: int) -> Subquery:
    """The holder's accepted counters: where (terminal, seq) each was accepted."""
    return (
        select(
            CounterSeen.cti,
            CounterSeen.ctr,
            CounterSeen.terminal_id,
            CounterSeen.seq,
            CounterSeen.amount,
        )
        .join(Credential, Credential.cti == CounterSeen.cti)
        .where(Credential.holder_id == holder_id)
        .subquery()
    )


def _newest_first(
    query: Select[Any], table: type[Scan] | type[JournalEntry], after: tuple[Any, ...] | None
) -> Select[Any]:
    """`query` newest first by (received_at, terminal_id, seq), after a cursor's key."""
    key = (table.received_at, table.terminal_id, table.seq)
    if after is not None:
        query = query.where(tuple_(*key) < tuple_(*after))
    return query.order_by(*(column.desc() for column in key))


def _scan_key(item: dict[str, Any]) -> tuple[int, str, int]:
    return (item["received_at"], item["terminal_id"], item["seq"])


def scans_of(session: Session, handle: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The holder's online scans, newest first: the verdict each was answered."""
    row = _by_handle(session, handle)
    after = paging.read_cursor(cursor, "scans", (int, str, int))
    counters = _counters_of(row.id)
    query = select(Scan, counters.c.cti, counters.c.ctr, counters.c.amount).join(
        counters, and_(counters.c.terminal_id == Scan.terminal_id, counters.c.seq == Scan.seq)
    )
    rows = session.execute(_newest_first(query, Scan, after).limit(limit + 1))
    items = [
        {
            "terminal_id": scan.terminal_id,
            "seq": scan.seq,
            "received_at": scan.received_at,
            "verdict": json.loads(scan.verdict),
            "provisional": scan.provisional,
            "cti": b64u_encode(cti),
            "ctr": ctr,
            "amount": amount,
        }
        for scan, cti, ctr, amount in rows
    ]
    return paging.page("scans", items, limit, _scan_key)


def journal_of(session: Session, handle: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The holder's journal entries as terminals uploaded them, newest first, and how each
    settled."""
    row = _by_handle(session, handle)
    after = paging.read_cursor(cursor, "journal", (int, str, int))
    counters = _counters_of(row.id)
    query = select(JournalEntry, counters.c.cti, counters.c.ctr, counters.c.amount).join(
        counters,
        and_(
            counters.c.terminal_id == JournalEntry.terminal_id,
            counters.c.seq == JournalEntry.seq,
        ),
    )
    rows = session.execute(_newest_first(query, JournalEntry, after).limit(limit + 1))
    items = [
        {
            "terminal_id": entry.terminal_id,
            "seq": entry.seq,
            "received_at": entry.received_at,
            "outcome": entry.outcome,
            "reason": entry.reason,
            "transaction_id": entry.transaction_id,
            "cti": b64u_encode(cti),
            "ctr": ctr,
            "amount": amount,
        }
        for entry, cti, ctr, amount in rows
    ]
    return paging.page("journal", items, limit, _scan_key)


def alerts_of(session: Session, handle: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The alerts raised about the holder, newest first, open and resolved."""
    row = _by_handle(session, handle)
    after = paging.read_cursor(cursor, "alerts", (int,))
    query = select(Alert).where(Alert.holder_id == row.id)
    if after is not None:
        query = query.where(Alert.id < after[0])
    rows = session.scalars(query.order_by(Alert.id.desc()).limit(limit + 1)).all()
    return paging.page("alerts", alerts.shown(session, rows), limit, lambda item: (item["id"],))
