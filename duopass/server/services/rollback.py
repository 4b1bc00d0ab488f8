"""The rollback guard: a database behind the checkpoint kept outside it (`server.outside`) was
restored from an older backup, or is another tree. The server then signs nothing and serves
nothing but its health (`api.store_guard`: 503 `store_rolled_back`) until an operator accepts
the rollback (`duopass ledger accept-rollback`, or `duopass restore --accept-rollback`).

Accepting records the decision and lists the terminals the lost part of the ledger had told
more than the restored store holds: a journal seq acknowledged, a bundle version sent, or an
enrolment. None is acknowledged again: each gets an open `store_rolled_back` alert with the
positions as evidence, for staff to handle at review; the bundle counter is raised to the
version terminals already hold, so that no version is issued twice with other contents.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from duopass.ledger import Checkpoint, LedgerError
from duopass.ledger._text import b64encode
from duopass.risk import AlertKind
from duopass.server import outside
from duopass.server.context import AppContext
from duopass.server.logbook import Event, emit
from duopass.server.services import alerts, ledger_key, tlog, trust_changes
from duopass.server.store.tables import Meta
from duopass.server.unit_of_work import Unit

__all__ = ["DECISIONS_FILE", "Acceptance", "Ahead", "accept", "ahead", "watch"]

DECISIONS_FILE = "ledger-rollbacks.jsonl"
"""In the data dir: one JSON line per rollback accepted, appended."""


def watch(ctx: AppContext) -> bool:
    """Compare the database with the outside checkpoint and hold or release the server
    (`ctx.store_held`), saying so in the log when that changes; True when it may serve."""
    reason = ctx.run(tlog.outside_lag)
    was, ctx.store_held = ctx.store_held, reason
    if reason is not None and was is None:
        emit(
            Event.STORE_ROLLED_BACK,
            f"{reason}: the server signs nothing and answers 503 store_rolled_back (all but"
            " /healthz and /v1/ping) until an operator runs `duopass ledger accept-rollback`",
        )
    elif reason is None and was is not None:
        emit(Event.STORE_GUARD_RELEASED, "the store holds the outside checkpoint's tree: serving")
    return reason is None


@dataclass(frozen=True)
class Ahead:
    """A terminal told more than the restored store holds."""

    terminal_id: str
    acked_seq: int
    """Its journal entries the restored store acknowledges (0: none, or not enrolled in it)."""
    acked_seq_told: int
    bundle_seq: int | None
    bundle_seq_told: int | None
    enrolled: bool
    """Whether the restored store knows the terminal at all."""


def ahead(unit: Unit, record: outside.OutsideRecord) -> list[Ahead]:
    """The terminals whose positions in `record` are ahead of this database's, by id."""
    here = tlog.positions(unit.session)
    found = []
    for name, (acked, bundle) in sorted(record.terminals.items()):
        now_acked, now_bundle = here.get(name, (0, None))
        if name not in here or acked > now_acked or (bundle or 0) > (now_bundle or 0):
            found.append(Ahead(name, now_acked, acked, now_bundle, bundle, name in here))
    return found


@dataclass(frozen=True)
class Acceptance:
    """What accepting a rollback found and did."""

    lost: Checkpoint | None
    """The outside checkpoint given up (None if it could not be read)."""
    store_size: int
    terminals: list[Ahead]
    bundle_seq: int
    """The restored store's bundle version, before it was raised to `bundle_seq_told`."""
    bundle_seq_told: int
    kept: Path | None
    """Where the outside record given up is kept."""


def accept(ctx: AppContext) -> Acceptance | None:
    """Accept the database as it is: flag the terminals ahead, raise the bundle counter, set
    the outside record aside, record the decision, and sign and keep the store's own latest
    checkpoint outside. None when the database is not behind (nothing to accept)."""
    if ctx.run(tlog.outside_lag) is None:
        return None
    data_dir = ctx.settings.data_dir
    try:
        record = outside.read(data_dir)
        note = None if record is None else record.note
        lost = None if note is None else ctx.run(lambda unit: ledger_key.open_ours(unit, note))
    except (outside.OutsideError, LedgerError):
        record, lost = None, None
    listed, size, restored_seq = ctx.run(lambda unit: _flag(unit, record))
    kept = outside.set_aside(data_dir, ctx.now())
    told = 0 if record is None else record.bundle_seq
    done = Acceptance(lost, size, listed, restored_seq, max(told, restored_seq), kept)
    _record(data_dir, ctx.now(), done)
    ctx.run(tlog.keep_outside)
    emit(
        Event.ROLLBACK_ACCEPTED,
        f"rollback accepted: the store's ledger ({size} entries) replaces the checkpoint of"
        f" {lost.size if lost else 'unknown'} entries; {len(listed)} terminal(s) ahead flagged",
        store_size=size,
        terminals=len(listed),
    )
    return done


def _flag(unit: Unit, record: outside.OutsideRecord | None) -> tuple[list[Ahead], int, int]:
    listed = [] if record is None else ahead(unit, record)
    for item in listed:
        digest = hashlib.sha256(item.terminal_id.encode()).hexdigest()[:32]
        evidence: dict[str, Any] = asdict(item)

        def repeat(found: dict[str, Any], evidence: dict[str, Any] = evidence) -> None:
            found.update(evidence)  # accepted again while its alert is open: the newest

        alerts.raise_once(
            unit,
            AlertKind.STORE_ROLLED_BACK,
            grouping=f"store_rolled_back:{digest}",
            repeat=repeat,
            evidence=evidence,
            terminal_id=item.terminal_id,
            seq=item.acked_seq_told,
        )
    restored_seq = trust_changes.current_seq(unit.session)
    if record is not None and record.bundle_seq > restored_seq:
        row = unit.session.get(Meta, trust_changes.SEQ)
        if row is None:
            unit.session.add(Meta(name=trust_changes.SEQ, value=record.bundle_seq))
        else:
            row.value = record.bundle_seq
    return listed, tlog.size(unit.session), restored_seq


def _record(data_dir: Path, now: int, done: Acceptance) -> None:
    """Append the decision to `ledger-rollbacks.jsonl` (fsynced)."""
    line: dict[str, Any] = {
        "accepted_at": now,
        "lost_size": None if done.lost is None else done.lost.size,
        "lost_root": None if done.lost is None else b64encode(done.lost.root),
        "store_size": done.store_size,
        "bundle_seq": done.bundle_seq,
        "bundle_seq_told": done.bundle_seq_told,
        "terminals_ahead": [asdict(item) for item in done.terminals],
        "kept": None if done.kept is None else done.kept.name,
    }
    fd = os.open(data_dir / DECISIONS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as handle:
        handle.write(json.dumps(line, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
