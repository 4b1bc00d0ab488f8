"""The console as an application of its own mounted at `/console` on the server (so its
refusals are pages, not problem documents), and the static files beside it."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from duopass.server.context import AppContext
from duopass.server.hsm import HsmError
from duopass.server.problems import STATUS, Problem, ProblemCode, key_failure
from duopass.server.roots import RootError
from duopass.server.web import i18n, static
from duopass.server.web.console import (
    disputes,
    events,
    fleet,
    holder_loss,
    holder_money,
    holders,
    ledger,
    live,
    oidc,
    partner_actions,
    partners,
    review,
    settlement,
    signin,
    webhook_log,
    webhooks,
)
from duopass.server.web.console.visit import PREFIX, SignInFirst, Visit, visit

__all__ = ["mount"]

log = logging.getLogger("duopass.server")
_FROM_STATUS = {403: ProblemCode.FORBIDDEN, 404: ProblemCode.NOT_FOUND}


async def _refusal(request: Request, code: ProblemCode, status: int) -> Response:
    """A refusal as a page in the visitor's language (a plain one if even that fails)."""
    try:
        seen = await run_in_threadpool(visit, request)
    except Exception:  # the database is down: still a page, in the language asked for
        log.exception("console: reading the visit failed")
        ctx: AppContext = request.app.state.context
        language = i18n.choose(None, request.headers.get("Accept-Language"))
        seen = Visit(ctx, request, language, anchor="")
    return seen.page("console/error.html", status=status, error=code.value)


def _install_handlers(console: FastAPI) -> None:
    @console.exception_handler(SignInFirst)
    async def _sign_in_first(request: Request, _exc: SignInFirst) -> Response:
        seen = await run_in_threadpool(visit, request)
        return seen.redirect(f"{PREFIX}/login")

    @console.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return await _refusal(request, exc.code, STATUS[exc.code])

    @console.exception_handler(HsmError)
    @console.exception_handler(RootError)
    async def _key_failure(request: Request, exc: HsmError | RootError) -> Response:
        code = key_failure(request, exc).code
        return await _refusal(request, code, STATUS[code])

    @console.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> Response:
        return await _refusal(request, ProblemCode.INVALID_REQUEST, 422)

    @console.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _FROM_STATUS.get(exc.status_code, ProblemCode.INVALID_REQUEST)
        return await _refusal(request, code, exc.status_code)

    @console.exception_handler(Exception)
    async def _unexpected(request: Request, _exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return await _refusal(request, ProblemCode.INTERNAL, 500)


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Mount the console at `/console` and the pages' static files at `/static/web`."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.context = ctx
    _install_handlers(console)
    console.include_router(signin.router)
    console.include_router(oidc.router)
    console.include_router(holders.router)
    console.include_router(holder_money.router)
    console.include_router(holder_loss.router)
    console.include_router(fleet.router)
    console.include_router(live.router)
    console.include_router(review.router)
    console.include_router(disputes.router)
    console.include_router(events.router)
    console.include_router(settlement.router)
    console.include_router(ledger.router)
    console.include_router(webhooks.router)
    console.include_router(webhook_log.router)
    console.include_router(partners.router)
    console.include_router(partner_actions.router)
    app.mount(PREFIX, console, name="console")
    static.mount(app, axe=ctx.settings.test_axe)
