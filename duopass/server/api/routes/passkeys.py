"""Passkeys (WebAuthn): a signed-in holder registers one (after a recent password sign-in),
lists and deletes theirs; anyone signs in with one (no login: the passkey names the holder).
Bodies are the browser's `PublicKeyCredential.toJSON()`; the reissue step-up takes the same
assertion (`routes.reissue`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from duopass.risk import network_of
from duopass.server.api.deps import Client, Ctx, HolderCaller, Installation
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.session import TokenOut
from duopass.server.limits import (
    PASSKEY_ATTESTATION_BYTES_MAX,
    PASSKEY_AUTHENTICATOR_DATA_BYTES_MAX,
    PASSKEY_CLIENT_DATA_BYTES_MAX,
    PASSKEY_ID_BYTES_MAX,
    PASSKEY_SIGNATURE_BYTES_MAX,
    PASSKEY_TRANSPORTS_MAX,
    PASSKEY_USER_HANDLE_BYTES_MAX,
    ROW_ID_MAX,
    b64u_chars,
)
from duopass.server.services import passkey_challenges, passkeys, passwordless, sessions, throttle
from duopass.server.services.passkey_challenges import Relying
from duopass.server.settings import Settings
from duopass.server.unit_of_work import Unit

router = APIRouter(tags=["passkeys"])

_B64U = r"^[A-Za-z0-9_-]+$"


def _b64u(size: int, alias: str | None = None) -> Any:
    return Field(min_length=1, max_length=b64u_chars(size), pattern=_B64U, alias=alias)


Transport = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z-]+$")]
Attachment = Literal["platform", "cross-platform"]


class AttestationResponse(BaseModel):
    client_data_json: str = _b64u(PASSKEY_CLIENT_DATA_BYTES_MAX, "clientDataJSON")
    attestation_object: str = _b64u(PASSKEY_ATTESTATION_BYTES_MAX, "attestationObject")
    transports: list[Transport] = Field(default_factory=list, max_length=PASSKEY_TRANSPORTS_MAX)


class RegistrationIn(BaseModel):
    """What `navigator.credentials.create` made, as `PublicKeyCredential.toJSON()` gives it."""

    id: str = _b64u(PASSKEY_ID_BYTES_MAX)
    raw_id: str = _b64u(PASSKEY_ID_BYTES_MAX, "rawId")
    type: Literal["public-key"]
    response: AttestationResponse
    authenticator_attachment: Attachment | None = Field(
        default=None, alias="authenticatorAttachment"
    )


class AssertionResponse(BaseModel):
    client_data_json: str = _b64u(PASSKEY_CLIENT_DATA_BYTES_MAX, "clientDataJSON")
    authenticator_data: str = _b64u(PASSKEY_AUTHENTICATOR_DATA_BYTES_MAX, "authenticatorData")
    signature: str = _b64u(PASSKEY_SIGNATURE_BYTES_MAX)
    user_handle: str | None = Field(
        default=None,
        min_length=1,
        max_length=b64u_chars(PASSKEY_USER_HANDLE_BYTES_MAX),
        pattern=_B64U,
        alias="userHandle",
    )


class AssertionIn(BaseModel):
    """What `navigator.credentials.get` answered, as `PublicKeyCredential.toJSON()` gives it."""

    id: str = _b64u(PASSKEY_ID_BYTES_MAX)
    raw_id: str = _b64u(PASSKEY_ID_BYTES_MAX, "rawId")
    type: Literal["public-key"]
    response: AssertionResponse
    authenticator_attachment: Attachment | None = Field(
        default=None, alias="authenticatorAttachment"
    )


class PasskeyOut(BaseModel):
    id: int
    created_at: int
    last_used_at: int | None
    transports: list[str]


class PasskeysOut(BaseModel):
    passkeys: list[PasskeyOut]


class PasskeyTokenOut(TokenOut):
    login: str = Field(description="whom the passkey signed in")


PasskeyId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]


def wire(body: RegistrationIn | AssertionIn) -> dict[str, Any]:
    """The credential as the `webauthn` library reads it (the browser's JSON names)."""
    return body.model_dump(by_alias=True, exclude_none=True)


def relying_party(request: Request, settings: Settings) -> Relying:
    """Who this request's ceremonies are for: its host name (or `webauthn_rp_id`)."""
    url = request.url
    return passkey_challenges.relying(settings, scheme=url.scheme, host=url.hostname, port=url.port)


@router.post("/v1/me/passkeys/options", responses=problems(401, 409))
def registration_options(request: Request, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Options for `navigator.credentials.create` (good for 5 minutes), after a recent
    password sign-in: a stolen session cannot add a way in of its own."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    rp = relying_party(request, ctx.settings)
    return ctx.run(lambda unit: passkeys.begin_registration(unit, caller.holder(unit.session), rp))


@router.post(
    "/v1/me/passkeys",
    status_code=201,
    response_model=PasskeyOut,
    responses=problems(401, 403, 409),
)
def register(
    body: RegistrationIn, request: Request, caller: HolderCaller, ctx: Ctx
) -> dict[str, Any]:
    """Keep the passkey the options made, once its attestation verifies."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    rp = relying_party(request, ctx.settings)
    credential = wire(body)

    def work(unit: Unit) -> Any:
        return passkeys.finish_registration(unit, caller.holder(unit.session), rp, credential)

    result: dict[str, Any] = ctx.run_refusable(work)
    return result


@router.get("/v1/me/passkeys", response_model=PasskeysOut)
def my_passkeys(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """The holder's passkeys, oldest first."""
    return {"passkeys": ctx.run(lambda unit: passkeys.listing(unit, caller.id))}


@router.delete("/v1/me/passkeys/{passkey_id}", status_code=204, responses=problems(404))
def delete_passkey(passkey_id: PasskeyId, caller: HolderCaller, ctx: Ctx) -> None:
    """Delete one of the holder's passkeys: it signs in no more."""
    ctx.run(lambda unit: passkeys.delete_passkey(unit, caller.id, passkey_id))


@router.post("/v1/session/passkey/options", responses=problems(409, 429, 503))
def sign_in_options(request: Request, ctx: Ctx, client: Client) -> dict[str, Any]:
    """Options for `navigator.credentials.get` with no login (good for 5 minutes); at most
    100 live a source network (429 `throttled`), but for the throttles' exempt networks."""
    rp = relying_party(request, ctx.settings)
    network = None if throttle.exempt(ctx.settings, client) else network_of(client)
    return ctx.run(lambda unit: passkeys.begin_sign_in(unit, rp, network))


@router.post(
    "/v1/session/passkey", response_model=PasskeyTokenOut, responses=problems(401, 403, 409, 429)
)
def passkey_sign_in(
    body: AssertionIn,
    request: Request,
    ctx: Ctx,
    client: Client,
    installation: Installation = None,
) -> PasskeyTokenOut:
    """A holder signs in with a passkey: a session as a password sign-in gives (and the login
    it is for), judged by the risk policy as a device's sign-in is; the challenge is used
    whatever the verdict."""
    rp = relying_party(request, ctx.settings)
    issued = passwordless.passkey_sign_in(
        ctx, rp, wire(body), client=client, installation=installation
    )
    return PasskeyTokenOut(token=issued.token, expires_at=issued.expires_at, login=issued.login)
