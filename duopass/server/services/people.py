"""Holders' personal data (name, number, e-mail, phone): recorded apart from the books, and
erased for good while the books and the ledger still verify.

A holder's ledger leaves carry no personal data (§7): their `holder` field is a keyed digest of
the opaque handle, and `holder_create` carries a keyed digest of the number salted with the
holder's own `person_key` (`Keyring.person_digest`). Erasure deletes the `holder_people` row,
`person_key` with it, and replaces the login, so nothing left in the database or the ledger
names the person; the account, its postings and the handle stay, pseudonymous.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import decisions, devices, sessions, tlog
from duopass.server.store.access import OidcBinding
from duopass.server.store.db import Database
from duopass.server.store.passkeys import Passkey
from duopass.server.store.people import Erasure, HolderPerson
from duopass.server.store.risk import JournalBaseline, holder_key
from duopass.server.store.tables import Account, Device, Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "ERASED_PASSWORD_HASH",
    "Person",
    "erase",
    "erased_login",
    "names",
    "of",
    "record",
    "scrub",
]

PERSON_KEY_BYTES = 32
ERASED_PASSWORD_HASH = "!erased"  # noqa: S105  (a marker no password matches, not one)
"""Not an Argon2 hash: no password matches it (`auth._matches` reads it as invalid)."""


@dataclass(frozen=True)
class Person:
    """What the card office knows of a holder (checked by the request models)."""

    name: str
    number: str
    email: str
    phone: str | None = None


def record(unit: Unit, holder: Holder, person: Person) -> bytes:
    """Store a new holder's personal data; returns the keyed digest of the number for their
    `holder_create` leaf. A number belongs to one holder (CONFLICT)."""
    session = unit.session
    taken = select(HolderPerson.holder_id).where(HolderPerson.number == person.number)
    if session.scalars(taken).first() is not None:
        raise Problem(ProblemCode.CONFLICT, "another holder has this number")
    key = secrets.token_bytes(PERSON_KEY_BYTES)
    session.add(
        HolderPerson(
            holder_id=holder.id,
            name=person.name,
            number=person.number,
            email=person.email,
            phone=person.phone,
            person_key=key,
        )
    )
    return unit.keyring.person_digest(key, person.number)


def of(session: Session, holder_id: int) -> HolderPerson | None:
    return session.get(HolderPerson, holder_id)


def names(session: Session, holder_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    """How staff see holders named elsewhere (alerts): handle, login and name (None once
    erased, or for a holder from before names were kept), by holder id."""
    wanted = {holder_id for holder_id in holder_ids if holder_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Holder.id, Holder.handle, Holder.login, HolderPerson.name)
        .outerjoin(HolderPerson, HolderPerson.holder_id == Holder.id)
        .where(Holder.id.in_(wanted))
    )
    return {
        holder_id: {"holder_handle": handle, "holder_login": login, "holder_name": name}
        for holder_id, handle, login, name in rows
    }


def erased_login(holder: Holder) -> str:
    """What stands for the login once erased: the handle, which names nobody."""
    return f"erased:{holder.handle}"


def erase(unit: Unit, holder: Holder, *, by: int, keep_money: bool = False) -> dict[str, int]:
    """Erase a holder's personal data for good: the `holder_people` row (and its `person_key`), the
    login, the password, second factor and passkeys; every device, credential and session of theirs
    ends; the inputs kept beside their policy decisions are emptied. The erasure is recorded (who,
    when) in `erasures` and the ledger. On SQLite the deleted bytes are overwritten in the file
    (`secure_delete`); `people.scrub` then empties the write-ahead log. An account holding money or
    debt is refused (409 account_not_empty) unless `keep_money`: the money then stays on the
    account, under the handle alone."""
    session = unit.session
    if session.get(Erasure, holder.id) is not None:
        raise Problem(ProblemCode.CONFLICT, "this holder's personal data was erased already")
    account = session.get(Account, holder.account_id)
    if account is not None and account.balance != 0 and not keep_money:
        # nobody can sign in to an erased account: its money would be stranded unseen
        raise Problem(
            ProblemCode.ACCOUNT_NOT_EMPTY,
            f"the account's balance is {account.balance} (minor units): refund it or settle "
            "the debt first, or erase with keep_money to leave it on a pseudonymous account",
        )
    with _secure_delete(session):
        person = session.get(HolderPerson, holder.id)
        if person is not None:
            session.delete(person)
        holder.login = erased_login(holder)
        holder.password_hash = ERASED_PASSWORD_HASH
        holder.totp_secret = holder.totp_pending = None
        holder.totp_pending_at = None
        session.execute(delete(Passkey).where(Passkey.holder_id == holder.id))
        unbound = (OidcBinding.kind == "holder") & (OidcBinding.principal_id == holder.id)
        session.execute(delete(OidcBinding).where(unbound))
        emptied = decisions.erase_inputs(unit, holder.id)  # their leaves stay whole
        session.execute(delete(JournalBaseline).where(JournalBaseline.key == holder_key(holder.id)))
        session.flush()
    live = select(Device.id).where(Device.holder_id == holder.id, Device.revoked_at.is_(None))
    device_ids = session.scalars(live).all()
    session.execute(update(Device).where(Device.id.in_(device_ids)).values(revoked_at=unit.now))
    credentials = devices.revoke_live_credentials(unit, holder, device_id=None, reason="erased")
    ended = sessions.end_sessions(session, staff=False, principal_id=holder.id, keep=None)
    body = {
        "holder": unit.keyring.digest(holder.handle),
        "by": by,
        "sessions": ended,
        "devices": len(device_ids),
        "credentials": credentials,
    }
    index = tlog.append(unit, EventType.HOLDER_ERASE, body)
    session.add(Erasure(holder_id=holder.id, erased_at=unit.now, erased_by=by, ledger_index=index))
    return {
        "sessions": ended,
        "devices": len(device_ids),
        "credentials": credentials,
        "decisions": emptied,
        "ledger_index": index,
    }


def scrub(db: Database) -> bool:
    """After an erasure commits: copy the write-ahead log into the SQLite file and empty it, so
    that the erased bytes survive in neither. False when a reader kept part of the log (the
    next checkpoint completes it); True on PostgreSQL, which has no such step (docs/server.md)."""
    return db.checkpoint()


@contextmanager
def _secure_delete(session: Session) -> Iterator[None]:
    """SQLite overwrites with zeros what this connection deletes or replaces inside the block
    (PRAGMA secure_delete); PostgreSQL leaves dead rows to VACUUM (docs/server.md)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = int(connection.exec_driver_sql("PRAGMA secure_delete").scalar() or 0)
    connection.exec_driver_sql("PRAGMA secure_delete=1")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA secure_delete={before}")
