"""What a partner with `accounts:read` may know of a holder, and no more: the holder's tickets
on the partner's own events (each one's state, generation, ticket type and order) and whether
the account is frozen, suspended from offline use or has reported a phone lost (so that the
partner's support can tell a holder why a ticket does not work). Only of a holder who holds a
ticket of one of the partner's events now: anyone else, a holder whose tickets were moved to
another holder included, is 404 `not_found`, as if there were no such holder (an id says nothing
of who else holds tickets). Never the holder's name, login, number, e-mail or phone, balance,
purse, devices, other tickets or history: a partner learns nothing it did not sell.

A holder is named by the id a partner sees in its orders' `ticket_states` (`holder`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.tables import Credential, Holder
from duopass.server.store.tickets import Event, Order, Ticket, TicketType

__all__ = ["TICKETS_SHOWN_MAX", "holder"]

TICKETS_SHOWN_MAX = 200
"""Tickets of a holder a partner's answer lists at most (the earliest)."""


def holder(session: Session, partner_id: int, holder_id: int) -> dict[str, Any]:
    """The holder as the partner may see it, if it holds tickets of the partner's events."""
    held = session.execute(
        select(Ticket, TicketType.name, Order.code)
        .join(Event, Event.id == Ticket.event_id)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.holder_id == holder_id, Event.partner_id == partner_id)
        .order_by(Ticket.id)
        .limit(TICKETS_SHOWN_MAX)
    ).all()
    row = session.get(Holder, holder_id)
    if not held or row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no holder {holder_id} of yours")
    lost = session.scalar(
        select(func.max(Credential.lost_at)).where(Credential.holder_id == holder_id)
    )
    return {
        "id": holder_id,
        "frozen": row.frozen,
        "offline_suspended": row.offline_suspended,
        "lost_reported_at": lost,
        "tickets": [
            {
                "sub": ticket.sub,
                "event": ticket.event_id,
                "ticket_type": name,
                "order": code,
                "state": ticket.state,
                "gen": ticket.gen,
            }
            for ticket, name, code in held
        ],
    }
