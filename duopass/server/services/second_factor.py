"""The holder's second factor: one-time codes (TOTP, RFC 6238) from an authenticator app.

A code is accepted once: the time step of the last code accepted is kept, and a code of that
step or an earlier one is refused (RFC 6238 §5.2). The secret is always one this server made:
`begin` hands one out (after a recent password sign-in, or the current code when a factor is
already on), and `confirm` turns on only that one, once the holder shows a code from it.
Turning the factor on, changing it or turning it off ends every other session.
"""

from __future__ import annotations

import hmac

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import tlog
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = ["PENDING_S", "begin", "check_sign_in", "confirm", "turn_off", "valid_current"]

PENDING_S = 600
"""How long a handed-out secret waits for its first code."""
_STEP_S = 30


def _step(secret: str, otp: str, now: int) -> int | None:
    """The time step (now, or one either side for clock drift) whose code `otp` is."""
    totp = pyotp.TOTP(secret)
    here = now // _STEP_S
    for step in (here - 1, here, here + 1):
        if hmac.compare_digest(totp.generate_otp(step), otp):
            return step
    return None


def _consume(session: Session, holder: Holder, step: int) -> bool:
    """Accept `step` if it is later than the last accepted one (one statement: two requests
    with the same code cannot both pass)."""
    result = session.execute(
        update(Holder)
        .where(Holder.id == holder.id, or_(Holder.totp_step.is_(None), Holder.totp_step < step))
        .values(totp_step=step)
    )
    accepted = bool(getattr(result, "rowcount", 0))
    if accepted:
        holder.totp_step = step
    return accepted


def valid_current(session: Session, holder: Holder, otp: str | None, now: int) -> bool:
    """Whether `otp` is an unused code of the holder's factor (and use it up)."""
    if holder.totp_secret is None or otp is None:
        return False
    step = _step(holder.totp_secret, otp, now)
    return step is not None and _consume(session, holder, step)


def check_sign_in(session: Session, holder: Holder, otp: str | None, now: int) -> Problem | None:
    """None when the sign-in may go on; else why not (401 step_up_required, RFC 9470)."""
    if holder.totp_secret is None:
        return None
    if otp is None:
        return Problem(ProblemCode.STEP_UP_REQUIRED, "a one-time code is required")
    if not valid_current(session, holder, otp, now):
        return Problem(
            ProblemCode.STEP_UP_REQUIRED, "a valid one-time code not used before is required"
        )
    return None


def begin(holder: Holder, issuer: str, now: int) -> tuple[str, str]:
    """A new secret for the authenticator app and its otpauth:// URI; nothing changes until
    `confirm` sees a code from it. The caller has checked the holder's step-up."""
    holder.totp_pending, holder.totp_pending_at = pyotp.random_base32(), now
    uri = pyotp.TOTP(holder.totp_pending).provisioning_uri(name=holder.login, issuer_name=issuer)
    return holder.totp_pending, uri


def confirm(unit: Unit, holder: Holder, *, otp: str, secret: str | None) -> None:
    """Turn on the secret `begin` handed out, once a code from it is shown."""
    now = unit.now
    pending, since = holder.totp_pending, holder.totp_pending_at or 0
    if pending is None or now - since > PENDING_S:
        raise Problem(ProblemCode.CONFLICT, "no secret is waiting: ask /v1/me/totp/new for one")
    if secret is not None and not hmac.compare_digest(secret, pending):
        raise Problem(ProblemCode.INVALID_REQUEST, "not the TOTP secret this server handed out")
    step = _step(pending, otp, now)
    if step is None:
        raise Problem(ProblemCode.BAD_PROOF, "the one-time code does not match the secret")
    changed = holder.totp_secret is not None
    holder.totp_secret, holder.totp_step = pending, step
    holder.totp_pending = holder.totp_pending_at = None
    event = EventType.TOTP_CHANGE if changed else EventType.TOTP_ENABLE
    tlog.append(unit, event, {"holder": unit.keyring.digest(holder.handle)})


def turn_off(unit: Unit, holder: Holder) -> None:
    """Sign-in asks for the password only again. The caller has checked the step-up."""
    if holder.totp_secret is None:
        raise Problem(ProblemCode.CONFLICT, "no second factor is on")
    holder.totp_secret = holder.totp_pending = holder.totp_pending_at = None
    tlog.append(unit, EventType.TOTP_DISABLE, {"holder": unit.keyring.digest(holder.handle)})
