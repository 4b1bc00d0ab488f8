"""The tables of the risk engine's streaming features (`duopass.risk.features`): bucket counts
per key, signal and window, and the pairs distinct counts are read from. Rows expire with their
window (maintenance deletes them), so both stay bounded by the traffic of one day."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["RiskBucket", "RiskPair"]


class RiskBucket(Base):
    """How many times a signal touched a key in one bucket of one window (`risk.windows`)."""

    __tablename__ = "risk_buckets"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    """`kind:value` (`risk.features.Key`)."""
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    """The window: 60, 3600 or 86400."""
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """The bucket's start (Unix seconds); the row expires at `start + span_s` (indexed: the
    reads' plans cannot take that index for their primary key's)."""
    events: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[int] = mapped_column(BigInteger)
    """The latest event counted in it: last-seen reads the day window's."""
    __table_args__ = (Index("risk_buckets_expiry", text("(start + span_s)")),)


class RiskPair(Base):
    """A key seen with another on a signal, and when last: distinct counts count these."""

    __tablename__ = "risk_pairs"
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    """The kind of `other`: what a distinct count counts."""
    other: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_at: Mapped[int] = mapped_column(BigInteger, index=True)
