""" "I lost my phone" as one action (issue 13): from the new device (or at the counter), every
other device key is revoked with its credentials (a §6 loss report: no freeze, the purse's
holds stay until §4 releases them, the next purse sync is the reissue), and every ticket is
moved to the new device, each through the policy: allowed ones at once, the others waiting for
their step-up or a person."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from duopass.protocol.encoding import b64u_encode
from duopass.server.services import holders, reissue
from duopass.server.services.reissue_inputs import Asked
from duopass.server.services.sessions import Caller
from duopass.server.store.tables import Device, Holder
from duopass.server.store.tickets import Event, Ticket
from duopass.server.unit_of_work import Unit

__all__ = ["report"]


def report(
    unit: Unit,
    holder: Holder,
    device: Device,
    *,
    caller: Caller | None,
    address: str | None,
) -> dict[str, Any]:
    """The loss of every device but `device`, and each ticket's reissue to it."""
    revoked = holders.report_loss(
        unit,
        holder,
        keep=None if caller is None else caller.token,
        keep_device=device.id,
    )
    moved = [
        _move(unit, holder, ticket, Asked("lost", caller, device, address, None))
        for ticket in _movable(unit, holder)
    ]
    return {
        "revoked_credentials": revoked,
        "purse": "sync on the new device: its first credential replaces the lost one",
        "tickets": moved,
    }


def _movable(unit: Unit, holder: Holder) -> list[Ticket]:
    """The holder's valid tickets of events not ended."""
    return list(
        unit.session.scalars(
            select(Ticket)
            .join(Event, Event.id == Ticket.event_id)
            .where(
                Ticket.holder_id == holder.id,
                Ticket.state == "valid",
                Event.ends > unit.now,
            )
            .order_by(Ticket.id)
        )
    )


def _move(unit: Unit, holder: Holder, ticket: Ticket, asked: Asked) -> dict[str, Any]:
    if ticket.device_id == asked.device.id:
        return {"sub": ticket.sub, "state": "on_this_device"}
    row = reissue.open_request(unit, holder, ticket, asked)
    answer = {"sub": ticket.sub, **reissue.describe(row)}
    if row.state == "ready":
        done = reissue.confirm(unit, holder, row)
        answer["state"] = row.state
        answer["credential"] = None if done.credential is None else b64u_encode(done.credential.l1)
        answer["cti"] = None if done.credential is None else done.credential.cti.hex()
    return answer
