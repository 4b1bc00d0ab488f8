"""Orders of tickets: paid from the holder's account, marked paid by staff at the counter, or
sold by a partner that collected the price (`partners.sales`: booked to what it owes),
cancelled with a refund. The payment is an `order_paid` ledger leaf, in the same transaction as
the money; its leaf hash is each ticket's *purchase proof*. A cancelled order's tickets are
revoked and never minted again (pretix #2467)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, events, idempotency, tickets, tlog
from duopass.server.store.partners import PartnerClient
from duopass.server.store.tables import Account, Holder
from duopass.server.store.tickets import Checkin, Event, Order, Ticket, TicketType
from duopass.server.unit_of_work import Unit

__all__ = [
    "Paid",
    "box_office",
    "buy",
    "by_code",
    "cancel",
    "describe",
    "late",
    "partner_account",
    "place",
    "sellable",
]

ORDER_CODE_BYTES = 5


def box_office(session: Session, currency: str) -> Account:
    """The merchant account ticket sales are booked to, one per currency."""
    name = f"merchant:box-office:{currency}"
    row = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    if row is None:
        accounts.create_merchant(session, f"box-office:{currency}", currency)
        row = session.scalars(select(Account).where(Account.name == name)).one()
    return row


def by_code(session: Session, code: str, *, holder_id: int | None = None) -> Order:
    """An order by its public code (a holder's own only, when `holder_id` is given)."""
    row = session.scalars(select(Order).where(Order.code == code)).one_or_none()
    if row is None or (holder_id is not None and row.holder_id != holder_id):
        raise Problem(ProblemCode.NOT_FOUND, f"no order {code[:20]!r}")
    return row


def buy(
    unit: Unit,
    holder: Holder,
    *,
    type_id: int,
    quantity: int,
    request_id: str,
    staff_id: int | None = None,
) -> Order:
    """An order of `quantity` tickets: from the holder's free funds, or (with `staff_id`)
    marked paid at the counter. The same request id again returns the first order."""
    session = unit.session
    account = accounts.lock(session, holder.account_id)
    fingerprint = idempotency.money(
        "order", holder_account=account.id, amount=quantity, currency=str(type_id)
    )
    earlier = session.scalars(
        select(Order).where(Order.holder_id == holder.id, Order.request_id == request_id)
    ).one_or_none()
    if earlier is not None:
        if earlier.request_fingerprint != fingerprint:
            raise idempotency.refuse("this request id")
        return earlier
    if holder.frozen:
        raise Problem(ProblemCode.FROZEN, "the account is frozen pending review")
    kind = sellable(unit, type_id, quantity)
    amount = kind.price * quantity
    if kind.currency != account.currency:
        raise Problem(ProblemCode.CONFLICT, f"sold in {kind.currency}, not {account.currency}")
    txn_id = _pay(unit, account, amount, kind.currency, at_counter=staff_id is not None)
    paid = Paid("account" if staff_id is None else "staff", txn_id, staff_id=staff_id)
    return place(unit, holder, kind, quantity, paid, request_id=request_id, fingerprint=fingerprint)


@dataclass(frozen=True)
class Paid:
    """How an order was paid: `paid_by` (account, staff or partner), its transaction (None for
    free tickets), and who: the staff member at the counter, or the partner that sold it."""

    paid_by: str
    transaction_id: int | None
    staff_id: int | None = None
    partner_id: int | None = None
    partner: str | None = None
    """The partner's public client id, as the ledger names it."""


def place(
    unit: Unit,
    holder: Holder,
    kind: TicketType,
    quantity: int,
    paid: Paid,
    *,
    request_id: str,
    fingerprint: bytes,
) -> Order:
    """Record a paid order of `quantity` tickets of `kind` (its places taken, the money
    booked): its `order_paid` leaf, the order and its tickets."""
    session = unit.session
    amount = kind.price * quantity
    code = _order_code(session)
    body: dict[str, Any] = {
        "order": code,
        "holder": unit.keyring.digest(holder.handle),
        "event": kind.event_id,
        "amount": amount,
        "currency": kind.currency,
        "tickets": quantity,
        "paid_by": paid.paid_by,
    }
    optional = {"transaction": paid.transaction_id, "by": paid.staff_id, "partner": paid.partner}
    body.update({key: value for key, value in optional.items() if value is not None})
    index, leaf_hash = tlog.append_hashed(unit, EventType.ORDER_PAID, body)
    order = Order(
        code=code,
        holder_id=holder.id,
        ticket_type_id=kind.id,
        quantity=quantity,
        amount=amount,
        currency=kind.currency,
        state="paid",
        paid_by=paid.paid_by,
        staff_id=paid.staff_id,
        partner_id=paid.partner_id,
        transaction_id=paid.transaction_id,
        payment_index=index,
        payment_leaf=leaf_hash,
        request_id=request_id,
        request_fingerprint=fingerprint,
        created_at=unit.now,
    )
    session.add(order)
    session.flush()
    tickets.create(unit, order, kind, quantity)
    return order


def _pay(
    unit: Unit, account: Account, amount: int, currency: str, *, at_counter: bool
) -> int | None:
    """Book an order's payment to the box office: from the holder's free funds, or (paid at
    the counter) from top-up clearing. A free ticket moves no money (no transaction)."""
    session = unit.session
    if amount == 0:
        return None
    office = box_office(session, currency)
    if at_counter:
        payer = accounts.system_account(session, "topup", currency).id
    else:
        if amount > accounts.free_funds(account):
            raise Problem(ProblemCode.NO_FUNDS, f"{amount} is more than the free funds")
        payer = account.id
    return accounts.post(
        unit, kind="order", legs=[(payer, -amount), (office.id, amount)], occurred_at=unit.now
    )


def sellable(unit: Unit, type_id: int, quantity: int) -> TicketType:
    """The ticket type, locked, with `quantity` places left, of an event not yet ended."""
    session = unit.session
    kind = session.scalars(
        select(TicketType).where(TicketType.id == type_id).with_for_update()
    ).one_or_none()
    if kind is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no ticket type {type_id}")
    if events.event(session, kind.event_id).ends <= unit.now:
        raise Problem(ProblemCode.CONFLICT, "the event has ended")
    if kind.sold + quantity > kind.quota:
        raise Problem(ProblemCode.SOLD_OUT, f"{kind.quota - kind.sold} left of {kind.name!r}")
    kind.sold += quantity
    return kind


def _order_code(session: Session) -> str:
    while True:
        code = base64.b32encode(os.urandom(ORDER_CODE_BYTES)).decode()
        if session.scalars(select(Order.id).where(Order.code == code)).first() is None:
            return code


def partner_account(session: Session, client_id: str, currency: str) -> Account:
    """What a partner owes for the tickets it sold (it collected their price), one per
    partner and currency: kind `topup`, the kind of money held outside the closed loop (the
    card office's clearing), named `partner:<client_id>:<currency>`."""
    name = f"partner:{client_id}:{currency}"
    row = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    if row is None:
        row = Account(kind="topup", name=name, currency=currency, balance=0, overdraft=0, held=0)
        session.add(row)
        session.flush()
    return row


def cancel(
    unit: Unit, order: Order, *, staff_id: int | None = None, partner: str | None = None
) -> Order:
    """Cancel a paid order, all of it (there is no partial cancel), by staff member `staff_id`
    or the partner that sold it: its tickets are revoked (online now, offline with the next
    bundle) and never minted again, its places return to the quota, and the amount goes back
    the way it came (to the holder's account, out of top-up clearing for a counter payment, off
    what the partner owes for a partner's sale). The order row is locked first, so of two
    cancels at once one refunds and the other sees it cancelled. A partner may not cancel once
    the event has begun or a ticket was used or moved (`late`); the card office may."""
    session = unit.session
    order = session.scalars(
        select(Order)
        .where(Order.id == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if order.state == "cancelled":
        return order
    if partner is not None and (why := late(session, order, unit.now)) is not None:
        raise Problem(ProblemCode.ORDER_NOT_CANCELLABLE, f"the partner cannot cancel: {why}")
    holder = session.get(Holder, order.holder_id)
    assert holder is not None
    account = accounts.lock(session, holder.account_id)
    kind = session.scalars(  # before the box office, in the order `buy` and `sellable` lock
        select(TicketType).where(TicketType.id == order.ticket_type_id).with_for_update()
    ).one()
    office = box_office(session, order.currency)
    accounts.lock(session, office.id)
    payee = _payee(session, order, account)
    txn_id = None
    if order.amount:
        txn_id = accounts.post(
            unit,
            kind="partner_refund" if order.paid_by == "partner" else "order_refund",
            legs=[(office.id, -order.amount), (payee, order.amount)],
            occurred_at=unit.now,
        )
    kind.sold -= order.quantity
    revoked = tickets.cancel_all(unit, order)
    order.state, order.cancelled_at, order.refund_transaction_id = "cancelled", unit.now, txn_id
    body: dict[str, Any] = {"order": order.code, "tickets": revoked, "refund": order.amount}
    optional = {"transaction": txn_id, "by": staff_id, "partner": partner}
    body.update({key: value for key, value in optional.items() if value is not None})
    tlog.append(unit, EventType.ORDER_CANCEL, body)
    return order


def late(session: Session, order: Order, now: int) -> str | None:
    """Why a partner may no longer cancel the order, or None: its event's doors have opened
    (or it has ended), or one of its tickets was checked in, reissued or moved to another
    holder. The partner was paid for a night that happened; only the card office refunds it."""
    event = session.scalars(
        select(Event)
        .join(TicketType, TicketType.event_id == Event.id)
        .where(TicketType.id == order.ticket_type_id)
    ).one()
    if event.doors <= now:
        return "the event has begun" if event.ends > now else "the event has ended"
    rows = session.scalars(select(Ticket).where(Ticket.order_id == order.id)).all()
    if any(row.gen > 0 or row.holder_id != order.holder_id for row in rows):
        return "a ticket was reissued or moved"
    entered = session.scalar(
        select(Checkin.id)
        .where(
            Checkin.ticket_id.in_([row.id for row in rows]),
            Checkin.type == "entry",
            Checkin.successful.is_(True),
        )
        .limit(1)
    )
    return None if entered is None else "a ticket was checked in"


def _payee(session: Session, order: Order, account: Account) -> int:
    """Where a cancelled order's amount goes back to: the way it came."""
    if order.paid_by == "account":
        return account.id
    if order.paid_by == "partner":
        client = session.get(PartnerClient, order.partner_id)
        assert client is not None
        return accounts.lock(
            session, partner_account(session, client.client_id, order.currency).id
        ).id
    return accounts.system_account(session, "topup", order.currency).id


def describe(session: Session, order: Order) -> dict[str, Any]:
    subs = session.scalars(
        select(Ticket.sub).where(Ticket.order_id == order.id).order_by(Ticket.id)
    )
    return {
        "code": order.code,
        "ticket_type": order.ticket_type_id,
        "quantity": order.quantity,
        "amount": order.amount,
        "currency": order.currency,
        "state": order.state,
        "paid_by": order.paid_by,
        "purchase_proof": order.payment_leaf.hex(),
        "ledger_index": order.payment_index,
        "created_at": order.created_at,
        "cancelled_at": order.cancelled_at,
        "tickets": list(subs),
    }


def of_event(session: Session, event_id: str, *, limit: int) -> list[Order]:
    """An event's latest orders (of all its ticket types), newest first."""
    types = select(TicketType.id).where(TicketType.event_id == event_id)
    query = select(Order).where(Order.ticket_type_id.in_(types)).order_by(Order.id.desc())
    return list(session.scalars(query.limit(limit)))
