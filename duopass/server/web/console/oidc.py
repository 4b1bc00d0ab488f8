"""Staff sign in to the console through the university's OpenID Connect provider
(`services.oidc_sign_in`, allowed for the roles `oidc_staff_roles` names): "Sign in with the
university" on the sign-in form goes to `/console/oidc/start`, which sends the browser to the
provider with a new state, also kept in a cookie of its own (`duopass_oidc`: HttpOnly,
SameSite=Lax so that it comes back with the provider's redirect, Path=/console/oidc, five
minutes), so a callback in a browser that did not start the sign-in is refused. The callback
opens the session a password sign-in opens (same cookie, CSRF anchor, idle and absolute expiry);
its answer is a page that moves on to the console, so the console's SameSite=Strict cookie is
sent by a navigation that starts here, not by a redirect chain that passed the provider's site
(cross-site under RFC 6265bis's redirect taint, though Chromium sends it today)."""

from __future__ import annotations

import hmac
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from duopass.server.api.deps import client_address
from duopass.server.api.routes.session_oidc import callback_uri
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.services import oidc_sign_in
from duopass.server.services.oidc_sign_in import CODE_CHARS_MAX, STATE_CHARS_MAX, STATE_TTL_S
from duopass.server.web.console.signin import login_page
from duopass.server.web.console.visit import PREFIX, Visit, checked

__all__ = ["router"]

router = APIRouter()
Checked = Annotated[Visit, Depends(checked)]
STATE_COOKIE: Final = "duopass_oidc"
_COOKIE_PATH: Final = f"{PREFIX}/oidc"
_CALLBACK: Final = f"{PREFIX}/oidc/callback"


def _refused(seen: Visit, code: ProblemCode) -> Response:
    answer = login_page(seen, error=code.value, status=STATUS[code])
    answer.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH, httponly=True, samesite="lax")
    return answer


@router.get("/oidc/start")
async def oidc_start(seen: Checked) -> Response:
    """To the provider, with a new state (also in this browser's `duopass_oidc` cookie)."""
    if seen.staff is not None:
        return seen.redirect(f"{PREFIX}/")
    redirect = callback_uri(seen.ctx.settings, seen.request, _CALLBACK)
    try:
        started = await run_in_threadpool(
            oidc_sign_in.start, seen.ctx, "staff", redirect_uri=redirect
        )
    except Problem as refused:
        return _refused(seen, refused.code)
    answer = seen.finish(RedirectResponse(started.url, status_code=303))
    answer.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=STATE_TTL_S,
        path=_COOKIE_PATH,
        secure=seen.request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return answer


@router.get("/oidc/callback")
async def oidc_callback(
    seen: Checked,
    code: Annotated[str, Query(max_length=CODE_CHARS_MAX)] = "",
    state: Annotated[str, Query(max_length=STATE_CHARS_MAX)] = "",
) -> Response:
    """The provider sent the browser back: a staff session for whom its ID token names."""
    kept = seen.request.cookies.get(STATE_COOKIE, "")
    if not state or not hmac.compare_digest(kept.encode(), state.encode()):
        return _refused(seen, ProblemCode.OIDC_STATE)
    if not code:  # the provider's `error` (the person cancelled, or it refused them)
        return _refused(seen, ProblemCode.OIDC_REFUSED)
    try:
        issued = await run_in_threadpool(
            lambda: oidc_sign_in.finish(
                seen.ctx,
                ("staff",),
                code=code,
                state=state,
                redirect_uri=lambda _: callback_uri(seen.ctx.settings, seen.request, _CALLBACK),
                client=client_address(seen.request),
            )
        )
    except Problem as refused:
        return _refused(seen, refused.code)
    seen.sign_in(issued.token)
    answer = seen.page("console/oidc_signed_in.html", to=f"{PREFIX}/")
    answer.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH, httponly=True, samesite="lax")
    return answer
