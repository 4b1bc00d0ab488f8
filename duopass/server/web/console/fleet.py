"""The terminals' page: the fleet at a glance (`services.fleet.listing`, as
`GET /v1/admin/terminals`) and, for admins, a new terminal with its one-time enrolment code
(`services.terminals.create`, as `POST /v1/admin/terminals`). The code is shown once, in the
answer to the form that created it (no-store, never in a URL, never logged); only its hash is
kept."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from duopass.server.limits import CURSOR_CHARS_MAX, ID_CHARS_MAX, PAGE_ITEMS_DEFAULT, ROW_ID_MAX
from duopass.server.services import fleet, terminals
from duopass.server.web.console.visit import Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
MODES: Final = ("pay", "identity", "entry")
VENUE_CHARS_MAX: Final = 64
EVENT_CHARS_MAX: Final = 64
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_ROW = re.compile(r"^[0-9]{1,10}$")


def _values(seen: Visit, **values: Any) -> dict[str, Any]:
    listed = seen.ctx.run(
        lambda unit: fleet.listing(
            unit.session, now=unit.now, limit=PAGE_ITEMS_DEFAULT, cursor=values.pop("cursor")
        )
    )
    base: dict[str, Any] = {
        "terminals": listed["items"],
        "next_cursor": listed["next_cursor"],
        "modes": MODES,
        "id_max": ID_CHARS_MAX,
        "venue_max": VENUE_CHARS_MAX,
        "form": {"terminal_id": "", "mode": "pay", "venue": "", "merchant": "", "event": ""},
        "error": None,
        "currency": seen.ctx.settings.currency,
    }
    return base | values


@router.get("/terminals")
def terminals_page(
    seen: SignedIn,
    cursor: Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)] = None,
) -> Response:
    return seen.page("console/terminals.html", **_values(seen, cursor=cursor))


def _invalid(form: dict[str, str]) -> str | None:
    """The first field of the enrolment form that is not valid, or None."""
    if not _ID.match(form["terminal_id"]):
        return "bad_terminal_id"
    if form["mode"] not in MODES:
        return "bad_mode"
    if form["venue"] and not _TEXT.match(form["venue"]):
        return "bad_venue"
    if form["mode"] == "pay" and (
        not _ROW.match(form["merchant"]) or not 1 <= int(form["merchant"]) <= ROW_ID_MAX
    ):
        return "bad_merchant"
    if form["mode"] == "entry" and not _TEXT.match(form["event"]):
        return "bad_event"
    return None


Field = Annotated[str, Form(max_length=ID_CHARS_MAX * 2)]


@router.post("/terminals")
def enrol(
    seen: Admin,
    *,
    terminal_id: Field = "",
    mode: Field = "",
    venue: Field = "",
    merchant: Field = "",
    event: Field = "",
) -> Response:
    """A new terminal (admins): the page shows its one-time code, once."""
    form = {
        "terminal_id": terminal_id.strip(),
        "mode": mode,
        "venue": venue.strip(),
        "merchant": merchant.strip(),
        "event": event.strip(),
    }
    error = _invalid(form)
    if error is not None:
        values = _values(seen, cursor=None, form=form, error=error)
        return seen.page("console/terminals.html", status=422, **values)
    pay = form["mode"] == "pay"
    code = seen.ctx.run(
        lambda unit: terminals.create(
            unit,
            terminal_id=form["terminal_id"],
            mode=form["mode"],
            venue=form["venue"] or None,
            merchant_account_id=int(form["merchant"]) if pay else None,
            currency=seen.ctx.settings.currency if pay else None,
            event=form["event"] if form["mode"] == "entry" else None,
        )
    )
    return seen.page("console/terminal_created.html", terminal_id=form["terminal_id"], code=code)
