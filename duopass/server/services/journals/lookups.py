"""What one journal batch refers to, read in a few queries before any of its entries is settled:
the entries parsed and their codes decoded, the server's online verdicts for its seqs, the
credentials and holders its codes name, the counters of those credentials already accepted, and
the revocations and freezes that the bundles the entries name carried. Settling 500 entries then
costs a handful of reads, not thousands.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["CredentialRef", "HolderRef", "Item", "Refs", "Seen", "accounts_of", "read_items"]

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Code, FormatError, decode_code
from duopass.protocol.journal import Entry, parse_entry
from duopass.protocol.reasons import Reason
from duopass.server.domain import HoldTerms, holds
from duopass.server.services import counters
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.settings import Settings
from duopass.server.store.tables import CounterSeen, Credential, Holder, Scan, TrustChange
from duopass.server.store.tickets import Ticket


@dataclass(frozen=True)
class Item:
    """One entry of the batch as received: parsed (or not) and its code decoded (or why not)."""

    seq: int
    raw: bytes
    entry: Entry | None
    code: Code | None = None
    error: Reason | None = None


def read_items(entries: Iterable[tuple[int, bytes]]) -> list[Item]:
    """Parse each (seq, entry bytes) and decode its code; never raises."""
    items = []
    for seq, raw in entries:
        try:
            entry = parse_entry(raw)
        except MalformedError:
            entry = None
        if entry is None or entry.seq != seq:
            items.append(Item(seq, raw, None))
            continue
        try:
            items.append(Item(seq, raw, entry, decode_code(entry.code, known=VERIFIED)))
        except FormatError:
            items.append(Item(seq, raw, entry, error=Reason.FORMAT))
        except MalformedError:
            items.append(Item(seq, raw, entry, error=Reason.MALFORMED))
    return items


@dataclass
class Seen:
    """A counter accepted somewhere: the first acceptance settles against its hold (§4.4)."""

    ts: int
    terminal_id: str
    seq: int
    amount: int
    hold: int


class CredentialRef(NamedTuple):
    """What settling an entry reads of a stored credential (a row, not an ORM object: a batch
    reads them by the hundred)."""

    cti: bytes
    holder_id: int
    ticket_id: int | None
    kind: int
    uses: int
    txmax: int
    mark: int | None
    release_mark: int | None
    holds_released: bool
    offline: bool
    lost_at: int | None


class HolderRef(NamedTuple):
    """What settling an entry reads of a holder; an alert naming it loads the holder itself."""

    id: int
    account_id: int
    handle: str


def _ctis(settings: Settings, items: list[Item]) -> set[bytes]:
    return {
        item.code.credential.claims.cti
        for item in items
        if item.code is not None and item.code.credential.claims.iss == settings.issuer
    }


def accounts_of(session: Session, settings: Settings, items: list[Item]) -> list[int]:
    """The accounts of the holders the batch's codes name: to be locked before `Refs` reads what
    a concurrent payment, refresh or void may change (credentials, counters, verdicts)."""
    ctis = _ctis(settings, items)
    if not ctis:
        return []
    return list(
        session.scalars(
            select(Holder.account_id)
            .join(Credential, Credential.holder_id == Holder.id)
            .where(Credential.cti.in_(ctis))
        )
    )


class Refs:
    """Everything the batch's entries refer to, read once, under the locks of `accounts_of`."""

    def __init__(
        self, session: Session, settings: Settings, terminal_id: str, items: list[Item]
    ) -> None:
        seqs = [item.seq for item in items] or [0]
        ctis = _ctis(settings, items)
        self.scans: dict[int, dict[str, Any]] = {
            seq: json.loads(verdict)
            for seq, verdict in session.execute(
                select(Scan.seq, Scan.verdict).where(
                    Scan.terminal_id == terminal_id, Scan.seq.between(min(seqs), max(seqs))
                )
            )
        }
        self.credentials: dict[bytes, CredentialRef] = {}
        self.holders: dict[int, HolderRef] = {}
        if ctis:
            columns = [getattr(Credential, name) for name in CredentialRef._fields]
            for row in session.execute(select(*columns).where(Credential.cti.in_(ctis))):
                self.credentials[row[0]] = CredentialRef(*row)
        if holder_ids := {c.holder_id for c in self.credentials.values()}:
            read = select(Holder.id, Holder.account_id, Holder.handle)
            for row in session.execute(read.where(Holder.id.in_(holder_ids))):
                self.holders[row[0]] = HolderRef(*row)
        self.counters: dict[tuple[bytes, int], Seen] = {}
        self._terms: dict[bytes, HoldTerms] = {}
        self.revoked_at: dict[bytes, int] = {}
        self.freezes: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
        if not ctis:
            return
        for row in session.execute(
            select(
                CounterSeen.cti,
                CounterSeen.ctr,
                CounterSeen.ts,
                CounterSeen.terminal_id,
                CounterSeen.seq,
                CounterSeen.amount,
                CounterSeen.hold,
            ).where(CounterSeen.cti.in_(ctis), CounterSeen.ctr.in_(self._ctrs(items)))
        ):
            self.counters[row.cti, row.ctr] = Seen(
                row.ts, row.terminal_id, row.seq, row.amount, row.hold
            )
        for cti, seq in session.execute(
            select(TrustChange.cti, TrustChange.seq).where(
                TrustChange.cti.in_(ctis), TrustChange.change == "revoke"
            )
        ):
            assert cti is not None
            self.revoked_at[cti] = min(seq, self.revoked_at.get(cti, seq))
        subs = {self.holders[c.holder_id].handle for c in self.credentials.values()}
        ticket_ids = {c.ticket_id for c in self.credentials.values() if c.ticket_id is not None}
        if ticket_ids:  # a ticket's `sub` is its own id; a freeze of its holder names it too
            subs |= set(session.scalars(select(Ticket.sub).where(Ticket.id.in_(ticket_ids))))
        for sub, seq, change in session.execute(
            select(TrustChange.sub, TrustChange.seq, TrustChange.change).where(
                TrustChange.sub.in_(subs), TrustChange.change.in_(("freeze", "unfreeze"))
            )
        ):
            assert sub is not None
            self.freezes[sub].append((seq, change))

    def _ctrs(self, items: list[Item]) -> set[int]:
        """The counters the batch can ask about: its codes' and the online verdicts' (not every
        counter a long-used credential ever had)."""
        ctrs = {answer["ctr"] for answer in self.scans.values() if answer.get("ctr") is not None}
        ctrs.update(item.code.dynamic.ctr for item in items if item.code and item.code.dynamic)
        return ctrs

    def revoked_by_bundle(self, cti: bytes, sub: str, bundle_seq: int) -> bool:
        """Whether the bundle version a terminal held had revoked the credential or frozen its
        subject (§4.5)."""
        if self.revoked_at.get(cti, bundle_seq + 1) <= bundle_seq:
            return True
        changes = [(seq, change) for seq, change in self.freezes.get(sub, ()) if seq <= bundle_seq]
        return bool(changes) and max(changes)[1] == "freeze"

    def is_held(self, credential: CredentialRef, ctr: int) -> bool:
        """Whether counter `ctr` still holds `txmax`, as this batch has seen it so far."""
        cti = credential.cti
        if (cti, ctr) in self.counters:
            return False
        terms = self._terms.get(cti)
        if terms is None:  # a credential's terms do not change under the batch's locks
            terms = self._terms[cti] = counters.terms(credential)
        return holds(terms, ctr)
