"""A holder signs in through the university's OpenID Connect provider
(`services.oidc_sign_in`): the wallet asks for the provider's address, sends the browser there,
and hands the code and state the provider sent back to the callback for a session, as
`POST /v1/session` gives one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from duopass.server.api.deps import Client, Ctx, Installation
from duopass.server.api.openapi import problems
from duopass.server.api.routes.session import TokenOut
from duopass.server.services import oidc_sign_in
from duopass.server.services.oidc_sign_in import CODE_CHARS_MAX, STATE_CHARS_MAX
from duopass.server.settings import Settings

__all__ = ["callback_uri", "router"]

router = APIRouter(tags=["session"])
CALLBACK = "/v1/session/oidc/callback"


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
def oidc_start(request: Request, ctx: Ctx) -> OidcStartOut:
    """The provider's authorization URL for a holder's sign-in (code flow, PKCE S256, state
    and nonce kept by the server; the state is good for 5 minutes, once)."""
    started = oidc_sign_in.start(
        ctx, "holder", redirect_uri=callback_uri(ctx.settings, request, CALLBACK)
    )
    return OidcStartOut(url=started.url, state=started.state, expires_at=started.expires_at)


@router.get(CALLBACK, response_model=TokenOut, responses=problems(400, 401, 403, 404, 429, 503))
def oidc_callback(
    request: Request,
    ctx: Ctx,
    client: Client,
    *,
    code: Annotated[str, Query(min_length=1, max_length=CODE_CHARS_MAX)],
    state: Annotated[str, Query(min_length=1, max_length=STATE_CHARS_MAX)],
    installation: Installation = None,
) -> TokenOut:
    """Where the provider sends the browser back: a holder session for whom its ID token names
    (an existing holder; nobody is created), judged by the risk policy as a password sign-in."""
    issued = oidc_sign_in.finish(
        ctx,
        "holder",
        code=code,
        state=state,
        redirect_uri=callback_uri(ctx.settings, request, CALLBACK),
        client=client,
        installation=installation,
    )
    return TokenOut(token=issued.token, expires_at=issued.expires_at)
