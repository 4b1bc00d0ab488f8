"""Annotated dependencies: the context, and who is calling (holder, staff, terminal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from duopass.protocol.journal import TERMINAL_ID_CHARS_MAX
from duopass.protocol.limits import INSTALLATION_HEADER, INSTALLATION_PATTERN
from duopass.protocol.signed_requests import SIGNATURE_HEADER, TERMINAL_HEADER, TIME_HEADER
from duopass.server.context import AppContext
from duopass.server.partners import guard
from duopass.server.partners.clients import Scope
from duopass.server.partners.guard import Partner
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import sessions, terminals
from duopass.server.services.sessions import Caller

_bearer = HTTPBearer(auto_error=False)


async def context(request: Request) -> AppContext:
    """`async` though it awaits nothing: FastAPI runs a plain `def` dependency on its thread pool,
    a hand-off that costs more than the scan route's own parsing."""
    ctx: AppContext = request.app.state.context
    return ctx


Ctx = Annotated[AppContext, Depends(context)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(request: Request) -> str | None:
    """The address the request came from, for per-network sign-in limits and risk features: its
    TCP peer, or behind a trusted proxy the client the proxy forwarded (api.forwarded)."""
    return request.client.host if request.client is not None else None


Client = Annotated[str | None, Depends(client_address)]
Installation = Annotated[
    str | None,
    Header(alias=INSTALLATION_HEADER, pattern=INSTALLATION_PATTERN, max_length=64),
]
"""The wallet installation the request names (`protocol.limits.INSTALLATION_HEADER`), if any:
a risk feature's key, never an identity (the client chooses it)."""


def _caller(ctx: Ctx, bearer: Bearer) -> Caller:
    if bearer is None:
        raise Problem(ProblemCode.UNAUTHENTICATED, "a bearer token is required")
    now = ctx.now()
    caller = ctx.run(lambda unit: sessions.principal(unit.session, bearer.credentials, now))
    if caller is None:
        raise Problem(ProblemCode.UNAUTHENTICATED, "unknown, ended or expired session")
    return caller


def holder_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role != "holder":
        raise Problem(ProblemCode.FORBIDDEN, "for holders only")
    return caller


def staff_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role not in ("operator", "admin"):
        raise Problem(ProblemCode.FORBIDDEN, "for card-office staff only")
    return caller


def admin_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role != "admin":
        raise Problem(ProblemCode.FORBIDDEN, "for card-office administrators only")
    return caller


SignedIn = Annotated[Caller, Depends(_caller)]
HolderCaller = Annotated[Caller, Depends(holder_caller)]
StaffCaller = Annotated[Caller, Depends(staff_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]


async def terminal_caller(
    request: Request,
    ctx: Ctx,
    terminal_id: Annotated[str, Header(alias=TERMINAL_HEADER, max_length=TERMINAL_ID_CHARS_MAX)],
    time: Annotated[str, Header(alias=TIME_HEADER, max_length=16)],
    signature: Annotated[str, Header(alias=SIGNATURE_HEADER, max_length=128)],
) -> terminals.TerminalRow:
    """The terminal whose key signed this request (over its method, target, time and body),
    authenticated before the route runs, so no terminal route can forget to."""
    cached = ctx.terminals.cached(terminal_id)
    if cached is False:
        seen = ctx.terminals.changes.seen()
        row = await run_in_threadpool(
            ctx.run, lambda unit: terminals.row(unit.session, terminal_id)
        )
        ctx.terminals.keep(terminal_id, row, seen)
    else:
        row = cached
    return terminals.authenticate(
        row,
        time=time,
        signature=signature,
        method=request.method,
        target=_target(request),
        body=await request.body(),
        now=ctx.now(),
    )


def _target(request: Request) -> str:
    """The request target a terminal signs: its path and query as `request.url` gives them,
    taken from the path itself when that is plain (no query, nothing `request.url` would
    escape or drop): parsing the URL costs more than the rest of the check but the signature."""
    path = request.scope["path"]
    plain = path.startswith("/") and not path.startswith("//") and path.isascii()
    plain = plain and path.isprintable() and not any(char in path for char in "?#\\")
    if plain and not request.scope.get("query_string"):
        return str(path)
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


TerminalCaller = Annotated[terminals.TerminalRow, Depends(terminal_caller)]


@dataclass(frozen=True)
class StaffOrTerminal:
    """A staff member (operator or admin), a terminal, or a partner client with the scope
    `checkin:redeem`: who may redeem check-ins."""

    staff: Caller | None = None
    terminal: terminals.TerminalRow | None = None
    partner: Partner | None = None


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def partner_for(scope: Scope) -> Callable[..., Any]:
    """A dependency: the partner calling with a bearer access token that has `scope`
    (`partners.guard`: verified, its client active, rate-limited, logged)."""

    async def partner(request: Request, ctx: Ctx, bearer: Bearer) -> Partner:
        if bearer is None:
            raise Problem(
                ProblemCode.UNAUTHENTICATED,
                "a partner's access token is required",
                headers=dict(guard.INVALID_TOKEN),
            )
        issuer = guard.issuer_of(ctx, str(request.base_url))
        return await run_in_threadpool(
            guard.admit, ctx, bearer.credentials, issuer=issuer, scope=scope, route=_route(request)
        )

    PROBLEM_STATUSES[partner] = {401, 403, 429}
    return partner


async def staff_or_terminal(request: Request, ctx: Ctx, bearer: Bearer) -> StaffOrTerminal:
    """A staff bearer token or a partner's access token (a JWT: `partners.guard`), else a
    terminal's signed request (its three headers)."""
    if bearer is not None and bearer.credentials.count(".") == 2:
        issuer = guard.issuer_of(ctx, str(request.base_url))
        partner = await run_in_threadpool(
            guard.admit,
            ctx,
            bearer.credentials,
            issuer=issuer,
            scope=Scope.CHECKIN_REDEEM,
            route=_route(request),
        )
        return StaffOrTerminal(partner=partner)
    if bearer is not None:
        caller = await run_in_threadpool(_caller, ctx, bearer)
        return StaffOrTerminal(staff=staff_caller(caller))
    headers = request.headers
    terminal_id = headers.get(TERMINAL_HEADER)
    time, signature = headers.get(TIME_HEADER), headers.get(SIGNATURE_HEADER)
    if terminal_id is None or time is None or signature is None:
        raise Problem(ProblemCode.UNAUTHENTICATED, "a staff bearer token or a terminal's signature")
    if len(terminal_id) > TERMINAL_ID_CHARS_MAX or len(time) > 16 or len(signature) > 128:
        raise Problem(ProblemCode.UNAUTHENTICATED, "a terminal header is too long")
    row = await terminal_caller(request, ctx, terminal_id, time, signature)
    return StaffOrTerminal(terminal=row)


StaffOrTerminalCaller = Annotated[StaffOrTerminal, Depends(staff_or_terminal)]

PROBLEM_STATUSES: dict[Callable[..., Any], set[int]] = {
    context: {503},  # every unit of work may end in 503 busy (units.retrying)
    _caller: {401},
    holder_caller: {403},
    staff_caller: {403},
    admin_caller: {403},
    terminal_caller: {401, 413},  # it reads the body, whatever the method, to check it
    staff_or_terminal: {401, 403, 413, 429},
}
"""The problem statuses a route may answer because it depends on each of these; the OpenAPI
document lists them for it (server.openapi)."""

__all__ = [
    "AdminCaller",
    "Caller",
    "Client",
    "Ctx",
    "HolderCaller",
    "Installation",
    "Partner",
    "SignedIn",
    "StaffCaller",
    "StaffOrTerminal",
    "StaffOrTerminalCaller",
    "TerminalCaller",
    "partner_for",
]
