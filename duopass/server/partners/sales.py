"""A partner's sales and requests for holders (issue 17): orders of tickets of its own events,
sold to campus holders, and reissues it asks for on a holder's behalf.

**Holders** are named as a campus names them to a ticketing platform: the student or staff
number and the e-mail address the card office has for it (`holder_people`), both matching (the
address in any case). The number alone would let a partner learn which numbers have an account
here; with the address too, a partner learns only what the buyer told it. Nobody is created: a
holder is enrolled by the card office. An erased holder has neither, so is not found.

**Money.** The partner collected the price itself, so no holder's money moves: the sale is
booked from the partner's account (`orders.partner_account`: what it owes the card office,
debited) to the box office (the tickets' revenue, credited), transaction kind `partner_order`,
the order `paid_by` `partner`. A cancel reverses it (`partner_refund`), the whole order: the
partner may cancel only before the event's doors open and while no ticket of it was checked
in, reissued or moved (409 `order_not_cancellable`; the card office may cancel later, a refund
it decides). The day's settlement shows both on the box office's line and, per partner, in
its `partners` section.

**Idempotency.** An order carries the partner's `Idempotency-Key` (unique per partner, bound to
the request: partner, holder, ticket type and quantity). The same key with the same request
returns the first order and books nothing; with another, 409 `idempotency_mismatch`. A
partner's orders are serialised on its client row, so two retries racing both see one order.

Refusals: a holder not matched 404 `holder_not_found`; a ticket type, order, ticket or request
not of the partner's events 404 `not_found` (as if it did not exist); a frozen holder 403
`frozen`; sold out 409 `sold_out`; an ended event 409 `conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.partners import clients
from duopass.server.partners.catalogue import owned_order
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, holders, idempotency, orders, reissue
from duopass.server.services.reissue_inputs import Asked
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.people import HolderPerson
from duopass.server.store.tables import Device, Holder
from duopass.server.store.tickets import Event, Order, Ticket, TicketType
from duopass.server.unit_of_work import Unit

__all__ = [
    "KEY_PREFIX",
    "Sold",
    "ask_reissue",
    "cancel",
    "holder_named",
    "reissue_request",
    "sell",
    "stored_request_id",
]

KEY_PREFIX = "partner:"
"""Before the partner's id and its Idempotency-Key in `orders.request_id`
(`partner:<partner_id>:<key>`): a holder's request ids have no colon, so the two never meet in
`order_request_once` (holder, request id), and nor do two partners' equal keys for one holder."""


def stored_request_id(partner_id: int, key: str) -> str:
    """The order's stored request id: at most 8 + 10 + 1 + 45 = 64 characters, the column's size
    (a partner's id is an INTEGER, at most 10 digits; `IDEMPOTENCY_KEY_CHARS_MAX`)."""
    return f"{KEY_PREFIX}{partner_id}:{key}"


def holder_named(session: Session, number: str, email: str) -> Holder:
    """The holder with this student or staff number and e-mail address (any case)."""
    found = session.execute(
        select(Holder, HolderPerson.email)
        .join(HolderPerson, HolderPerson.holder_id == Holder.id)
        .where(HolderPerson.number == number)
    ).one_or_none()
    if found is None or found[1].casefold() != email.casefold():
        raise Problem(ProblemCode.HOLDER_NOT_FOUND, "no holder with this number and e-mail address")
    holder: Holder = found[0]
    return holder


def _own_type(session: Session, partner_id: int, type_id: int) -> None:
    owner = session.scalar(
        select(Event.partner_id)
        .join(TicketType, TicketType.event_id == Event.id)
        .where(TicketType.id == type_id)
    )
    if owner is None or owner != partner_id:
        raise Problem(ProblemCode.NOT_FOUND, f"no ticket type {type_id} of yours")


@dataclass(frozen=True)
class Sold:
    order: Order
    created: bool
    """False: the key's first order, returned again (nothing booked)."""


def sell(
    unit: Unit,
    partner_id: int,
    *,
    number: str,
    email: str,
    type_id: int,
    quantity: int,
    key: str,
) -> Sold:
    """An order of `quantity` tickets of the partner's ticket type `type_id` for the holder
    named, paid to the partner (module docstring)."""
    session = unit.session
    client = clients.one(session, partner_id, lock=True)  # one sale of the partner at a time
    holder = holder_named(session, number, email)
    fingerprint = idempotency.partner_order(
        partner=partner_id, holder=holder.id, ticket_type=type_id, quantity=quantity
    )
    stored = stored_request_id(partner_id, key)
    earlier = session.scalars(
        select(Order).where(Order.partner_id == partner_id, Order.request_id == stored)
    ).one_or_none()
    if earlier is not None:
        if earlier.request_fingerprint != fingerprint:
            raise idempotency.refuse("this Idempotency-Key")
        return Sold(earlier, False)
    _own_type(session, partner_id, type_id)
    if holder.frozen:
        raise Problem(ProblemCode.FROZEN, "the holder's account is frozen pending review")
    kind = orders.sellable(unit, type_id, quantity)
    amount = kind.price * quantity
    txn_id = None
    if amount:
        owed = orders.partner_account(session, client.client_id, kind.currency)
        office = orders.box_office(session, kind.currency)
        for account in (office, owed):  # the order `orders.cancel` locks them in
            accounts.lock(session, account.id)
        txn_id = accounts.post(
            unit,
            kind="partner_order",
            legs=[(owed.id, -amount), (office.id, amount)],
            occurred_at=unit.now,
        )
    paid = orders.Paid("partner", txn_id, partner_id=partner_id, partner=client.client_id)
    order = orders.place(
        unit, holder, kind, quantity, paid, request_id=stored, fingerprint=fingerprint
    )
    return Sold(order, True)


def cancel(unit: Unit, partner_id: int, code: str) -> Order:
    """Cancel an order the partner sold (one a holder bought from their own account is the
    card office's to cancel: 409 `conflict`; too late, `orders.late`: 409
    `order_not_cancellable`); cancelling it again changes nothing."""
    session = unit.session
    client = clients.one(session, partner_id, lock=True)
    order = owned_order(session, partner_id, code)
    if order.partner_id != partner_id:
        raise Problem(
            ProblemCode.CONFLICT, "a holder bought this order: the card office cancels it"
        )
    return orders.cancel(unit, order, partner=client.client_id)


def _own_ticket(session: Session, partner_id: int, sub: str) -> Ticket:
    found = session.execute(
        select(Ticket, Event.partner_id)
        .join(Event, Event.id == Ticket.event_id)
        .where(Ticket.sub == sub)
    ).one_or_none()
    if found is None or found[1] != partner_id:
        raise Problem(ProblemCode.NOT_FOUND, f"no ticket {sub[:64]!r} of yours")
    ticket: Ticket = found[0]
    return ticket


def _device(session: Session, holder: Holder, key: bytes | None) -> Device:
    """The device the holder enrolled with this key, or their newest one."""
    if key is not None:
        return reissue.device_by_key(session, holder, key)
    return holders.newest_device(session, holder)


def ask_reissue(unit: Unit, partner_id: int, sub: str, key: bytes | None) -> ReissueRequest:
    """A reissue of the partner's ticket `sub` to its holder's device (`key`, else their newest),
    asked by the partner for the holder: decided by the same policy as the holder's own, with
    `auth.method` `partner` (the default policy asks the holder to step up in their wallet),
    on the ledger naming the partner. Allowed at once, it is confirmed at once: the holder's
    wallet gets the new credential at its next sync."""
    session = unit.session
    ticket = _own_ticket(session, partner_id, sub)
    holder = session.get(Holder, ticket.holder_id)
    assert holder is not None
    device = _device(session, holder, key)
    asked = Asked("reissue", None, device, None, None, partner_id=partner_id)
    row = reissue.open_request(unit, holder, ticket, asked)
    if row.state == "ready":
        reissue.confirm(unit, holder, row)
    return row


def reissue_request(unit: Unit, partner_id: int, request_id: str) -> ReissueRequest:
    """A request the partner asked for, expired when its time has passed."""
    row = unit.session.get(ReissueRequest, request_id)
    if row is None or row.partner_id != partner_id:
        raise Problem(ProblemCode.NOT_FOUND, "no such reissue request of yours")
    holder = unit.session.get(Holder, row.holder_id)
    assert holder is not None
    return reissue.request(unit, holder, request_id)
