"""A holder signs in through the university's OpenID Connect provider
(`services.oidc_sign_in`): the wallet asks for the provider's address, sends the browser there,
and the provider sends it back to the callback (`return_to=api`) or to the wallet page
(`return_to=wallet`), which hands the code and state to the callback; either way the callback
answers with a session, as `POST /v1/session` gives one, and whose it is.

The card office sees and removes the binding of a holder or staff member to the provider's
account (`services.oidc_binding`): `GET`/`DELETE /v1/admin/holders/{handle}/oidc` and
`/v1/admin/staff/{login}/oidc` (reading: staff; unbinding: admins)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from duopass.server.api.deps import AdminCaller, Client, Ctx, Installation, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Handle
from duopass.server.context import AppContext
from duopass.server.limits import LOGIN_CHARS_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import holders, oidc_binding, oidc_sign_in, staff
from duopass.server.services.oidc_sign_in import CODE_CHARS_MAX, STATE_CHARS_MAX
from duopass.server.settings import Settings
from duopass.server.unit_of_work import Unit

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


StaffLogin = Annotated[
    str, Path(min_length=1, max_length=LOGIN_CHARS_MAX, pattern=r"^[!-~]+$", description="login")
]


class OidcBindingOut(BaseModel):
    issuer: str
    subject: str = Field(description="the provider's `sub` bound to this account")
    bound_at: int


def _account(unit: Unit, who: str, *, is_staff: bool) -> tuple[int, str]:
    if is_staff:
        row = staff.by_login(unit.session, who)
        return row.id, row.login
    holder = holders.by_handle(unit.session, who)
    return holder.id, holder.login


def _binding(ctx: AppContext, who: str, *, is_staff: bool) -> OidcBindingOut:
    def work(unit: Unit) -> oidc_binding.Bound | None:
        principal, _ = _account(unit, who, is_staff=is_staff)
        return oidc_binding.binding(unit.session, staff=is_staff, principal_id=principal)

    found = ctx.run(work)
    if found is None:
        raise Problem(ProblemCode.NOT_FOUND, "not bound to a university account")
    return OidcBindingOut(issuer=found.issuer, subject=found.subject, bound_at=found.bound_at)


def _unbind(ctx: AppContext, who: str, by: int, *, is_staff: bool) -> None:
    def work(unit: Unit) -> bool:
        principal, login = _account(unit, who, is_staff=is_staff)
        return oidc_binding.unbind(unit, staff=is_staff, principal_id=principal, login=login, by=by)

    if not ctx.run(work):
        raise Problem(ProblemCode.NOT_FOUND, "not bound to a university account")


_ADMIN: list[str | Enum] = ["card office"]


@router.get("/v1/admin/holders/{handle}/oidc", tags=_ADMIN, responses=problems(404))
def holder_binding(handle: Handle, _caller: StaffCaller, ctx: Ctx) -> OidcBindingOut:
    """The university account this holder is bound to (404: none yet)."""
    return _binding(ctx, handle, is_staff=False)


@router.delete(
    "/v1/admin/holders/{handle}/oidc", tags=_ADMIN, status_code=204, responses=problems(404)
)
def holder_unbind(handle: Handle, caller: AdminCaller, ctx: Ctx) -> None:
    """Unbind (admins): the holder's next sign-in through the university binds again."""
    _unbind(ctx, handle, caller.id, is_staff=False)


@router.get("/v1/admin/staff/{login}/oidc", tags=_ADMIN, responses=problems(404))
def staff_binding(login: StaffLogin, _caller: StaffCaller, ctx: Ctx) -> OidcBindingOut:
    """The university account this staff member is bound to (404: none yet)."""
    return _binding(ctx, login, is_staff=True)


@router.delete(
    "/v1/admin/staff/{login}/oidc", tags=_ADMIN, status_code=204, responses=problems(404)
)
def staff_unbind(login: StaffLogin, caller: AdminCaller, ctx: Ctx) -> None:
    """Unbind (admins): the staff member's next sign-in through the university binds again."""
    _unbind(ctx, login, caller.id, is_staff=True)
