"""What one journal batch refers to, read in a few queries before any of its entries is settled:
the entries parsed and their codes decoded, the server's online verdicts for its seqs, the
credentials and holders its codes name, the counters of those credentials already accepted, and
the revocations and freezes that the bundles the entries name carried. Settling 500 entries then
costs a handful of reads, not thousands.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

__all__ = [
    "CredentialRef",
    "HolderRef",
    "Item",
    "Refs",
    "Seen",
    "accounts_of",
    "new_item",
    "read_items",
]

from sqlalchemy.orm import Session

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Code, FormatError, decode_code
from duopass.protocol.journal import Entry, parse_entry
from duopass.protocol.reasons import Reason
from duopass.server.domain import HoldTerms, holds
from duopass.server.services import counters
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.settings import Settings
from duopass.server.store import sql


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
            items.append(new_item(seq, raw, None))
            continue
        try:
            items.append(new_item(seq, raw, entry, decode_code(entry.code, known=VERIFIED)))
        except FormatError:
            items.append(new_item(seq, raw, entry, error=Reason.FORMAT))
        except MalformedError:
            items.append(new_item(seq, raw, entry, error=Reason.MALFORMED))
    return items


def new_item(
    seq: int, raw: bytes, entry: Entry | None, code: Code | None = None, error: Reason | None = None
) -> Item:
    """`Item(...)` without the frozen `__init__`'s `object.__setattr__` call a field (a batch
    reads 500), as `code._new_code` makes a Code."""
    item: Item = object.__new__(Item)
    vars(item).update(seq=seq, raw=raw, entry=entry, code=code, error=error)
    return item


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
    return [account for (account,) in _read(session, _ACCOUNTS, {"c": ctis})]


_ACCOUNTS = (
    "SELECT h.account_id FROM holders h JOIN credentials c ON c.holder_id = h.id "
    "WHERE c.cti IN ({c})"
)
_SCANS = "SELECT seq, verdict FROM scans WHERE terminal_id = :terminal AND seq BETWEEN :lo AND :hi"
_COLUMNS = ", ".join(CredentialRef._fields)  # the columns by their names: nothing from outside
_CREDENTIALS = f"SELECT {_COLUMNS} FROM credentials WHERE cti IN ({{c}})"  # noqa: S608
_HOLDERS = "SELECT id, account_id, handle FROM holders WHERE id IN ({h})"
_COUNTERS = (
    "SELECT cti, ctr, ts, terminal_id, seq, amount, hold FROM counters_seen "
    "WHERE cti IN ({c}) AND ctr IN ({n})"
)
_REVOKED = "SELECT cti, seq FROM trust_changes WHERE cti IN ({c}) AND change = 'revoke'"
_TICKETS = "SELECT sub FROM tickets WHERE id IN ({t})"
_FREEZES = (
    "SELECT sub, seq, change FROM trust_changes "
    "WHERE sub IN ({s}) AND change IN ('freeze', 'unfreeze')"
)


@cache
def _statement(template: str, sizes: tuple[tuple[str, int], ...]) -> sql.Statement:
    """`template` with each `{name}` a list of that many parameters `name0`, `name1`, ..."""
    lists = {name: ", ".join(f":{name}{n}" for n in range(size)) for name, size in sizes}
    return sql.statement(template.format(**lists))


def _read(
    session: Session, template: str, lists: dict[str, Collection[Any]], **params: Any
) -> list[Any]:
    """The rows of `template` with its IN lists (none if one is empty), on the driver (a batch's
    reads through the ORM cost several times SQLite's work). A list is padded to a power of two
    with its last value, so a few texts serve every batch."""
    sizes = []
    for name, values in lists.items():
        if not values:
            return []
        padded = [*values]
        padded += padded[-1:] * ((1 << (len(padded) - 1).bit_length()) - len(padded))
        params.update((f"{name}{n}", value) for n, value in enumerate(padded))
        sizes.append((name, len(padded)))
    return sql.raw(session).all(_statement(template, tuple(sizes)), params)


class Refs:
    """Everything the batch's entries refer to, read once, under the locks of `accounts_of`."""

    def __init__(
        self, session: Session, settings: Settings, terminal_id: str, items: list[Item]
    ) -> None:
        seqs = [item.seq for item in items] or [0]
        ctis = _ctis(settings, items)
        between = {"terminal": terminal_id, "lo": min(seqs), "hi": max(seqs)}
        self.scans: dict[int, dict[str, Any]] = {
            seq: json.loads(verdict) for seq, verdict in _read(session, _SCANS, {}, **between)
        }
        self.credentials: dict[bytes, CredentialRef] = {}
        self.holders: dict[int, HolderRef] = {}
        for row in _read(session, _CREDENTIALS, {"c": ctis}):
            cti, *rest = row
            credential = CredentialRef(bytes(cti), *rest)
            self.credentials[credential.cti] = credential._replace(
                holds_released=bool(credential.holds_released), offline=bool(credential.offline)
            )
        holder_ids = {c.holder_id for c in self.credentials.values()}
        for row in _read(session, _HOLDERS, {"h": holder_ids}):
            self.holders[row[0]] = HolderRef(*row)
        self.counters: dict[tuple[bytes, int], Seen] = {}
        self._terms: dict[bytes, HoldTerms] = {}
        self.revoked_at: dict[bytes, int] = {}
        self.freezes: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
        if not ctis:
            return
        for cti, ctr, *seen in _read(session, _COUNTERS, {"c": ctis, "n": self._ctrs(items)}):
            self.counters[bytes(cti), ctr] = Seen(*seen)
        for cti, seq in _read(session, _REVOKED, {"c": ctis}):
            self.revoked_at[bytes(cti)] = min(seq, self.revoked_at.get(bytes(cti), seq))
        subs = {self.holders[c.holder_id].handle for c in self.credentials.values()}
        ticket_ids = {c.ticket_id for c in self.credentials.values() if c.ticket_id is not None}
        # a ticket's `sub` is its own id; a freeze of its holder names it too
        subs |= {sub for (sub,) in _read(session, _TICKETS, {"t": ticket_ids})}
        for sub, seq, change in _read(session, _FREEZES, {"s": subs}):
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
