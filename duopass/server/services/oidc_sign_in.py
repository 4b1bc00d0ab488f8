"""Signing in through the university's OpenID Connect provider (`oidc`): staff at the console,
holders through the API. It never creates anybody: the ID token's claim (`oidc_staff_claim`,
`oidc_holder_claim`) must name an existing staff member of a role `oidc_staff_roles` allows,
or an existing holder (by login or card number, `oidc_holder_field`).

The `state` is the time it was issued, what it is for (staff or holder) and 16 random bytes
under a server MAC, so starting stores nothing; the nonce and the PKCE verifier are MACs of the
state under the server's digest key, so they never leave the server except the verifier, to
the token endpoint. A state is good for `STATE_TTL_S` and used once (`UsedChallenge`, the
device challenges' table), before the provider is asked anything: a replay is refused.

The provider's (`iss`, `sub`) is bound to the account at the first sign-in and names it from
then on (`services.oidc_binding`); a claim that disagrees with a binding is refused.

The risk policy judges the sign-in at `sign_in` as a password sign-in (its attempt counted
before the read, then withdrawn: the provider vouched for the person, so no outcome is a
guess, not even a person we do not know); a step-up it asks for is refused (the provider's proof
is one factor, and which factors it checked we cannot tell)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from duopass.policy.guards import Action
from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.risk.points import Point, Subject
from duopass.server.context import AppContext
from duopass.server.limits import LOGIN_CHARS_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    oidc,
    oidc_binding,
    risk_engine,
    risk_features,
    risk_records,
    sessions,
)
from duopass.server.services.auth import held
from duopass.server.services.oidc_binding import ISSUER_CHARS_MAX, SUBJECT_CHARS_MAX
from duopass.server.services.sessions import Issued
from duopass.server.settings import Settings
from duopass.server.store.access import Staff, UsedChallenge
from duopass.server.store.people import HolderPerson
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = ["STATE_CHARS_MAX", "STATE_TTL_S", "Started", "finish", "start"]

STATE_TTL_S = 300
STATE_CHARS_MAX = 128
CODE_CHARS_MAX = 2048
_KINDS = {"staff": b"s", "holder": b"h", "wallet": b"w"}
"""What a state is for: the console, a holder through the API, or the wallet page (a holder
whom the provider sends back to `/wallet/`); the redirect URI each sends is bound to it."""
_KIND_OF = {byte: kind for kind, byte in _KINDS.items()}
_BODY_BYTES = 1 + 8 + 16
_MAC_BYTES = 16


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    expires_at: int


@dataclass(frozen=True)
class _Person:
    role: str
    id: int
    login: str


def _enabled(settings: Settings, kind: str) -> None:
    kind = "holder" if kind == "wallet" else kind
    off = settings.oidc_issuer is None
    if off or (kind == "staff" and not settings.oidc_staff_roles):
        raise Problem(ProblemCode.OIDC_OFF, "sign-in through the university is not set up")
    if kind == "holder" and not settings.oidc_holders:
        raise Problem(ProblemCode.OIDC_OFF, "holders do not sign in through the university")


def _mac(key: bytes, label: str, body: bytes) -> bytes:
    return hmac.new(key, f"duopass-oidc-{label}-v1\n".encode() + body, hashlib.sha256).digest()


def start(ctx: AppContext, kind: str, *, redirect_uri: str) -> Started:
    """The provider's authorization URL for a new sign-in, and its state."""
    _enabled(ctx.settings, kind)
    found = oidc.provider(ctx.settings)
    now = ctx.now()
    body = _KINDS[kind] + now.to_bytes(8, "big") + os.urandom(16)
    key = ctx.keyring.digest_key
    state = b64u_encode(body + _mac(key, "state", body)[:_MAC_BYTES])
    url = oidc.authorization_url(
        ctx.settings,
        found,
        redirect_uri=redirect_uri,
        state=state,
        nonce=b64u_encode(_mac(key, "nonce", body)[:24]),
        verifier=b64u_encode(_mac(key, "verifier", body)),
    )
    return Started(url, state, now + STATE_TTL_S)


def _opened(ctx: AppContext, kinds: tuple[str, ...], state: str) -> tuple[str, bytes]:
    """What the state is for and its body, if it is ours, for one of `kinds` and live; else
    400 `oidc_state`."""
    try:
        data = b64u_decode(state) if len(state) <= STATE_CHARS_MAX else b""
    except EncodingError:
        data = b""
    body, mac = data[:_BODY_BYTES], data[_BODY_BYTES:]
    ours = len(data) == _BODY_BYTES + _MAC_BYTES and hmac.compare_digest(
        mac, _mac(ctx.keyring.digest_key, "state", body)[:_MAC_BYTES]
    )
    issued = int.from_bytes(body[1:9], "big") if ours else 0
    kind = _KIND_OF.get(body[:1], "")
    if not ours or kind not in kinds or not issued <= ctx.now() <= issued + STATE_TTL_S:
        raise _bad_state()
    return kind, body


def _bad_state() -> Problem:
    return Problem(ProblemCode.OIDC_STATE, "the sign-in is unknown, used or expired: begin again")


def _use(unit: Unit, body: bytes) -> Problem | None:
    issued = int.from_bytes(body[1:9], "big")
    digest = hashlib.sha256(b"duopass-oidc-state\n" + body).digest()
    try:
        with unit.session.begin_nested():
            unit.session.add(UsedChallenge(digest=digest, expires_at=issued + STATE_TTL_S))
    except IntegrityError:
        return _bad_state()
    return None


def finish(
    ctx: AppContext,
    kinds: tuple[str, ...],
    *,
    code: str,
    state: str,
    redirect_uri: Callable[[str], str],
    client: str | None,
    installation: str | None = None,
) -> Issued:
    """A session for whom the provider's ID token names, once the state (one of `kinds`, used
    now), the code and the ID token check out and the risk policy allows it. `redirect_uri`
    gives the URI the start sent for the state's kind; `Issued.login` names whom it signed in."""
    settings = ctx.settings
    _enabled(settings, kinds[0])
    kind, body = _opened(ctx, kinds, state)
    if not 0 < len(code) <= CODE_CHARS_MAX:
        raise oidc.refused("the code is missing or too long")
    ctx.run_refusable(lambda unit: _use(unit, body))
    key = ctx.keyring.digest_key
    found = oidc.provider(settings)
    verifier = b64u_encode(_mac(key, "verifier", body))
    redirect = redirect_uri(kind)
    id_token = oidc.exchange(settings, found, code=code, verifier=verifier, redirect=redirect)
    nonce = b64u_encode(_mac(key, "nonce", body)[:24])
    claims = oidc.verify(settings, found, id_token, nonce=nonce, now=ctx.now())
    claim = settings.oidc_staff_claim if kind == "staff" else settings.oidc_holder_claim
    name = claims.get(claim)
    if not isinstance(name, str) or not 0 < len(name) <= LOGIN_CHARS_MAX:
        raise oidc.refused(f"the ID token has no usable {claim} claim")
    subject = _Subject(str(claims["iss"]), claims["sub"])
    if not isinstance(subject.sub, str) or not 0 < len(subject.sub) <= SUBJECT_CHARS_MAX:
        raise oidc.refused("the ID token's sub is not 1 to 255 characters")
    if not subject.sub.isascii() or len(subject.iss) > ISSUER_CHARS_MAX:
        raise oidc.refused("the ID token's sub or iss cannot be kept")
    return ctx.run_refusable(
        lambda unit: _sign_in(unit, kind, name, subject, client=client, installation=installation)
    )


@dataclass(frozen=True)
class _Subject:
    iss: str
    sub: object


@dataclass(frozen=True)
class _Resolved:
    """Whom a sign-in names (None: nobody who may sign in), whether that account is bound to
    the provider's subject already, and the refusal when the claim and a binding disagree."""

    person: _Person | None
    bound: bool = False
    conflict: Problem | None = None


def _resolve(unit: Unit, kind: str, name: str, subject: _Subject) -> _Resolved:
    """The account bound to (`iss`, `sub`), else the one the claim names (to bind now)."""
    staff, session = kind == "staff", unit.session
    claimed = _person(unit, kind, name)
    iss, sub = subject.iss, str(subject.sub)
    bound_id = oidc_binding.by_subject(session, staff=staff, issuer=iss, subject=sub)
    if bound_id is not None:
        if claimed is not None and claimed.id != bound_id:
            why = f"the claim names {claimed.login!r}, the subject is bound to another account"
            refusal = oidc_binding.mismatch(name, staff=staff, issuer=iss, subject=sub, why=why)
            return _Resolved(claimed, conflict=refusal)
        return _Resolved(_person_by_id(unit, kind, bound_id), bound=True)
    if claimed is not None:
        other = oidc_binding.binding(session, staff=staff, principal_id=claimed.id)
        if other is not None:
            why = f"the account is bound to subject {other.subject!r} of {other.issuer}"
            refusal = oidc_binding.mismatch(name, staff=staff, issuer=iss, subject=sub, why=why)
            return _Resolved(claimed, conflict=refusal)
    return _Resolved(claimed)


def _person_by_id(unit: Unit, kind: str, principal_id: int) -> _Person | None:
    """A bound account, if it may still sign in this way (staff: enabled, a role allowed)."""
    if kind == "staff":
        staff = unit.session.get(Staff, principal_id)
        if staff is None or staff.disabled_at is not None:
            return None
        allowed = staff.role in unit.settings.oidc_staff_roles
        return _Person(staff.role, staff.id, staff.login) if allowed else None
    holder = unit.session.get(Holder, principal_id)
    return None if holder is None else _Person("holder", holder.id, holder.login)


def _person(unit: Unit, kind: str, name: str) -> _Person | None:
    session, settings = unit.session, unit.settings
    if kind == "staff":
        staff = session.scalars(
            select(Staff).where(Staff.login == name, Staff.disabled_at.is_(None))
        ).one_or_none()
        allowed = staff is not None and staff.role in settings.oidc_staff_roles
        return _Person(staff.role, staff.id, staff.login) if staff and allowed else None
    if settings.oidc_holder_field == "number":
        named = select(Holder).join(HolderPerson, HolderPerson.holder_id == Holder.id)
        holder = session.scalars(named.where(HolderPerson.number == name)).one_or_none()
    else:
        holder = session.scalars(select(Holder).where(Holder.login == name)).one_or_none()
    return None if holder is None else _Person("holder", holder.id, holder.login)


def _sign_in(
    unit: Unit,
    kind: str,
    name: str,
    who: _Subject,
    *,
    client: str | None,
    installation: str | None,
) -> Issued | Problem:
    """Judged by the risk policy at `sign_in` (counted before the read, withdrawn after it),
    then a session for the person bound to `who` (iss, sub), or for whom `name` names, bound
    now; nobody is created."""
    staff = kind == "staff"
    resolved = _resolve(unit, "staff" if staff else "holder", name, who)
    person = resolved.person
    principal = None if person is None else person.id
    login = name if person is None else person.login
    account = risk_features.account_key(unit, staff=staff, principal_id=principal, login=login)
    pending = risk_features.attempt(account, client, at=unit.now)
    app = risk_features.installation_key(unit, installation)
    risk_features.observe(unit, pending, *risk_features.tried(account, app, at=unit.now))
    allowlisted = risk_engine.allowlisted(unit.settings, client)
    request = {"staff": staff, "allowlisted": allowlisted}
    subject = Subject(account, None, client, installation=app)
    judged, release = risk_engine.check_pending(unit, Point.SIGN_IN, subject, request)
    refusal = risk_engine.refusal(judged)
    holder = None if person is None or staff else unit.session.get(Holder, person.id)
    risk_engine.suspend(unit, judged, holder)
    risk_features.observe(unit, risk_features.withdrawn(pending))  # the provider vouched
    if refusal is not None:
        return refusal
    if resolved.conflict is not None:
        risk_records.settle(unit, release, used=False)
        return resolved.conflict
    if person is None:  # no guess (the provider vouched for them): not counted as a failure
        risk_records.settle(unit, release, used=False)
        return Problem(
            ProblemCode.OIDC_NO_ACCOUNT,
            "the university's sign-in names nobody who may sign in here",
        )
    if judged is not None and judged.assessment.action is Action.STEP_UP:
        risk_records.settle(unit, release, used=False)
        return Problem(
            ProblemCode.STEP_UP_REQUIRED,
            "this account needs a second factor to sign in now: sign in with the password "
            "and its one-time code, or an enrolled device",
        )
    if not resolved.bound:
        bound = oidc_binding.bind(
            unit, staff=staff, principal_id=person.id, login=person.login,
            issuer=who.iss, subject=str(who.sub),
        )  # fmt: skip
        if bound is not None:
            risk_records.settle(unit, release, used=False)
            return bound
    if not risk_records.settle(unit, release, used=True):
        return held()
    risk_features.observe(unit, risk_features.sign_in(account, client, at=unit.now, failed=False))
    issued = sessions.open_session(
        unit, role=person.role, principal_id=person.id, method="oidc", device_id=None
    )
    return replace(issued, login=person.login)
