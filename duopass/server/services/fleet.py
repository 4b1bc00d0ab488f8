"""The terminal fleet as the card office sees it, from what the server stores of each terminal:
when it was last seen (its last online scan, journal batch or trust bundle), the bundle version
it was last sent and how old that is, the journal entries the server has heard of but not yet
holds (a lower bound: offline scans it was never told of are not counted, hence also the
backlog its heartbeat reports), its clock offset, the fleet alerts in episode, online or not.

Bundle fetches and heartbeats are recorded where the terminal routes serve them (`note_bundle`,
`note_heartbeat`), with the terminal's clock offset read from the request's signed time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duopass.risk.fleet import HEARTBEAT_MISSED_S
from duopass.server.services import paging, trust_changes
from duopass.server.store.tables import JournalBatch, JournalEntry, Scan, Terminal
from duopass.server.unit_of_work import Unit

__all__ = [
    "SEEN_WITHIN_S",
    "heard",
    "latest_heard",
    "listing",
    "note_bundle",
    "note_heartbeat",
]

SEEN_WITHIN_S = HEARTBEAT_MISSED_S
"""A terminal seen this recently is online: the agent sends a heartbeat and asks for a bundle
every 300 s when idle, so two missed and a minute's grace mean it is not reaching the server."""


def note_bundle(unit: Unit, terminal_id: str, *, signed_at: int | None = None) -> None:
    """The terminal is sent the current bundle version in this unit (asked at `signed_at` by
    its clock)."""
    seq = trust_changes.current_seq(unit.session)
    values: dict[str, Any] = {"bundle_seq": seq, "bundle_at": unit.now}
    if signed_at is not None:
        values["clock_offset_s"] = signed_at - unit.now
    unit.session.execute(update(Terminal).where(Terminal.id == terminal_id).values(**values))


def note_heartbeat(
    unit: Unit, terminal_id: str, *, signed_at: int, bundle_seq: int | None, backlog: int
) -> None:
    """The terminal is alive, its clock reads `signed_at`, it holds bundle `bundle_seq` and
    `backlog` journal entries the server has not acknowledged."""
    unit.session.execute(
        update(Terminal)
        .where(Terminal.id == terminal_id)
        .values(
            heartbeat_at=unit.now,
            clock_offset_s=signed_at - unit.now,
            held_bundle_seq=bundle_seq,
            reported_backlog=backlog,
        )
    )


def latest_heard() -> tuple[Any, ...]:
    """Per terminal row: its last scan's time and seq, last batch's time, last entry's seq."""
    return (
        _latest(Scan.received_at, Scan, Scan.seq),
        _latest(Scan.seq, Scan, Scan.seq),
        _latest(JournalBatch.received_at, JournalBatch, JournalBatch.last),
        _latest(JournalEntry.seq, JournalEntry, JournalEntry.seq),
    )


def heard(terminal: Terminal, latest: list[int | None]) -> tuple[int | None, int]:
    """When the terminal was last seen, and its journal entries heard of but not held (the
    server's count or the terminal's own, the larger); `latest` as `latest_heard` gives it."""
    scanned, scan_seq, uploaded, entry_seq = latest
    times = (scanned, uploaded, terminal.bundle_at, terminal.heartbeat_at)
    seen = [t for t in times if t is not None]
    heard_seq = max(terminal.acked_seq, scan_seq or 0, entry_seq or 0)
    backlog = max(heard_seq - terminal.acked_seq, terminal.reported_backlog or 0)
    return (max(seen) if seen else None), backlog


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
    query = select(Terminal, *latest_heard())
    if after is not None:
        query = query.where(Terminal.id > after[0])
    latest_seq = trust_changes.current_seq(session)
    rows = session.execute(query.order_by(Terminal.id).limit(limit + 1))
    items = [_describe(terminal, now, latest_seq, rest) for terminal, *rest in rows]
    return paging.page("terminals", items, limit, lambda item: (item["id"],))


def _describe(
    terminal: Terminal, now: int, latest_seq: int, latest: list[int | None]
) -> dict[str, Any]:
    """A terminal; `latest` as `latest_heard` gives it."""
    scanned, _scan_seq, uploaded, _entry_seq = latest
    last_seen, backlog = heard(terminal, latest)
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
        "journal_backlog": backlog,
        "heartbeat_at": terminal.heartbeat_at,
        "clock_offset_s": terminal.clock_offset_s,
        "bundle_seq_held": terminal.held_bundle_seq,
        "fleet_alerts": terminal.fleet_alerts.split(),
    }
