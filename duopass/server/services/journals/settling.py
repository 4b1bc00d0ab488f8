"""One batch's settlement in progress: the unit it runs in, the terminal (its row locked), what
the entries refer to (`lookups.Refs`), their device signatures verified ahead (`signatures`),
and what the batch creates, written together at the end (`batch.write`): money movements,
counters, entry rows and ledger leaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from duopass.ledger.events import EventType
from duopass.protocol.journal import Entry
from duopass.protocol.trust import Policy
from duopass.risk import AlertKind
from duopass.server import domain
from duopass.server.domain import Outcome
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.services import accounts, alerts
from duopass.server.services.journals.lookups import HolderRef, Refs, Seen
from duopass.server.services.journals.recheck import Recheck
from duopass.server.services.journals.signatures import DeviceSignatures
from duopass.server.store.tables import Account, Holder, Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["RiskSeen", "Settled", "Settling"]


class Settled(NamedTuple):
    """How one entry settled: its outcome, why it is held (if it is), its money movement."""

    outcome: Outcome
    reason: str | None = None
    transaction: int | None = None
    """A movement number of the batch (`Settling.books`) until the batch is written."""


@dataclass
class RiskSeen:
    """What the batch told the risk engine's journal point (`risk_point`), as it settled."""

    accepted: list[tuple[int, int]] = field(default_factory=list)
    """(holder id, scan time) of each offline acceptance booked."""
    misreported: list[int] = field(default_factory=list)
    """Scan times of entries whose amount was not what the server approved or allowed."""


@dataclass
class Settling:
    unit: Unit
    terminal: Terminal
    refs: Refs
    books: accounts.Movements
    signatures: DeviceSignatures
    counters: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    leaves: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)
    """(event type, body): a body's "transaction" is a movement number until written."""
    webhooks: list[tuple[WebhookEvent, dict[str, Any]]] = field(default_factory=list)
    """Webhook events, queued once the leaves are written (under the ledger's lock, which the
    batch takes only then)."""
    risk_seen: RiskSeen = field(default_factory=RiskSeen)
    terminal_id: str = field(init=False)
    currency: str | None = field(init=False)
    merchant_account_id: int | None = field(init=False)
    """The terminal's, read once a batch (not through the ORM at every entry)."""
    recheck: Recheck = field(init=False)
    policy: Policy = field(init=False)
    """The issuer's, read once a batch (the settings do not change under a unit)."""

    def __post_init__(self) -> None:
        self.terminal_id, self.currency = self.terminal.id, self.terminal.currency
        self.merchant_account_id = self.terminal.merchant_account_id
        self.recheck = Recheck(self.unit, self.terminal)
        self.policy = self.unit.settings.policy

    @property
    def merchant(self) -> int:
        assert self.merchant_account_id is not None, "a till has a merchant"
        return self.merchant_account_id

    def leaf(self, event_type: EventType, body: dict[str, Any]) -> None:
        self.leaves.append((event_type, body))

    def alert(
        self,
        kind: AlertKind,
        evidence: dict[str, Any],
        *,
        seq: int | None = None,
        pending: int = 0,
        holder: HolderRef | None = None,
        cti: bytes | None = None,
    ) -> None:
        alerts.raise_alert(
            self.unit,
            kind,
            evidence=evidence,
            holder=None if holder is None else self.unit.session.get(Holder, holder.id),
            cti=cti,
            terminal_id=self.terminal.id,
            seq=seq,
            pending=pending,
            currency=self.terminal.currency if pending else None,
        )

    def seen(
        self, cti: bytes, ctr: int, ts: int, entry: Entry, *, hold: int, txn: int | None
    ) -> None:
        """The first acceptance of a counter: held against its hold, written with the batch."""
        amount = entry.amount or 0
        self.refs.counters[cti, ctr] = Seen(ts, self.terminal_id, entry.seq, amount, hold)
        self.counters.append(
            {
                "cti": cti,
                "ctr": ctr,
                "ts": ts,
                "terminal_id": self.terminal_id,
                "seq": entry.seq,
                "amount": amount,
                "hold": hold,
                "transaction_id": txn,
            }
        )

    def free_funds(self, holder: HolderRef) -> int:
        """The holder's free funds now: as stored, plus what this batch has not written yet."""
        stored = self.unit.session.get(Account, holder.account_id, populate_existing=True)
        assert stored is not None
        balance, held = self.books.unwritten(stored.id)
        return domain.free_funds(
            balance=stored.balance + balance, overdraft=stored.overdraft, held=stored.held + held
        )

    def charged(self, entry: Entry) -> int:
        """What the entry charges the till: an acceptance of a payment in the till's currency."""
        charges = entry.charges and entry.currency == self.currency
        return (entry.amount or 0) if charges else 0
