"""Signing in to the console and out, and the language switch. Sign-in is the API's staff
sign-in (`services.auth.password_sign_in`: the same throttles, risk checks and sessions); its
session lives in the console's cookie (`visit`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from duopass.server.api.deps import client_address
from duopass.server.limits import LOGIN_CHARS_MAX, PASSWORD_CHARS_MAX
from duopass.server.problems import STATUS, Problem
from duopass.server.services import auth, sessions
from duopass.server.web import i18n
from duopass.server.web.console.visit import IDLE_S, PREFIX, Visit, checked

__all__ = ["router"]

router = APIRouter()
Checked = Annotated[Visit, Depends(checked)]
NEXT_CHARS_MAX = 300


def login_page(
    seen: Visit, *, error: str | None = None, login: str = "", status: int = 200
) -> Response:
    """The sign-in form (with the university's sign-in where staff may use it)."""
    return seen.page(
        "console/login.html",
        status=status,
        error=error,
        login=login,
        login_max=LOGIN_CHARS_MAX,
        password_max=PASSWORD_CHARS_MAX,
        idle_min=IDLE_S // 60,
        absolute_h=sessions.TOKEN_LIFETIME_S // 3600,
        oidc=seen.ctx.settings.oidc_issuer is not None and bool(seen.ctx.settings.oidc_staff_roles),
    )


@router.get("/login")
def loginlogin_page(seen: Checked) -> Response:
    if seen.staff is not None:
        return seen.redirect(f"{PREFIX}/")
    return login_page(seen)


@router.post("/login")
async def sign_in(
    seen: Checked,
    login: Annotated[str, Form(max_length=LOGIN_CHARS_MAX)] = "",
    password: Annotated[str, Form(max_length=PASSWORD_CHARS_MAX)] = "",
    otp: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    """The staff sign-in; a refusal shows the form again with why, in the page's language."""
    if not login or not password:
        return login_page(seen, error="empty", login=login, status=422)
    client = client_address(seen.request)
    try:
        issued = await run_in_threadpool(
            auth.password_sign_in,
            seen.ctx,
            login=login,
            password=password,
            otp=otp or None,
            staff=True,
            client=client,
        )
    except Problem as refused:
        return login_page(seen, error=refused.code.value, login=login, status=STATUS[refused.code])
    seen.sign_in(issued.token)
    return seen.redirect(f"{PREFIX}/")


@router.post("/logout")
async def sign_out(seen: Checked) -> Response:
    """End the session (its bearer token too) and forget the cookie."""
    if seen.token is not None:
        digest = sessions.digest(seen.token)
        await run_in_threadpool(
            seen.ctx.run, lambda unit: sessions.end_session(unit.session, digest)
        )
    seen.sign_out()
    return seen.redirect(f"{PREFIX}/login")


@router.post("/lang")
def switch_language(
    seen: Checked,
    lang: Annotated[str, Form(max_length=16)],
    next: Annotated[str, Form(max_length=NEXT_CHARS_MAX)] = f"{PREFIX}/",
) -> Response:
    """Speak `lang` from now on (a cookie), and go back to the page the switch was on."""
    if lang in i18n.LANGUAGES:
        seen.speak(lang)
    stays = next.startswith(f"{PREFIX}/") or next == PREFIX
    return seen.redirect(next if stays and "//" not in next and "\\" not in next else f"{PREFIX}/")
