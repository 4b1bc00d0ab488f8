"""Journals (§5): a terminal's signed batches, each entry settled exactly once.

One verdict per (terminal_id, seq), the terminal's. An entry the server decided online confirms
it, voids the charge the terminal did not make, or books the acceptance the server had refused.
Any other acceptance is re-checked (§5.3) and booked against the counter's hold (§4), with alerts
for the evidence §4.4-4.5 lists. What cannot be settled goes to the pending account for review.
Entry bytes are kept as evidence, and `acked_seq` says up to where the terminal may delete.

A batch is one transaction: what its entries refer to is read up front (`journal_refs`), and the
counters, entries and ledger leaves it creates are written together at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from duopass.protocol.encoding import b64u_decode
from duopass.protocol.journal import GENESIS, Batch, Entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode
from duopass.server.config import Settings
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, credentials, ledger
from duopass.server.services.alerts import Kind, conflict, raise_alert
from duopass.server.services.journal_refs import (
    Item,
    Refs,
    Seen,
    accounts_of,
    read_items,
    recheck,
)
from duopass.server.store import sql
from duopass.server.store.tables import (
    Account,
    Alert,
    CounterSeen,
    Credential,
    Holder,
    JournalBatch,
    JournalEntry,
    Scan,
    Terminal,
)

LATE = "LATE"
"""A charging entry whose code is older than the late window (§5.4): pending."""
CONFLICT = "CONFLICT"
"""Different bytes for a (terminal_id, seq) already held (§5.2): nothing booked until review."""
CURRENCY = "CURRENCY"
"""The entry's currency is not the till's."""


@dataclass
class Receipt:
    """The answer to one batch (§8): `{"acked_seq", "duplicates", "rejected"}`."""

    acked_seq: int
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "acked_seq": self.acked_seq,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class _Settled:
    outcome: str
    reason: str | None = None
    transaction_id: int | None = None


def ingest(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    terminal_id: str,
    batch: Batch,
    data: bytes,
    now: int,
) -> dict[str, Any]:
    """Settle one verified batch; the answer of §8."""
    terminal = session.scalars(
        select(Terminal).where(Terminal.id == terminal_id).with_for_update()
    ).one()
    return _Journal(session, keyring, settings, terminal, now).ingest(batch, data).answer()


class _Journal:
    """One batch's settlement, in one transaction, with the terminal's row locked."""

    def __init__(
        self, session: Session, keyring: Keyring, settings: Settings, terminal: Terminal, now: int
    ) -> None:
        self.session, self.keyring, self.settings = session, keyring, settings
        self.terminal, self.now = terminal, now
        self.books = accounts.Movements(session, now=now, zone=settings.zone)
        """Every movement of the batch, written at the end: rows below name them by number."""
        self.counters: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.leaves: list[tuple[str, dict[str, Any]]] = []
        """(event type, body): a body's "transaction" is a movement number until written."""

    # -- the batch ---------------------------------------------------------------------------

    def ingest(self, batch: Batch, data: bytes) -> Receipt:
        session, terminal = self.session, self.terminal
        known = dict(
            session.execute(
                select(JournalEntry.seq, JournalEntry.data).where(
                    JournalEntry.terminal_id == terminal.id,
                    JournalEntry.seq.between(batch.first, batch.last),
                )
            ).all()
        )
        batch_id = session.scalars(
            select(JournalBatch.id).where(
                JournalBatch.terminal_id == terminal.id, JournalBatch.digest == batch.digest
            )
        ).first()
        if batch_id is None:
            batch_id = self._store_batch(batch, data)
        receipt = Receipt(acked_seq=terminal.acked_seq)
        fresh = [
            (seq, raw) for seq, raw in enumerate(batch.entries, batch.first) if seq not in known
        ]
        items = {item.seq: item for item in read_items(fresh)}
        self._lock(accounts_of(session, self.settings, list(items.values())))
        self.refs = (
            Refs(session, self.settings, terminal.id, list(items.values())) if items else None
        )
        for seq, raw in enumerate(batch.entries, batch.first):
            stored = known.get(seq)
            if stored == raw:
                receipt.duplicates += 1
                continue
            if stored is not None:
                settled = self._conflict(seq, stored, raw)
            else:
                settled = self._settle(items[seq])
                self.entries.append(
                    {
                        "terminal_id": terminal.id,
                        "seq": seq,
                        "data": raw,
                        "batch_id": batch_id,
                        "received_at": self.now,
                        "outcome": settled.outcome,
                        "reason": settled.reason,
                        "transaction_id": settled.transaction_id,
                    }
                )
            if settled.reason is not None:
                receipt.rejected.append({"seq": seq, "reason": settled.reason})
        if self.entries or self.books.transactions:
            self._write(batch)
            terminal.acked_seq = self._acked(terminal.acked_seq)
        receipt.acked_seq = terminal.acked_seq
        return receipt

    def _lock(self, holder_accounts: list[int]) -> None:
        """Everything the batch may change, locked before anything a concurrent payment, refresh
        or void changes is read: the ledger's append lock, then the holders', the merchant's and
        the pending and loss accounts. None of them is waited for (PostgreSQL `NOWAIT`): a batch
        that waited holding some could close a cycle with a group-commit transaction, which takes
        its locks in arrival order. A batch that finds one taken fails with OperationalError, is
        rolled back whole, and is retried by the route after a pause."""
        ledger.lock_now(self.session)
        wanted = [*holder_accounts]
        if self.terminal.merchant_account_id is not None:
            wanted.append(self.terminal.merchant_account_id)
        if self.terminal.currency is not None:
            wanted += accounts.system_accounts(self.session, self.terminal.currency)
        accounts.lock_all(self.session, wanted, nowait=True)

    def _write(self, batch: Batch) -> None:
        """What the batch created, a statement of each kind; movement numbers become ids."""
        session = self.session
        ids = self.books.write()

        def resolved(row: dict[str, Any], key: str) -> dict[str, Any]:
            number = row.get(key)
            return row if number is None or number < 0 else {**row, key: ids[number]}

        if self.counters:
            rows = [resolved(row, "transaction_id") for row in self.counters]
            sql.raw(session).many(sql.INSERT_COUNTER, rows)
        if self.entries:
            rows = [resolved(row, "transaction_id") for row in self.entries]
            session.execute(insert(JournalEntry), rows)
            self._leaf(
                "journal_batch",
                {
                    "terminal": self.terminal.id,
                    "first": batch.first,
                    "last": batch.last,
                    "digest": batch.digest,
                    "entries": len(self.entries),
                },
            )
        issuer = self.settings.issuer
        leaves = [
            ledger.leaf_bytes(kind, self.now, issuer, resolved(body, "transaction"))
            for kind, body in self.leaves
        ]
        if leaves:
            ledger.append_many(session, leaves)

    def _store_batch(self, batch: Batch, data: bytes) -> int:
        """Keep the batch's bytes; a batch that skips entries or breaks the chain is an alert."""
        session, terminal = self.session, self.terminal
        if batch.first > terminal.acked_seq + 1:
            self._alert(
                Kind.GAP, {"expected_seq": terminal.acked_seq + 1, "batch_first": batch.first}
            )
        if batch.first == 1:
            chained = batch.prev == GENESIS
        else:
            before = session.scalars(
                select(JournalBatch.digest).where(
                    JournalBatch.terminal_id == terminal.id, JournalBatch.last == batch.first - 1
                )
            ).all()
            chained = not before or batch.prev in before
        if not chained:
            self._alert(
                Kind.GAP,
                {"chain": "prev does not match the batch before", "batch_first": batch.first},
            )
        row = JournalBatch(
            terminal_id=terminal.id,
            first=batch.first,
            last=batch.last,
            digest=batch.digest,
            prev=batch.prev,
            received_at=self.now,
            data=data,
        )
        session.add(row)
        session.flush()
        return row.id

    def _acked(self, acked: int) -> int:
        """The highest seq up to which every entry is held."""
        following = self.session.scalars(
            select(JournalEntry.seq)
            .where(JournalEntry.terminal_id == self.terminal.id, JournalEntry.seq > acked)
            .order_by(JournalEntry.seq)
        )
        for seq in following:
            if seq != acked + 1:
                break
            acked = seq
        return acked

    def _conflict(self, seq: int, stored: bytes, raw: bytes) -> _Settled:
        """Other bytes for a seq already held (§5.2): an alert; nothing booked until review."""
        (item,) = read_items([(seq, raw)])
        entry, code = item.entry, item.code
        conflict(
            self.session,
            self.settings,
            self.keyring,
            terminal_id=self.terminal.id,
            seq=seq,
            stored=stored,
            received=raw,
            amount=self._charged(entry) if entry is not None else 0,
            scanned_at=entry.server_time if entry is not None else None,
            cti=code.credential.claims.cti if code is not None else None,
            now=self.now,
        )
        return _Settled("conflict", CONFLICT)

    # -- one entry ---------------------------------------------------------------------------

    def _settle(self, item: Item) -> _Settled:
        entry = item.entry
        if entry is None:
            self._alert(
                Kind.PENDING, {"reason": Reason.MALFORMED.value, "entry": item.raw}, seq=item.seq
            )
            return _Settled("pending", Reason.MALFORMED.value)
        assert self.refs is not None
        answer = self.refs.scans.get(item.seq)
        if answer is not None:
            return self._settle_online(item, entry, answer)
        if entry.verdict is not Reason.OK or entry.mode is Mode.IDENTITY:
            return _Settled("recorded")
        return self._book(item, entry)

    def _settle_online(self, item: Item, entry: Entry, answer: dict[str, Any]) -> _Settled:
        """The terminal's verdict on a scan the server decided online settles it (§5.1)."""
        self.session.execute(
            update(Scan)
            .where(Scan.terminal_id == self.terminal.id, Scan.seq == entry.seq)
            .values(provisional=False)
        )
        if bool(answer["ok"]) == (entry.verdict is Reason.OK) or entry.mode is Mode.IDENTITY:
            txn = self._amend(entry, answer) if answer["ok"] and entry.charges else None
            return _Settled("confirmed", None, txn)
        if entry.verdict is not Reason.OK:
            return self._void(entry, answer)
        # the server refused but the terminal accepted (its answer never arrived): book it as
        # the offline acceptance it is
        return self._book(item, entry)

    def _amend(self, entry: Entry, answer: dict[str, Any]) -> int | None:
        """An online payment the terminal journalled with another amount: the terminal's amount
        stands (§5.1), the difference moved between holder and merchant. A terminal may misstate
        an amount up to `txmax` (§5.3): what it adds beyond both that and the amount the server
        approved goes to pending for review instead."""
        assert self.refs is not None and entry.amount is not None
        cti, ctr = b64u_decode(answer["cti"]), answer["ctr"]
        seen = self.refs.counters.get((cti, ctr)) if ctr is not None else None
        if seen is None or (seen.terminal_id, seen.seq) != (self.terminal.id, entry.seq):
            return None
        if entry.amount == seen.amount:
            return None
        assert self.terminal.merchant_account_id is not None
        credential = self.refs.credentials[cti]
        account = self.refs.holders[credential.holder_id].account_id
        approved = seen.amount
        cap = max(approved, credential.txmax)
        charged = min(entry.amount, cap)
        txn = None
        if charged != seen.amount:
            txn = self.books.add(
                kind="amend",
                legs=[
                    (account, seen.amount - charged),
                    (self.terminal.merchant_account_id, charged - seen.amount),
                ],
                occurred_at=entry.server_time,
                terminal_id=self.terminal.id,
                memo=f"seq {entry.seq}: {seen.amount} as journalled {entry.amount}",
            )
        if entry.amount > cap:
            assert entry.currency is not None
            excess = entry.amount - cap
            pending = accounts.system_account(self.session, "pending", entry.currency)
            self.books.add(
                kind="pending",
                legs=[(pending.id, -excess), (self.terminal.merchant_account_id, excess)],
                occurred_at=entry.server_time,
                terminal_id=self.terminal.id,
                memo=f"seq {entry.seq}: above txmax",
            )
            self._alert(
                Kind.PENDING,
                {
                    "reason": Reason.OVER_TX_LIMIT.value,
                    "approved": seen.amount,
                    "journal": entry.amount,
                },
                seq=entry.seq,
                pending=excess,
                holder=self.refs.holders[credential.holder_id],
                cti=cti,
            )
        seen.amount = charged
        self.session.execute(
            update(CounterSeen)
            .where(CounterSeen.cti == cti, CounterSeen.ctr == ctr)
            .values(amount=charged)
        )
        self._leaf(
            "amend",
            {
                "cti": cti,
                "ctr": ctr,
                "approved": approved,
                "amount": entry.amount,
                "terminal": self.terminal.id,
                "seq": entry.seq,
                "transaction": -1 if txn is None else txn,
            },
        )
        return txn

    def _void(self, entry: Entry, answer: dict[str, Any]) -> _Settled:
        """The terminal rejected what the server accepted: the charge is reversed, and the
        counter becomes unseen again with its hold back, unless another acceptance of it was
        booked meanwhile, which then takes the counter over."""
        assert self.refs is not None
        cti, ctr = b64u_decode(answer["cti"]), answer["ctr"]
        seen = self.refs.counters.get((cti, ctr)) if ctr is not None else None
        if seen is None or (seen.terminal_id, seen.seq) != (self.terminal.id, entry.seq):
            return _Settled("confirmed")  # the server's acceptance moved nothing to reverse
        credential = self.refs.credentials[cti]
        account = self.refs.holders[credential.holder_id].account_id
        txn = None
        if seen.amount:
            assert self.terminal.merchant_account_id is not None
            txn = self.books.add(
                kind="void",
                legs=[(account, seen.amount), (self.terminal.merchant_account_id, -seen.amount)],
                occurred_at=entry.server_time,
                terminal_id=self.terminal.id,
                memo=f"void of seq {entry.seq}",
            )
        successor = self._duplicate_of(cti, ctr, entry.seq)
        if successor is not None:  # the counter was used elsewhere too: that use now settles
            successor.hold = seen.hold  # against the hold already released (§4.4)
            self.session.execute(
                update(CounterSeen)
                .where(CounterSeen.cti == cti, CounterSeen.ctr == ctr)
                .values(
                    terminal_id=successor.terminal_id,
                    seq=successor.seq,
                    ts=successor.ts,
                    amount=successor.amount,
                    transaction_id=None,
                )
            )
            self.refs.counters[cti, ctr] = successor
        else:
            # the hold returns only while the counter could still be charged against it: not
            # after the sweep released the credential's holds, nor above a refresh's release
            # mark, where nothing would ever release it again
            if credentials.holds(credential, ctr):
                self.books.change_held(account, seen.hold)
            self.session.execute(
                delete(CounterSeen).where(CounterSeen.cti == cti, CounterSeen.ctr == ctr)
            )
            del self.refs.counters[cti, ctr]
        self._leaf(
            "void",
            {
                "cti": cti,
                "ctr": ctr,
                "amount": seen.amount,
                "terminal": self.terminal.id,
                "seq": entry.seq,
                "transaction": -1 if txn is None else txn,
            },
        )
        return _Settled("voided", None, txn)

    def _duplicate_of(self, cti: bytes, ctr: int, seq: int) -> Seen | None:
        """The earliest other acceptance of a counter first accepted at (this terminal, `seq`):
        a duplicate's alert names the acceptance it duplicated."""
        first = {"terminal": self.terminal.id, "seq": seq}
        for alert in self.session.scalars(
            select(Alert)
            .where(Alert.cti == cti, Alert.kind.in_((Kind.CLONE.value, Kind.RELAY_SUSPECTED.value)))
            .order_by(Alert.id)
        ):
            evidence = json.loads(alert.evidence)
            was = evidence.get("first", {})
            if evidence.get("ctr") == ctr and {k: was.get(k) for k in first} == first:
                assert alert.terminal_id is not None and alert.seq is not None
                return Seen(evidence["ts"], alert.terminal_id, alert.seq, evidence["amount"], 0)
        return None

    def _book(self, item: Item, entry: Entry) -> _Settled:
        """An acceptance the terminal decided offline (whatever the entry claims, unless the
        server holds its online verdict): re-checked, then charged against the counter's hold
        (§4.1, §5.4)."""
        assert self.refs is not None
        code = item.code
        if code is None:
            return self._pending(entry, (item.error or Reason.MALFORMED).value)
        claims = code.credential.claims
        credential = self.refs.credentials.get(claims.cti)
        if credential is None:  # not a credential this issuer issued
            return self._pending(entry, Reason.UNKNOWN_KEY.value)
        holder = self.refs.holders[credential.holder_id]
        reason = recheck(self.session, self.settings, self.terminal, entry, code)
        if reason not in (Reason.OK, Reason.USES_EXHAUSTED):
            return self._pending(entry, reason.value, holder=holder, cti=claims.cti)
        ctr = code.dynamic.ctr if code.dynamic is not None else None
        ts = code.dynamic.ts if code.dynamic is not None else entry.server_time
        if entry.mode is Mode.PAY:
            refused = self._unpayable(entry, claims.txmax, ts)
            if refused is not None:
                return self._pending(entry, refused, holder=holder, cti=claims.cti)
        evidence: list[Kind] = []
        if reason is Reason.USES_EXHAUSTED:
            evidence.append(Kind.USES_EXCEEDED)
        if ctr is not None and credential.mark is not None and ctr > credential.mark:
            evidence.append(Kind.ABOVE_MARK)
        if self.refs.revoked_by_bundle(claims.cti, claims.sub, entry.bundle_seq):
            evidence.append(Kind.REVOKED_ACCEPTED)
        seen = self.refs.counters.get((claims.cti, ctr)) if ctr is not None else None
        held = seen is None and ctr is not None and self.refs.is_held(credential, ctr)
        hold = credential.txmax if held else 0
        txn = self._charge(entry, credential, holder, hold) if entry.mode is Mode.PAY else None
        self._leaf(
            "payment" if entry.mode is Mode.PAY else "entry",
            {
                "cti": claims.cti,
                "ctr": -1 if ctr is None else ctr,
                "amount": entry.amount or 0,
                "terminal": self.terminal.id,
                "seq": entry.seq,
                "transaction": -1 if txn is None else txn,
                "online": 0,
            },
        )
        if seen is not None:
            close = abs(ts - seen.ts) <= self.settings.policy.freshness_s
            evidence.append(Kind.RELAY_SUSPECTED if close else Kind.CLONE)
            if self._free_funds(holder) < 0:
                evidence.append(Kind.NEGATIVE_FUNDS)
        elif ctr is not None:
            self._seen(claims.cti, ctr, ts, entry, hold=hold, txn=txn)
        for kind in evidence:
            details: dict[str, Any] = {
                "ctr": ctr,
                "ts": ts,
                "amount": entry.amount or 0,
                "bundle_seq": entry.bundle_seq,
            }
            if seen is not None:
                details["first"] = {"terminal": seen.terminal_id, "seq": seen.seq, "ts": seen.ts}
            self._alert(kind, details, seq=entry.seq, holder=holder, cti=claims.cti)
        return _Settled("duplicate" if seen is not None else "booked", None, txn)

    def _unpayable(self, entry: Entry, txmax: int | None, ts: int) -> str | None:
        """Why an offline payment cannot be settled automatically (§5.4), if it cannot."""
        assert entry.amount is not None
        if entry.currency != self.terminal.currency:
            return CURRENCY
        if txmax is None or entry.amount > txmax:
            return Reason.OVER_TX_LIMIT.value
        if self.now - ts > self.settings.late_window_s:
            return LATE
        return None

    def _seen(
        self, cti: bytes, ctr: int, ts: int, entry: Entry, *, hold: int, txn: int | None
    ) -> None:
        assert self.refs is not None
        amount = entry.amount or 0
        self.refs.counters[cti, ctr] = Seen(ts, self.terminal.id, entry.seq, amount, hold)
        self.counters.append(
            {
                "cti": cti,
                "ctr": ctr,
                "ts": ts,
                "terminal_id": self.terminal.id,
                "seq": entry.seq,
                "amount": amount,
                "hold": hold,
                "transaction_id": txn,
            }
        )

    def _free_funds(self, holder: Holder) -> int:
        """The holder's free funds now: as stored, plus what this batch has not written yet."""
        stored = self.session.get(Account, holder.account_id, populate_existing=True)
        assert stored is not None
        balance, held = self.books.unwritten(stored.id)
        return stored.balance + balance + stored.overdraft - stored.held - held

    def _charge(self, entry: Entry, credential: Credential, holder: Holder, hold: int) -> int:
        """Debit the holder (hold released; beyond free funds as debt) and credit the merchant.
        A lost credential's acceptance after the report costs the holder at most its hold; the
        rest is the loss account's (§6)."""
        assert entry.amount is not None and self.terminal.merchant_account_id is not None
        account = holder.account_id
        self.books.change_held(account, -hold)
        holder_part = entry.amount
        if credential.lost_at is not None and entry.server_time >= credential.lost_at:
            holder_part = min(entry.amount, hold)
        legs = [(self.terminal.merchant_account_id, entry.amount)]
        if holder_part:
            legs.append((account, -holder_part))
        if entry.amount - holder_part:
            currency = self.terminal.currency or self.settings.currency
            loss = accounts.system_account(self.session, "loss", currency)
            legs.append((loss.id, holder_part - entry.amount))
        return self.books.add(
            kind="payment", legs=legs, occurred_at=entry.server_time, terminal_id=self.terminal.id
        )

    def _pending(
        self, entry: Entry, reason: str, *, holder: Holder | None = None, cti: bytes | None = None
    ) -> _Settled:
        """An acceptance that cannot be settled: debit pending, credit the merchant, and an alert
        for review (§5.4)."""
        amount, txn = self._to_pending(entry)
        self._alert(
            Kind.PENDING,
            {"reason": reason, "code": entry.code, "scanned_at": entry.scanned_at},
            seq=entry.seq,
            pending=amount,
            holder=holder,
            cti=cti,
        )
        return _Settled("pending", reason, txn)

    def _charged(self, entry: Entry) -> int:
        """What the entry charges the till: an acceptance of a payment in the till's currency."""
        charges = entry.charges and entry.currency == self.terminal.currency
        return (entry.amount or 0) if charges else 0

    def _to_pending(self, entry: Entry) -> tuple[int, int | None]:
        amount = self._charged(entry)
        if not amount:
            return 0, None
        assert entry.currency is not None
        assert self.terminal.merchant_account_id is not None, "a till has a merchant"
        pending = accounts.system_account(self.session, "pending", entry.currency)
        txn = self.books.add(
            kind="pending",
            legs=[(pending.id, -amount), (self.terminal.merchant_account_id, amount)],
            occurred_at=entry.server_time,
            terminal_id=self.terminal.id,
            memo=f"seq {entry.seq}",
        )
        return amount, txn

    def _leaf(self, event_type: str, body: dict[str, Any]) -> None:
        self.leaves.append((event_type, body))

    def _alert(
        self,
        kind: Kind,
        evidence: dict[str, Any],
        *,
        seq: int | None = None,
        pending: int = 0,
        holder: Holder | None = None,
        cti: bytes | None = None,
    ) -> None:
        raise_alert(
            self.session,
            self.settings,
            self.keyring,
            kind,
            now=self.now,
            evidence=evidence,
            holder=holder,
            cti=cti,
            terminal_id=self.terminal.id,
            seq=seq,
            pending=pending,
            currency=self.terminal.currency if pending else None,
        )
