"""The tables of personal data, apart from the money and ledger rows (`tables`): erasing a
holder's data deletes their `holder_people` row and leaves the books and the ledger whole."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["Erasure", "HolderPerson"]


class HolderPerson(Base):
    """What the card office knows of a holder. `person_key` salts the keyed digest of the
    number in the holder's `holder_create` leaf: once it is deleted, nobody, the server
    included, can tell whose number that digest was."""

    __tablename__ = "holder_people"
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(32))
    """The student or staff number: one holder each."""
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    person_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    __table_args__ = (UniqueConstraint("number", name="holder_people_number_key"),)


class Erasure(Base):
    """A holder's personal data erased: who and when, and nothing of the person."""

    __tablename__ = "erasures"
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), primary_key=True)
    erased_at: Mapped[int] = mapped_column(BigInteger)
    erased_by: Mapped[int] = mapped_column(Integer)
    """The staff member's id."""
    ledger_index: Mapped[int] = mapped_column(BigInteger)
    """The `holder_erase` leaf that records it."""
