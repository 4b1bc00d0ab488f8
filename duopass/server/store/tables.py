"""The server's tables (SQLAlchemy 2). Money is integers in minor units; every movement is a
transaction whose postings sum to zero. Table models are never request or response models."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    """A book of the closed loop: holder, merchant, top-up clearing, pending or loss."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    overdraft: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of the holds of unseen counters of live purse credentials (PROTOCOL §4.1)."""
    unconfirmed_released: Mapped[int] = mapped_column(BigInteger, default=0)
    """Holds released on a wallet's word at refresh, not yet confirmed by journals (§4.2)."""
    __table_args__ = (
        CheckConstraint("overdraft >= 0 AND held >= 0", name="account_limits"),
        CheckConstraint(
            "kind IN ('holder', 'merchant', 'topup', 'pending', 'loss')", name="account_kind"
        ),
    )


class Transaction(Base):
    """One money movement: its postings sum to zero. `request_id` makes retries idempotent."""

    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    request_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """What `request_id` was used for (services/idempotency.py): set with every request id."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    """When the server booked it (Unix seconds)."""
    occurred_at: Mapped[int] = mapped_column(BigInteger)
    """When it happened on the device (the scan time), shown to holders."""
    business_date: Mapped[str] = mapped_column(String(10), index=True)
    """The settlement day it is booked on, in the issuer's time zone (YYYY-MM-DD)."""
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (Index("transactions_created_at", "created_at"),)


class Posting(Base):
    __tablename__ = "postings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))  # indexed below
    amount: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("postings_account_transaction", "account_id", "transaction_id"),)


class Holder(Base):
    """A card holder. `handle` is the opaque `sub` in codes; the student number is only a digest."""

    __tablename__ = "holders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    person_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending: Mapped[str | None] = mapped_column(String(64))
    """A secret `/v1/me/totp/new` handed out, waiting for its first code (only this one can be
    turned on: the holder never picks the secret)."""
    totp_pending_at: Mapped[int | None] = mapped_column(BigInteger)
    totp_step: Mapped[int | None] = mapped_column(BigInteger)
    """The last TOTP time step accepted: a one-time code is accepted once (RFC 6238 §5.2)."""
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    offline_suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_daily: Mapped[int | None] = mapped_column(BigInteger)
    """The holder's own daily total (minor units; None: the office's default), purse limits."""
    limit_meal: Mapped[int | None] = mapped_column(Integer)
    """The holder's own count of payments per meal period (None: the office's default)."""
    confirm_above: Mapped[int | None] = mapped_column(BigInteger)
    """Online payments above this amount need the PIN (None: the office's default)."""
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    """The payment PIN, hashed as passwords are (None: no PIN set)."""
    created_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the holder was created (Unix seconds; None for one created before migration 0014):
    the risk engine's `account.age_s`."""


class Device(Base):
    """A wallet's device key, enrolled with proof of possession."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    enrolled_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class Credential(Base):
    """An issued L1. A refresh supersedes it (payable online up to `mark` until `exp`)."""

    __tablename__ = "credentials"
    cti: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    kind: Mapped[int] = mapped_column(Integer)
    gen: Mapped[int] = mapped_column(Integer, default=0)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    txmax: Mapped[int] = mapped_column(BigInteger, default=0)
    iat: Mapped[int] = mapped_column(BigInteger)
    exp: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), default="live")
    """live, superseded (by a refresh) or revoked (loss report, reissue, suspension)."""
    mark: Mapped[int | None] = mapped_column(Integer)
    """Highest counter payable online after a refresh (the wallet's mark, §4.2)."""
    release_mark: Mapped[int | None] = mapped_column(Integer)
    """Holds of counters above this were released at refresh (at most the overdraft's worth)."""
    holds_released: Mapped[bool] = mapped_column(Boolean, default=False)
    """All remaining holds released (expiry sweep); no counter of it is held any more."""
    l1: Mapped[bytes] = mapped_column(LargeBinary)
    request_id: Mapped[str | None] = mapped_column(String(64))
    """The wallet's sync request id, unique per holder: a retry returns this credential and
    changes nothing."""
    request_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """The sync's device and mark (services/idempotency.py); NULL on rows from before 0005."""
    offline: Mapped[bool] = mapped_column(Boolean, default=True)
    """False: no funds to hold, so listed as revoked in bundles and payable online only."""
    issued_day: Mapped[str] = mapped_column(String(10), default="")
    refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    """Issued by a refresh (it superseded a live credential): counted against the daily limit."""
    released: Mapped[int] = mapped_column(BigInteger, default=0)
    """Holds released at refresh on the wallet's word, confirmed when the credential is past
    its late window (§4.2: at most the overdraft unconfirmed at once)."""
    lost_at: Mapped[int | None] = mapped_column(BigInteger)
    """When a loss report revoked it: later acceptances cost the holder at most the holds (§6)."""
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    """A ticket's credential (kind 3): the ticket whose `sub` it carries (`store.tickets`)."""
    __table_args__ = (
        CheckConstraint("state IN ('live', 'superseded', 'revoked')", name="credential_state"),
        Index("credentials_live", "holder_id", "state"),
        UniqueConstraint("holder_id", "request_id", name="credential_request_once"),
    )


class CounterSeen(Base):
    """(cti, ctr) accepted anywhere in the system: unique system-wide (PROTOCOL §3)."""

    __tablename__ = "counters_seen"
    cti: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    ctr: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Below 2^32 (an L2 counter): wider than a 32-bit INTEGER."""
    ts: Mapped[int] = mapped_column(BigInteger)
    terminal_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """What the acceptance charged (0 for entries and identity checks)."""
    hold: Mapped[int] = mapped_column(BigInteger, default=0)
    """The hold it released: a void returns exactly this (§5.1)."""
    transaction_id: Mapped[int | None] = mapped_column(Integer)


class SigningKeyRow(Base):
    """A daily signing key; its seed is sealed with the wrapping key from the data directory."""

    __tablename__ = "signing_keys"
    kid: Mapped[bytes] = mapped_column(LargeBinary(8), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_seed: Mapped[bytes] = mapped_column(LargeBinary)
    nbf: Mapped[int] = mapped_column(BigInteger, index=True)
    exp: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)  # compromised: signing_keys.revoke


class Terminal(Base):
    """A till or gate. Enrolled with a one-time code; then every call proves its key."""

    __tablename__ = "terminals"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue: Mapped[str | None] = mapped_column(String(64))
    merchant_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str | None] = mapped_column(String(3))
    event: Mapped[str | None] = mapped_column(String(64))
    enrol_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """SHA-256 of the one-time code; kept once spent, so that the enrolment it made can be
    retried with the same key (a lost answer) and with no other."""
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(12), default="created")
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    """The server holds every journal entry of this terminal up to here (§5.2)."""
    bundle_seq: Mapped[int | None] = mapped_column(BigInteger)
    bundle_at: Mapped[int | None] = mapped_column(BigInteger)
    """The trust bundle version last sent to it, and when (the bundle route writes both)."""
    heartbeat_at: Mapped[int | None] = mapped_column(BigInteger)
    clock_offset_s: Mapped[int | None] = mapped_column(BigInteger)
    """Its clock minus the server's, from its last heartbeat or bundle request's signed time."""
    held_bundle_seq: Mapped[int | None] = mapped_column(BigInteger)
    reported_backlog: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """The bundle version it holds and its journal entries not yet acknowledged, as its last
    heartbeat reported them."""
    backlog_seen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    backlog_rises: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fleet_alerts: Mapped[str] = mapped_column(String(120), default="", server_default="")
    fleet_swept_at: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """What the fleet sweep keeps (services/fleet_watch.py): the backlog it last saw, the sweeps
    in a row it rose at, the fleet alert kinds in episode (space-separated), when it looked."""
    __table_args__ = (
        CheckConstraint("state IN ('created', 'enrolled', 'revoked')", name="terminal_state"),
        Index("terminals_fleet_swept", "fleet_swept_at"),
    )


class Scan(Base):
    """One verdict per (terminal_id, seq): a retry returns it and changes nothing (§5.1)."""

    __tablename__ = "scans"
    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    verdict: Mapped[str] = mapped_column(Text)
    """The JSON answer sent, byte for byte."""
    request_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """The scan's code, mode and amount (services/idempotency.py): a retry must be the same scan.
    NULL on rows from before 0005."""
    provisional: Mapped[bool] = mapped_column(Boolean, default=True)
    """Until the terminal's journal entry confirms it (§5.1)."""
    __table_args__ = (Index("scans_received_at", "received_at"),)


class JournalBatch(Base):
    """A terminal's signed batch, its exact bytes kept as evidence. Append-only."""

    __tablename__ = "journal_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(64))
    first: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    prev: Mapped[bytes] = mapped_column(LargeBinary(32))
    received_at: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (
        UniqueConstraint("terminal_id", "digest", name="journal_batch_once"),
        Index("journal_batches_end", "terminal_id", "last"),
    )


class JournalEntry(Base):
    """The entry first received for (terminal_id, seq), byte for byte, and how it settled.
    Append-only: a different entry for the same seq later is a conflict, never a change."""

    __tablename__ = "journal_entries"
    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    batch_id: Mapped[int] = mapped_column(ForeignKey("journal_batches.id"))
    received_at: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))
    """booked, duplicate (a counter accepted before), confirmed / voided (an online verdict),
    recorded (nothing to book), pending (could not be settled: see `reason`)."""
    reason: Mapped[str | None] = mapped_column(String(32))
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("journal_entries_transaction", "transaction_id"),
        Index("journal_entries_received_at", "received_at"),
    )


class Alert(Base):
    """Evidence for a person to review (§4.5, §5): what happened, to whom, and the amount
    waiting in the pending account, if any. Review freezes, moves the amount, or dismisses."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[int] = mapped_column(BigInteger)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"))
    cti: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    """Minor units booked to the pending account for this alert and not yet moved."""
    currency: Mapped[str | None] = mapped_column(String(3))
    evidence: Mapped[str] = mapped_column(Text)
    """JSON: the entries, counters, times and bundle versions that raised it."""
    state: Mapped[str] = mapped_column(String(8), default="open")
    resolution: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(200))
    resolved_by: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    grouping: Mapped[str | None] = mapped_column(String(64))
    """A risk decision's alert: its guard, point and subject (`risk_records`); one open each."""
    __table_args__ = (
        CheckConstraint("state IN ('open', 'resolved')", name="alert_state"),
        CheckConstraint("pending >= 0", name="alert_pending"),
        Index("alerts_state", "state", "id"),
        Index(
            "alerts_open_grouping",
            "grouping",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )


class Settlement(Base):
    """A closed settlement day: its totals as reported, and the ledger entry that records them."""

    __tablename__ = "settlements"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    closed_at: Mapped[int] = mapped_column(BigInteger)
    closed_by: Mapped[int] = mapped_column(Integer)
    report_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    """SHA-256 of the day's CSV report as closed."""
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class SettlementPreparation(Base):
    """A day's closing as prepared by one admin (maker), awaiting another's approval (checker)."""

    __tablename__ = "settlement_preparations"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    prepared_at: Mapped[int] = mapped_column(BigInteger)
    prepared_by: Mapped[int] = mapped_column(Integer)
    report_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    """SHA-256 of the day's CSV report as prepared; the approval closes only that report."""


class TrustChange(Base):
    """A revocation or freeze (or its removal), with the bundle version that first carries it."""

    __tablename__ = "trust_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    change: Mapped[str] = mapped_column(String(16))  # revoke, freeze, unfreeze, key, unkey
    cti: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    sub: Mapped[str | None] = mapped_column(String(64))
    kid: Mapped[bytes | None] = mapped_column(LargeBinary(8))
    until: Mapped[int | None] = mapped_column(BigInteger)
    """A revocation can be dropped from bundles after the credential's exp + skew."""
    __table_args__ = (
        Index("trust_changes_cti", "cti"),
        Index("trust_changes_sub", "sub"),
    )


class LedgerLeaf(Base):
    """An RFC 9162 leaf: the exact bytes hashed. Append-only (triggers refuse change)."""

    __tablename__ = "ledger_leaves"
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerNode(Base):
    """Hash of the perfect subtree at (level, index): O(log n) proofs read a few of these."""

    __tablename__ = "ledger_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """Every signed checkpoint, so none is ever signed inconsistent with an earlier one."""

    __tablename__ = "ledger_checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    signed_at: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[bytes] = mapped_column(LargeBinary)


class Meta(Base):
    """Small named values: the latest bundle seq, the ledger size (its row is the append lock)."""

    __tablename__ = "meta"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
