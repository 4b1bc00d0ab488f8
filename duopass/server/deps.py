"""Annotated dependencies: the context, and who is calling (holder, staff, terminal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from duopass.server.context import Context
from duopass.server.errors import Code, Problem
from duopass.server.services import auth, terminals
from duopass.server.services.auth import Caller

_bearer = HTTPBearer(auto_error=False)


async def context(request: Request) -> Context:
    """`async` though it awaits nothing: FastAPI runs a plain `def` dependency on its thread pool,
    a hand-off that costs more than the scan route's own parsing."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(request: Request) -> str | None:
    """The address the request came from, for per-network sign-in limits."""
    return request.client.host if request.client is not None else None


Client = Annotated[str | None, Depends(client_address)]


def _caller(ctx: Ctx, bearer: Bearer) -> Caller:
    if bearer is None:
        raise Problem(Code.UNAUTHENTICATED, "a bearer token is required")
    now = ctx.now()
    caller = ctx.run(lambda session: auth.principal(session, bearer.credentials, now))
    if caller is None:
        raise Problem(Code.UNAUTHENTICATED, "unknown, ended or expired session")
    return caller


def holder_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role != "holder":
        raise Problem(Code.FORBIDDEN, "for holders only")
    return caller


def staff_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role not in ("operator", "admin"):
        raise Problem(Code.FORBIDDEN, "for card-office staff only")
    return caller


def admin_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if caller.role != "admin":
        raise Problem(Code.FORBIDDEN, "for card-office administrators only")
    return caller


SignedIn = Annotated[Caller, Depends(_caller)]
HolderCaller = Annotated[Caller, Depends(holder_caller)]
StaffCaller = Annotated[Caller, Depends(staff_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]


@dataclass(frozen=True)
class SignedRequest:
    """A terminal's request as signed: checked inside the unit of work that serves it."""

    terminal_id: str
    time: str
    signature: str
    method: str
    target: str
    body: bytes

    def terminal(self, session: Session, now: int) -> terminals.TerminalRow:
        return terminals.authenticate(
            session,
            terminal_id=self.terminal_id,
            time=self.time,
            signature=self.signature,
            method=self.method,
            target=self.target,
            body=self.body,
            now=now,
        )


async def signed_request(
    request: Request,
    terminal: Annotated[str, Header(alias="Duopass-Terminal", max_length=64)],
    time: Annotated[str, Header(alias="Duopass-Time", max_length=16)],
    signature: Annotated[str, Header(alias="Duopass-Signature", max_length=128)],
) -> SignedRequest:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return SignedRequest(terminal, time, signature, request.method, target, await request.body())


Signed = Annotated[SignedRequest, Depends(signed_request)]

PROBLEM_STATUSES: dict[Callable[..., Any], set[int]] = {
    context: {503},  # every unit of work may end in 503 busy (units.retrying)
    _caller: {401},
    holder_caller: {403},
    staff_caller: {403},
    admin_caller: {403},
    signed_request: {401, 413},  # it reads the body, whatever the method, to check it
}
"""The problem statuses a route may answer because it depends on each of these; the OpenAPI
document lists them for it (server.openapi)."""

__all__ = [
    "AdminCaller",
    "Caller",
    "Client",
    "Ctx",
    "HolderCaller",
    "Signed",
    "SignedIn",
    "StaffCaller",
]
