"""The typed input document a reissue, transfer or loss decision is made on (docs/policy.md):
built by the server from its own records, never from the holder's word, except the position a
holder may claim (checked against the venues' coordinates) and the network the request came
from (checked against the venues' ranges)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.policy import INPUTS_SCHEMA, Inputs, place
from duopass.server.services import tickets
from duopass.server.services.events import venues_of
from duopass.server.services.sessions import Caller
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.people import HolderPerson
from duopass.server.store.tables import Credential, Device, Holder
from duopass.server.store.tickets import Event, Order, Ticket, TicketType, Venue
from duopass.server.unit_of_work import Unit

__all__ = ["Asked", "build"]

WINDOW_30D_S = 30 * 86_400
RISK_SCORE_NONE = 0
"""The risk engine's score until that issue makes it real: the input exists, fixed at 0."""


@dataclass(frozen=True)
class Asked:
    """What the request itself says: who asks (a holder's session, or staff at the counter),
    for which device, from which address, and a claimed position if any."""

    action: str
    caller: Caller | None
    device: Device
    address: str | None
    position: tuple[int, int] | None


def build(unit: Unit, holder: Holder, ticket: Ticket, asked: Asked) -> dict[str, Any]:
    """The input document for deciding `asked` on `ticket`."""
    session, now = unit.session, unit.now
    order = session.get(Order, ticket.order_id)
    event = session.get(Event, ticket.event_id)
    kind = session.get(TicketType, ticket.ticket_type_id)
    assert order is not None and event is not None and kind is not None
    document = {
        "schema": INPUTS_SCHEMA,
        "action": asked.action,
        "purchase": {
            "order": order.code,
            "paid_by": order.paid_by,
            "amount": order.amount,
            "currency": order.currency,
            "proof": order.payment_leaf.hex(),
            "age_s": max(0, now - order.created_at),
        },
        "device": _device(session, holder, ticket, asked.device, now),
        "place": _place(session, event, asked),
        "time": {"to_doors_s": event.doors - now, "to_end_s": event.ends - now},
        "reissues": _reissues(session, holder, ticket, now),
        "used": {"entries": tickets.entries(session, ticket.id), "allowed": kind.entries},
        "risk": {"score": RISK_SCORE_NONE},
        "auth": _auth(session, holder, asked.caller, now),
    }
    return Inputs.from_document(document).to_document()  # checked: exactly the schema


def _device(
    session: Session, holder: Holder, ticket: Ticket, device: Device, now: int
) -> dict[str, Any]:
    held_before = session.scalar(
        select(func.count()).select_from(Credential).where(Credential.device_id == device.id)
    )
    devices = session.execute(
        select(Device.enrolled_at, Device.revoked_at).where(Device.holder_id == holder.id)
    ).all()
    newest = max((enrolled for enrolled, _ in devices), default=None)
    return {
        "is_new": not held_before,
        "enrolled": len(devices),
        "active": sum(1 for _, revoked in devices if revoked is None),
        "newest_age_s": -1 if newest is None else max(0, now - newest),
        "same_as_current": ticket.device_id == device.id,
    }


def _place(session: Session, event: Event, asked: Asked) -> dict[str, Any]:
    mine = venues_of(session, event.id)
    others = session.scalars(select(Venue).where(Venue.id.not_in([v.id for v in mine])))
    network, given, distance = place(
        asked.address,
        venue_networks=[n for v in mine for n in json.loads(v.networks)],
        campus_networks=[n for v in others for n in json.loads(v.networks)],
        claimed=asked.position,
        venue_coords=[
            (v.lat_e6, v.lon_e6) for v in mine if v.lat_e6 is not None and v.lon_e6 is not None
        ],
    )
    return {"network": network, "position_given": given, "distance_m": distance}


def _reissues(session: Session, holder: Holder, ticket: Ticket, now: int) -> dict[str, int]:
    recent = session.scalar(
        select(func.count())
        .select_from(ReissueRequest)
        .where(
            ReissueRequest.holder_id == holder.id,
            ReissueRequest.created_at > now - WINDOW_30D_S,
        )
    )
    return {"ticket": ticket.gen, "holder_30d": int(recent or 0)}


def _auth(session: Session, holder: Holder, caller: Caller | None, now: int) -> dict[str, Any]:
    person = session.get(HolderPerson, holder.id)
    if caller is None or caller.is_staff:
        method, recent = "staff", 0
    else:
        method = caller.method
        recent = -1 if caller.auth_at is None else max(0, now - caller.auth_at)
    return {
        "method": method,
        "recent_s": recent,
        "totp": holder.totp_secret is not None,
        "email": person is not None and bool(person.email),
    }
