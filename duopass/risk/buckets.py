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


def bucket_rows(observations: Sequence[Observation], now: int) -> list[BucketRow]:
    """The bucket rows `observations` add to at `now`, merged and sorted; buckets no window
    counts any more at `now` are left out. (A journal batch's hundreds of observations come
    through here, most touching the same keys: observations are grouped by their keys first,
    so each key is named once, and each bucket of a group gets its events and latest time
    before they are added to each of its keys.)"""
    groups: dict[tuple[int, int, int], tuple[Observation, list[int]]] = {}
    for observation in observations:  # by identity: a batch's observations share their keys
        group = (id(observation.keys), id(observation.signal), observation.events)
        found = groups.get(group)
        if found is None:
            found = groups[group] = (observation, [])
        found[1].append(min(observation.at, now))  # `_at`
    merged: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    names: dict[Key, str] = {}
    windows = [(window.span_s, window.bucket_s) for window in Window]
    for first, times in groups.values():
        signal, events = first.signal.value, first.events
        keys = [names.get(key) or names.setdefault(key, str(key)) for key in first.keys]
        for span, width in windows:
            buckets: dict[int, tuple[int, int]] = {}
            for at in times:
                start = at - at % width  # windows.bucket_start
                bucket = buckets.get(start)
                buckets[start] = (1, at) if bucket is None else (bucket[0] + 1, max(bucket[1], at))
            for start, (count, last) in buckets.items():
                if not now - span < start <= now:  # windows.counted
                    continue
                for key in keys:
                    row = (key, signal, span, start)
                    kept = merged.get(row)
                    merged[row] = (
                        (events * count, last)
                        if kept is None
                        else (kept[0] + events * count, max(kept[1], last))
                    )
    return [BucketRow(*row, events, last) for row, (events, last) in sorted(merged.items())]


def pair_rows(observations: Sequence[Observation], now: int) -> list[PairRow]:
    """The pair rows `observations` set at `now`, merged (latest time) and sorted; pairs older
    than the day window are left out. Grouped by signal and pairs first: a pair's latest time is
    the latest of its observations, and if that one is too old for the day window so are all
    (groups of equal pairs that are not the same tuple merge below, as any two rows do)."""
    latest: dict[tuple[int, int], tuple[Observation, int]] = {}
    for observation in observations:  # by identity, as `bucket_rows`
        if not observation.pairs:
            continue
        group = (id(observation.signal), id(observation.pairs))
        at = min(observation.at, now)  # `_at`
        was = latest.get(group)
        if was is None or at > was[1]:
            latest[group] = (observation, at)
    merged: dict[tuple[str, str, str, str], int] = {}
    named: dict[Pair, tuple[str, str, str]] = {}
    for observation, at in latest.values():
        if not counted(Window.DAY, at, now):
            continue
        signal = observation.signal.value
        for pair in observation.pairs:
            subject, kind, other = named.get(pair) or named.setdefault(
                pair, (str(pair.subject), pair.other.kind.value, str(pair.other))
            )
            row = (subject, signal, kind, other)
            merged[row] = max(merged.get(row, at), at)
    return [PairRow(*row, last) for row, last in sorted(merged.items())]
