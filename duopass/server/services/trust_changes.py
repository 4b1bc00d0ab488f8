"""The trust change log behind bundle deltas: each change gets the next bundle version."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.store.tables import Meta, TrustChange

SEQ = "bundle_seq"


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
    """Log a revocation, freeze, unfreeze or published key; returns its bundle version."""
    row = session.scalars(select(Meta).where(Meta.name == SEQ).with_for_update()).one_or_none()
    if row is None:
        row = Meta(name=SEQ, value=0)
        session.add(row)
    row.value += 1
    session.add(TrustChange(seq=row.value, change=change, cti=cti, sub=sub, kid=kid, until=until))
    session.flush()
    return row.value
