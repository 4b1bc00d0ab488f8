"""The tables of ticketing: venues, events, ticket types, orders, tickets, check-in lists and
check-ins. A ticket is an entitlement from purchase on; its kind-3 credentials are rows of
`credentials` with `ticket_id` set (PROTOCOL §2, §6)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = [
    "Checkin",
    "CheckinList",
    "Event",
    "EventVenue",
    "GateList",
    "Order",
    "Ticket",
    "TicketType",
    "Venue",
]


class Venue(Base):
    """A place where tickets are valid: its id is what `scope` carries and a gate's venue."""

    __tablename__ = "venues"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    lat_e6: Mapped[int | None] = mapped_column(BigInteger)
    """Latitude in millionths of a degree (integers, like money)."""
    lon_e6: Mapped[int | None] = mapped_column(BigInteger)
    networks: Mapped[str] = mapped_column(Text, default="[]")
    """The campus network ranges (CIDR, JSON list) that belong to the venue."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    ceilings: Mapped[str | None] = mapped_column(Text)
    """The card office's price ceilings (JSON object: meal period or `other` to minor units):
    a payment above is flagged (`venue_ceilings`); None: none set."""


class Event(Base):
    """An event: its id is a ticket's `ev`, its doors `nbf` and its end `exp`."""

    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    doors: Mapped[int] = mapped_column(BigInteger)
    ends: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    partner_id: Mapped[int | None] = mapped_column(Integer)
    """The partner client (`partner_clients.id`) that owns it, which alone of the partners may
    check in on it; None: the card office's own. No foreign key: added in place (0024)."""
    __table_args__ = (
        CheckConstraint("ends > doors", name="event_times"),
        Index("events_partner", "partner_id"),
    )


class EventVenue(Base):
    """The venues of an event: its tickets' `scope`."""

    __tablename__ = "event_venues"
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id"), primary_key=True)


class TicketType(Base):
    """What an order buys: a price, the entries it allows (`ent`) and a quota."""

    __tablename__ = "ticket_types"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    entries: Mapped[int] = mapped_column(Integer, default=1)
    quota: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    """Tickets of paid orders (a cancelled order gives its places back)."""
    static_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    """A printable code without a device key (§2 static ticket), where the issuer allows it."""
    __table_args__ = (
        CheckConstraint("price >= 0 AND entries >= 1 AND sold >= 0", name="ticket_type_values"),
        CheckConstraint("sold <= quota", name="ticket_type_quota"),
    )


class Order(Base):
    """An order of tickets of one type. Its payment is a ledger event whose leaf hash is each
    of its tickets' purchase proof."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    """The public order code, as an organiser and a holder quote it."""
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    ticket_type_id: Mapped[int] = mapped_column(ForeignKey("ticket_types.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(12), default="paid")
    paid_by: Mapped[str] = mapped_column(String(8))
    """account (the holder's purse), staff (marked paid at the counter) or partner (sold by a
    partner, which collected the price: `partner_id`)."""
    staff_id: Mapped[int | None] = mapped_column(Integer)
    partner_id: Mapped[int | None] = mapped_column(Integer)
    """The partner client (`partner_clients.id`) that sold it; its `request_id` is the partner's
    Idempotency-Key, unique per partner. No foreign key: added in place (0028)."""
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    payment_index: Mapped[int] = mapped_column(BigInteger)
    """The ledger index of the `order_paid` leaf."""
    payment_leaf: Mapped[bytes] = mapped_column(LargeBinary(32))
    """That leaf's RFC 9162 hash: the purchase proof."""
    request_id: Mapped[str | None] = mapped_column(String(64))
    request_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    refund_transaction_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        CheckConstraint("state IN ('paid', 'cancelled')", name="order_state"),
        CheckConstraint("quantity >= 1 AND amount >= 0", name="order_values"),
        UniqueConstraint("holder_id", "request_id", name="order_request_once"),
        Index("order_partner_request_once", "partner_id", "request_id", unique=True),
    )


class Ticket(Base):
    """One admission: `sub` is its public id, in every code, route and command."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    ticket_type_id: Mapped[int] = mapped_column(ForeignKey("ticket_types.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default="valid")
    """valid, or cancelled (its order was: never minted again, pretix #2467)."""
    gen: Mapped[int] = mapped_column(Integer, default=0)
    """The generation of its newest credential (§6: +1 at each reissue)."""
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    """The device its credentials are bound to; a reissue or a transfer moves it."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (CheckConstraint("state IN ('valid', 'cancelled')", name="ticket_state"),)


class CheckinList(Base):
    """Where and how an event's tickets are checked in (pretix's check-in list)."""

    __tablename__ = "checkin_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    ticket_types: Mapped[str | None] = mapped_column(Text)
    """The ticket type ids it admits (JSON list); NULL: all of the event's."""
    allow_reentry: Mapped[bool] = mapped_column(Boolean, default=False)
    """Entry again after an exit (pretix's allow_entry_after_exit)."""
    entry_limit: Mapped[int | None] = mapped_column(Integer)
    """Entries on this list per ticket; NULL: the ticket type's entries (`ent`)."""
    created_at: Mapped[int] = mapped_column(BigInteger)


class GateList(Base):
    """The check-in list an entry-mode terminal counts on (else its event's first list)."""

    __tablename__ = "gate_lists"
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"), primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("checkin_lists.id"))


class Checkin(Base):
    """One check-in decision on a list: from the redeem route, a gate's online scan or a gate's
    journal. Successful entries count against the ticket's entries, across generations."""

    __tablename__ = "checkins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("checkin_lists.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    type: Mapped[str] = mapped_column(String(5))
    """entry or exit."""
    successful: Mapped[bool] = mapped_column(Boolean)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    """A successful entry that used one of the ticket's entries (a re-entry after an exit, on
    a list that allows it, uses none; an exit never does)."""
    reason: Mapped[str | None] = mapped_column(String(32))
    """Why it was refused; for a forced check-in, the refusal it overrode."""
    at: Mapped[int] = mapped_column(BigInteger)
    """When it happened (the scan's `datetime`; the server's clock when absent)."""
    received_at: Mapped[int] = mapped_column(BigInteger)
    gen: Mapped[int | None] = mapped_column(Integer)
    cti: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    nonce: Mapped[str | None] = mapped_column(String(190))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(8))
    """redeem, scan (a gate online) or journal (a gate's offline entry)."""
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[str | None] = mapped_column(Text)
    """The JSON answer the redeem route gave: the same nonce again returns it."""
    __table_args__ = (
        CheckConstraint("type IN ('entry', 'exit')", name="checkin_type"),
        UniqueConstraint("list_id", "nonce", name="checkin_nonce_once"),
        Index("checkins_ticket", "ticket_id", "successful"),
    )
