"""The organiser's catalogue: venues, events, ticket types (admins create them; anyone signed
in reads what is on sale), and orders at the counter: marked paid by staff, cancelled with a
refund."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from duopass.protocol.purse import MEAL_PERIODS_MAX
from duopass.server.api.deps import AdminCaller, Ctx, SignedIn, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Handle
from duopass.server.limits import (
    AMOUNT_MAX,
    ENTRIES_MAX,
    ID_CHARS_MAX,
    NAME_CHARS_MAX,
    NETWORKS_MAX,
    ROW_ID_MAX,
    TICKET_QUOTA_MAX,
    TICKETS_PER_ORDER_MAX,
    TIME_MAX,
)
from duopass.server.services import events, holders, orders, venue_ceilings
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["events"])

PUBLIC_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""Venue and event ids: what `scope` and `ev` carry in codes."""
LAT_E6_MAX = 90_000_000
LON_E6_MAX = 180_000_000
CEILINGS_MAX = MEAL_PERIODS_MAX + 1
"""Ceilings a venue has at most: the office's meal periods and `other`."""


class VenueIn(BaseModel):
    id: str = Field(min_length=1, max_length=ID_CHARS_MAX, pattern=PUBLIC_ID)
    name: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    lat_e6: int | None = Field(default=None, ge=-LAT_E6_MAX, le=LAT_E6_MAX)
    lon_e6: int | None = Field(default=None, ge=-LON_E6_MAX, le=LON_E6_MAX)
    networks: list[Annotated[str, Field(max_length=43)]] = Field(
        default=[], max_length=NETWORKS_MAX, description="campus network ranges (CIDR)"
    )


class EventIn(BaseModel):
    id: str = Field(min_length=1, max_length=ID_CHARS_MAX, pattern=PUBLIC_ID)
    name: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    doors: int = Field(ge=1, le=TIME_MAX, description="doors open, Unix seconds (`nbf`)")
    ends: int = Field(ge=1, le=TIME_MAX, description="the end, Unix seconds (`exp`)")
    venues: list[Annotated[str, Field(max_length=ID_CHARS_MAX, pattern=PUBLIC_ID)]] = Field(
        min_length=1, max_length=16
    )


class TicketTypeIn(BaseModel):
    name: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    price: int = Field(ge=0, le=AMOUNT_MAX, description="minor units of the issuer's currency")
    entries: int = Field(default=1, ge=1, le=ENTRIES_MAX)
    quota: int = Field(ge=1, le=TICKET_QUOTA_MAX)
    static_allowed: bool = False


class CounterOrderIn(BaseModel):
    ticket_type: int = Field(ge=1, le=ROW_ID_MAX)
    quantity: int = Field(default=1, ge=1, le=TICKETS_PER_ORDER_MAX)
    request_id: str = Field(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")


@router.post("/admin/venues", status_code=201, responses=problems(409))
def create_venue(body: VenueIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    spec = events.VenueIn(body.id, body.name, body.lat_e6, body.lon_e6, tuple(body.networks))
    return ctx.run(lambda unit: events.describe_venue(events.add_venue(unit, spec)))


@router.post("/admin/events", status_code=201, responses=problems(404, 409))
def create_event(body: EventIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """An event at known venues; it gets a first check-in list for all its ticket types."""
    spec = events.EventIn(body.id, body.name, body.doors, body.ends, tuple(body.venues))
    return ctx.run(lambda unit: events.describe_event(unit.session, events.add_event(unit, spec)))


@router.post("/admin/events/{event_id}/ticket-types", status_code=201, responses=problems(404))
def create_ticket_type(
    event_id: Annotated[str, Path(max_length=ID_CHARS_MAX)],
    body: TicketTypeIn,
    _caller: AdminCaller,
    ctx: Ctx,
) -> dict[str, Any]:
    def work(unit: Unit) -> dict[str, Any]:
        row = events.add_ticket_type(
            unit,
            event_id,
            name=body.name,
            price=body.price,
            entries=body.entries,
            quota=body.quota,
            static_allowed=body.static_allowed,
        )
        return events.describe_type(row)

    return ctx.run(work)


@router.get("/events")
def list_events(_caller: SignedIn, ctx: Ctx) -> dict[str, Any]:
    """Events not yet ended, with their venues and ticket types (what is on sale)."""
    now = ctx.now()
    return ctx.run(
        lambda unit: {
            "items": [
                events.describe_event(unit.session, e)
                for e in events.listing(unit.session, upcoming_after=now)
            ]
        }
    )


@router.get("/events/{event_id}", responses=problems(404))
def get_event(
    event_id: Annotated[str, Path(max_length=ID_CHARS_MAX)], _caller: SignedIn, ctx: Ctx
) -> dict[str, Any]:
    return ctx.run(
        lambda unit: events.describe_event(unit.session, events.event(unit.session, event_id))
    )


@router.post("/admin/holders/{handle}/orders", status_code=201, responses=problems(404, 409))
def counter_order(
    handle: Handle, body: CounterOrderIn, caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """Tickets sold at the counter and marked paid there (cash or card): the payment books
    from top-up clearing, not from the holder's account (admins: an operator moves no money)."""

    def work(unit: Unit) -> dict[str, Any]:
        holder = holders.by_handle(unit.session, handle)
        order = orders.buy(
            unit,
            holder,
            type_id=body.ticket_type,
            quantity=body.quantity,
            request_id=body.request_id,
            staff_id=caller.id,
        )
        return orders.describe(unit.session, order)

    return ctx.run(work)


@router.get("/admin/orders/{code}", responses=problems(404))
def get_order(
    code: Annotated[str, Path(max_length=16)], _caller: StaffCaller, ctx: Ctx
) -> dict[str, Any]:
    return ctx.run(lambda unit: orders.describe(unit.session, orders.by_code(unit.session, code)))


@router.post("/admin/orders/{code}/cancel", responses=problems(404))
def cancel_order(
    code: Annotated[str, Path(max_length=16)], caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """Cancel and refund the whole order: the tickets are revoked at once online, in the next
    bundle offline, and never minted again (admins: the refund books money). Allowed after the
    event and after check-in too (a partner's own cancel is not: the card office decides)."""

    def work(unit: Unit) -> dict[str, Any]:
        order = orders.cancel(unit, orders.by_code(unit.session, code), staff_id=caller.id)
        return orders.describe(unit.session, order)

    return ctx.run(work)


VenueId = Annotated[str, Path(max_length=ID_CHARS_MAX, pattern=PUBLIC_ID)]


class CeilingsIn(BaseModel):
    """A venue's price ceilings in minor units: the highest plausible single payment in each of
    the office's meal periods (by name) and outside them (`other`); an empty object removes
    them."""

    ceilings: dict[
        Annotated[str, Field(min_length=1, max_length=NAME_CHARS_MAX)],
        Annotated[int, Field(ge=1, le=AMOUNT_MAX)],
    ] = Field(max_length=CEILINGS_MAX)


@router.put("/admin/venues/{venue_id}/ceilings", responses=problems(404))
def put_ceilings(
    venue_id: VenueId, body: CeilingsIn, _caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """Set the venue's price ceilings: a payment above the ceiling of its meal period is flagged
    (a `journal_anomaly`, rule `ceiling`), never refused."""
    return ctx.run(lambda unit: venue_ceilings.set_ceilings(unit, venue_id, body.ceilings))


@router.get("/admin/venues/{venue_id}/ceilings", responses=problems(404))
def get_ceilings(venue_id: VenueId, _caller: StaffCaller, ctx: Ctx) -> dict[str, Any]:
    return ctx.run(lambda unit: venue_ceilings.ceilings_of(unit, venue_id))
