"""The tables of signing in: staff, sessions (bearer tokens), failed-proof throttles, the
device challenges already answered and the OpenID Connect subjects bound to accounts. The
holders they sign in are in `tables`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["AuthThrottle", "OidcBinding", "Staff", "Token", "UsedChallenge"]


class Staff(Base):
    """A card-office user: `admin` (everything) or `operator` (top-ups, reviews, no settings)."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(8))
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)  # `duopass staff disable`
    __table_args__ = (CheckConstraint("role IN ('admin', 'operator')", name="staff_role"),)


class Token(Base):
    """A session: a bearer token (stored as its SHA-256) for a signed-in holder or staff member.
    Ending a session deletes its row."""

    __tablename__ = "tokens"
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    principal_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=0)
    method: Mapped[str] = mapped_column(String(8), default="password")
    """password (with the one-time code where one is on) or device (a signed challenge)."""
    auth_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the person last proved their password in this session: a step-up within minutes
    counts as recent (RFC 9470 max_age). None for device sign-ins."""
    device_id: Mapped[int | None] = mapped_column(Integer)
    """The device whose key signed this session in."""
    __table_args__ = (Index("tokens_principal", "principal_id", "role"),)


class AuthThrottle(Base):
    """Failed sign-in proofs counted per account, network or enrolment code (keys are keyed
    digests: no login or address is stored), shared by every server process and restart."""

    __tablename__ = "auth_throttles"
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))
    """account, network or enrolment: which limit applies."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[int] = mapped_column(BigInteger)
    blocked_until: Mapped[int] = mapped_column(BigInteger, default=0)


class UsedChallenge(Base):
    """A device sign-in challenge already answered: each is accepted once, until it expires."""

    __tablename__ = "used_challenges"
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class OidcBinding(Base):
    """The university provider's account (`issuer`, `subject`: the ID token's `iss` and `sub`)
    bound to a staff member or a holder (`kind`, `principal_id`) at the first sign-in through
    it (services.oidc_binding): one each way per kind, until an admin unbinds it (0027)."""

    __tablename__ = "oidc_bindings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    principal_id: Mapped[int] = mapped_column(Integer)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    bound_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("kind", "principal_id", name="oidc_bindings_account"),
        UniqueConstraint("kind", "issuer", "subject", name="oidc_bindings_subject"),
        CheckConstraint("kind IN ('staff', 'holder')", name="oidc_binding_kind"),
    )
