"""Reissue requests the policy sent to a person (`GET /v1/admin/reviews`): each with the input
document it was decided on and the rule that sent it; approving or refusing is a decision on
the ledger too, by the staff member, citing the policy decision it settles."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import decisions, reissue
from duopass.server.services.paging import page, read_cursor
from duopass.server.store.decisions import Decision, ReissueRequest
from duopass.server.store.tables import Holder
from duopass.server.store.tickets import Ticket
from duopass.server.unit_of_work import Unit

__all__ = ["decide", "decline", "listing"]

LISTING = "reissue-reviews"


def listing(unit: Unit, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """Requests waiting for review, oldest first, a page at a time."""
    session = unit.session
    after = read_cursor(cursor, LISTING, [int, str])
    query = (
        select(ReissueRequest, Decision, Ticket.sub, Holder.handle)
        .join(Decision, Decision.id == ReissueRequest.decision_id)
        .join(Ticket, Ticket.id == ReissueRequest.ticket_id)
        .join(Holder, Holder.id == ReissueRequest.holder_id)
        .where(ReissueRequest.state == "review", ReissueRequest.expires_at > unit.now)
        .order_by(ReissueRequest.created_at, ReissueRequest.id)
    )
    if after is not None:
        query = query.where(
            (ReissueRequest.created_at > after[0])
            | ((ReissueRequest.created_at == after[0]) & (ReissueRequest.id > after[1]))
        )
    rows = session.execute(query.limit(limit + 1)).all()
    items = [
        {
            **reissue.describe(row),
            "ticket": sub,
            "holder": handle,
            "ledger_index": decision.ledger_index,
            "inputs": None if decision.inputs is None else json.loads(decision.inputs),
        }
        for row, decision, sub, handle in rows
    ]
    return page(LISTING, items, limit, lambda item: (item["created_at"], item["request_id"]))


def decide(
    unit: Unit, request_id: str, *, approve: bool, reason: str, staff_id: int
) -> ReissueRequest:
    """A person's decision on a request at review: approved, it is ready for the holder to
    confirm; refused, it ends. Recorded as a `decision` leaf (action review, rule reviewer)."""
    session = unit.session
    row = session.get(ReissueRequest, request_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such reissue request")
    if row.state != "review" or row.expires_at <= unit.now:
        raise Problem(ProblemCode.CONFLICT, f"the request is {row.state}, not waiting for review")
    ticket = session.get(Ticket, row.ticket_id)
    assert ticket is not None
    decisions.follow_up(
        unit,
        row,
        ticket,
        action="review",
        rule="reviewer",
        ruling_outcome="allow" if approve else "deny",
        staff_id=staff_id,
        reason=reason,
    )
    if approve:
        row.state, row.expires_at = "ready", unit.now + reissue.REQUEST_TTL_S
    else:
        row.state, row.finished_at = "denied", unit.now
    return row


def decline(unit: Unit, row: ReissueRequest) -> ReissueRequest:
    """The holder says no to a request still open (one a partner asked for on their behalf, or
    their own): it ends as denied, recorded as a `decision` leaf (action decline, rule holder)
    citing the policy decision it settles. The ticket stays where it is."""
    if row.state not in reissue.OPEN_STATES:
        raise Problem(ProblemCode.CONFLICT, f"the request is {row.state}: nothing to decline")
    ticket = unit.session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    decisions.follow_up(unit, row, ticket, action="decline", rule="holder", ruling_outcome="deny")
    row.state, row.finished_at = "denied", unit.now
    return row
