"""The ledger key's rotations (`services.ledger_key`, `services.ledger_rotation`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["LedgerKey"]


class LedgerKey(Base):
    """Each rotation of the ledger key: the `key_rotation` leaf at `leaf`, the key it hands the
    log to and the one it retires. The latest row names the key that signs; none, the key the
    server was created with."""

    __tablename__ = "ledger_keys"
    leaf: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    vkey: Mapped[str] = mapped_column(String(256), unique=True)
    previous: Mapped[str] = mapped_column(String(256))
    rotated_at: Mapped[int] = mapped_column(BigInteger)
