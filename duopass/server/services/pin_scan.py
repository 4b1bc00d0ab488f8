"""An online payment the till sends again with the PIN the holder typed (purse limits): the PIN
checked against its hash outside the transaction (Argon2 holds no lock) once the holder's PIN
key is known not to be blocked, then the scan in one unit of its own, wrong PINs throttled per
holder as failed passwords are per login.

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
    """The key wrong PINs of one holder count against (`throttle.pin`): the till's and the
    wallet's (`confirmations.approve`) alike."""
    return throttle.pin(ctx.keyring.digest_key, handle)


def _handle(text: str) -> str | None:
    try:
        return decode_code(text).credential.claims.sub
    except (FormatError, MalformedError):
        return None


def scan(
    ctx: AppContext, terminal: TerminalRow, request: scans.ScanRequest, pin: str
) -> dict[str, Any]:
    """`scans.scan` with the PIN's check: while the holder's PIN is blocked the scan is refused
    (429 throttled) before the PIN is hashed; a refusal for a wrong PIN counts one failure; a
    right PIN forgets them only when the payment needed it and was accepted (a code whose
    `sub` is forged or does not verify never gets that far). A PIN the payment did not need is
    ignored."""
    handle = _handle(request.code)
    if handle is None:  # no code: the plain scan refuses it
        return ctx.run(lambda unit: scans.scan(unit, terminal=terminal, request=request))
    keys = [pin_throttle(ctx, handle)]

    def look(unit: Unit) -> str | Problem | None:
        try:
            throttle.check(unit.session, keys, unit.now)
        except Problem as refusal:
            return refusal  # committed with the throttle's note
        return purse_limits.pin_hash_of(unit, handle)

    stored = ctx.run_refusable(look)
    right = auth.secret_matches(ctx.settings, stored, pin)

    def attempt(unit: Unit) -> dict[str, Any] | Problem:
        session = unit.session
        try:
            throttle.check(session, keys, unit.now)
        except Problem as refusal:
            return refusal
        checked = purse_limits.PinCheck(ok=right)
        queued = queued_after(session)
        try:
            with session.begin_nested():
                answer = scans.scan(
                    unit, terminal=terminal, request=dataclasses.replace(request, pin=checked)
                )
        except Problem as refusal:
            discard_after(session, queued)
            if refusal.code is ProblemCode.PIN_WRONG:
                throttle.fail(session, keys, unit.now)
            return refusal
        if checked.used and answer["ok"]:
            throttle.succeed(session, keys)
        return answer

    return ctx.run_refusable(attempt)
