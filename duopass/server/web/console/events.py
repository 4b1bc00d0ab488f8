"""The console's events pages: events with their venues, ticket types, latest orders and
check-in lists, each list's count of entries (and people inside) refreshed by htmx polling a
small fragment; admins create venues, events and ticket types through forms checked field by
field (`event_forms`), in the page's language. They call `services.events`, `orders` and
`checkins`, as the API does."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from duopass.server.limits import ID_CHARS_MAX, ROW_ID_MAX
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.services import checkins, events, orders
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.event_forms import EventForm, Fields, TicketTypeForm, VenueForm
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
EventId = Annotated[str, Path(max_length=ID_CHARS_MAX)]
ORDERS_SHOWN: Final = 50
POLL_S: Final = 5
"""How often a check-in count fragment is fetched again."""
FORM_FIELD_CHARS_MAX: Final = 200


def _listing(unit: Unit) -> dict[str, Any]:
    rows = events.listing(unit.session, upcoming_after=None)
    return {
        "items": [events.describe_event(unit.session, row) for row in rows],
        "venues": [events.describe_venue(v) for v in events.all_venues(unit.session)],
    }


def _list_page(seen: Visit, *, status: int = 200, **values: Any) -> Response:
    shown = seen.ctx.run(_listing)
    values.setdefault("chosen", [])
    values.setdefault("typed", {})
    values.setdefault("errors", {})
    return seen.page(
        "console/events.html", status=status, zone=seen.ctx.settings.timezone, **shown | values
    )


@router.get("/events")
def events_page(seen: SignedIn) -> Response:
    """Every event (by doors); admins see the forms for a venue and an event."""
    return _list_page(seen)


async def _typed(request: Request) -> tuple[dict[str, str], list[str]]:
    """The form's text fields (each cut at a bound) and its chosen venues."""
    form = await request.form()
    typed = {
        k: v[:FORM_FIELD_CHARS_MAX] for k, v in form.items() if isinstance(v, str) and k != "csrf"
    }
    venues = [v[:ID_CHARS_MAX] for v in form.getlist("venues") if isinstance(v, str)][:64]
    return typed, venues


def _refused(seen: Visit, exc: Problem, where: str, **values: Any) -> Response:
    """A service's refusal beside the form that caused it."""
    values["errors"] = {where: exc.code.value}
    if where in {"event", "venue"}:
        return _list_page(seen, status=STATUS[exc.code], **values)
    return _event_page(seen, values.pop("event_id"), status=STATUS[exc.code], **values)


@router.post("/venues")
async def add_venue(seen: Admin, request: Request) -> Response:
    typed, _ = await _typed(request)
    form = VenueForm(Fields(typed))
    spec = form.spec()
    if form.fields.errors:
        return _list_page(seen, status=422, typed=typed, errors=form.fields.errors)
    try:
        seen.ctx.run(lambda unit: events.add_venue(unit, spec))
    except Problem as exc:
        return _refused(seen, exc, "venue", typed=typed)
    return seen.redirect(f"{PREFIX}/events")


@router.post("/events")
async def add_event(seen: Admin, request: Request) -> Response:
    typed, venues = await _typed(request)
    form = EventForm(Fields(typed), venues)
    spec = form.spec(seen.ctx.settings.zone)
    if form.fields.errors:
        return _list_page(seen, status=422, typed=typed, chosen=venues, errors=form.fields.errors)
    try:
        seen.ctx.run(lambda unit: events.add_event(unit, spec))
    except Problem as exc:
        return _refused(seen, exc, "event", typed=typed, chosen=venues)
    return seen.redirect(f"{PREFIX}/events/{spec.id}")


def _event(unit: Unit, event_id: str) -> dict[str, Any]:
    row = events.event(unit.session, event_id)
    return {
        "event": events.describe_event(unit.session, row),
        "lists": [
            checkins.describe(unit.session, c) for c in checkins.of_event(unit.session, event_id)
        ],
        "orders": [
            orders.describe(unit.session, o)
            for o in orders.of_event(unit.session, event_id, limit=ORDERS_SHOWN)
        ],
    }


def _event_page(seen: Visit, event_id: str, *, status: int = 200, **values: Any) -> Response:
    shown = seen.ctx.run(lambda unit: _event(unit, event_id))
    values.setdefault("typed", {})
    values.setdefault("errors", {})
    return seen.page("console/event.html", status=status, poll_s=POLL_S, **shown | values)


@router.get("/events/{event_id}")
def event_page(seen: SignedIn, event_id: EventId) -> Response:
    """One event: venues, ticket types, check-in lists with live counts, latest orders."""
    return _event_page(seen, event_id)


@router.get("/events/{event_id}/lists/{list_id}/count")
def list_count(
    seen: SignedIn,
    event_id: EventId,
    list_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)],
) -> Response:
    """One list's counts as a fragment (what the event page polls)."""

    def read(unit: Unit) -> dict[str, Any]:
        row = checkins.checkin_list(unit.session, list_id)
        if row.event_id != event_id:
            raise Problem(ProblemCode.NOT_FOUND, "no such list at this event")
        return checkins.describe(unit.session, row)

    shown = seen.ctx.run(read)
    return seen.page("console/_checkin_count.html", item=shown, event_id=event_id, poll_s=POLL_S)


@router.post("/events/{event_id}/ticket-types")
async def add_ticket_type(seen: Admin, event_id: EventId, request: Request) -> Response:
    typed, _ = await _typed(request)
    form = TicketTypeForm(Fields(typed), typed.get("static_allowed") == "on")
    wanted = form.read()
    if form.fields.errors:
        return _event_page(seen, event_id, status=422, typed=typed, errors=form.fields.errors)

    def work(unit: Unit) -> None:
        events.add_ticket_type(
            unit,
            event_id,
            name=wanted.name,
            price=wanted.price,
            entries=wanted.entries,
            quota=wanted.quota,
            static_allowed=wanted.static_allowed,
        )

    try:
        seen.ctx.run(work)
    except Problem as exc:
        return _refused(seen, exc, "ticket_type", typed=typed, event_id=event_id)
    return seen.redirect(f"{PREFIX}/events/{event_id}")
