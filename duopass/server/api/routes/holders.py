"""Holders as the card office finds them: a search, one holder whole, their online scans, journal
entries and alerts a page at a time; and erasing their personal data. Staff read; only an admin
erases. Every list answers `{items, next_cursor}`: pass `next_cursor` back as `cursor` for the
next page (it is null on the last)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from duopass.server.api.deps import AdminCaller, Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits, Handle
from duopass.server.limits import (
    CURSOR_CHARS_MAX,
    PAGE_ITEMS_DEFAULT,
    PAGE_ITEMS_MAX,
    SEARCH_CHARS_MAX,
)
from duopass.server.services import holders, lookup, people
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/admin/holders", tags=["card office"])


class EraseIn(BaseModel):
    keep_money: bool = False
    """Erase even though the account holds money or debt: it stays on the account, which
    nobody can sign in to any more (refund it first, as a rule)."""


Limit = Annotated[int, Query(ge=1, le=PAGE_ITEMS_MAX), Digits]
Cursor = Annotated[
    str | None,
    Query(max_length=CURSOR_CHARS_MAX, description="`next_cursor` of the previous page"),
]


@router.get("", responses=problems(422))
def search(
    _caller: StaffCaller,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=SEARCH_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Holders whose login, number, name or e-mail contains `q` (any case; all holders without
    it), by id: login, name, number, state (active, frozen, offline_suspended, erased), balance."""
    return ctx.run(lambda unit: lookup.search(unit.session, q=q, limit=limit, cursor=cursor))


@router.get("/{handle}", responses=problems(404))
def holder(handle: Handle, _caller: StaffCaller, ctx: Ctx) -> dict[str, Any]:
    """One holder: state, personal data, account, devices and latest credentials."""
    return ctx.run(lambda unit: lookup.holder(unit.session, handle))


@router.get("/{handle}/scans", responses=problems(404, 422))
def scans(
    handle: Handle,
    _caller: StaffCaller,
    ctx: Ctx,
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The holder's accepted online scans, newest first, with the verdict each was answered."""
    return ctx.run(lambda unit: lookup.scans_of(unit.session, handle, limit=limit, cursor=cursor))


@router.get("/{handle}/journal", responses=problems(404, 422))
def journal(
    handle: Handle,
    _caller: StaffCaller,
    ctx: Ctx,
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Terminals' journal entries of the holder's payments and entries, newest first, and how
    each settled (booked, confirmed, voided, ...)."""
    return ctx.run(lambda unit: lookup.journal_of(unit.session, handle, limit=limit, cursor=cursor))


@router.get("/{handle}/alerts", responses=problems(404, 422))
def alerts(
    handle: Handle,
    _caller: StaffCaller,
    ctx: Ctx,
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Alerts raised about the holder, newest first, open and resolved."""
    return ctx.run(lambda unit: lookup.alerts_of(unit.session, handle, limit=limit, cursor=cursor))


@router.post("/{handle}/erase", responses=problems(404, 409))
def erase(
    handle: Handle, caller: AdminCaller, ctx: Ctx, body: EraseIn | None = None
) -> dict[str, Any]:
    """Erase the holder's personal data for good (name, number, e-mail, phone, login, password):
    their devices, credentials and sessions end; the account and the ledger stay and verify.
    Recorded, with who did it, in the ledger (`holder_erase`). 409 if erased already, and
    409 `account_not_empty` while the account holds money or debt, unless `keep_money`."""
    keep_money = body is not None and body.keep_money

    def erased(unit: Unit) -> dict[str, Any]:
        holder = holders.by_handle(unit.session, handle)
        return {
            "handle": handle,
            "erased_at": unit.now,
            **people.erase(unit, holder, by=caller.id, keep_money=keep_money),
        }

    answer = ctx.run(erased)
    return {**answer, "wal_checkpointed": people.scrub(ctx.db)}
