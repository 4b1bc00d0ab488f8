"""Webhooks (partners): the endpoints the card office sends lifecycle events to, the outbox of
messages written in the same transaction as their event (one row per event and subscribed
endpoint, which is also that delivery's state), and the log of every delivery attempt."""

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

from duopass.server.limits import (
    WEBHOOK_DESCRIPTION_CHARS_MAX,
    WEBHOOK_ERROR_CHARS_MAX,
    WEBHOOK_URL_CHARS_MAX,
)
from duopass.server.store.tables import Base

__all__ = ["WebhookAttempt", "WebhookEndpoint", "WebhookMessage"]


class WebhookEndpoint(Base):
    """A receiver's URL, the event types it takes, and its signing secret(s)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(WEBHOOK_URL_CHARS_MAX))
    description: Mapped[str] = mapped_column(String(WEBHOOK_DESCRIPTION_CHARS_MAX), default="")
    event_types: Mapped[str] = mapped_column(Text)
    """A JSON array of the event types sent to it, sorted."""
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary(128))
    """The signing secret sealed with `wrap.key` (`Keyring.seal`): the server signs with the
    secret itself (HMAC), so it cannot keep only a hash of it."""
    previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    """The secret before the last rotation, which also signs until `previous_until`."""
    previous_until: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(8), default="enabled")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    """The delivery worker sending to it now (one at a time: the order per endpoint)."""
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    partner_id: Mapped[int | None] = mapped_column(Integer)
    """The partner client that owns it (`partner_clients.id`), which then takes only events
    about that partner's own events; NULL: the card office's (every event)."""
    __table_args__ = (
        CheckConstraint("state IN ('enabled', 'disabled')", name="webhook_endpoint_state"),
        Index("webhook_endpoints_partner", "partner_id"),
    )


class WebhookMessage(Base):
    """One event for one endpoint: its body as sent (the same on every retry) and where its
    delivery stands. Ids follow commit order (written under the ledger's append lock), which is
    the order an endpoint receives its messages in."""

    __tablename__ = "webhook_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    webhook_id: Mapped[str] = mapped_column(String(40))
    """The `webhook-id` header: one event's, the same for every endpoint and every retry."""
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[int] = mapped_column(BigInteger)
    """When it may be tried (again), once it heads its endpoint's queue."""
    give_up_at: Mapped[int] = mapped_column(BigInteger)
    """A failed attempt from then on fails the message."""
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(WEBHOOK_ERROR_CHARS_MAX))
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name="webhook_message_state"
        ),
        UniqueConstraint("endpoint_id", "webhook_id", name="webhook_messages_once"),
        Index("webhook_messages_queue", "endpoint_id", "state", "id"),
    )


class WebhookAttempt(Base):
    """One try at delivering a message: the answer's status, or why there was none."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id"))
    attempted_at: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(WEBHOOK_ERROR_CHARS_MAX))
    __table_args__ = (Index("webhook_attempts_message", "message_id", "id"),)
