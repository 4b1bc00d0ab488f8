"""The keys of each risk decision, one row each (`account:holder:7`, `network:10.0.0.0/24`), with
the decision's time and score: what the card office's view ranks keys by and filters decisions
on (`GET /v1/admin/risk`). Written with the decision, deleted with it at maintenance."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.risk import KEY_COLUMN_CHARS
from duopass.server.store.tables import Base

__all__ = ["RiskDecisionKey"]


class RiskDecisionKey(Base):
    """One key a decision (`RiskDecision`) read, with its time and score copied."""

    __tablename__ = "risk_decision_keys"
    decision_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(KEY_COLUMN_CHARS), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        Index("risk_decision_keys_at", "at"),
        Index("risk_decision_keys_key", "key", "decision_id"),
    )
