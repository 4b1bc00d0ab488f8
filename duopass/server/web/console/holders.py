"""The console's first pages: its home, the holder search and one holder's page
(`holder_view`), freezing and unfreezing (operators may), and unbinding the holder's university
account (`oidc_binding`, admins). Money is `holder_money`; a loss,
a replacement at the counter and erasure are `holder_loss`. They call the services the API's
routes call."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from duopass.server.api.params import Handle
from duopass.server.limits import (
    CURSOR_CHARS_MAX,
    PAGE_ITEMS_DEFAULT,
    REASON_CHARS_MAX,
    SEARCH_CHARS_MAX,
)
from duopass.server.services import holders, lookup, oidc_binding
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.holder_forms import REASON_TYPED_MAX, HolderForm
from duopass.server.web.console.holder_view import DONE, holder_page
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
Cursor = Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@router.get("/")
def home(seen: SignedIn) -> Response:
    return seen.page("console/home.html", zone=seen.ctx.settings.timezone)


@router.get("/holders")
def search(
    seen: SignedIn,
    q: Annotated[str, Query(max_length=SEARCH_CHARS_MAX * 4)] = "",
    cursor: Cursor = None,
) -> Response:
    """Holders whose name, login, number or e-mail holds `q` (lookup.search, as the API)."""
    values: dict[str, Any] = {"q": q, "search_max": SEARCH_CHARS_MAX, "items": []}
    if len(q) > SEARCH_CHARS_MAX or _CONTROL.search(q):
        return seen.page("console/holders.html", status=422, error="bad_search", **values)
    found = seen.ctx.run(
        lambda unit: lookup.search(unit.session, q=q, limit=PAGE_ITEMS_DEFAULT, cursor=cursor)
    )
    return seen.page("console/holders.html", error=None, **values | found)


@router.get("/holders/{handle}")
def holder(
    seen: SignedIn,
    handle: Handle,
    scans: Cursor = None,
    journal: Cursor = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """One holder: account, tickets, credentials, devices, scans and journal entries (a page
    each, by their cursors), and the forms this staff member may use."""
    said = done if done in DONE else None
    return holder_page(seen, handle, scans=scans or None, journal=journal or None, done=said)


def _set_frozen(seen: Visit, handle: str, reason: str, *, frozen: bool) -> Response:
    form = HolderForm({"reason": reason})
    reason = form.reason("reason")
    htmx = seen.request.headers.get("HX-Request") == "true"
    if form.errors:
        if not htmx:
            return holder_page(seen, handle, status=422, typed=form.typed, errors=form.errors)
        shown = seen.ctx.run(lambda unit: lookup.holder(unit.session, handle))
        return seen.page(
            "console/_state.html",
            status=422,
            holder=shown,
            reason_max=REASON_CHARS_MAX,
            typed=form.typed,
            errors=form.errors,
            done=None,
        )
    assert seen.staff is not None
    by = seen.staff.caller.id

    def work(unit: Unit) -> dict[str, Any]:
        row = holders.by_handle(unit.session, handle)
        holders.set_frozen(unit, row, frozen=frozen, reason=reason, by=by)
        return lookup.holder(unit.session, handle)

    shown = seen.ctx.run(work)
    said = "frozen" if frozen else "unfrozen"
    if not htmx:
        return seen.redirect(f"{PREFIX}/holders/{handle}?done={said}")
    return seen.page(
        "console/_state.html",
        holder=shown,
        reason_max=REASON_CHARS_MAX,
        typed={},
        errors={},
        done=said,
    )


Reason = Annotated[str, Form(max_length=REASON_TYPED_MAX)]


@router.post("/holders/{handle}/freeze")
def freeze(seen: SignedIn, handle: Handle, reason: Reason = "") -> Response:
    return _set_frozen(seen, handle, reason, frozen=True)


@router.post("/holders/{handle}/unfreeze")
def unfreeze(seen: SignedIn, handle: Handle, reason: Reason = "") -> Response:
    return _set_frozen(seen, handle, reason, frozen=False)


@router.post("/holders/{handle}/oidc/unbind")
def unbind(seen: Admin, handle: Handle) -> Response:
    """The holder's university account unbound (admins): their next sign-in binds again."""
    assert seen.staff is not None
    by = seen.staff.caller.id

    def work(unit: Unit) -> None:
        row = holders.by_handle(unit.session, handle)
        oidc_binding.unbind(unit, staff=False, principal_id=row.id, login=row.login, by=by)

    seen.ctx.run(work)
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=unbound")
