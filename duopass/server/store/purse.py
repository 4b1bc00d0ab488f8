"""The card office's bounds on purse limits (one row): the most a holder may set, the defaults
for holders who set nothing, and the meal periods counts are kept in; and the payments above a
holder's PIN amount waiting for the holder to confirm them in their wallet."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["BOUNDS_ID", "CONFIRMATION_STATES", "PaymentConfirmation", "PurseBounds"]

BOUNDS_ID = 1
"""The one row's id."""


class PurseBounds(Base):
    """The office's bounds; a None bound is no bound, a None default is no limit."""

    __tablename__ = "purse_bounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    daily_max: Mapped[int | None] = mapped_column(BigInteger)
    daily_default: Mapped[int | None] = mapped_column(BigInteger)
    meal_max: Mapped[int | None] = mapped_column(Integer)
    meal_default: Mapped[int | None] = mapped_column(Integer)
    confirm_max: Mapped[int | None] = mapped_column(BigInteger)
    """The largest amount a holder may pay online without the PIN."""
    confirm_default: Mapped[int | None] = mapped_column(BigInteger)
    meals: Mapped[str] = mapped_column(Text)
    """The meal periods, JSON: `[{"name", "start", "end"}]`, minutes after local midnight."""
    updated_at: Mapped[int] = mapped_column(BigInteger)


CONFIRMATION_STATES = ("pending", "approved", "declined", "used")


class PaymentConfirmation(Base):
    """An online payment above the holder's PIN amount that came without a PIN: the holder
    approves it in their wallet with the PIN (or declines it), and the till's retry of the same
    seq then passes, once (`services.confirmations`). Bound to the exact terminal, seq, amount
    and credential; nothing is held or booked until the retry."""

    __tablename__ = "payment_confirmations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Random, unpadded base64url: what the till and the wallet name it by."""
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"))
    cti: Mapped[bytes] = mapped_column(LargeBinary(16))
    terminal_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    venue: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the holder approved or declined it, or the retry used it."""
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'approved', 'declined', 'used')", name="confirmation_state"
        ),
        Index("payment_confirmations_scan", "terminal_id", "seq"),
        Index("payment_confirmations_holder", "holder_id", "state"),
    )
