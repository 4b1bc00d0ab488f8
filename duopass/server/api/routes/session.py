"""Signing in and the signed-in person's own security: holder and staff sign-in (a password, or
a holder's enrolled device signing a challenge), sessions, the password, the second factor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.server.api.deps import Client, Ctx, HolderCaller, Installation, SignedIn
from duopass.server.api.openapi import problems
from duopass.server.context import AppContext
from duopass.server.limits import LOGIN_CHARS_MAX, PASSWORD_CHARS_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, challenges, passwordless, second_factor, sessions
from duopass.server.services.sessions import Caller
from duopass.server.unit_of_work import Unit

router = APIRouter(tags=["session"])

_OTP = r"^[0-9]{6}$"


class SignIn(BaseModel):
    login: str = Field(min_length=1, max_length=LOGIN_CHARS_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_CHARS_MAX)
    otp: str | None = Field(default=None, pattern=_OTP)


class TokenOut(BaseModel):
    token: str
    expires_at: int


class ChallengeOut(BaseModel):
    challenge: str = Field(description="sign `duopass-device-signin-v1\\n` login `\\n` challenge")
    expires_at: int


class DeviceSignIn(BaseModel):
    login: str = Field(min_length=1, max_length=LOGIN_CHARS_MAX)
    public_key: str = Field(min_length=43, max_length=43, description="the enrolled device key")
    challenge: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=86, max_length=86)


class SessionOut(BaseModel):
    id: str
    method: str
    created_at: int
    expires_at: int
    device_id: int | None
    current: bool


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=PASSWORD_CHARS_MAX)
    new_password: str = Field(min_length=8, max_length=PASSWORD_CHARS_MAX)


class EndedOut(BaseModel):
    ended: int = Field(description="how many other sessions ended")


class TotpNewIn(BaseModel):
    current_otp: str | None = Field(
        default=None, pattern=_OTP, description="a code of the factor that is on, if one is"
    )


class TotpOut(BaseModel):
    secret: str
    uri: str


class TotpIn(BaseModel):
    otp: str = Field(pattern=_OTP, description="a code from the secret /v1/me/totp/new gave")
    secret: str | None = Field(
        default=None, pattern=r"^[A-Z2-7]{32}$", description="if sent, must be that secret"
    )


class TotpOffIn(BaseModel):
    current_otp: str | None = Field(default=None, pattern=_OTP)


def _raw(text: str, what: str) -> bytes:
    try:
        return b64u_decode(text)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, f"{what} is not unpadded base64url") from exc


@router.post("/v1/session", response_model=TokenOut, responses=problems(401, 403, 429))
def sign_in(body: SignIn, ctx: Ctx, client: Client, installation: Installation = None) -> TokenOut:
    """A holder signs in (password, then a one-time code where one is on); throttled."""
    return sign_in_as(body, ctx, client, staff=False, installation=installation)


@router.post(
    "/v1/admin/session",
    response_model=TokenOut,
    tags=["card office"],
    responses=problems(401, 403, 429),
)
def staff_sign_in(body: SignIn, ctx: Ctx, client: Client) -> TokenOut:
    """A card-office user signs in; throttled like holders."""
    return sign_in_as(body, ctx, client, staff=True)


def sign_in_as(
    body: SignIn,
    ctx: AppContext,
    client: str | None,
    *,
    staff: bool,
    installation: str | None = None,
) -> TokenOut:
    issued = auth.password_sign_in(
        ctx,
        login=body.login,
        password=body.password,
        otp=body.otp,
        staff=staff,
        client=client,
        installation=installation,
    )
    return TokenOut(token=issued.token, expires_at=issued.expires_at)


@router.post("/v1/session/challenge", response_model=ChallengeOut)
def device_challenge(ctx: Ctx) -> ChallengeOut:
    """A one-time challenge (valid 2 minutes) for an enrolled device to sign in with."""
    data, expires = challenges.challenge(ctx.keyring, ctx.now())
    return ChallengeOut(challenge=b64u_encode(data), expires_at=expires)


@router.post("/v1/session/device", response_model=TokenOut, responses=problems(401))
def device_sign_in(
    body: DeviceSignIn, ctx: Ctx, client: Client, installation: Installation = None
) -> TokenOut:
    """A holder's wallet signs in with its enrolled device key: never throttled by password
    failures, refused for a revoked (lost) device; judged by the risk policy."""
    key, data = _raw(body.public_key, "public_key"), _raw(body.challenge, "challenge")
    signature = _raw(body.signature, "signature")
    issued = passwordless.device_sign_in(
        ctx,
        login=body.login,
        public_key=key,
        challenge_bytes=data,
        signature=signature,
        client=client,
        installation=installation,
    )
    return TokenOut(token=issued.token, expires_at=issued.expires_at)


@router.delete("/v1/session", status_code=204)
def sign_out(caller: SignedIn, ctx: Ctx) -> None:
    """End the session this request was made with."""
    ctx.run(lambda unit: sessions.end_session(unit.session, caller.token))


@router.get("/v1/me/sessions", response_model=list[SessionOut])
def my_sessions(caller: HolderCaller, ctx: Ctx) -> list[dict[str, Any]]:
    """The holder's live sessions; `current` marks this one."""
    return ctx.run(lambda unit: sessions.live(unit.session, caller, unit.now))


@router.delete("/v1/me/sessions", response_model=EndedOut)
def end_other_sessions(caller: HolderCaller, ctx: Ctx) -> EndedOut:
    """End every session but this one (after a recent password sign-in)."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    ended = ctx.run(lambda unit: _end_others(unit, caller))
    return EndedOut(ended=ended)


def _end_others(unit: Unit, caller: Caller) -> int:
    return sessions.end_sessions(
        unit.session, staff=caller.is_staff, principal_id=caller.id, keep=caller.token
    )


@router.post("/v1/me/password", response_model=EndedOut, responses=problems(429))
def change_password(body: PasswordIn, caller: HolderCaller, ctx: Ctx) -> EndedOut:
    """A new password, with the current one; every other session ends."""
    ended = auth.change_password(ctx, caller, current=body.current_password, new=body.new_password)
    return EndedOut(ended=ended)


@router.post("/v1/me/totp/new", response_model=TotpOut, responses=problems(429))
def new_totp(caller: HolderCaller, ctx: Ctx, body: TotpNewIn | None = None) -> TotpOut:
    """A secret for an authenticator app, after a recent password sign-in or (when a factor is
    on) its current code; nothing changes until /v1/me/totp confirms it."""
    current = body.current_otp if body is not None else None
    issuer = ctx.settings.issuer
    secret, uri = auth.stepped_up(
        ctx,
        caller,
        current,
        lambda unit: second_factor.begin(caller.holder(unit.session), issuer, unit.now),
    )
    return TotpOut(secret=secret, uri=uri)


@router.post("/v1/me/totp", status_code=204, responses=problems(409))
def enable_totp(body: TotpIn, caller: HolderCaller, ctx: Ctx) -> None:
    """Turn on (or change to) the secret /v1/me/totp/new handed out; other sessions end."""

    def work(unit: Unit) -> None:
        holder = caller.holder(unit.session)
        second_factor.confirm(unit, holder, otp=body.otp, secret=body.secret)
        _end_others(unit, caller)

    ctx.run(work)


@router.delete("/v1/me/totp", response_model=EndedOut, responses=problems(409, 429))
def disable_totp(caller: HolderCaller, ctx: Ctx, body: TotpOffIn | None = None) -> EndedOut:
    """Turn the second factor off (its current code, or a recent password sign-in); other
    sessions end."""
    current = body.current_otp if body is not None else None

    def work(unit: Unit) -> int:
        second_factor.turn_off(unit, caller.holder(unit.session))
        return _end_others(unit, caller)

    return EndedOut(ended=auth.stepped_up(ctx, caller, current, work))
