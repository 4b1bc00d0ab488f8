"""Signing in and sessions: a password (with the one-time code where one is on) or an enrolled
device's signature of a one-time challenge; sessions listed and ended; passwords changed.

Every password proof is throttled per account and per source network (`throttle`) before its
hash is computed, and counted before the hash is compared, so parallel guesses cannot outrun the
count. The device way in is never throttled by password failures. A session proves a recent
password sign-in for `settings.recent_auth_s`: what could take an account over (a loss report,
ending other sessions, the second factor) asks for that, or for the second factor itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duopass.protocol.keys import verify_signature
from duopass.protocol.requests import device_sign_in_message
from duopass.server.config import Settings
from duopass.server.context import Context
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import second_factor, throttle
from duopass.server.services.throttle import Throttle
from duopass.server.store.tables import Device, Holder, Staff, Token, UsedChallenge

__all__ = [
    "CHALLENGE_TTL_S",
    "TOKEN_LIFETIME_S",
    "Caller",
    "Issued",
    "challenge",
    "change_password",
    "device_sign_in",
    "end_session",
    "end_sessions",
    "hash_password",
    "open_session",
    "password_sign_in",
    "principal",
    "purge",
    "require_recent",
    "sessions",
    "stepped_up",
]

TOKEN_LIFETIME_S = 8 * 3600
CHALLENGE_TTL_S = 120
_CHALLENGE_NONCE_BYTES = 16
_CHALLENGE_MAC_BYTES = 16
_HOLDER_ROLES = ("holder",)
_STAFF_ROLES = ("admin", "operator")
T = TypeVar("T")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


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


@dataclass(frozen=True)
class _Person:
    """What a password check needs, read in one unit and compared outside any transaction."""

    id: int
    role: str
    password_hash: str


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _matches(password_hash: str | None, password: str) -> bool:
    """Argon2 against the stored hash, or against a dummy for an unknown login (same cost)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _throttles(ctx: Context, *, login: str, staff: bool, client: str | None) -> list[Throttle]:
    """The account's key (first), and the client's network's unless it is exempt."""
    secret = ctx.keyring.digest_key
    name = f"{'staff' if staff else 'holder'}:{login}"
    return [
        Throttle.of(throttle.ACCOUNT, secret, name),
        *throttle.for_client(ctx.settings, secret, client),
    ]


def open_session(
    session: Session,
    *,
    role: str,
    principal_id: int,
    method: str,
    auth_at: int | None,
    device_id: int | None,
    now: int,
) -> Issued:
    """A new session; only its token's digest is stored. The sign-ins call this once their
    proof checked out."""
    token = secrets.token_urlsafe(32)
    expires = now + TOKEN_LIFETIME_S
    session.add(
        Token(
            digest=_digest(token),
            role=role,
            principal_id=principal_id,
            expires_at=expires,
            created_at=now,
            method=method,
            auth_at=auth_at,
            device_id=device_id,
        )
    )
    return Issued(token, expires)


def password_sign_in(
    ctx: Context, *, login: str, password: str, otp: str | None, staff: bool, client: str | None
) -> Issued:
    """A session for a holder or staff member who knows the password (and the one-time code
    where one is on). Throttled: 429 with Retry-After while the account or network is blocked."""
    now = ctx.now()
    keys = _throttles(ctx, login=login, staff=staff, client=client)

    def begin(session: Session) -> _Person | Problem | None:
        try:
            throttle.check(session, keys, now)
        except Problem as refusal:
            return refusal
        throttle.fail(session, keys[:1], now)  # counted now, forgotten if it succeeds
        return _person(session, login=login, staff=staff)

    person = ctx.run_refusable(begin)
    right = _matches(person.password_hash if person else None, password)

    def finish(session: Session) -> Issued | Problem:
        if person is None or not right:
            throttle.fail(session, keys[1:], now)
            return Problem(Code.UNAUTHENTICATED, "wrong login or password")
        if not staff:
            holder = session.get(Holder, person.id)
            assert holder is not None
            refusal = second_factor.check_sign_in(session, holder, otp, now)
            if refusal is not None:
                return refusal
        throttle.succeed(session, keys[:1])
        return open_session(
            session,
            role=person.role,
            principal_id=person.id,
            method="password",
            auth_at=now,
            device_id=None,
            now=now,
        )

    return ctx.run_refusable(finish)


def _person(session: Session, *, login: str, staff: bool) -> _Person | None:
    if staff:
        row = session.scalars(select(Staff).where(Staff.login == login)).one_or_none()
        return None if row is None else _Person(row.id, row.role, row.password_hash)
    holder = session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
    return None if holder is None else _Person(holder.id, "holder", holder.password_hash)


def challenge(keyring: Keyring, now: int) -> tuple[bytes, int]:
    """A one-time challenge for device sign-in, valid `CHALLENGE_TTL_S`: its time and a nonce,
    authenticated by a server MAC, so issuing one stores nothing."""
    body = now.to_bytes(8, "big") + os.urandom(_CHALLENGE_NONCE_BYTES)
    return body + _challenge_mac(keyring, body), now + CHALLENGE_TTL_S


def _challenge_mac(keyring: Keyring, body: bytes) -> bytes:
    mac = hmac.new(keyring.digest_key, b"duopass-challenge-v1\n" + body, hashlib.sha256)
    return mac.digest()[:_CHALLENGE_MAC_BYTES]


def _challenge_time(keyring: Keyring, data: bytes, now: int) -> int | None:
    """When the challenge was issued, if it is ours and still valid."""
    body, mac = data[:-_CHALLENGE_MAC_BYTES], data[-_CHALLENGE_MAC_BYTES:]
    if len(body) != 8 + _CHALLENGE_NONCE_BYTES:
        return None
    if not hmac.compare_digest(mac, _challenge_mac(keyring, body)):
        return None
    issued = int.from_bytes(body[:8], "big")
    return issued if issued <= now <= issued + CHALLENGE_TTL_S else None


def device_sign_in(
    session: Session,
    keyring: Keyring,
    *,
    login: str,
    public_key: bytes,
    challenge_bytes: bytes,
    signature: bytes,
    now: int,
) -> Issued:
    """A session for a holder whose enrolled, unrevoked device signed our challenge. Every
    refusal reads the same, so it tells nothing of logins or keys."""
    refused = Problem(Code.UNAUTHENTICATED, "device sign-in refused")
    issued = _challenge_time(keyring, challenge_bytes, now)
    holder = session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
    device = session.scalars(select(Device).where(Device.public_key == public_key)).one_or_none()
    if issued is None or holder is None or device is None:
        raise refused
    if device.holder_id != holder.id or device.revoked_at is not None:
        raise refused
    if not verify_signature(public_key, device_sign_in_message(login, challenge_bytes), signature):
        raise refused
    try:
        with session.begin_nested():
            session.add(
                UsedChallenge(
                    digest=hashlib.sha256(challenge_bytes).digest(),
                    expires_at=issued + CHALLENGE_TTL_S,
                )
            )
    except IntegrityError:
        raise refused from None
    return open_session(
        session,
        role="holder",
        principal_id=holder.id,
        method="device",
        auth_at=None,
        device_id=device.id,
        now=now,
    )


def principal(session: Session, token: str, now: int) -> Caller | None:
    """Who a bearer token belongs to, while its session lasts."""
    row = session.get(Token, _digest(token))
    if row is None or row.expires_at <= now:
        return None
    return Caller(row.role, row.principal_id, row.digest, row.auth_at, row.method)


def require_recent(caller: Caller, settings: Settings, now: int) -> None:
    """Refuse (401 step_up_required, RFC 9470 with max_age) unless the caller proved their
    password within `recent_auth_s`."""
    if _recent(caller, settings, now):
        return
    raise Problem(
        Code.STEP_UP_REQUIRED,
        f"sign in with your password again (within {settings.recent_auth_s} s) to do this",
        headers={
            "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
            f"max_age={settings.recent_auth_s}"
        },
    )


def stepped_up(
    ctx: Context, caller: Caller, current_otp: str | None, work: Callable[[Session], T]
) -> T:
    """Run `work` once the caller has stepped up: a recent password sign-in, or an unused
    code of the factor that is on (wrong codes count against the account like sign-ins)."""
    now = ctx.now()
    if current_otp is None or _recent(caller, ctx.settings, now):
        require_recent(caller, ctx.settings, now)
        return ctx.run(work)

    def checked(session: Session) -> T | Problem:
        holder = caller.holder(session)
        keys = _throttles(ctx, login=holder.login, staff=False, client=None)
        try:
            throttle.check(session, keys, now)
        except Problem as refusal:
            return refusal
        if not second_factor.valid_current(session, holder, current_otp, now):
            throttle.fail(session, keys, now)
            return Problem(Code.BAD_PROOF, "the one-time code is wrong or was used before")
        throttle.succeed(session, keys)
        return work(session)

    return ctx.run_refusable(checked)


def _recent(caller: Caller, settings: Settings, now: int) -> bool:
    return caller.auth_at is not None and now - caller.auth_at <= settings.recent_auth_s


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


def sessions(session: Session, caller: Caller, now: int) -> list[dict[str, object]]:
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


def change_password(ctx: Context, caller: Caller, *, current: str, new: str) -> int:
    """Set a new password once the current one is proved (throttled like a sign-in); every
    other session ends. Returns how many ended."""
    now = ctx.now()
    table: type[Staff] | type[Holder] = Staff if caller.is_staff else Holder

    def read(session: Session) -> tuple[str, str] | Problem:
        row = session.get(Staff, caller.id) if caller.is_staff else session.get(Holder, caller.id)
        assert row is not None
        keys = _throttles(ctx, login=row.login, staff=caller.is_staff, client=None)
        try:
            throttle.check(session, keys, now)
        except Problem as refusal:
            return refusal
        throttle.fail(session, keys, now)
        return row.login, row.password_hash

    login, stored = ctx.run_refusable(read)
    right = _matches(stored, current)
    new_hash = hash_password(new) if right else ""
    keys = _throttles(ctx, login=login, staff=caller.is_staff, client=None)

    def write(session: Session) -> int | Problem:
        if not right:
            return Problem(Code.BAD_PROOF, "the current password is wrong")
        throttle.succeed(session, keys)
        session.execute(update(table).where(table.id == caller.id).values(password_hash=new_hash))
        session.execute(update(Token).where(Token.digest == caller.token).values(auth_at=now))
        staff = caller.is_staff
        return end_sessions(session, staff=staff, principal_id=caller.id, keep=caller.token)

    return ctx.run_refusable(write)


def purge(session: Session, now: int) -> None:
    """Drop ended sessions' rows and spent challenges (maintenance)."""
    session.execute(delete(Token).where(Token.expires_at <= now))
    session.execute(delete(UsedChallenge).where(UsedChallenge.expires_at < now))
    throttle.purge(session, now)
