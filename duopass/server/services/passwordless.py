"""Signing in without a password: an enrolled device's key signing a one-time challenge
(`challenges`), or a passkey (`passkeys`). Both are judged by the risk policy at `sign_in` as a
password sign-in is (`request.device` true), and a step-up the policy asks for is met: the
device key or the passkey is the second proof password sign-ins are sent to, so password
guesses never lock its owner out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from duopass.protocol.keys import verify_signature
from duopass.protocol.signed_requests import device_sign_in_message
from duopass.risk import Key, KeyKind
from duopass.risk.points import Point, Subject
from duopass.server.context import AppContext
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    challenges,
    passkey_challenges,
    passkeys,
    risk_engine,
    risk_features,
    risk_records,
    sessions,
)
from duopass.server.services.auth import held
from duopass.server.services.sessions import Issued
from duopass.server.store.access import UsedChallenge
from duopass.server.store.tables import Device, Holder
from duopass.server.unit_of_work import Unit

__all__ = ["device_sign_in", "passkey_sign_in", "without_password"]


def device_sign_in(
    ctx: AppContext,
    *,
    login: str,
    public_key: bytes,
    challenge_bytes: bytes,
    signature: bytes,
    client: str | None,
    installation: str | None = None,
) -> Issued:
    """A session for a holder whose enrolled, unrevoked device signed our challenge. Every
    refusal reads the same, so it tells nothing of logins or keys. The risk policy judges it at
    `sign_in` as a password sign-in (`request.device` true), its attempt counted before the read
    and withdrawn on success; a step-up it asks for is met (the device key is the second proof
    password sign-ins are sent to), so password guesses never lock its owner out."""

    def attempt(unit: Unit) -> Issued | Problem:
        session = unit.session
        holder = session.scalars(select(Holder).where(Holder.login == login)).one_or_none()
        device = session.scalars(
            select(Device).where(Device.public_key == public_key)
        ).one_or_none()

        def proved() -> Problem | None:
            if _device_proved(unit, holder, device, challenge_bytes, signature):
                return None
            return Problem(ProblemCode.UNAUTHENTICATED, "device sign-in refused")

        return without_password(
            unit, login, holder, device, proved, client=client, installation=installation
        )

    return ctx.run_refusable(attempt)


def passkey_sign_in(
    ctx: AppContext,
    rp: passkey_challenges.Relying,
    credential: dict[str, Any],
    *,
    client: str | None,
    installation: str | None = None,
) -> Issued:
    """A session for the holder whose passkey answered our sign-in challenge (it names the
    holder: no login is asked for); the challenge is used whatever the verdict."""

    def attempt(unit: Unit) -> Issued | Problem:
        named = passkeys.sign_in_passkey(unit, rp, credential)
        if isinstance(named, Problem):
            return named
        holder, row, taken = named

        def proved() -> Problem | None:
            return passkeys.asserted(unit, rp, row, credential, taken)

        issued = without_password(
            unit, holder.login, holder, None, proved, client=client, installation=installation
        )
        return issued if isinstance(issued, Problem) else replace(issued, login=holder.login)

    return ctx.run_refusable(attempt)


def without_password(
    unit: Unit,
    login: str,
    holder: Holder | None,
    device: Device | None,
    proved: Callable[[], Problem | None],
    *,
    client: str | None,
    installation: str | None,
) -> Issued | Problem:
    """A holder's sign-in without a password, by `device`'s key or (no device) a passkey,
    once `proved` returns None: judged by the risk policy at `sign_in` (`request.device`
    true), its attempt counted before the read and withdrawn on success; a step-up it asks
    for is met. The unit must commit what a refusal returned counts (`run_refusable`)."""
    principal = None if holder is None else holder.id
    account = risk_features.account_key(unit, staff=False, principal_id=principal, login=login)
    device_key = None if device is None else Key(KeyKind.DEVICE, str(device.id))
    pending = risk_features.attempt(account, client, at=unit.now, device=device_key)
    app = risk_features.installation_key(unit, installation)
    tried = risk_features.tried(account, app, at=unit.now)
    risk_features.observe(unit, pending, *tried)  # before the read: parallel attempts see it
    allowlisted = risk_engine.allowlisted(unit.settings, client)
    request = {"staff": False, "allowlisted": allowlisted, "device": True}
    subject = Subject(account, device_key, client, installation=app)
    judged, release = risk_engine.check_pending(unit, Point.SIGN_IN, subject, request)
    refusal = risk_engine.refusal(judged)
    if refusal is not None:
        risk_features.observe(unit, risk_features.withdrawn(pending))
        return refusal
    failed = proved()
    if failed is not None:
        risk_features.observe(unit, risk_features.failed(pending, at=unit.now))
        risk_records.settle(unit, release, used=False)
        return failed
    assert holder is not None
    if not risk_records.settle(unit, release, used=True):
        risk_features.observe(unit, risk_features.withdrawn(pending))
        return held()
    risk_engine.suspend(unit, judged, holder)
    risk_features.observe(
        unit,
        risk_features.withdrawn(pending),
        risk_features.sign_in(account, client, at=unit.now, failed=False, device=device_key),
    )
    method, device_id = ("passkey", None) if device is None else ("device", device.id)
    return sessions.open_session(
        unit, role="holder", principal_id=holder.id, method=method, device_id=device_id
    )


def _device_proved(
    unit: Unit,
    holder: Holder | None,
    device: Device | None,
    challenge_bytes: bytes,
    signature: bytes,
) -> bool:
    """The holder's enrolled, unrevoked device signed our unused, valid challenge (now used)."""
    issued = challenges.issued_at(unit.keyring, challenge_bytes, unit.now)
    if issued is None or holder is None or device is None:
        return False
    if device.holder_id != holder.id or device.revoked_at is not None:
        return False
    message = device_sign_in_message(holder.login, challenge_bytes)
    if not verify_signature(device.public_key, message, signature):
        return False
    try:
        with unit.session.begin_nested():
            unit.session.add(
                UsedChallenge(
                    digest=hashlib.sha256(challenge_bytes).digest(),
                    expires_at=issued + challenges.CHALLENGE_TTL_S,
                )
            )
    except IntegrityError:
        return False
    return True
