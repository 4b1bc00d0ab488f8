"""The organiser's catalogue: venues (with coordinates and the campus networks that belong to
them), events at venues (doors, end), their ticket types (price, entries, quota, static code)
and check-in lists. Every event gets a first list, admitting all its ticket types."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.limits import NETWORKS_MAX, TIME_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.tickets import CheckinList, Event, EventVenue, TicketType, Venue
from duopass.server.unit_of_work import Unit
from duopass.tickets import EventTerms

__all__ = [
    "EventIn",
    "VenueIn",
    "add_event",
    "add_ticket_type",
    "add_venue",
    "describe_event",
    "event",
    "listing",
    "terms",
    "ticket_type",
    "venues_of",
]


@dataclass(frozen=True)
class VenueIn:
    id: str
    name: str
    lat_e6: int | None = None
    lon_e6: int | None = None
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventIn:
    id: str
    name: str
    doors: int
    ends: int
    venues: tuple[str, ...]


def add_venue(unit: Unit, venue: VenueIn) -> Venue:
    """A new venue; its id is what tickets' `scope` and gates' venue name."""
    networks = [_network(text) for text in venue.networks]
    if len(networks) > NETWORKS_MAX:
        raise Problem(ProblemCode.INVALID_REQUEST, f"at most {NETWORKS_MAX} networks a venue")
    if (venue.lat_e6 is None) != (venue.lon_e6 is None):
        raise Problem(ProblemCode.INVALID_REQUEST, "a position has a latitude and a longitude")
    session = unit.session
    if session.get(Venue, venue.id) is not None:
        raise Problem(ProblemCode.CONFLICT, f"venue {venue.id!r} exists")
    row = Venue(
        id=venue.id,
        name=venue.name,
        lat_e6=venue.lat_e6,
        lon_e6=venue.lon_e6,
        networks=json.dumps(networks),
        created_at=unit.now,
    )
    session.add(row)
    session.flush()
    return row


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise Problem(ProblemCode.INVALID_REQUEST, f"not a network: {text[:60]!r}") from None


def add_event(unit: Unit, spec: EventIn) -> Event:
    """A new event at known venues, with its first check-in list (all ticket types)."""
    session = unit.session
    if not 0 < spec.doors < spec.ends <= TIME_MAX:
        raise Problem(ProblemCode.INVALID_REQUEST, "doors open before the event ends")
    if not spec.venues or len(set(spec.venues)) != len(spec.venues) or len(spec.venues) > 16:
        raise Problem(ProblemCode.INVALID_REQUEST, "1 to 16 distinct venues (a ticket's scope)")
    for venue_id in spec.venues:
        if session.get(Venue, venue_id) is None:
            raise Problem(ProblemCode.NOT_FOUND, f"no venue {venue_id!r}")
    if session.get(Event, spec.id) is not None:
        raise Problem(ProblemCode.CONFLICT, f"event {spec.id!r} exists")
    row = Event(id=spec.id, name=spec.name, doors=spec.doors, ends=spec.ends, created_at=unit.now)
    session.add(row)
    session.flush()
    session.add_all(EventVenue(event_id=spec.id, venue_id=v) for v in spec.venues)
    session.add(CheckinList(event_id=spec.id, name="Entrance", created_at=unit.now))
    session.flush()
    return row


def add_ticket_type(
    unit: Unit,
    event_id: str,
    *,
    name: str,
    price: int,
    entries: int,
    quota: int,
    static_allowed: bool,
) -> TicketType:
    """A ticket type of an event, priced in the issuer's currency."""
    event(unit.session, event_id)
    row = TicketType(
        event_id=event_id,
        name=name,
        price=price,
        currency=unit.settings.currency,
        entries=entries,
        quota=quota,
        sold=0,
        static_allowed=static_allowed,
    )
    unit.session.add(row)
    unit.session.flush()
    return row


def event(session: Session, event_id: str) -> Event:
    row = session.get(Event, event_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no event {event_id!r}")
    return row


def owned(session: Session, partner_id: int, event_ids: set[str]) -> None:
    """Refuse (403 `forbidden`) unless the partner client owns every one of these events."""
    mine = set(
        session.scalars(
            select(Event.id).where(Event.id.in_(event_ids), Event.partner_id == partner_id)
        )
    )
    if mine != event_ids:
        raise Problem(ProblemCode.FORBIDDEN, "a partner checks in on its own events' lists only")


def ticket_type(session: Session, type_id: int) -> TicketType:
    row = session.get(TicketType, type_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no ticket type {type_id}")
    return row


def venues_of(session: Session, event_id: str) -> list[Venue]:
    """An event's venues, by id (a ticket's `scope` in this order)."""
    return list(
        session.scalars(
            select(Venue)
            .join(EventVenue, EventVenue.venue_id == Venue.id)
            .where(EventVenue.event_id == event_id)
            .order_by(Venue.id)
        )
    )


def terms(session: Session, event_row: Event, type_row: TicketType) -> EventTerms:
    venues = tuple(v.id for v in venues_of(session, event_row.id))
    return EventTerms(event_row.id, event_row.doors, event_row.ends, venues, type_row.entries)


def describe_venue(venue: Venue) -> dict[str, Any]:
    return {
        "id": venue.id,
        "name": venue.name,
        "lat_e6": venue.lat_e6,
        "lon_e6": venue.lon_e6,
        "networks": json.loads(venue.networks),
    }


def describe_type(row: TicketType) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.event_id,
        "name": row.name,
        "price": row.price,
        "currency": row.currency,
        "entries": row.entries,
        "quota": row.quota,
        "available": row.quota - row.sold,
        "static_allowed": row.static_allowed,
    }


def describe_event(session: Session, row: Event) -> dict[str, Any]:
    """An event with its venues, ticket types and check-in lists."""
    types = session.scalars(
        select(TicketType).where(TicketType.event_id == row.id).order_by(TicketType.id)
    )
    lists = session.scalars(
        select(CheckinList).where(CheckinList.event_id == row.id).order_by(CheckinList.id)
    )
    return {
        "id": row.id,
        "name": row.name,
        "doors": row.doors,
        "ends": row.ends,
        "venues": [describe_venue(v) for v in venues_of(session, row.id)],
        "ticket_types": [describe_type(t) for t in types],
        "checkin_lists": [describe_list(c) for c in lists],
    }


def describe_list(row: CheckinList) -> dict[str, Any]:
    types = None if row.ticket_types is None else json.loads(row.ticket_types)
    return {
        "id": row.id,
        "event": row.event_id,
        "name": row.name,
        "ticket_types": types,
        "allow_reentry": row.allow_reentry,
        "entry_limit": row.entry_limit,
    }


def listing(session: Session, *, upcoming_after: int | None) -> Sequence[Event]:
    """Events by doors; `upcoming_after`: only those not ended by then."""
    query = select(Event).order_by(Event.doors, Event.id)
    if upcoming_after is not None:
        query = query.where(Event.ends > upcoming_after)
    return list(session.scalars(query.limit(200)))


def all_venues(session: Session, *, limit: int = 200) -> list[Venue]:
    """Venues by id (the console's event form offers them)."""
    return list(session.scalars(select(Venue).order_by(Venue.id).limit(limit)))
