"""The card office's bounds on purse limits (one row): the most a holder may set, the defaults
for holders who set nothing, and the meal periods counts are kept in."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["BOUNDS_ID", "PurseBounds"]

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
