""" "I lost my phone" as one action (issue 13): from the new device (or at the counter), every
other device key is revoked with its credentials (a §6 loss report: no freeze, the purse's
holds stay until §4 releases them, the next purse sync is the reissue), and every ticket is
moved to the new device, each through the policy: allowed ones at once, the others waiting for
their step-up or a person.

At the counter (`at_counter`) the holder stands in front of a staff member, who checks who
they are: that check stands for the step-up the policy may ask for, and the staff member's name
goes on the ledger with every ticket moved (a person's `decision`, action `counter`, rule
`vouched_in_person`, `by`). A request the policy sends to review stays there for the review
queue, and a refused one stays refused: being at the counter does not lift a risk flag."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from duopass.protocol.encoding import b64u_encode
from duopass.server.services import decisions, holders, reissue
from duopass.server.services.reissue_inputs import Asked
from duopass.server.services.sessions import Caller
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.tables import Device, Holder
from duopass.server.store.tickets import Event, Ticket
from duopass.server.unit_of_work import Unit

__all__ = ["at_counter", "report"]

PURSE_NOTE = "sync on the new device: its first credential replaces the lost one"
VOUCHABLE = ("ready", "step_up")
"""What a staff member's in-person check settles at the counter."""


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
    return {"revoked_credentials": revoked, "purse": PURSE_NOTE, "tickets": moved}


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


def at_counter(unit: Unit, holder: Holder, device: Device, *, by: int) -> dict[str, Any]:
    """A replacement at the counter, staff member `by` vouching in person: the loss of every
    device but `device`, and each ticket moved to it (a step-up the policy asks for is the
    staff member's check; review and refusal stay as the policy decided)."""
    revoked = holders.report_loss(unit, holder, keep=None, keep_device=device.id, by=by)
    asked = Asked("lost", None, device, None, None)
    moved = [_vouched(unit, holder, ticket, asked, by) for ticket in _movable(unit, holder)]
    return {"revoked_credentials": revoked, "purse": PURSE_NOTE, "tickets": moved}


def _vouched(unit: Unit, holder: Holder, ticket: Ticket, asked: Asked, by: int) -> dict[str, Any]:
    if ticket.device_id == asked.device.id:
        return {"sub": ticket.sub, "state": "on_this_device"}
    row = reissue.open_request(unit, holder, ticket, asked)
    if row.state not in VOUCHABLE:
        return {"sub": ticket.sub, **reissue.describe(row)}
    _record_vouch(unit, row, ticket, by)
    row.state, row.factor_done = "ready", "in_person"
    done = reissue.confirm(unit, holder, row)
    answer = {"sub": ticket.sub, **reissue.describe(row)}
    answer["credential"] = None if done.credential is None else b64u_encode(done.credential.l1)
    answer["cti"] = None if done.credential is None else done.credential.cti.hex()
    return answer


def _record_vouch(unit: Unit, row: ReissueRequest, ticket: Ticket, by: int) -> None:
    decisions.follow_up(
        unit,
        row,
        ticket,
        action="counter",
        rule="vouched_in_person",
        ruling_outcome="allow",
        staff_id=by,
        policy_said=row.outcome,
    )
