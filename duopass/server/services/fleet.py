"""The terminal fleet as the card office sees it, from what the server stores of each terminal:
when it was last seen (its last online scan, journal batch or trust bundle), the bundle version
it was last sent and how old that is, the journal entries the server has heard of but not yet
holds (a lower bound: offline scans it was never told of are not counted), online or not.

Bundle fetches are recorded where the bundle route serves them (`note_bundle`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.server.services import paging, trust_changes
from duopass.server.store.tables import JournalBatch, JournalEntry, Scan, Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["SEEN_WITHIN_S", "listing", "note_bundle"]

SEEN_WITHIN_S = 660
"""A terminal seen this recently is online: the agent asks for a bundle every 300 s when idle,
so two missed polls and a minute's grace mean it is not reaching the server."""


def note_bundle(unit: Unit, terminal_id: str) -> None:
    """The terminal is sent the current bundle version in this unit."""
    seq = trust_changes.current_seq(unit.session)
    unit.session.execute(
        update(Terminal)
        .where(Terminal.id == terminal_id)
        .values(bundle_seq=seq, bundle_at=unit.now)
    )


def _latest(column: Any, table: Any, order: Any) -> Any:
    """`column` of the terminal's row of `table` with the highest `order` (an index seek)."""
    return (
        select(column)
        .where(table.terminal_id == Terminal.id)
        .order_by(order.desc())
        .limit(1)
        .scalar_subquery()
    )


def listing(session: Session, *, now: int, limit: int, cursor: str | None) -> dict[str, Any]:
    """Terminals by id, a page at a time."""
    after = paging.read_cursor(cursor, "terminals", (str,))
    query = select(
        Terminal,
        _latest(Scan.received_at, Scan, Scan.seq),
        _latest(Scan.seq, Scan, Scan.seq),
        _latest(JournalBatch.received_at, JournalBatch, JournalBatch.last),
        _latest(JournalEntry.seq, JournalEntry, JournalEntry.seq),
    )
    if after is not None:
        query = query.where(Terminal.id > after[0])
    latest_seq = trust_changes.current_seq(session)
    rows = session.execute(query.order_by(Terminal.id).limit(limit + 1))
    items = [_describe(terminal, now, latest_seq, rest) for terminal, *rest in rows]
    return paging.page("terminals", items, limit, lambda item: (item["id"],))


def _describe(
    terminal: Terminal, now: int, latest_seq: int, latest: list[int | None]
) -> dict[str, Any]:
    """A terminal; `latest`: its last scan's time and seq, last batch's time, last entry's seq."""
    scanned, scan_seq, uploaded, entry_seq = latest
    seen = [t for t in (scanned, uploaded, terminal.bundle_at) if t is not None]
    last_seen = max(seen) if seen else None
    heard = max(terminal.acked_seq, scan_seq or 0, entry_seq or 0)
    return {
        "id": terminal.id,
        "mode": terminal.mode,
        "venue": terminal.venue,
        "state": terminal.state,
        "last_seen_at": last_seen,
        "online": last_seen is not None and now - last_seen <= SEEN_WITHIN_S,
        "last_scan_at": scanned,
        "last_upload_at": uploaded,
        "bundle_seq": terminal.bundle_seq,
        "bundle_sent_at": terminal.bundle_at,
        "bundle_age_s": None if terminal.bundle_at is None else now - terminal.bundle_at,
        "bundle_seq_latest": latest_seq,
        "acked_seq": terminal.acked_seq,
        "journal_backlog": heard - terminal.acked_seq,
    }
