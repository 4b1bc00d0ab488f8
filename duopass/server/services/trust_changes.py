"""The trust change log behind bundle deltas: each change gets the next bundle version."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.store import sql
from duopass.server.store.sql import statement
from duopass.server.store.tables import Meta, TrustChange

SEQ = "bundle_seq"
BUMP = statement("UPDATE meta SET value = value + 1 WHERE name = :name RETURNING value")


def current_seq(session: Session) -> int:
    row = session.get(Meta, SEQ)
    return row.value if row is not None else 0


def record(
    session: Session,
    change: str,
    *,
    cti: bytes | None = None,
    sub: str | None = None,
    kid: bytes | None = None,
    until: int | None = None,
) -> int:
    """Log a revocation, freeze, unfreeze or published key; returns its bundle version.

    The counter moves in one statement on the driver (its row stays locked to the end of the
    transaction, as a locked read would keep it); the change itself is written with the unit."""
    bumped = sql.raw(session).one(BUMP, {"name": SEQ})
    if bumped is None:
        return _first(session, TrustChange(change=change, cti=cti, sub=sub, kid=kid, until=until))
    held = session.identity_map.get(session.identity_key(Meta, SEQ))
    if held is not None:
        session.expire(held)  # read in this unit before: its value moved around the ORM
    seq = int(bumped[0])
    session.add(TrustChange(seq=seq, change=change, cti=cti, sub=sub, kid=kid, until=until))
    return seq


def _first(session: Session, change: TrustChange) -> int:
    """The first change of a database whose counter has no row yet."""
    row = session.scalars(select(Meta).where(Meta.name == SEQ).with_for_update()).one_or_none()
    if row is None:
        row = Meta(name=SEQ, value=0)
        session.add(row)
    row.value += 1
    change.seq = row.value
    session.add(change)
    session.flush()
    return row.value
