"""Disputes (PROTOCOL §5.3): a holder disputes a payment within 30 days of its booking; staff
uphold it (the amount charged back to the merchant, `services.disputes`) or reject it."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["DISPUTE_STATES", "Dispute"]

DISPUTE_STATES = ("open", "upheld", "rejected")


class Dispute(Base):
    """One dispute of one payment (a payment is disputed at most once, whatever the outcome)."""

    __tablename__ = "disputes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), unique=True)
    """The payment disputed: the entry id the holder's history shows."""
    merchant_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Minor units the payment cost the holder (after any amend): what an uphold charges back."""
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(8), default="open")
    opened_at: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(500))
    chargeback_transaction_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        CheckConstraint("state IN ('open', 'upheld', 'rejected')", name="dispute_state"),
        CheckConstraint("amount > 0", name="dispute_amount"),
        Index("disputes_holder", "holder_id", "id"),
        Index("disputes_state", "state", "id"),
    )
