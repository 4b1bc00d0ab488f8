"""The tables of passkeys (WebAuthn): a holder's registered credentials, and the challenges the
server handed out for a ceremony (registration, sign-in, step-up), each answered once."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["CHALLENGE_KINDS", "Passkey", "PasskeyChallenge"]

CHALLENGE_KINDS = ("register", "sign_in", "step_up")


class Passkey(Base):
    """A holder's passkey: the credential id and COSE public key its authenticator made, the
    signature counter last seen (a clone's goes backwards) and the transports it reported."""

    __tablename__ = "passkeys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64))
    """The WebAuthn user id the holder's passkeys carry: random, the same for all of theirs."""
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(BigInteger)
    transports: Mapped[str] = mapped_column(String(200))
    """A JSON list, as the browser reported them (`internal`, `hybrid`, `usb` ...)."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class PasskeyChallenge(Base):
    """A challenge handed out for one ceremony, stored as its SHA-256: for whom (`holder_id`;
    None at sign-in, where the passkey says who), what for (`purpose`: a step-up's request id),
    and the relying party id the options named. Answering deletes it: each is used once."""

    __tablename__ = "passkey_challenges"
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"))
    purpose: Mapped[str | None] = mapped_column(String(64))
    rp_id: Mapped[str] = mapped_column(String(253))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    network: Mapped[str | None] = mapped_column(String(64), index=True)
    """The source network (/24, /64) a sign-in challenge went to: a cap a network (0025)."""
    __table_args__ = (
        CheckConstraint(
            "kind IN ('register', 'sign_in', 'step_up')", name="passkey_challenge_kind"
        ),
    )
