"""Scans of the last minutes as the console's live charts show them: online scans (the `scans`
table, one row per online verdict) and offline ones (journal entries the terminal decided
itself, `online` false), counted per time bin by when the server received them, their share,
and the refusals by reason. Offline scans reach the server in the terminal's journal uploads,
so they show up in bursts at upload time: that is what the server knows, when it knows it.

Bounded: a window of at most `WINDOW_S_MAX` seconds, read through the `received_at` indexes,
and at most `ROWS_MAX` rows of each table (the newest); beyond that the answer says
`truncated` and counts what it read."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.protocol.journal import parse_entry
from duopass.protocol.reasons import Reason
from duopass.server.store.tables import JournalEntry, Scan

__all__ = ["BIN_S", "ROWS_MAX", "WINDOW_S_DEFAULT", "WINDOW_S_MAX", "counts"]

BIN_S: Final = 5
WINDOW_S_DEFAULT: Final = 300
WINDOW_S_MAX: Final = 1_800
ROWS_MAX: Final = 20_000
"""Rows read of each table at most per answer (the newest of the window)."""
UNREADABLE: Final = "UNREADABLE"
"""The reason counted for a stored entry whose bytes do not parse (never expected)."""


def _online(session: Session, since: int) -> list[tuple[int, str | None]]:
    """(received_at, refusal reason or None) of the newest online scans since `since`."""
    rows = session.execute(
        select(Scan.received_at, Scan.verdict)
        .where(Scan.received_at >= since)
        .order_by(Scan.received_at.desc())
        .limit(ROWS_MAX + 1)
    ).all()
    found: list[tuple[int, str | None]] = []
    for at, verdict in rows:
        answer = json.loads(verdict)
        refused = None if answer.get("ok") else str(answer.get("reason", UNREADABLE))
        found.append((int(at), refused))
    return found


def _offline(session: Session, since: int) -> list[tuple[int, str | None]]:
    """(received_at, refusal reason or None) of the newest offline journal entries since."""
    rows = session.execute(
        select(JournalEntry.received_at, JournalEntry.data)
        .where(JournalEntry.received_at >= since)
        .order_by(JournalEntry.received_at.desc())
        .limit(ROWS_MAX + 1)
    ).all()
    found: list[tuple[int, str | None]] = []
    for at, data in rows:
        try:
            entry = parse_entry(bytes(data))
        except ValueError:
            found.append((int(at), UNREADABLE))
            continue
        if not entry.online:  # an online verdict's entry was counted as its scan
            refused = None if entry.verdict is Reason.OK else entry.verdict.value
            found.append((int(at), refused))
    return found


def counts(session: Session, *, now: int, window_s: int = WINDOW_S_DEFAULT) -> dict[str, Any]:
    """The window's scans: per bin (`starts`, `online`, `offline`, counts), totals, the online
    share (None without scans) and refusals by reason (`{mode: {reason: count}}`)."""
    window_s = max(BIN_S, min(window_s, WINDOW_S_MAX)) // BIN_S * BIN_S
    first = (now // BIN_S + 1) * BIN_S - window_s  # the bins end with the one holding `now`
    bins = window_s // BIN_S
    answer: dict[str, Any] = {
        "now": now,
        "bin_s": BIN_S,
        "window_s": window_s,
        "starts": [first + n * BIN_S for n in range(bins)],
        "truncated": False,
    }
    refusals: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for mode, read in (("online", _online), ("offline", _offline)):
        rows = read(session, first)
        if len(rows) > ROWS_MAX:
            rows, answer["truncated"] = rows[:ROWS_MAX], True
        per_bin = [0] * bins
        for at, _refused in rows:
            per_bin[min(bins - 1, (at - first) // BIN_S)] += 1
        answer[mode] = per_bin
        totals[mode] = len(rows)
        refusals[mode] = dict(sorted(Counter(r for _a, r in rows if r is not None).items()))
    seen = totals["online"] + totals["offline"]
    answer["totals"] = totals
    answer["online_share"] = None if seen == 0 else round(totals["online"] / seen, 4)
    answer["refusals"] = refusals
    return answer
