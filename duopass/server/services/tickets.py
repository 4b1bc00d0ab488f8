"""Tickets and their credentials: created by an order, minted (PROTOCOL §2 kind 3) when the
holder's wallet syncs on the device the ticket is bound to and the event is near enough,
re-minted when its codes run out, revoked when its order is cancelled. A ticket's `sub` is its
public id."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.claims import Kind
from duopass.protocol.code import mint_credential
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, events, signing_keys, tlog, trust_changes
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.tables import Credential, Device, Holder
from duopass.server.store.tickets import Checkin, Event, Order, Ticket, TicketType
from duopass.server.unit_of_work import Unit
from duopass.tickets import MintRefusal, mint_refusal, ticket_claims

__all__ = [
    "Minted",
    "by_sub",
    "cancel_all",
    "create",
    "describe",
    "entries",
    "freeze_subs",
    "live_credential",
    "mint",
    "of_holder",
    "revoke_credentials",
    "sync",
]

SUB_BYTES = 10
CTI_BYTES = 12


def create(unit: Unit, order: Order, kind: TicketType, quantity: int) -> list[Ticket]:
    """The tickets of a paid order: entitlements, not yet bound to a device."""
    rows = [
        Ticket(
            sub=_new_sub(unit.session),
            order_id=order.id,
            event_id=kind.event_id,
            ticket_type_id=kind.id,
            holder_id=order.holder_id,
            state="valid",
            gen=0,
            created_at=unit.now,
        )
        for _ in range(quantity)
    ]
    unit.session.add_all(rows)
    unit.session.flush()
    for ticket in rows:
        data = {"ticket": ticket.sub, "event": kind.event_id, "ticket_type": kind.id}
        emit(unit, WebhookEvent.TICKET_ISSUED, data | {"order": order.code})
    return rows


def _new_sub(session: Session) -> str:
    while True:
        sub = "tk-" + base64.b32encode(os.urandom(SUB_BYTES)).decode().lower()
        if session.scalars(select(Ticket.id).where(Ticket.sub == sub)).first() is None:
            return sub


def by_sub(session: Session, sub: str, *, holder_id: int | None = None) -> Ticket:
    """A ticket by its public id (a holder's own only, when `holder_id` is given)."""
    row = session.scalars(select(Ticket).where(Ticket.sub == sub)).one_or_none()
    if row is None or (holder_id is not None and row.holder_id != holder_id):
        raise Problem(ProblemCode.NOT_FOUND, "no such ticket")
    return row


def of_holder(session: Session, holder_id: int) -> Sequence[Ticket]:
    return list(
        session.scalars(select(Ticket).where(Ticket.holder_id == holder_id).order_by(Ticket.id))
    )


def live_credential(session: Session, ticket: Ticket) -> Credential | None:
    """The ticket's newest credential that is neither revoked nor superseded."""
    return session.scalars(
        select(Credential)
        .where(Credential.ticket_id == ticket.id, Credential.state == "live")
        .order_by(Credential.iat.desc())
        .limit(1)
    ).first()


def revoke_credentials(unit: Unit, ticket: Ticket, *, reason: str) -> list[Credential]:
    """Revoke every credential of the ticket still accepted: refused online at once, and in
    the next bundle for offline gates. Returns them."""
    revoked = list(
        unit.session.scalars(
            select(Credential).where(
                Credential.ticket_id == ticket.id, Credential.state != "revoked"
            )
        )
    )
    for credential in revoked:
        credential.state = "revoked"
        trust_changes.record(unit.session, "revoke", cti=credential.cti, until=credential.exp)
        tlog.append(unit, EventType.CREDENTIAL_REVOKE, {"cti": credential.cti, "reason": reason})
    return revoked


def cancel_all(unit: Unit, order: Order) -> int:
    """Cancel the order's tickets: revoked, and never minted again. Returns how many."""
    rows = unit.session.scalars(
        select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)
    ).all()
    for ticket in rows:
        ticket.state = "cancelled"
        revoke_credentials(unit, ticket, reason="order cancelled")
        data = {"ticket": ticket.sub, "event": ticket.event_id, "reason": "order_cancelled"}
        emit(unit, WebhookEvent.TICKET_REVOKED, data)
    return len(rows)


def freeze_subs(session: Session, holder: Holder) -> list[str]:
    """The subjects a freeze of the holder covers besides their handle: every ticket's `sub`
    (check 10 freezes tickets too)."""
    return list(session.scalars(select(Ticket.sub).where(Ticket.holder_id == holder.id)))


def entries(session: Session, ticket_id: int) -> int:
    """Entries the ticket used on any list, across its generations (check 19): successful
    entries, less re-entries after an exit (free on a list that allows them)."""
    count = session.scalar(
        select(func.count())
        .select_from(Checkin)
        .where(
            Checkin.ticket_id == ticket_id, Checkin.successful.is_(True), Checkin.counted.is_(True)
        )
    )
    return int(count or 0)


@dataclass(frozen=True)
class Minted:
    """A ticket as the wallet receives it: its credential, or why there is none now."""

    ticket: Ticket
    credential: Credential | None
    refusal: str | None


def sync(unit: Unit, holder: Holder, *, device_id: int, exhausted: frozenset[str]) -> list[Minted]:
    """Every ticket of the holder for this device: a ticket not yet bound is bound to it; a
    ticket bound here gets its live credential, or a new one when it has none or its codes ran
    out (`exhausted` names those subs); a ticket bound to another device is left alone (a
    reissue moves it)."""
    session = unit.session
    device = session.get(Device, device_id)
    if device is None or device.holder_id != holder.id:
        raise Problem(ProblemCode.NOT_FOUND, "no such device")
    if device.revoked_at is not None:
        raise Problem(ProblemCode.FORBIDDEN, "the device is revoked")
    if holder.frozen:
        raise Problem(ProblemCode.FROZEN, "the account is frozen pending review")
    return [
        mint(unit, t, device, refresh=t.sub in exhausted) for t in of_holder(session, holder.id)
    ]


def mint(unit: Unit, ticket: Ticket, device: Device, *, refresh: bool) -> Minted:
    """The ticket's credential on `device` (see `sync`)."""
    session = unit.session
    if ticket.state != "valid":
        return Minted(ticket, None, MintRefusal.CANCELLED)
    if ticket.device_id is None:
        ticket.device_id = device.id
    if ticket.device_id != device.id:
        return Minted(ticket, None, MintRefusal.OTHER_DEVICE)
    event = session.get(Event, ticket.event_id)
    kind = session.get(TicketType, ticket.ticket_type_id)
    assert event is not None and kind is not None
    terms = events.terms(session, event, kind)
    refusal = mint_refusal(
        terms, now=unit.now, max_lifetime_s=unit.settings.policy.max_lifetime_s(Kind.TICKET)
    )
    live = live_credential(session, ticket)
    stale = live is not None and signing_keys.minted_with_revoked(session, live.l1)
    if live is not None and live.device_id == device.id and not refresh and not stale:
        return Minted(ticket, live, None)  # a revoked key's is minted again, under its successor
    if refusal is not None:
        return Minted(ticket, None, refusal)
    if live is not None:
        revoke_credentials(unit, ticket, reason="codes used up" if refresh else "re-minted")
    planned = _planned_cti(session, ticket)
    return Minted(ticket, issue(unit, ticket, device, terms=terms, cti=planned), None)


def _planned_cti(session: Session, ticket: Ticket) -> bytes | None:
    """The `cti` a reissue's decision named for the ticket's current generation, while no
    credential carries it yet (the event was too far ahead to mint at confirmation)."""
    if ticket.gen == 0:
        return None
    cti = session.scalars(
        select(ReissueRequest.new_cti)
        .where(ReissueRequest.ticket_id == ticket.id, ReissueRequest.state == "done")
        .order_by(ReissueRequest.finished_at.desc())
        .limit(1)
    ).first()
    if cti is None or session.get(Credential, cti) is not None:
        return None
    return cti


def issue(
    unit: Unit, ticket: Ticket, device: Device, *, terms: Any, cti: bytes | None
) -> Credential:
    """A new credential of the ticket's current generation for `device` (a reissue bumps
    `ticket.gen` first and may name the `cti` its decision recorded)."""
    session, now = unit.session, unit.now
    claims = ticket_claims(
        terms,
        iss=unit.settings.issuer,
        sub=ticket.sub,
        cti=cti or os.urandom(CTI_BYTES),
        now=now,
        device_key=device.public_key,
        gen=ticket.gen,
    )
    key = signing_keys.current(unit)
    credential = Credential(
        cti=claims.cti,
        holder_id=ticket.holder_id,
        device_id=device.id,
        kind=Kind.TICKET,
        gen=claims.gen,
        uses=claims.uses or 0,
        txmax=0,
        iat=now,
        exp=claims.exp,
        state="live",
        l1=mint_credential(claims, key),
        offline=True,
        issued_day=accounts.business_date(now, unit.settings.zone),
        ticket_id=ticket.id,
    )
    session.add(credential)
    holder = session.get(Holder, ticket.holder_id)
    assert holder is not None
    body: dict[str, Any] = {"cti": claims.cti, "kid": key.kid, "ticket": ticket.sub}
    body["holder"] = unit.keyring.digest(holder.handle)
    body.update(uses=credential.uses, txmax=0, exp=claims.exp, offline=1, gen=claims.gen)
    tlog.append(unit, EventType.CREDENTIAL_ISSUE, body)
    return credential


def describe(session: Session, ticket: Ticket, credential: Credential | None) -> dict[str, Any]:
    event = session.get(Event, ticket.event_id)
    kind = session.get(TicketType, ticket.ticket_type_id)
    order = session.get(Order, ticket.order_id)
    assert event is not None and kind is not None and order is not None
    return {
        "sub": ticket.sub,
        "event": {"id": event.id, "name": event.name, "doors": event.doors, "ends": event.ends},
        "ticket_type": {"id": kind.id, "name": kind.name, "entries": kind.entries},
        "order": order.code,
        "state": ticket.state,
        "gen": ticket.gen,
        "entries_used": entries(session, ticket.id),
        "device_id": ticket.device_id,
        "purchase_proof": order.payment_leaf.hex(),
        "cti": None if credential is None else credential.cti.hex(),
    }
