"""A terminal's signed batch (§5.2): stored as evidence, checked against the hash chain and the
terminal's acknowledged entries, each entry settled exactly once per (terminal_id, seq) (or a
conflict when other bytes come for a held seq), everything it creates written together at the
end, and `acked_seq` moved up to where the server holds every entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from duopass.ledger.events import EventType, event
from duopass.protocol.journal import GENESIS, Batch
from duopass.protocol.reasons import Unsettled
from duopass.risk import AlertKind, batch_evidence
from duopass.server.domain import Outcome
from duopass.server.logbook import Event, note
from duopass.server.partners.outbox import emit
from duopass.server.services import accounts, alerts, tlog
from duopass.server.services.journals import anomalies, risk_point
from duopass.server.services.journals.collector import paused
from duopass.server.services.journals.lookups import Item, Refs, accounts_of, read_items
from duopass.server.services.journals.settle import settle
from duopass.server.services.journals.settling import Settled, Settling
from duopass.server.services.journals.signatures import PARALLEL_FROM, decode
from duopass.server.store import sql
from duopass.server.store.tables import Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["Receipt", "ingest"]


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


def ingest(unit: Unit, *, terminal_id: str, batch: Batch, data: bytes) -> dict[str, Any]:
    """Settle one verified batch, in one unit with the terminal's row locked; the answer of §8
    (a large one with the cycle collector paused, `collector`).

    A large batch is settled ahead of its device signatures (`signatures`), under a savepoint:
    the worker verifies them while this thread settles, books and writes. Only if a verdict
    assumed did not hold is all of it rolled back (what the unit kept in `session.info` too)
    and the batch settled again on the verdicts read, as a small batch always is."""
    with paused(len(batch.entries)):
        if len(batch.entries) < PARALLEL_FROM:
            return _ingest(unit, terminal_id=terminal_id, batch=batch, data=data)
        session = unit.session
        kept = dict(session.info)
        try:
            with session.begin_nested():
                return _ingest(unit, terminal_id=terminal_id, batch=batch, data=data, ahead=True)
        except _Unconfirmed:
            session.info.clear()
            session.info.update(kept)
        return _ingest(unit, terminal_id=terminal_id, batch=batch, data=data)


class _Unconfirmed(Exception):
    """A device signature assumed to verify did not (or its verdict never came)."""


def _ingest(
    unit: Unit, *, terminal_id: str, batch: Batch, data: bytes, ahead: bool = False
) -> dict[str, Any]:
    session = unit.session
    terminal = session.scalars(
        select(Terminal).where(Terminal.id == terminal_id).with_for_update()
    ).one()
    db = sql.raw(session)
    span = {"terminal": terminal.id, "first": batch.first, "last": batch.last}
    known = {seq: bytes(data) for seq, data in db.all(_KNOWN, span)}
    held = db.one(_BATCH, {"terminal": terminal.id, "digest": batch.digest})
    batch_id = None if held is None else int(held[0])
    if batch_id is None:
        batch_id = _store(unit, terminal, batch, data)
    fresh = [(seq, raw) for seq, raw in enumerate(batch.entries, batch.first) if seq not in known]
    deadline_s = unit.settings.signature_worker_deadline_s
    decoded, signatures = decode(fresh, deadline_s=deadline_s, ahead=ahead)  # in a worker
    try:
        items = {item.seq: item for item in decoded}
        _lock(unit, terminal, accounts_of(session, unit.settings, decoded))
        refs = Refs(session, unit.settings, terminal.id, decoded)
        st = Settling(unit, terminal, refs, accounts.Movements(unit), signatures)
        receipt = _settle_all(st, batch, known, items, batch_id)
        if not ahead:
            signatures.close()  # the worker is free for another batch while this one writes
        anomalies.observe_batch(st, items)
        risk_point.reconcile(st)  # the risk engine's journal point: counts, judges, acts
        if st.entries or st.books.transactions:
            _write(st, batch)
            terminal.acked_seq = _acked(unit, terminal.id, terminal.acked_seq)
        if not signatures.confirmed():
            raise _Unconfirmed
    finally:
        signatures.close()
    receipt.acked_seq = terminal.acked_seq
    note(
        session,
        Event.JOURNAL_BATCH_ACCEPTED,
        f"journal batch {batch.first}..{batch.last} of {terminal.id}",
        terminal_id=terminal.id,
        first=batch.first,
        last=batch.last,
        entries=len(st.entries),
        duplicates=receipt.duplicates,
        rejected=len(receipt.rejected),
        acked_seq=receipt.acked_seq,
    )
    return receipt.answer()


def _settle_all(
    st: Settling, batch: Batch, known: dict[int, bytes], items: dict[int, Item], batch_id: int
) -> Receipt:
    """Each entry of the batch in seq order: a duplicate counted, other bytes for a held seq a
    conflict, a fresh one settled (its row written with the batch)."""
    receipt = Receipt(acked_seq=st.terminal.acked_seq)
    for seq, raw in enumerate(batch.entries, batch.first):
        stored = known.get(seq)
        if stored == raw:
            receipt.duplicates += 1
            continue
        if stored is not None:
            settled = _conflict(st, seq, stored, raw)
        else:
            settled = settle(st, items[seq])
            st.entries.append(_entry_row(st, seq, raw, batch_id, settled))
        if settled.reason is not None:
            receipt.rejected.append({"seq": seq, "reason": settled.reason})
    return receipt


def _entry_row(
    st: Settling, seq: int, raw: bytes, batch_id: int, settled: Settled
) -> dict[str, Any]:
    return {
        "terminal_id": st.terminal_id,
        "seq": seq,
        "data": raw,
        "batch_id": batch_id,
        "received_at": st.unit.now,
        "outcome": settled.outcome.value,
        "reason": settled.reason,
        "transaction_id": settled.transaction,
    }


def _lock(unit: Unit, terminal: Terminal, holder_accounts: list[int]) -> None:
    """Everything the batch may change, locked before anything a concurrent payment, refresh or
    void changes is read: the ledger's append lock, then the holders', the merchant's and the
    pending and loss accounts. None of them is waited for (PostgreSQL `NOWAIT`): a batch that
    waited holding some could close a cycle with a group-commit transaction, which takes its
    locks in arrival order. A batch that finds one taken fails with OperationalError, is rolled
    back whole, and is retried by the route after a pause."""
    tlog.lock_now(unit.session)
    wanted = [*holder_accounts]
    if terminal.merchant_account_id is not None:
        wanted.append(terminal.merchant_account_id)
    if terminal.currency is not None:
        wanted += accounts.system_accounts(unit.session, terminal.currency)
    accounts.lock_all(unit.session, wanted, nowait=True)


def _write(st: Settling, batch: Batch) -> None:
    """What the batch created, a statement of each kind; movement numbers become ids."""
    session = st.unit.session
    session.flush()  # what the session holds goes before the driver's statements
    ids = st.books.write()

    def resolved(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        """The batch's own rows, their movement numbers replaced by ids in place."""
        for row in rows:
            number = row.get(key)
            if number is not None and number >= 0:
                row[key] = ids[number]
        return rows

    if st.counters:
        sql.raw(session).many(sql.INSERT_COUNTER, resolved(st.counters, "transaction_id"))
    if st.entries:
        sql.raw(session).many(sql.INSERT_JOURNAL_ENTRY, resolved(st.entries, "transaction_id"))
        body = {"terminal": st.terminal.id, "first": batch.first, "last": batch.last}
        st.leaf(
            EventType.JOURNAL_BATCH, {**body, "digest": batch.digest, "entries": len(st.entries)}
        )
    now, issuer = st.unit.now, st.unit.settings.issuer
    resolved([body for _, body in st.leaves], "transaction")
    leaves = [event(kind, now, issuer, body) for kind, body in st.leaves]
    if leaves:
        tlog.append_many(session, leaves)
    for kind, data in st.webhooks:
        emit(st.unit, kind, data)


def _store(unit: Unit, terminal: Terminal, batch: Batch, data: bytes) -> int:
    """Keep the batch's bytes; a batch that skips entries or breaks the chain is evidence."""
    db = sql.raw(unit.session)
    if batch.first == 1:
        chained = batch.prev == GENESIS
    else:
        ending = {"terminal": terminal.id, "last": batch.first - 1}
        before = [bytes(digest) for (digest,) in db.all(_ENDING, ending)]
        chained = not before or batch.prev in before
    for found in batch_evidence(acked_seq=terminal.acked_seq, first=batch.first, chained=chained):
        alerts.raise_alert(unit, AlertKind.GAP, evidence=found, terminal_id=terminal.id)
    row = {"terminal_id": terminal.id, "first": batch.first, "last": batch.last}
    row.update(digest=batch.digest, prev=batch.prev, received_at=unit.now, data=data)
    return int(db.one(_INSERT_BATCH, row)[0])


_ENDING = sql.statement(
    "SELECT digest FROM journal_batches WHERE terminal_id = :terminal AND last = :last"
)
_INSERT_BATCH = sql.statement(
    "INSERT INTO journal_batches (terminal_id, first, last, digest, prev, received_at, data) "
    "VALUES (:terminal_id, :first, :last, :digest, :prev, :received_at, :data) RETURNING id"
)
_KNOWN = sql.statement(
    "SELECT seq, data FROM journal_entries "
    "WHERE terminal_id = :terminal AND seq BETWEEN :first AND :last"
)
_BATCH = sql.statement(
    "SELECT id FROM journal_batches WHERE terminal_id = :terminal AND digest = :digest"
)
_FOLLOWING = sql.statement(
    "SELECT seq FROM journal_entries WHERE terminal_id = :terminal AND seq > :acked ORDER BY seq"
)
"""A batch's reads on the driver, as its writes (`_write`): through the ORM they cost several
times SQLite's work."""


def _acked(unit: Unit, terminal_id: str, acked: int) -> int:
    """The highest seq up to which every entry is held."""
    following = sql.raw(unit.session).all(_FOLLOWING, {"terminal": terminal_id, "acked": acked})
    for (seq,) in following:
        if seq != acked + 1:
            break
        acked = seq
    return acked


def _conflict(st: Settling, seq: int, stored: bytes, raw: bytes) -> Settled:
    """Other bytes for a seq already held (§5.2): an alert; nothing booked until review."""
    (item,) = read_items([(seq, raw)])
    entry, code = item.entry, item.code
    alerts.conflict(
        st.unit,
        terminal_id=st.terminal.id,
        seq=seq,
        stored=stored,
        received=raw,
        amount=st.charged(entry) if entry is not None else 0,
        scanned_at=entry.server_time if entry is not None else None,
        cti=code.credential.claims.cti if code is not None else None,
    )
    return Settled(Outcome.CONFLICT, Unsettled.CONFLICT.value)
