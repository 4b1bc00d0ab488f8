"""A holder signs in through the university's OpenID Connect provider
(`services.oidc_sign_in`): the wallet asks for the provider's address, sends the browser there,
and the provider sends it back to the callback (`return_to=api`) or to the wallet page
(`return_to=wallet`), which hands the code and state to the callback; either way the callback
answers with a session, as `POST /v1/session` gives one, and whose it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from duopass.server.api.deps import Client, Ctx, Installation
from duopass.server.api.openapi import problems
from duopass.server.services import oidc_sign_in
from duopass.server.services.oidc_sign_in import CODE_CHARS_MAX, STATE_CHARS_MAX
from duopass.server.settings import Settings

__all__ = ["callback_uri", "router"]

router = APIRouter(tags=["session"])
CALLBACK = "/v1/session/oidc/callback"
WALLET = "/wallet/"


class OidcTokenOut(BaseModel):
    token: str
    expires_at: int
    login: str = Field(description="whom the provider's ID token named")


class OidcStartOut(BaseModel):
    url: str
    state: str
    expires_at: int


def callback_uri(settings: Settings, request: Request, path: str) -> str:
    """Where the provider sends the browser back: `oidc_public_url`, else this request's own
    scheme and host (behind a trusted proxy, the scheme it forwarded)."""
    base = settings.oidc_public_url or f"{request.url.scheme}://{request.url.netloc}"
    return base + path


@router.get("/v1/session/oidc/start", response_model=OidcStartOut, responses=problems(404, 503))
def oidc_start(
    request: Request, ctx: Ctx, return_to: Literal["api", "wallet"] = "api"
) -> OidcStartOut:
    """The provider's authorization URL for a holder's sign-in (code flow, PKCE S256, state
    and nonce kept by the server; the state is good for 5 minutes, once). The provider sends
    the browser back to the callback, or (`return_to=wallet`) to the wallet page."""
    kind = "holder" if return_to == "api" else "wallet"
    redirect = _redirect(ctx.settings, request)(kind)
    started = oidc_sign_in.start(ctx, kind, redirect_uri=redirect)
    return OidcStartOut(url=started.url, state=started.state, expires_at=started.expires_at)


def _redirect(settings: Settings, request: Request) -> Callable[[str], str]:
    return lambda kind: callback_uri(settings, request, CALLBACK if kind == "holder" else WALLET)


@router.get(CALLBACK, response_model=OidcTokenOut, responses=problems(400, 401, 403, 404, 429, 503))
def oidc_callback(
    request: Request,
    ctx: Ctx,
    client: Client,
    *,
    code: Annotated[str, Query(min_length=1, max_length=CODE_CHARS_MAX)],
    state: Annotated[str, Query(min_length=1, max_length=STATE_CHARS_MAX)],
    installation: Installation = None,
) -> OidcTokenOut:
    """Where the provider sends the browser back (or the wallet page, with what it was sent): a
    holder session for whom its ID token names (an existing holder; nobody is created), judged
    by the risk policy as a password sign-in."""
    issued = oidc_sign_in.finish(
        ctx,
        ("holder", "wallet"),
        code=code,
        state=state,
        redirect_uri=_redirect(ctx.settings, request),
        client=client,
        installation=installation,
    )
    return OidcTokenOut(token=issued.token, expires_at=issued.expires_at, login=issued.login)
