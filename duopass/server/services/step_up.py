"""Step-up: a signed-in holder proves again, with a second factor, that they are who the
session says, for one thing they asked for (`purpose`: a reissue request's id, later a
transfer's).

`begin` readies a factor for a purpose: for `email_otp` it makes a six-digit code, keeps only
its keyed digest and mails it to the address on file; for `totp` there is nothing to send (the
authenticator app shows the code). `verified` checks the code and runs the caller's work in
the same unit when it is right. A code expires (`step_up_code_ttl_s`), is accepted once, and a
new `begin` for the same purpose retires the earlier one. Guessing is limited three ways: a
code takes `CODE_ATTEMPTS_MAX` wrong tries, then it is dead; a purpose gets `BEGINS_MAX` codes;
and every wrong code counts against the holder's account key of the sign-in limiter
(`throttle`), in the database, so all server processes and the password sign-in share it.
For `passkey` `begin` hands out WebAuthn options bound to the purpose (`passkeys`), and the
proof is the passkey's assertion (`PasskeyProof`) instead of a code: one that does not verify
counts as a wrong code, with its own refusal (`passkey_refused`, `passkey_cloned`, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update

from duopass.protocol.encoding import EncodingError, parse_digits
from duopass.server import mailer
from duopass.server.context import AppContext
from duopass.server.limits import STEP_UP_CODE_DIGITS, STEP_UP_PURPOSE_CHARS_MAX
from duopass.server.logbook import Event, note
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import passkeys, second_factor, throttle
from duopass.server.services.passkey_challenges import Relying
from duopass.server.store.decisions import StepUpCode
from duopass.server.store.people import HolderPerson
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "BEGINS_MAX",
    "CODE_ATTEMPTS_MAX",
    "FACTORS",
    "SENDS_PER_HOUR_MAX",
    "PasskeyProof",
    "begin",
    "check",
    "verified",
]

T = TypeVar("T")
FACTORS = ("email_otp", "totp", "passkey")
CODE_ATTEMPTS_MAX = 5
"""Wrong tries one code takes; then only a new `begin` helps."""
BEGINS_MAX = 3
"""Codes one purpose gets (so at most 15 guesses, fewer once the account key blocks)."""
SENDS_PER_HOUR_MAX = 10
"""Codes mailed to one holder in any hour, whatever they are for."""
_HOUR_S = 3600
_NOTHING_SENT = bytes(32)
"""The digest column of a `totp` row: the code is the app's, checked by `second_factor`."""


@dataclass(frozen=True)
class PasskeyProof:
    """A passkey's answer to the step-up's options (`navigator.credentials.get`), and the
    relying party the request came to."""

    rp: Relying
    credential: dict[str, Any]


def begin(
    unit: Unit,
    *,
    holder: Holder,
    purpose: str,
    factor: str,
    about: str | None = None,
    rp: Relying | None = None,
) -> dict[str, Any]:
    """Ready `factor` for `purpose`: `{factor, expires_at}`, and `sent_to` (the masked
    address) for a code mailed, `options` (for `navigator.credentials.get`, relying party
    `rp`) for a passkey. `about` says in the mail what the code is for. The mail is
    sent inside the unit: when the mail server fails (503 `mail_unavailable`) the unit rolls
    back and no code is left that anyone could use."""
    session, now = unit.session, unit.now
    _usable(unit, holder, purpose, factor)
    session.execute(select(Holder.id).where(Holder.id == holder.id).with_for_update())
    person = session.get(HolderPerson, holder.id) if factor == "email_otp" else None
    if factor == "email_otp" and person is None:
        raise Problem(ProblemCode.NO_EMAIL, "no e-mail address is on file for this holder")
    _within_limits(unit, holder, purpose, factor)
    session.execute(
        update(StepUpCode)
        .where(
            StepUpCode.holder_id == holder.id,
            StepUpCode.purpose == purpose,
            StepUpCode.used_at.is_(None),
            StepUpCode.expires_at > now,
        )
        .values(expires_at=now)
    )
    code = f"{secrets.randbelow(10**STEP_UP_CODE_DIGITS):0{STEP_UP_CODE_DIGITS}d}"
    expires_at = now + unit.settings.step_up_code_ttl_s
    row = StepUpCode(
        purpose=purpose,
        holder_id=holder.id,
        factor=factor,
        code_hash=_NOTHING_SENT if person is None else _digest(unit, holder, purpose, code),
        sent_at=now,
        expires_at=expires_at,
        attempts=0,
    )
    session.add(row)
    session.flush()
    answer: dict[str, Any] = {"factor": factor, "expires_at": expires_at}
    if factor == "passkey":
        if rp is None:
            raise Problem(ProblemCode.FACTOR_UNAVAILABLE, "passkeys need the wallet's host name")
        answer["options"] = passkeys.begin_step_up(unit, holder, purpose, rp)
    if person is not None:
        _mail(unit, person.email, code, expires_at, about or f"request {purpose}")
        answer["sent_to"] = mailer.masked(person.email)
    note(
        session,
        Event.STEP_UP_SENT,
        f"step-up {factor} for holder {holder.id}",
        holder_id=holder.id,
        purpose=purpose,
        factor=factor,
    )
    return answer


def check(
    unit: Unit, *, holder: Holder, purpose: str, factor: str, code: str | PasskeyProof
) -> Problem | None:
    """None when `code` proves the step-up for `purpose` (and it is now used up); else the
    refusal, after counting what it costs: the unit must commit it (`AppContext.run_refusable`;
    `verified` does). Input that is no code at all, or a factor not usable, is raised."""
    _usable(unit, holder, purpose, factor)
    if (factor == "passkey") != isinstance(code, PasskeyProof):
        what = "a passkey's assertion" if factor == "passkey" else "a code"
        raise Problem(ProblemCode.INVALID_REQUEST, f"the {factor} step-up takes {what}")
    if isinstance(code, PasskeyProof):
        return _checked(unit, holder, purpose, factor, code)
    try:
        parse_digits(code, digits_max=STEP_UP_CODE_DIGITS)
    except EncodingError:
        pass
    else:
        if len(code) == STEP_UP_CODE_DIGITS:
            return _checked(unit, holder, purpose, factor, code)
    raise Problem(ProblemCode.INVALID_REQUEST, f"a code is {STEP_UP_CODE_DIGITS} digits")


def verified(
    ctx: AppContext,
    *,
    holder_id: int,
    purpose: str,
    factor: str,
    code: str | PasskeyProof,
    work: Callable[[Unit], T],
) -> T:
    """Run `work` in one unit once `code` proves the holder's step-up for `purpose`; a wrong
    code's cost is committed before its refusal is raised. If `work` raises, the unit rolls
    back and the code stays good for another try."""

    def attempt(unit: Unit) -> T | Problem:
        holder = unit.session.get(Holder, holder_id)
        if holder is None:
            return Problem(ProblemCode.NOT_FOUND, "no such holder")
        refusal = check(unit, holder=holder, purpose=purpose, factor=factor, code=code)
        return refusal if refusal is not None else work(unit)

    return ctx.run_refusable(attempt)


def _checked(
    unit: Unit, holder: Holder, purpose: str, factor: str, code: str | PasskeyProof
) -> Problem | None:
    session, now = unit.session, unit.now
    keys = [throttle.account(unit.keyring.digest_key, holder.login, staff=False)]
    try:
        throttle.check(session, keys, now)
    except Problem as refusal:
        return refusal
    row = session.scalars(
        select(StepUpCode)
        .where(
            StepUpCode.holder_id == holder.id,
            StepUpCode.purpose == purpose,
            StepUpCode.factor == factor,
        )
        .order_by(StepUpCode.id.desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        why = "no code was asked for" if row is None else "the code was used or has expired"
        return Problem(ProblemCode.STEP_UP_EXPIRED, f"{why}: ask for a new one")
    if row.attempts >= CODE_ATTEMPTS_MAX:
        return Problem(ProblemCode.TOO_MANY_ATTEMPTS, "too many wrong codes: ask for a new one")
    wrong = _wrong(unit, holder, purpose, code, row=row)
    if wrong is not None:
        row.attempts += 1
        throttle.fail(session, keys, now)
        if wrong.code is ProblemCode.STEP_UP_FAILED:
            left = CODE_ATTEMPTS_MAX - row.attempts
            return Problem(ProblemCode.STEP_UP_FAILED, f"wrong code ({left} tries left for it)")
        return wrong
    row.used_at = now
    throttle.succeed(session, keys)
    return None


def _wrong(
    unit: Unit, holder: Holder, purpose: str, code: str | PasskeyProof, *, row: StepUpCode
) -> Problem | None:
    """Why the proof is wrong (to be counted as a wrong code), or None."""
    if isinstance(code, PasskeyProof):
        return passkeys.step_up_proof(unit, holder, purpose, code.rp, code.credential)
    if row.factor == "totp":
        right = second_factor.valid_current(unit.session, holder, code, unit.now)
    else:
        right = hmac.compare_digest(row.code_hash, _digest(unit, holder, purpose, code))
    if right:
        return None
    return Problem(ProblemCode.STEP_UP_FAILED, "wrong code")


def _usable(unit: Unit, holder: Holder, purpose: str, factor: str) -> None:
    """Refuse a purpose the column cannot hold and a factor this holder cannot use now."""
    if not 0 < len(purpose) <= STEP_UP_PURPOSE_CHARS_MAX or not purpose.isascii():
        raise Problem(ProblemCode.INVALID_REQUEST, "not a step-up purpose")
    if factor not in FACTORS:
        raise Problem(ProblemCode.INVALID_REQUEST, f"the factors are {', '.join(FACTORS)}")
    if factor == "passkey" and not passkeys.has_passkey(unit, holder.id):
        raise Problem(ProblemCode.FACTOR_UNAVAILABLE, "no passkey is registered")
    if factor == "totp" and holder.totp_secret is None:
        raise Problem(ProblemCode.FACTOR_UNAVAILABLE, "no authenticator app is set up")
    if factor == "email_otp" and not mailer.configured(unit.settings):
        raise Problem(ProblemCode.FACTOR_UNAVAILABLE, "no mail server is configured")


def _within_limits(unit: Unit, holder: Holder, purpose: str, factor: str) -> None:
    """At most `BEGINS_MAX` codes for a purpose and `SENDS_PER_HOUR_MAX` mailed an hour."""
    session, now = unit.session, unit.now
    begun = session.scalar(
        select(func.count())
        .select_from(StepUpCode)
        .where(StepUpCode.holder_id == holder.id, StepUpCode.purpose == purpose)
    )
    if (begun or 0) >= BEGINS_MAX:
        raise Problem(ProblemCode.TOO_MANY_ATTEMPTS, f"{BEGINS_MAX} codes were asked for this")
    if factor != "email_otp":
        return
    sent = session.scalars(
        select(StepUpCode.sent_at)
        .where(
            StepUpCode.holder_id == holder.id,
            StepUpCode.factor == "email_otp",
            StepUpCode.sent_at > now - _HOUR_S,
        )
        .order_by(StepUpCode.sent_at)
    ).all()
    if len(sent) >= SENDS_PER_HOUR_MAX:
        wait = max(1, sent[0] + _HOUR_S - now)
        raise Problem(
            ProblemCode.TOO_MANY_ATTEMPTS,
            f"{SENDS_PER_HOUR_MAX} codes were mailed this hour: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def _digest(unit: Unit, holder: Holder, purpose: str, code: str) -> bytes:
    """A code as stored: keyed (SHA-256 HMAC), so the table alone cannot be searched for it."""
    message = f"step-up-v1\n{holder.id}\n{purpose}\n{code}".encode()
    return hmac.new(unit.keyring.digest_key, message, hashlib.sha256).digest()


def _mail(unit: Unit, to: str, code: str, expires_at: int, about: str) -> None:
    settings = unit.settings
    until = datetime.fromtimestamp(expires_at, settings.zone).strftime("%H:%M %Z")
    minutes = settings.step_up_code_ttl_s // 60
    body = (
        f"Your {settings.issuer} code for {about} is {code}.\n\n"
        f"It works once, until {until} ({minutes} minutes from when it was sent).\n"
        "If you did not ask for it, do not give it to anyone: someone may know your password.\n"
    )
    mailer.send(settings, to=to, subject=f"{settings.issuer} code: {about}", body=body)
