"""The tables of decisions by policy: every policy text ever used (by its SHA-256), each
decision with the inputs it was made on (beside its ledger leaf), reissue requests and the
one-time codes of their step-ups."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from duopass.server.store.tables import Base

__all__ = ["Decision", "PolicyVersion", "ReissueRequest", "StepUpCode"]


class PolicyVersion(Base):
    """A policy text as loaded, kept by its hash so every version ever used stays replayable.
    The active one has the latest `activated_at`."""

    __tablename__ = "policy_versions"
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    first_loaded_at: Mapped[int] = mapped_column(BigInteger)
    activated_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Decision(Base):
    """A decision by policy (or a person at review), recorded as a ledger leaf that names the
    policy's version and hash, the inputs' keyed digest, the outcome and the rule. The inputs
    are kept here so that `duopass policy replay` can re-run it; erasing a holder's personal
    data empties `inputs` and leaves the leaf whole."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ledger_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    action: Mapped[str] = mapped_column(String(12))
    """reissue, transfer, lost (a reissue of a loss report), review (a person's) or counter
    (a staff member vouching in person at the counter, `services.lost.at_counter`)."""
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    request_id: Mapped[str | None] = mapped_column(String(32), index=True)
    policy_sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    outcome: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[str | None] = mapped_column(Text)
    """The input document as JSON; NULL once erased."""
    inputs_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    decided_at: Mapped[int] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(Integer)


class ReissueRequest(Base):
    """A holder's request to move a ticket (or, for a loss report, every credential) to a new
    device, or a ticket to another holder: decided, stepped up, reviewed, then confirmed."""

    __tablename__ = "reissue_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(12))
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    device_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    to_holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"))
    """A transfer's new holder."""
    state: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(64))
    factors: Mapped[str] = mapped_column(Text, default="[]")
    """The step-up factors the policy accepts (JSON list); one of them is enough."""
    factor_done: Mapped[str | None] = mapped_column(String(12))
    policy_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    old_cti: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    new_cti: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    partner_id: Mapped[int | None] = mapped_column(Integer)
    """The partner client that asked on the holder's behalf (None: the holder or staff)."""
    __table_args__ = (
        Index("reissue_requests_partner", "partner_id"),
        CheckConstraint(
            "state IN ('step_up', 'review', 'ready', 'done', 'denied', 'expired')",
            name="reissue_state",
        ),
        Index("reissue_requests_state", "state"),
    )


class StepUpCode(Base):
    """A one-time code sent for a step-up (stored as its SHA-256): it expires, is accepted
    once, and what it is for (`purpose`, e.g. a reissue request's id) allows a few attempts."""

    __tablename__ = "step_up_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    factor: Mapped[str] = mapped_column(String(12))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sent_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
