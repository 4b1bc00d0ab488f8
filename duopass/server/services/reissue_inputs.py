"""The typed input document a reissue, transfer or loss decision is made on (docs/policy.md):
built by the server from its own records, never from the holder's word, except the position a
holder may claim (checked against the venues' coordinates) and the network the request came
from (checked against the venues' ranges)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from duopass.policy import INPUTS_SCHEMA, Inputs, place
from duopass.server.services.sessions import Caller
from duopass.server.store import reissue_sql, sql
from duopass.server.store.tables import Device, Holder
from duopass.server.store.tickets import Ticket
from duopass.server.unit_of_work import Unit

__all__ = ["Asked", "build"]

WINDOW_30D_S = 30 * 86_400


@dataclass(frozen=True)
class Asked:
    """What the request itself says: who asks (a holder's session, staff at the counter, or a
    partner on the holder's behalf: `partner_id`), for which device, from which address, and a
    claimed position if any."""

    action: str
    caller: Caller | None
    device: Device
    address: str | None
    position: tuple[int, int] | None
    partner_id: int | None = None


def build(
    unit: Unit, holder: Holder, ticket: Ticket, asked: Asked, *, risk_score: int = 0
) -> dict[str, Any]:
    """The input document for deciding `asked` on `ticket`; `risk_score`: the risk engine's
    score of the request at the reissue point (`risk_engine.reissue_score`)."""
    session, now = unit.session, unit.now
    session.flush()  # the statements below go around the ORM: they see what it changed
    db = sql.raw(session)
    params = {
        "ticket": ticket.id,
        "device": asked.device.id,
        "holder": holder.id,
        "since": now - WINDOW_30D_S,
        "yes": True,
    }
    facts = db.one(reissue_sql.FACTS, params)
    assert facts is not None
    code, paid_by, amount, currency, leaf, created_at, doors, ends, allowed = facts[:9]
    held_before, enrolled, active, newest, recent, used, email = facts[9:]
    document = {
        "schema": INPUTS_SCHEMA,
        "action": asked.action,
        "purchase": {
            "order": code,
            "paid_by": paid_by,
            "amount": amount,
            "currency": currency,
            "proof": bytes(leaf).hex(),
            "age_s": max(0, now - created_at),
        },
        "device": {
            "is_new": not held_before,
            "enrolled": enrolled,
            "active": active,
            "newest_age_s": -1 if newest is None else max(0, now - newest),
            "same_as_current": ticket.device_id == asked.device.id,
        },
        "place": _place(db, ticket.event_id, asked),
        "time": {"to_doors_s": doors - now, "to_end_s": ends - now},
        "reissues": {"ticket": ticket.gen, "holder_30d": int(recent or 0)},
        "used": {"entries": int(used or 0), "allowed": allowed},
        "risk": {"score": risk_score},
        "auth": _auth(holder, asked, bool(email), now),
    }
    return Inputs.from_document(document).to_document()  # checked: exactly the schema


def _place(db: sql.Raw, event_id: str, asked: Asked) -> dict[str, Any]:
    venues = db.all(reissue_sql.VENUES, {"event": event_id})
    mine = [v for v in venues if v[4]]
    network, given, distance = place(
        asked.address,
        venue_networks=[n for v in mine for n in json.loads(v[1])],
        campus_networks=[n for v in venues if not v[4] for n in json.loads(v[1])],
        claimed=asked.position,
        venue_coords=[(v[2], v[3]) for v in mine if v[2] is not None and v[3] is not None],
    )
    return {"network": network, "position_given": given, "distance_m": distance}


def _auth(holder: Holder, asked: Asked, email: bool, now: int) -> dict[str, Any]:
    """How the requester proved who they are. A partner asking for a holder proves nothing
    of the holder: `partner`, with no sign-in time (-1)."""
    caller = asked.caller
    if asked.partner_id is not None:
        method, recent = "partner", -1
    elif caller is None or caller.is_staff:
        method, recent = "staff", 0
    else:
        method = caller.method
        recent = -1 if caller.auth_at is None else max(0, now - caller.auth_at)
    return {
        "method": method,
        "recent_s": recent,
        "totp": holder.totp_secret is not None,
        "email": email,
    }
