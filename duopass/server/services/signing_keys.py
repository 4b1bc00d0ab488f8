"""Daily signing keys (§1): one per day of the issuer's time zone, created by the server itself,
published in trust bundles `key_publish_ahead_days` before their window opens."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.cbor import loads
from duopass.protocol.code import sign1_parts
from duopass.protocol.keys import SigningKey
from duopass.protocol.limits import KID_BYTES
from duopass.protocol.trust import TrustKey
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import tlog, trust_changes
from duopass.server.settings import Settings
from duopass.server.store import sql
from duopass.server.store.sql import statement
from duopass.server.store.tables import SigningKeyRow
from duopass.server.unit_of_work import Unit

KEY_RETENTION_S = 31 * 86_400
"""A key stays in bundles this long after its window closes: tickets live up to 30 days."""


def day_window(when: int, settings: Settings, days_ahead: int = 0) -> tuple[int, int]:
    """[midnight, next midnight - 1] of the day `days_ahead` after the one `when` falls on."""
    day = datetime.fromtimestamp(when, settings.zone).date() + timedelta(days=days_ahead)
    start = datetime.combine(day, time(0), settings.zone)
    end = datetime.combine(day + timedelta(days=1), time(0), settings.zone)
    return int(start.timestamp()), int(end.timestamp()) - 1


def rotate(unit: Unit) -> int:
    """Make sure a key exists for today and each of the next days it must be published;
    returns how many were created (each a trust change and a ledger event)."""
    session, keyring, settings, now = unit.session, unit.keyring, unit.settings, unit.now
    created = 0
    for ahead in range(settings.key_publish_ahead_days + 1):
        nbf, exp = day_window(now, settings, ahead)
        exists = session.scalars(
            select(SigningKeyRow.kid).where(
                SigningKeyRow.nbf == nbf, SigningKeyRow.revoked_at.is_(None)
            )
        ).first()
        if exists is not None:
            continue
        key = SigningKey.generate()
        session.add(
            SigningKeyRow(
                kid=key.kid,
                public_key=key.public,
                sealed_seed=keyring.seal(key.seed),
                nbf=nbf,
                exp=exp,
            )
        )
        trust_changes.record(session, "key", kid=key.kid)
        tlog.append(unit, EventType.KEY_ROTATION, {"kid": key.kid, "nbf": nbf, "exp": exp})
        created += 1
    return created


COVERING = statement(
    "SELECT sealed_seed FROM signing_keys WHERE nbf <= :now AND exp >= :now AND revoked_at IS NULL"
)
"""The sealed seed of the key whose window covers `now`, unless revoked (one statement on the
driver): read at every mint, so that no process mints with a key another one revoked."""


def current(unit: Unit) -> SigningKey:
    """Today's signing key (created now if the scheduler has not run yet), unsealed once per
    process (`Keyring.signing_key`)."""
    found = sql.raw(unit.session).one(COVERING, {"now": unit.now})
    if found is None:
        rotate(unit)
        unit.session.flush()  # the read goes around the ORM: it sees the new row
        found = sql.raw(unit.session).one(COVERING, {"now": unit.now})
        assert found is not None, "rotate creates today's key"
    return unit.keyring.signing_key(bytes(found[0]))


def published(session: Session, now: int) -> list[TrustKey]:
    """Keys a terminal must hold: every key still in use or retained, and those ahead."""
    rows = session.scalars(
        select(SigningKeyRow)
        .where(SigningKeyRow.exp + KEY_RETENTION_S >= now, SigningKeyRow.revoked_at.is_(None))
        .order_by(SigningKeyRow.nbf)
    )
    return [TrustKey(row.kid, row.public_key, row.nbf, row.exp) for row in rows]  # type: ignore[arg-type]


def revoke(unit: Unit, kid: bytes, *, by: int) -> bool:
    """Revoke a compromised signing key: never minted with again (a replacement for its day is
    made now if it was today's or one published ahead), left out of whole bundles and removed by
    deltas (an `unkey` trust change), refused online (UNKNOWN_KEY). False when it was revoked
    already. A ledger leaf records it."""
    session = unit.session
    row = session.get(SigningKeyRow, kid, with_for_update=True)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no signing key with this kid")
    if row.revoked_at is not None:
        return False
    row.revoked_at = unit.now
    trust_changes.record(session, "unkey", kid=kid)
    tlog.append(unit, EventType.KEY_REVOKE, {"kid": kid, "by": by})
    session.flush()
    rotate(unit)
    return True


def is_revoked(session: Session, kid: bytes) -> bool:
    """Whether `kid` names a revoked key (one statement: read on every online scan)."""
    return sql.raw(session).one(REVOKED, {"kid": kid}) is not None


def minted_with_revoked(session: Session, l1: bytes) -> bool:
    """Whether the stored credential `l1` is signed by a revoked key (minted again at the
    holder's next sync: a ticket's live credential is otherwise handed out as it is)."""
    protected = sign1_parts(loads(l1))[0]
    return is_revoked(session, protected[-KID_BYTES:])


REVOKED = statement("SELECT 1 FROM signing_keys WHERE kid = :kid AND revoked_at IS NOT NULL")
