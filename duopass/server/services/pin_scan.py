"""An online payment the till sends again with the PIN the holder typed (purse limits): the PIN
checked against its hash outside the transaction (Argon2 holds no lock), then the scan in one
unit of its own, wrong PINs throttled per holder as failed passwords are per login.

Rare next to plain scans, so it runs outside the group commit: a wrong PIN's count must be
committed while the scan it came with is undone (`AppContext.run_refusable`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import FormatError, decode_code
from duopass.server.context import AppContext
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, purse_limits, scans, throttle
from duopass.server.services.terminals import TerminalRow
from duopass.server.store.db import discard_after, queued_after
from duopass.server.unit_of_work import Unit

__all__ = ["pin_throttle", "scan"]


def pin_throttle(ctx: AppContext, handle: str) -> throttle.Throttle:
    """The key wrong PINs of one holder count against: the password limit, its own name."""
    return throttle.Throttle.of(throttle.ACCOUNT, ctx.keyring.digest_key, f"pin:{handle}")


def _handle(text: str) -> str | None:
    try:
        return decode_code(text).credential.claims.sub
    except (FormatError, MalformedError):
        return None


def scan(
    ctx: AppContext, terminal: TerminalRow, request: scans.ScanRequest, pin: str
) -> dict[str, Any]:
    """`scans.scan` with the PIN's check: a refusal for a wrong PIN counts one failure (and
    the holder's PIN is refused, 429 throttled, while blocked); a right PIN forgets them. A
    PIN the payment did not need is ignored, and forgets nothing unless it was right."""
    handle = _handle(request.code)
    if handle is None:  # no code: the plain scan refuses it
        return ctx.run(lambda unit: scans.scan(unit, terminal=terminal, request=request))
    stored = ctx.run(lambda unit: purse_limits.pin_hash_of(unit, handle))
    right = auth.secret_matches(ctx.settings, stored, pin)
    checked = dataclasses.replace(request, pin_ok=right)
    keys = [pin_throttle(ctx, handle)]

    def attempt(unit: Unit) -> dict[str, Any] | Problem:
        session = unit.session
        try:
            throttle.check(session, keys, unit.now)
        except Problem as refusal:
            return refusal
        queued = queued_after(session)
        try:
            with session.begin_nested():
                answer = scans.scan(unit, terminal=terminal, request=checked)
        except Problem as refusal:
            discard_after(session, queued)
            if refusal.code is ProblemCode.PIN_WRONG:
                throttle.fail(session, keys, unit.now)
            return refusal
        if right:
            throttle.succeed(session, keys)
        return answer

    return ctx.run_refusable(attempt)
