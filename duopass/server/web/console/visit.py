"""Who is at the console and what a page answers them with: the staff session cookie, the CSRF
token, the page's language, and rendering.

The session is a staff bearer session (`services.sessions`, opened by `services.auth` as the
API's staff sign-in opens one) kept in a cookie (`duopass_console`: HttpOnly, SameSite=Strict,
Path=/console, Secure over https) with the time of its last request, MACed with the server's
digest key: it ends after `IDLE_S` without a request, and at the latest when the session does
(`sessions.TOKEN_LIFETIME_S`, 8 hours after sign-in). Each answer to a signed-in request moves
the idle clock on.

CSRF: a random value in a cookie of its own (`duopass_csrf`, new at every sign-in and sign-out,
so one per session) and, in every form and in htmx's `hx-headers`, its HMAC under the digest
key; every unsafe request must carry that token (`csrf` field or `X-CSRF-Token` header), else
403 `csrf_refused`. A page on another site can neither read the cookie nor compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from duopass.protocol.encoding import b64u_encode
from duopass.server.context import AppContext
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import sessions
from duopass.server.services.sessions import Caller
from duopass.server.store.access import Staff
from duopass.server.web import i18n
from duopass.server.web.templating import render

__all__ = ["IDLE_S", "PREFIX", "SignInFirst", "Visit"]

PREFIX: Final = "/console"
SESSION_COOKIE: Final = "duopass_console"
CSRF_COOKIE: Final = "duopass_csrf"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
IDLE_S: Final = 30 * 60
"""A console session unused this long ends (its cookie is refused; sign in again)."""
COOKIE_CHARS_MAX: Final = 200
LANG_COOKIE_S: Final = 365 * 86_400
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS: Final = {
    # scripts, styles and everything else from this server only; no inline script, no eval,
    # no framing (a freeze button under someone else's page), forms posted here alone
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInFirst(Exception):
    """No live console session: the page sends the browser to the sign-in form."""


@dataclass(frozen=True)
class StaffMember:
    caller: Caller
    login: str

    @property
    def is_admin(self) -> bool:
        return self.caller.role == "admin"


def _mac(key: bytes, label: str, text: str) -> str:
    digest = hmac.new(key, f"duopass-console-{label}-v1\n{text}".encode(), hashlib.sha256)
    return b64u_encode(digest.digest()[:24])


def session_cookie(key: bytes, token: str, seen: int) -> str:
    body = f"{token}.{seen}"
    return f"{body}.{_mac(key, 'session', body)}"


def _token_of(key: bytes, value: str | None, now: int) -> str | None:
    """The bearer token in a console cookie, if the cookie is ours and not idle too long."""
    if value is None or len(value) > COOKIE_CHARS_MAX or value.count(".") != 2:
        return None
    token, seen, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(key, "session", f"{token}.{seen}")):
        return None
    if not seen.isdigit() or not 0 <= now - int(seen) <= IDLE_S:
        return None
    return token


@dataclass
class Visit:
    """One request to the console: its context, language, CSRF anchor and staff member."""

    ctx: AppContext
    request: Request
    language: str
    anchor: str
    staff: StaffMember | None = None
    token: str | None = None
    cookies: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """Cookies to set on the answer: name → (value, or None to delete it; its path)."""

    @property
    def csrf(self) -> str:
        return _mac(self.ctx.keyring.digest_key, "csrf", self.anchor)

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())

    def new_anchor(self) -> None:
        """A new CSRF anchor (at sign-in and sign-out): a token of the last session is void."""
        self.anchor = secrets.token_urlsafe(24)
        self.cookies[CSRF_COOKIE] = (self.anchor, PREFIX)

    def sign_in(self, token: str) -> None:
        self.token = token
        self.new_anchor()

    def sign_out(self) -> None:
        self.token = self.staff = None
        self.cookies[SESSION_COOKIE] = (None, PREFIX)
        self.new_anchor()

    def speak(self, language: str) -> None:
        """The language switch: this answer and the next pages (the wallet's too: path /)."""
        self.language = language
        self.cookies[i18n.LANG_COOKIE] = (language, "/")

    def values(self, **values: Any) -> dict[str, Any]:
        settings = self.ctx.settings
        return {
            "lang": self.language,
            "html_lang": i18n.html_lang(self.language),
            "languages": i18n.LANGUAGES,
            "csrf": self.csrf,
            "staff": self.staff,
            "issuer": settings.issuer,
            "axe": settings.test_axe,
            "here": self.request.url.path,
            "prefix": PREFIX,
            "moment": lambda at: i18n.moment(at, settings.timezone),
            **values,
        }

    def page(self, name: str, *, status: int = 200, **values: Any) -> Response:
        html = render(name, self.language, self.values(**values))
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, to: str) -> Response:
        if self.request.headers.get("HX-Request") == "true":
            return self.finish(Response(status_code=204, headers={"HX-Redirect": to}))
        return self.finish(RedirectResponse(to, status_code=303))

    def finish(self, response: Response) -> Response:
        """Set the cookies this visit changed, and move a live session's idle clock on."""
        if self.token is not None and SESSION_COOKIE not in self.cookies:
            cookie = session_cookie(self.ctx.keyring.digest_key, self.token, self.ctx.now())
            self.cookies[SESSION_COOKIE] = (cookie, PREFIX)
        secure = self.request.url.scheme == "https"
        for name, (value, path) in self.cookies.items():
            if value is None:
                response.delete_cookie(
                    name, path=path, secure=secure, httponly=True, samesite="strict"
                )
                continue
            lasting = LANG_COOKIE_S if name == i18n.LANG_COOKIE else None
            response.set_cookie(
                name,
                value,
                max_age=lasting,
                path=path,
                secure=secure,
                httponly=True,
                samesite="strict",
            )
        response.headers.update(SECURITY_HEADERS)
        return response


def _staff(ctx: AppContext, token: str) -> StaffMember | None:
    now = ctx.now()

    def read(unit: Any) -> StaffMember | None:
        caller = sessions.principal(unit.session, token, now)
        if caller is None or not caller.is_staff:
            return None
        row = unit.session.get(Staff, caller.id)
        return (
            None if row is None or row.disabled_at is not None else StaffMember(caller, row.login)
        )

    return ctx.run(read)


def visit(request: Request) -> Visit:
    """The console's view of a request: language, CSRF anchor, and the staff member if any."""
    ctx: AppContext = request.app.state.context
    cookies = request.cookies
    language = i18n.choose(cookies.get(i18n.LANG_COOKIE), request.headers.get("Accept-Language"))
    anchor = cookies.get(CSRF_COOKIE, "")
    seen = Visit(ctx, request, language, anchor)
    if not 16 <= len(anchor) <= COOKIE_CHARS_MAX:
        seen.new_anchor()
    token = _token_of(ctx.keyring.digest_key, cookies.get(SESSION_COOKIE), ctx.now())
    if token is not None:
        seen.staff = _staff(ctx, token)
        seen.token = token if seen.staff is not None else None
    if seen.token is None and SESSION_COOKIE in cookies:
        seen.cookies[SESSION_COOKIE] = (None, PREFIX)
    return seen


async def checked(request: Request) -> Visit:
    """`visit`, refused (403 csrf_refused) when an unsafe request lacks this session's token."""
    seen = await run_in_threadpool(visit, request)
    if request.method in SAFE_METHODS:
        return seen
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field_value = form.get(CSRF_FIELD)
        sent = field_value if isinstance(field_value, str) else None
    if not seen.csrf_ok(sent):
        raise Problem(ProblemCode.CSRF_REFUSED, "the form's token is missing or not this session's")
    return seen


async def signed_in(request: Request) -> Visit:
    """`checked`, and a live staff session (else the sign-in form)."""
    seen = await checked(request)
    if seen.staff is None:
        raise SignInFirst
    return seen


async def admin(request: Request) -> Visit:
    """`signed_in`, as an admin (else 403 forbidden)."""
    seen = await signed_in(request)
    assert seen.staff is not None
    if not seen.staff.is_admin:
        raise Problem(ProblemCode.FORBIDDEN, "for card-office administrators only")
    return seen
