"""Partners' OAuth 2.0 clients (client credentials, RFC 6749 §4.4): who they are, the scopes
they were granted and their hashed secrets (a previous one during a rotation's overlap). Their
calls are counted by the risk engine's shared counters (`partners.guard`), not here."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.limits import PARTNER_NAME_CHARS_MAX
from duopass.server.store.tables import Base

__all__ = ["PartnerClient"]


class PartnerClient(Base):
    """A partner platform's client: its public `client_id`, its scopes and its secret's keyed
    digest (`partners.clients.secret_digest`), never the secret itself."""

    __tablename__ = "partner_clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(PARTNER_NAME_CHARS_MAX))
    scopes: Mapped[str] = mapped_column(String(200))
    """The scopes granted, space-separated and sorted (RFC 6749 §3.3's form)."""
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    previous_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """The secret before the last rotation, which still authenticates until `previous_until`."""
    previous_until: Mapped[int | None] = mapped_column(BigInteger)
    calls_per_minute: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint("state IN ('active', 'revoked')", name="partner_client_state"),
    )
