"""What observations write, as rows every feature store keeps in its own way: one bucket row per
(key, signal, window, bucket) with its count and latest time, one pair row per (subject, signal,
kind of the other, other) with the time it was last seen. Rows come merged (one per primary key)
and sorted, so one multi-row upsert writes them and concurrent writers lock rows in one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.risk.features import Observation
from duopass.risk.windows import Window, bucket_start, counted

__all__ = ["BucketRow", "PairRow", "bucket_rows", "pair_rows"]


@dataclass(frozen=True, order=True)
class BucketRow:
    key: str
    signal: str
    span_s: int
    """The window it counts in (`Window.span_s`)."""
    start: int
    """The bucket's start (Unix seconds, a multiple of the window's bucket width)."""
    events: int
    last_at: int
    """The latest event time counted in it."""


@dataclass(frozen=True, order=True)
class PairRow:
    subject: str
    signal: str
    kind: str
    """The kind of `other` (what a distinct count counts)."""
    other: str
    last_at: int


def _at(observation: Observation, now: int) -> int:
    return min(observation.at, now)


def bucket_rows(observations: Sequence[Observation], now: int) -> list[BucketRow]:
    """The bucket rows `observations` add to at `now`, merged and sorted; buckets no window
    counts any more at `now` are left out."""
    merged: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    for observation in observations:
        at = _at(observation, now)
        for window in Window:
            start = bucket_start(window, at)
            if not counted(window, start, now):
                continue
            for key in observation.keys:
                row = (str(key), observation.signal.value, window.span_s, start)
                events, last = merged.get(row, (0, at))
                merged[row] = (events + observation.events, max(last, at))
    return [BucketRow(*row, events, last) for row, (events, last) in sorted(merged.items())]


def pair_rows(observations: Sequence[Observation], now: int) -> list[PairRow]:
    """The pair rows `observations` set at `now`, merged (latest time) and sorted; pairs older
    than the day window are left out."""
    merged: dict[tuple[str, str, str, str], int] = {}
    for observation in observations:
        at = _at(observation, now)
        if not counted(Window.DAY, at, now):
            continue
        for pair in observation.pairs:
            row = (str(pair.subject), observation.signal.value, pair.other.kind, str(pair.other))
            merged[row] = max(merged.get(row, at), at)
    return [PairRow(*row, last) for row, last in sorted(merged.items())]
