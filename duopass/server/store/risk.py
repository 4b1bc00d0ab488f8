"""The tables of the risk engine's streaming features (`duopass.risk.features`): bucket counts
per key, signal and window, and the pairs distinct counts are read from. Rows expire with their
window (maintenance deletes them), so both stay bounded by the traffic of one day. Its decisions;
and the baselines of holders' and terminals' journal entries (`duopass.risk.baselines`), one
bounded row per holder or terminal."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = [
    "KEY_COLUMN_CHARS",
    "JournalBaseline",
    "RiskBucket",
    "RiskDecision",
    "RiskPair",
    "holder_key",
    "terminal_key",
    "venue_key",
]

KEY_COLUMN_CHARS = 136
"""A key's column: `kind:value`, the longest kind (`terminal`) and its colon (9) and a value of
at most `risk.features.KEY_CHARS_MAX` (120), with room to spare."""


class RiskBucket(Base):
    """How many times a signal touched a key in one bucket of one window (`risk.windows`)."""

    __tablename__ = "risk_buckets"
    key: Mapped[str] = mapped_column(String(KEY_COLUMN_CHARS), primary_key=True)
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
    subject: Mapped[str] = mapped_column(String(KEY_COLUMN_CHARS), primary_key=True)
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    """The kind of `other`: what a distinct count counts."""
    other: Mapped[str] = mapped_column(String(KEY_COLUMN_CHARS), primary_key=True)
    last_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RiskDecision(Base):
    """One decision of the risk engine (`duopass.risk.points`), with what it read: the point,
    the subject's keys, the policy's version and SHA-256, the guard that acted, the score, the
    signals that held, each feature read with its value, and the action. Written in the unit of
    the request it judged; maintenance deletes those older than `risk_decision_retention_s`."""

    __tablename__ = "risk_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    point: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(Text)
    """JSON: the keys read (`account:holder:7`, `network:10.0.0.0/24`, `address:...`)."""
    policy_version: Mapped[str] = mapped_column(String(64))
    policy_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    guard: Mapped[str | None] = mapped_column(String(64))
    """The guard that acted; NULL when none matched (allowed)."""
    score: Mapped[int] = mapped_column(Integer)
    signals: Mapped[str] = mapped_column(Text)
    """JSON: the names of the signals that held."""
    features: Mapped[str] = mapped_column(Text)
    """JSON: `Features.explained()`: each feature's name, key and value."""
    action: Mapped[str] = mapped_column(String(24), index=True)
    released_by: Mapped[int | None] = mapped_column(Integer)
    """A review a person released: the alert whose release let this request through
    (`risk_records`), the action recorded being the policy's."""


class JournalBaseline(Base):
    """One holder's or terminal's habits over its journal entries (`risk.baselines.Baseline`),
    updated with each journal batch (`services/anomalies.py`); a few hundred bytes, one row per
    key whatever its traffic."""

    __tablename__ = "journal_baselines"
    key: Mapped[str] = mapped_column(String(KEY_COLUMN_CHARS), primary_key=True)
    """`holder:<id>`, `terminal:<id>` or `venue:<id>`."""
    state: Mapped[str] = mapped_column(Text)
    """JSON: `Baseline.state()` (a venue's: `VenuePeers.state()`)."""
    entries: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


def holder_key(holder_id: int) -> str:
    """A holder's `JournalBaseline.key` (erasure deletes the row: habits are personal data)."""
    return f"holder:{holder_id}"


def terminal_key(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


def venue_key(venue: str) -> str:
    """A venue's row: its tills' latest paying entries (`duopass.risk.venue_peers`)."""
    return f"venue:{venue}"
