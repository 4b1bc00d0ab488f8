"""Sessions: bearer tokens (only their SHA-256 is stored) that last `TOKEN_LIFETIME_S`, who
one belongs to, listing and ending them, and whether one proves a recent password sign-in
(the step-up of RFC 9470). Signing in is `auth`; ending a session deletes its row."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode
from duopass.server.settings import Settings
from duopass.server.store.access import Token, UsedChallenge
from duopass.server.store.passkeys import PasskeyChallenge
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "TOKEN_LIFETIME_S",
    "Caller",
    "Issued",
    "digest",
    "end_session",
    "end_sessions",
    "is_recent",
    "live",
    "open_session",
    "principal",
    "purge",
    "require_recent",
]

TOKEN_LIFETIME_S = 8 * 3600
_HOLDER_ROLES = ("holder",)
_STAFF_ROLES = ("admin", "operator")


@dataclass(frozen=True)
class Caller:
    """A signed-in person as one request sees them: `role` holder, operator or admin; `id`
    their row; `token` the digest of the session they called with."""

    role: str
    id: int
    token: bytes
    auth_at: int | None
    method: str

    @property
    def is_staff(self) -> bool:
        return self.role in _STAFF_ROLES

    def holder(self, session: Session) -> Holder:
        holder = session.get(Holder, self.id)
        assert holder is not None and self.role == "holder"
        return holder


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: int
    login: str = ""
    """Whom it signed in, where the sign-in named nobody (a passkey's)."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def open_session(
    unit: Unit, *, role: str, principal_id: int, method: str, device_id: int | None
) -> Issued:
    """A new session, once a sign-in's proof checked out: `method` password (a recent password
    proof from now on), device or passkey."""
    token = secrets.token_urlsafe(32)
    expires = unit.now + TOKEN_LIFETIME_S
    unit.session.add(
        Token(
            digest=digest(token),
            role=role,
            principal_id=principal_id,
            expires_at=expires,
            created_at=unit.now,
            method=method,
            auth_at=unit.now if method == "password" else None,
            device_id=device_id,
        )
    )
    return Issued(token, expires)


def principal(session: Session, token: str, now: int) -> Caller | None:
    """Who a bearer token belongs to, while its session lasts."""
    row = session.get(Token, digest(token))
    if row is None or row.expires_at <= now:
        return None
    return Caller(row.role, row.principal_id, row.digest, row.auth_at, row.method)


def is_recent(caller: Caller, settings: Settings, now: int) -> bool:
    """Whether the caller proved their password within `recent_auth_s`."""
    return caller.auth_at is not None and now - caller.auth_at <= settings.recent_auth_s


def require_recent(caller: Caller, settings: Settings, now: int) -> None:
    """Refuse (401 step_up_required, RFC 9470 with max_age) unless `is_recent`."""
    if is_recent(caller, settings, now):
        return
    raise Problem(
        ProblemCode.STEP_UP_REQUIRED,
        f"sign in with your password again (within {settings.recent_auth_s} s) to do this",
        headers={
            "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
            f"max_age={settings.recent_auth_s}"
        },
    )


def _roles(staff: bool) -> tuple[str, ...]:
    return _STAFF_ROLES if staff else _HOLDER_ROLES


def end_sessions(session: Session, *, staff: bool, principal_id: int, keep: bytes | None) -> int:
    """End every session of a person but `keep` (None: all of them)."""
    query = delete(Token).where(Token.principal_id == principal_id, Token.role.in_(_roles(staff)))
    if keep is not None:
        query = query.where(Token.digest != keep)
    return int(getattr(session.execute(query), "rowcount", 0) or 0)


def end_session(session: Session, token: bytes) -> None:
    """Sign out: the session with this digest ends."""
    session.execute(delete(Token).where(Token.digest == token))


def live(session: Session, caller: Caller, now: int) -> list[dict[str, object]]:
    """The caller's live sessions, newest first; a session's id is a prefix of its digest."""
    rows = session.scalars(
        select(Token)
        .where(
            Token.principal_id == caller.id,
            Token.role.in_(_roles(caller.is_staff)),
            Token.expires_at > now,
        )
        .order_by(Token.created_at.desc())
    )
    return [
        {
            "id": row.digest[:8].hex(),
            "method": row.method,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "device_id": row.device_id,
            "current": row.digest == caller.token,
        }
        for row in rows
    ]


def purge(session: Session, now: int) -> None:
    """Drop ended sessions' rows, spent device challenges and expired passkey challenges
    (maintenance)."""
    session.execute(delete(Token).where(Token.expires_at <= now))
    session.execute(delete(UsedChallenge).where(UsedChallenge.expires_at < now))
    session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now))
