"""A partner's own catalogue: the events it creates (owned through `events.partner_id`, at the
card office's venues), their ticket types, and the state of their orders and tickets. A partner
sees and changes only what it owns: another's event or order is 404 `not_found` to it, as if it
did not exist (its id says nothing of who else sells)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import events, orders
from duopass.server.store.tickets import Event, Order, Ticket, TicketType
from duopass.server.unit_of_work import Unit

__all__ = ["add_event", "add_ticket_type", "describe_event", "event", "listing", "order"]

ORDERS_SHOWN_MAX = 50
EVENTS_SHOWN_MAX = 200


def add_event(unit: Unit, partner_id: int, spec: events.EventIn) -> Event:
    """A new event owned by the partner (its first check-in list made as for any event)."""
    row = events.add_event(unit, spec)
    row.partner_id = partner_id
    unit.session.flush()
    return row


def event(session: Session, partner_id: int, event_id: str) -> Event:
    row = session.get(Event, event_id)
    if row is None or row.partner_id != partner_id:
        raise Problem(ProblemCode.NOT_FOUND, f"no event {event_id[:64]!r} of yours")
    return row


def add_ticket_type(unit: Unit, partner_id: int, event_id: str, **fields: Any) -> TicketType:
    event(unit.session, partner_id, event_id)
    return events.add_ticket_type(unit, event_id, **fields)


def listing(session: Session, partner_id: int) -> list[Event]:
    """The partner's events by doors (the latest `EVENTS_SHOWN_MAX`)."""
    query = select(Event).where(Event.partner_id == partner_id).order_by(Event.doors, Event.id)
    return list(session.scalars(query.limit(EVENTS_SHOWN_MAX)))


def describe_event(session: Session, row: Event) -> dict[str, Any]:
    """The event as `events.describe_event` has it, with its latest orders."""
    latest = orders.of_event(session, row.id, limit=ORDERS_SHOWN_MAX)
    return events.describe_event(session, row) | {
        "orders": [orders.describe(session, o) for o in latest]
    }


def owned_order(session: Session, partner_id: int, code: str) -> Order:
    """An order of one of the partner's events (its own sale or a holder's purchase)."""
    found = session.execute(
        select(Order, Event.partner_id)
        .join(TicketType, TicketType.id == Order.ticket_type_id)
        .join(Event, Event.id == TicketType.event_id)
        .where(Order.code == code)
    ).one_or_none()
    if found is None or found[1] != partner_id:
        raise Problem(ProblemCode.NOT_FOUND, f"no order {code[:20]!r} of yours")
    order: Order = found[0]
    return order


def order(session: Session, partner_id: int, code: str) -> dict[str, Any]:
    """An order of one of the partner's events, with each ticket's state and entries."""
    row = owned_order(session, partner_id, code)
    held = session.scalars(select(Ticket).where(Ticket.order_id == row.id).order_by(Ticket.id))
    return orders.describe(session, row) | {
        "ticket_states": [
            {
                "sub": t.sub,
                "state": t.state,
                "gen": t.gen,
                "event": t.event_id,
                "holder": t.holder_id,
            }
            for t in held
        ]
    }
