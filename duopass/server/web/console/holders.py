"""The console's first pages: its home, the holder search and one holder's page (account,
credentials, devices, recent scans), freezing and unfreezing (operators may), and a top-up
(admins only: an operator moves no money). They call the services the API's routes call."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from duopass.server.api.params import Handle
from duopass.server.limits import (
    AMOUNT_MAX,
    CURSOR_CHARS_MAX,
    ID_CHARS_MAX,
    PAGE_ITEMS_DEFAULT,
    REASON_CHARS_MAX,
    SEARCH_CHARS_MAX,
)
from duopass.server.services import holders, lookup, risk_engine, topups
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
SCANS_SHOWN = 10
_YUAN = re.compile(r"^([0-9]{1,7})(?:\.([0-9]{1,2}))?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@router.get("/")
def home(seen: SignedIn) -> Response:
    return seen.page("console/home.html", zone=seen.ctx.settings.timezone)


@router.get("/holders")
def search(
    seen: SignedIn,
    q: Annotated[str, Query(max_length=SEARCH_CHARS_MAX * 4)] = "",
    cursor: Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)] = None,
) -> Response:
    """Holders whose name, login, number or e-mail holds `q` (lookup.search, as the API)."""
    values: dict[str, Any] = {"q": q, "search_max": SEARCH_CHARS_MAX, "items": []}
    if len(q) > SEARCH_CHARS_MAX or _CONTROL.search(q):
        return seen.page("console/holders.html", status=422, error="bad_search", **values)
    found = seen.ctx.run(
        lambda unit: lookup.search(unit.session, q=q, limit=PAGE_ITEMS_DEFAULT, cursor=cursor)
    )
    return seen.page("console/holders.html", error=None, **values | found)


def _holder(unit: Unit, handle: str) -> dict[str, Any]:
    shown = lookup.holder(unit.session, handle)
    shown["scans"] = lookup.scans_of(unit.session, handle, limit=SCANS_SHOWN, cursor=None)["items"]
    return shown


@router.get("/holders/{handle}")
def holder_page(seen: SignedIn, handle: Handle) -> Response:
    shown = seen.ctx.run(lambda unit: _holder(unit, handle))
    return seen.page(
        "console/holder.html",
        holder=shown,
        scans=shown["scans"],
        debt=max(0, -shown["account"]["balance"]),
        request_id=uuid.uuid4().hex,
        reason_max=REASON_CHARS_MAX,
        done=False,
    )


def _set_frozen(seen: Visit, handle: str, reason: str, *, frozen: bool) -> Response:
    reason = reason.strip()
    if not reason or _CONTROL.search(reason):
        return seen.page(
            "console/error.html", status=422, error="bad_reason", reason_max=REASON_CHARS_MAX
        )
    assert seen.staff is not None
    by = seen.staff.caller.id

    def work(unit: Unit) -> dict[str, Any]:
        row = holders.by_handle(unit.session, handle)
        holders.set_frozen(unit, row, frozen=frozen, reason=reason, by=by)
        return lookup.holder(unit.session, handle)

    shown = seen.ctx.run(work)
    if seen.request.headers.get("HX-Request") != "true":
        return seen.redirect(f"{PREFIX}/holders/{handle}")
    return seen.page("console/_state.html", holder=shown, reason_max=REASON_CHARS_MAX, done=True)


Reason = Annotated[str, Form(max_length=REASON_CHARS_MAX)]


@router.post("/holders/{handle}/freeze")
def freeze(seen: SignedIn, handle: Handle, reason: Reason = "") -> Response:
    return _set_frozen(seen, handle, reason, frozen=True)


@router.post("/holders/{handle}/unfreeze")
def unfreeze(seen: SignedIn, handle: Handle, reason: Reason = "") -> Response:
    return _set_frozen(seen, handle, reason, frozen=False)


def minor_units(yuan: str) -> int | None:
    """`12.5` → 1250: an amount in yuan typed in a form, in minor units; None unless valid."""
    match = _YUAN.match(yuan.strip())
    if match is None:
        return None
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    amount = int(whole) * 100 + int(cents)
    return amount if 1 <= amount <= AMOUNT_MAX else None


@router.post("/holders/{handle}/topups")
def top_up(
    seen: Admin,
    handle: Handle,
    request_id: Annotated[
        str, Form(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")
    ],
    amount: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Credit the holder (admins), as `POST /v1/admin/holders/{handle}/topups` does."""
    minor = minor_units(amount)
    if minor is None:
        return seen.page("console/error.html", status=422, error="bad_amount")
    seen.ctx.run_refusable(
        risk_engine.kept(
            lambda unit: topups.top_up(
                unit, holders.by_handle(unit.session, handle), amount=minor, request_id=request_id
            )
        )
    )
    return seen.redirect(f"{PREFIX}/holders/{handle}")
