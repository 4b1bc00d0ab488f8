"""What observations write, as rows every feature store keeps in its own way: one bucket row per
(key, signal, window, bucket) with its count and latest time, one pair row per (subject, signal,
kind of the other, other) with the time it was last seen. Rows come merged (one per primary key)
and sorted, so one multi-row upsert writes them and concurrent writers lock rows in one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duopass.risk.features import Key, Observation, Pair
from duopass.risk.windows import Window, counted

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
    counts any more at `now` are left out. (A journal batch's hundreds of observations come
    through here: each key is named once, each window's bucket found once an observation.)"""
    merged: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    names: dict[Key, str] = {}
    windows = [(window.span_s, window.bucket_s) for window in Window]
    for observation in observations:
        at = _at(observation, now)
        signal, events = observation.signal.value, observation.events
        keys = [names.get(key) or names.setdefault(key, str(key)) for key in observation.keys]
        for span, width in windows:
            start = at - at % width  # windows.bucket_start
            if not now - span < start <= now:  # windows.counted
                continue
            for key in keys:
                row = (key, signal, span, start)
                found = merged.get(row)
                merged[row] = (
                    (events, at) if found is None else (found[0] + events, max(found[1], at))
                )
    return [BucketRow(*row, events, last) for row, (events, last) in sorted(merged.items())]


def pair_rows(observations: Sequence[Observation], now: int) -> list[PairRow]:
    """The pair rows `observations` set at `now`, merged (latest time) and sorted; pairs older
    than the day window are left out."""
    merged: dict[tuple[str, str, str, str], int] = {}
    named: dict[Pair, tuple[str, str, str]] = {}
    for observation in observations:
        at = _at(observation, now)
        if not observation.pairs or not counted(Window.DAY, at, now):
            continue
        signal = observation.signal.value
        for pair in observation.pairs:
            subject, kind, other = named.get(pair) or named.setdefault(
                pair, (str(pair.subject), pair.other.kind.value, str(pair.other))
            )
            row = (subject, signal, kind, other)
            merged[row] = max(merged.get(row, at), at)
    return [PairRow(*row, last) for row, last in sorted(merged.items())]
