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
from duopass.server.services import people, terminals
from duopass.server.store.tables import Holder, Staff

_bearer = HTTPBearer(auto_error=False)


async def context(request: Request) -> Context:
    """`async` though it awaits nothing: FastAPI runs a plain `def` dependency on its thread pool,
    a hand-off that costs more than the scan route's own parsing."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Caller:
    """A signed-in person: `role` is holder, operator or admin; `id` their row."""

    role: str
    id: int

    def holder(self, session: Session) -> Holder:
        holder = session.get(Holder, self.id)
        assert holder is not None and self.role == "holder"
        return holder


def _caller(ctx: Ctx, bearer: Bearer) -> Caller:
    if bearer is None:
        raise Problem(Code.UNAUTHENTICATED, "a bearer token is required")
    now = ctx.now()
    token = ctx.run(lambda session: people.token_principal(session, bearer.credentials, now))
    if token is None:
        raise Problem(Code.UNAUTHENTICATED, "unknown or expired token")
    return Caller(token.role, token.principal_id)


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

__all__ = ["AdminCaller", "Caller", "Ctx", "HolderCaller", "Signed", "Staff", "StaffCaller"]
