"""Signing in with a password (with the one-time code where one is on; the ways in without
one are `passwordless`); the password changed; a step-up before what could take an
account over. Sessions themselves are `sessions`.

Every password proof is throttled per account and per source network (`throttle`) before its
hash is computed, and counted before the hash is compared, so parallel guesses cannot outrun the
count. The device way in is never throttled by password failures. A session proves a recent
password sign-in for `settings.recent_auth_s`: what could take an account over (a loss report,
ending other sessions, the second factor) asks for that, or for the second factor itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.policy import Factor
from duopass.policy.guards import Action
from duopass.risk import Key, Observation
from duopass.risk.points import Point, Subject
from duopass.server.context import AppContext
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    risk_engine,
    risk_features,
    risk_records,
    second_factor,
    sessions,
    throttle,
)
from duopass.server.services.sessions import Caller, Issued
from duopass.server.services.throttle import Throttle
from duopass.server.settings import Settings
from duopass.server.store.access import Staff, Token
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "change_password",
    "hash_password",
    "held",
    "password_sign_in",
    "stepped_up",
]

T = TypeVar("T")
_HASHERS = {
    False: PasswordHasher(),  # argon2-cffi's defaults: RFC 9106's low-memory profile
    True: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),  # tests only (settings)
}
"""By `settings.test_cheap_password_hashing`. Verifying reads the cost from the stored hash."""
_DUMMY_HASHES = {
    cheap: hasher.hash("not a password anyone has") for cheap, hasher in _HASHERS.items()
}


@dataclass(frozen=True)
class _Person:
    """What a password check needs, read in one unit and compared outside any transaction."""

    id: int
    role: str
    password_hash: str


def hash_password(settings: Settings, password: str) -> str:
    return _HASHERS[settings.test_cheap_password_hashing].hash(password)


def _matches(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Argon2 against the stored hash, or against a dummy for an unknown login (same cost)."""
    cheap = settings.test_cheap_password_hashing
    try:
        dummy = _DUMMY_HASHES[cheap]
        return (
            _HASHERS[cheap].verify(password_hash or dummy, password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def secret_matches(settings: Settings, secret_hash: str | None, secret: str) -> bool:
    """A secret hashed as passwords are (a payment PIN) against its hash; None: no hash, at
    the same cost."""
    return _matches(settings, secret_hash, secret)


def _throttles(ctx: AppContext, *, login: str, staff: bool, client: str | None) -> list[Throttle]:
    """The account's key (first), and the client's network's unless it is exempt."""
    secret = ctx.keyring.digest_key
    return [
        throttle.account(secret, login, staff=staff),
        *throttle.for_client(ctx.settings, secret, client),
    ]


def password_sign_in(
    ctx: AppContext,
    *,
    login: str,
    password: str,
    otp: str | None,
    staff: bool,
    client: str | None,
    installation: str | None = None,
) -> Issued:
    """A session for a holder or staff member who knows the password (and the one-time code
    where one is on). Throttled: 429 with Retry-After while the account or network is blocked.
    The wallet `installation` it names (if any) is counted as trying this account."""
    keys = _throttles(ctx, login=login, staff=staff, client=client)

    def begin(unit: Unit) -> tuple[_Person | None, _Judged, Observation] | Problem:
        try:
            throttle.check(unit.session, keys, unit.now)
        except Problem as refusal:
            return refusal
        throttle.fail(unit.session, keys[:1], unit.now)  # counted now, forgotten on success
        person = _person(unit.session, login=login, staff=staff)
        principal = None if person is None else person.id
        account = risk_features.account_key(unit, staff=staff, principal_id=principal, login=login)
        pending = risk_features.attempt(account, client, at=unit.now)
        app = risk_features.installation_key(unit, installation)
        tried = risk_features.tried(account, app, at=unit.now)
        risk_features.observe(unit, pending, *tried)  # before the read: parallel attempts see it
        risky = _risk(unit, person, account, staff=staff, client=client, installation=app)
        if isinstance(risky, Problem):  # a refused attempt is no guess
            risk_features.observe(unit, risk_features.withdrawn(pending))
            return risky
        return person, risky, pending  # before the hash

    person, (stepped_up, release), pending = ctx.run_refusable(begin)
    right = _matches(ctx.settings, person.password_hash if person else None, password)

    def finish(unit: Unit) -> Issued | Problem:
        if person is None or not right or _disabled(unit.session, person):
            throttle.fail(unit.session, keys[1:], unit.now)
            risk_features.observe(unit, risk_features.failed(pending, at=unit.now))
            risk_records.settle(unit, release, used=False)
            return Problem(ProblemCode.UNAUTHENTICATED, "wrong login or password")
        risk_features.observe(unit, risk_features.withdrawn(pending))  # the password is right
        if stepped_up:  # told only to whoever knows the password: it names no factor
            return _step_up_required()
        if not staff:
            holder = unit.session.get(Holder, person.id)
            assert holder is not None
            refusal = second_factor.check_sign_in(unit.session, holder, otp, unit.now)
            if refusal is not None:
                risk_records.settle(unit, release, used=False)
                return refusal
        if not risk_records.settle(unit, release, used=True):
            return held()
        throttle.succeed(unit.session, keys[:1])
        account = pending.keys[0]
        risk_features.observe(
            unit, risk_features.sign_in(account, client, at=unit.now, failed=False)
        )
        return sessions.open_session(
            unit, role=person.role, principal_id=person.id, method="password", device_id=None
        )

    return ctx.run_refusable(finish)


_Judged = tuple[bool, "risk_records.Release | None"]
"""What the risk decision leaves for after the password: step_up, a release (`risk_records`)."""


def held() -> Problem:
    return Problem(
        ProblemCode.RISK_REVIEW, "held by the risk policy until the card office has looked"
    )


def _risk(
    unit: Unit,
    person: _Person | None,
    account: Key,
    *,
    staff: bool,
    client: str | None,
    installation: Key | None,
) -> Problem | _Judged:
    """The risk policy at sign-in (its decision recorded in this unit): a refusal for deny,
    review and rate_limit; for step_up, True unless the account has a factor the guard accepts
    that sign-in asks for (TOTP: its code is then required as always), and the sign-in is
    refused once the password is checked (so the answer before it tells nobody which accounts
    have TOTP); suspend_offline suspends a holder's offline use (whether or not the password is
    right) and goes on. The features read count this attempt (pending, as a failure). A review
    a person released is allowed, its release used only if the sign-in succeeds."""
    request = {"staff": staff, "allowlisted": risk_engine.allowlisted(unit.settings, client)}
    subject = Subject(account, None, client, installation=installation)
    judged, release = risk_engine.check_pending(unit, Point.SIGN_IN, subject, request)
    refusal = risk_engine.refusal(judged)
    holder = None if staff or person is None else unit.session.get(Holder, person.id)
    risk_engine.suspend(unit, judged, holder)
    if refusal is not None:
        return refusal
    if judged is None or judged.assessment.action is not Action.STEP_UP:
        return False, release
    has_totp = holder is not None and holder.totp_secret is not None
    return not (has_totp and Factor.TOTP in judged.assessment.factors), release


def _step_up_required() -> Problem:
    return Problem(
        ProblemCode.STEP_UP_REQUIRED,
        "this account needs a second factor to sign in now: sign in with an enrolled device, "
        "or ask the card office",
    )


def _person(session: Session, *, login: str, staff: bool) -> _Person | None:
    if staff:  # a disabled staff member is refused as an unknown login is
        row = session.scalars(
            select(Staff).where(Staff.login == login, Staff.disabled_at.is_(None))
        ).one_or_none()
        return None if row is None else _Person(row.id, row.role, row.password_hash)
    holder = session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
    return None if holder is None else _Person(holder.id, "holder", holder.password_hash)


def _disabled(session: Session, person: _Person) -> bool:
    """A staff member disabled while their password was being checked gets no session."""
    if person.role == "holder":
        return False
    row = session.get(Staff, person.id)
    return row is None or row.disabled_at is not None


def stepped_up(
    ctx: AppContext, caller: Caller, current_otp: str | None, work: Callable[[Unit], T]
) -> T:
    """Run `work` once the caller has stepped up: a recent password sign-in, or an unused
    code of the factor that is on (wrong codes count against the account like sign-ins)."""
    now = ctx.now()
    if current_otp is None or sessions.is_recent(caller, ctx.settings, now):
        sessions.require_recent(caller, ctx.settings, now)
        return ctx.run(work)

    def checked(unit: Unit) -> T | Problem:
        session = unit.session
        holder = caller.holder(session)
        keys = _throttles(ctx, login=holder.login, staff=False, client=None)
        try:
            throttle.check(session, keys, unit.now)
        except Problem as refusal:
            return refusal
        if not second_factor.valid_current(session, holder, current_otp, unit.now):
            throttle.fail(session, keys, unit.now)
            return Problem(ProblemCode.BAD_PROOF, "the one-time code is wrong or was used before")
        throttle.succeed(session, keys)
        return work(unit)

    return ctx.run_refusable(checked)


def change_password(ctx: AppContext, caller: Caller, *, current: str, new: str) -> int:
    """Set a new password once the current one is proved (throttled like a sign-in); every
    other session ends. Returns how many ended."""
    table: type[Staff] | type[Holder] = Staff if caller.is_staff else Holder

    def read(unit: Unit) -> tuple[str, str] | Problem:
        session = unit.session
        row = session.get(Staff, caller.id) if caller.is_staff else session.get(Holder, caller.id)
        assert row is not None
        keys = _throttles(ctx, login=row.login, staff=caller.is_staff, client=None)
        try:
            throttle.check(session, keys, unit.now)
        except Problem as refusal:
            return refusal
        throttle.fail(session, keys, unit.now)
        return row.login, row.password_hash

    login, stored = ctx.run_refusable(read)
    right = _matches(ctx.settings, stored, current)
    new_hash = hash_password(ctx.settings, new) if right else ""
    keys = _throttles(ctx, login=login, staff=caller.is_staff, client=None)

    def write(unit: Unit) -> int | Problem:
        if not right:
            return Problem(ProblemCode.BAD_PROOF, "the current password is wrong")
        session = unit.session
        throttle.succeed(session, keys)
        session.execute(update(table).where(table.id == caller.id).values(password_hash=new_hash))
        session.execute(update(Token).where(Token.digest == caller.token).values(auth_at=unit.now))
        staff = caller.is_staff
        return sessions.end_sessions(
            session, staff=staff, principal_id=caller.id, keep=caller.token
        )

    return ctx.run_refusable(write)
