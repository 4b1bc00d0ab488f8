"""Reissue of a ticket to a new device in three steps (issue 13, PROTOCOL §6): the request is
decided by the policy (allow, step up, review or deny) and recorded on the ledger; a step-up
proves the holder again; confirming mints the new credential (same `sub`, `gen` + 1, a new
`cti` the decision already named) and revokes every older one, online at once and offline
with the next bundle. A transfer moves a ticket to another holder the same way."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.claims import Kind
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import decisions, policy_store, risk_engine, step_up, tickets
from duopass.server.services.passkey_challenges import Relying
from duopass.server.services.reissue_inputs import Asked, build
from duopass.server.store import checkin_sql, reissue_sql, sql
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.partners import PartnerClient
from duopass.server.store.tables import Credential, Device, Holder
from duopass.server.store.tickets import Event, Ticket
from duopass.server.unit_of_work import Unit
from duopass.tickets import EventTerms, mint_refusal

__all__ = [
    "Confirmed",
    "begin_step_up",
    "confirm",
    "describe",
    "device_by_key",
    "open_request",
    "request",
    "stepped_up",
    "waiting",
]

REQUEST_TTL_S = 15 * 60
"""A request not confirmed within this (or stepped up) expires; one at review waits for it."""
OPEN_STATES = ("step_up", "review", "ready")
STATE_OF = {"allow": "ready", "step_up": "step_up", "review": "review", "deny": "denied"}


def device_by_key(session: Session, holder: Holder, key: bytes) -> Device:
    """The holder's enrolled, unrevoked device with this key: a ticket moves only to a device
    the holder has proved they hold (`POST /v1/me/devices`)."""
    device = session.scalars(select(Device).where(Device.public_key == key)).one_or_none()
    if device is None or device.holder_id != holder.id or device.revoked_at is not None:
        raise Problem(ProblemCode.NOT_FOUND, "enrol this device key first (POST /v1/me/devices)")
    return device


def open_request(
    unit: Unit, holder: Holder, ticket: Ticket, asked: Asked, *, to_holder: Holder | None = None
) -> ReissueRequest:
    """Decide a reissue (or transfer, or loss) of `ticket` to `asked.device` by the active
    policy, record the decision on the ledger, and keep the request for its next step."""
    session, now = unit.session, unit.now
    if ticket.state != "valid":
        raise Problem(ProblemCode.CONFLICT, "the ticket's order was cancelled")
    if ticket.device_id == asked.device.id and to_holder is None:
        raise Problem(ProblemCode.CONFLICT, "the ticket is on this device already")
    _close_open(unit, ticket)
    score = risk_engine.reissue_score(unit, holder.id, asked.device.id, asked.address)
    inputs = build(unit, holder, ticket, asked, risk_score=score)
    policy, ruling = policy_store.decide(unit, inputs)
    live = sql.raw(session).one(reissue_sql.LIVE_CTI, {"ticket": ticket.id})  # flushed in `build`
    old_cti = None if live is None else bytes(live[0])
    request_id = "rq-" + secrets.token_hex(8)
    new_cti = os.urandom(tickets.CTI_BYTES)
    decision = decisions.record(
        unit,
        action=asked.action,
        holder_id=holder.id,
        ticket_id=ticket.id,
        request_id=request_id,
        inputs=inputs,
        policy=policy,
        ruling_outcome=ruling.outcome,
        rule=ruling.rule,
        old_cti=old_cti,
        new_cti=new_cti,
        old_gen=ticket.gen,
        new_gen=ticket.gen + 1,
        partner=_client_id(session, asked.partner_id),
    )
    row = ReissueRequest(
        id=request_id,
        action=asked.action,
        holder_id=holder.id,
        ticket_id=ticket.id,
        device_key=asked.device.public_key,
        to_holder_id=None if to_holder is None else to_holder.id,
        state=STATE_OF[ruling.outcome],
        outcome=ruling.outcome,
        rule=ruling.rule,
        factors=json.dumps(list(ruling.factors)),
        policy_sha256=policy.sha256,
        decision_id=decision.id,
        created_at=now,
        expires_at=_expiry(session, ticket, ruling.outcome, now),
        old_cti=old_cti,
        new_cti=new_cti,
        finished_at=now if ruling.outcome == "deny" else None,
        partner_id=asked.partner_id,
    )
    session.add(row)
    session.flush()
    return row


def _client_id(session: Session, partner_id: int | None) -> str | None:
    """The public id of the partner asking on the holder's behalf, as the ledger names it."""
    if partner_id is None:
        return None
    client = session.get(PartnerClient, partner_id)
    assert client is not None
    return client.client_id


def _expiry(session: Session, ticket: Ticket, outcome: str, now: int) -> int:
    if outcome != "review":
        return now + REQUEST_TTL_S
    event = session.get(Event, ticket.event_id)
    assert event is not None
    return event.ends  # a person decides; until the event ends it may still matter


def _close_open(unit: Unit, ticket: Ticket) -> None:
    """A new request ends the ticket's earlier open ones, except one waiting for a person:
    asking again must not slip past a review."""
    unit.session.flush()  # the count goes around the ORM: it sees what the unit changed
    if not sql.raw(unit.session).one(reissue_sql.OPEN, {"ticket": ticket.id})[0]:
        return  # the usual case: nothing to close, and no rows to load
    for row in unit.session.scalars(
        select(ReissueRequest).where(
            ReissueRequest.ticket_id == ticket.id, ReissueRequest.state.in_(OPEN_STATES)
        )
    ):
        if row.state == "review" and row.expires_at > unit.now:
            raise Problem(
                ProblemCode.CONFLICT, f"request {row.id} waits for review at the card office"
            )
        row.state, row.finished_at = "expired", unit.now


def request(unit: Unit, holder: Holder, request_id: str) -> ReissueRequest:
    """The holder's own request, expired when its time has passed."""
    row = unit.session.get(ReissueRequest, request_id)
    if row is None or row.holder_id != holder.id:
        raise Problem(ProblemCode.NOT_FOUND, "no such reissue request")
    if row.state in OPEN_STATES and row.expires_at <= unit.now:
        row.state, row.finished_at = "expired", unit.now
    return row


WAITING_SHOWN_MAX = 50


def waiting(unit: Unit, holder: Holder) -> list[tuple[ReissueRequest, str | None]]:
    """The holder's open requests not expired, newest first (at most `WAITING_SHOWN_MAX`),
    each with the name of the partner that asked for it (None: the holder or staff)."""
    rows = unit.session.execute(
        select(ReissueRequest, PartnerClient.name)
        .outerjoin(PartnerClient, PartnerClient.id == ReissueRequest.partner_id)
        .where(
            ReissueRequest.holder_id == holder.id,
            ReissueRequest.state.in_(OPEN_STATES),
            ReissueRequest.expires_at > unit.now,
        )
        .order_by(ReissueRequest.created_at.desc(), ReissueRequest.id)
        .limit(WAITING_SHOWN_MAX)
    ).all()
    return [(row, name) for row, name in rows]


def begin_step_up(
    unit: Unit, holder: Holder, row: ReissueRequest, *, factor: str, rp: Relying | None = None
) -> dict[str, Any]:
    """Step 1's step-up begins: a code is mailed (e-mail), the authenticator's is awaited
    (TOTP), or a passkey's options are handed out (relying party `rp`), for this request
    only."""
    _stepping_up(row, factor)
    about = f"moving a ticket ({row.id})"
    return step_up.begin(unit, holder=holder, purpose=row.id, factor=factor, about=about, rp=rp)


def stepped_up(unit: Unit, row: ReissueRequest, *, factor: str) -> dict[str, Any]:
    """The step-up's code checked out (`step_up.verified` runs this in its unit): the request
    is ready to confirm."""
    _stepping_up(row, factor)
    row.state, row.factor_done = "ready", factor
    row.expires_at = unit.now + REQUEST_TTL_S
    return {"request_id": row.id, "factor": factor, "state": row.state}


def _stepping_up(row: ReissueRequest, factor: str) -> None:
    if row.state != "step_up":
        raise Problem(
            ProblemCode.CONFLICT, f"the request is {row.state}, not waiting for a step-up"
        )
    if factor not in json.loads(row.factors):
        raise Problem(ProblemCode.INVALID_REQUEST, f"the policy does not accept {factor!r} here")


@dataclass(frozen=True)
class Confirmed:
    ticket: Ticket
    credential: Credential | None
    refusal: str | None


def confirm(unit: Unit, holder: Holder, row: ReissueRequest) -> Confirmed:
    """Step 2 and 3: move the ticket to the request's device at the next generation, revoke
    every older credential, and mint the new one (when the event is near enough; otherwise at
    the next sync, with the `cti` the decision named)."""
    session = unit.session
    if row.state == "done":
        ticket = session.get(Ticket, row.ticket_id)
        assert ticket is not None
        return Confirmed(ticket, _credential(session, row.new_cti), None)
    if row.state != "ready":
        raise Problem(ProblemCode.CONFLICT, f"the request is {row.state}: nothing to confirm")
    ticket = session.scalars(
        select(Ticket).where(Ticket.id == row.ticket_id).with_for_update()
    ).one()
    if ticket.state != "valid":
        raise Problem(ProblemCode.CONFLICT, "the ticket's order was cancelled")
    device = session.scalars(select(Device).where(Device.public_key == row.device_key)).one()
    if device.revoked_at is not None:
        raise Problem(ProblemCode.FORBIDDEN, "the device was revoked since the request")
    tickets.revoke_credentials(unit, ticket, reason=row.action)
    ticket.gen += 1
    ticket.device_id = device.id
    if row.to_holder_id is not None:
        ticket.holder_id = row.to_holder_id
    row.state, row.finished_at = "done", unit.now
    minted = _mint_now(unit, ticket, device, row)
    data = {"ticket": ticket.sub, "event": ticket.event_id, "gen": ticket.gen}
    emit(unit, WebhookEvent.TICKET_REISSUED, data | {"action": row.action})
    return Confirmed(ticket, minted, None if minted is not None else "too_early")


def _mint_now(unit: Unit, ticket: Ticket, device: Device, row: ReissueRequest) -> Credential | None:
    db = sql.raw(unit.session)
    found = db.one(reissue_sql.TERMS, {"event": ticket.event_id, "kind": ticket.ticket_type_id})
    assert found is not None
    venues = tuple(venue for (venue,) in db.all(checkin_sql.VENUES, {"event": ticket.event_id}))
    terms = EventTerms(ticket.event_id, found[0], found[1], venues, found[2])
    lifetime = unit.settings.policy.max_lifetime_s(Kind.TICKET)
    if mint_refusal(terms, now=unit.now, max_lifetime_s=lifetime) is not None:
        return None
    return tickets.issue(unit, ticket, device, terms=terms, cti=row.new_cti)


def _credential(session: Session, cti: bytes | None) -> Credential | None:
    return None if cti is None else session.get(Credential, cti)


def describe(row: ReissueRequest) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "action": row.action,
        "state": row.state,
        "outcome": row.outcome,
        "rule": row.rule,
        "factors": json.loads(row.factors),
        "factor_done": row.factor_done,
        "policy": {"sha256": row.policy_sha256.hex()},
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "finished_at": row.finished_at,
        "old_cti": None if row.old_cti is None else row.old_cti.hex(),
        "new_cti": None if row.new_cti is None else row.new_cti.hex(),
    }
