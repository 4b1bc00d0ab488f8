"""A feature store in one process's memory: the reference the other backends are held to (tests
feed the same stream to both and compare every read), and a store for simulations. Not shared
between processes and gone with the process: the server uses the database's."""

from __future__ import annotations

from collections.abc import Sequence

from duopass.risk.buckets import bucket_rows, pair_rows
from duopass.risk.features import (
    QUERIES_MAX,
    SEEN_WITH_MAX,
    Count,
    Distinct,
    Features,
    Key,
    KeyKind,
    LastSeen,
    Observation,
    Query,
    Signal,
)
from duopass.risk.windows import RETENTION_S, Window, counted

__all__ = ["MemoryFeatureStore"]


class MemoryFeatureStore:
    """`FeatureStore` in dictionaries keyed like the database's primary keys."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str, int, int], tuple[int, int]] = {}
        """(key, signal, span_s, start) -> (events, last_at)."""
        self.pairs: dict[tuple[str, str, str], tuple[str, int]] = {}
        """(subject, signal, other) -> (kind of other, last_at)."""

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        for row in bucket_rows(observations, now):
            at = (row.key, row.signal, row.span_s, row.start)
            events, last = self.buckets.get(at, (0, row.last_at))
            self.buckets[at] = (events + row.events, max(last, row.last_at))
        for pair in pair_rows(observations, now):
            at3 = (pair.subject, pair.signal, pair.other)
            _, last = self.pairs.get(at3, (pair.kind, pair.last_at))  # `other` names its kind
            self.pairs[at3] = (pair.kind, max(last, pair.last_at))

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        if len(queries) > QUERIES_MAX:
            raise ValueError(f"at most {QUERIES_MAX} queries in one read")
        return Features([(query, self._value(query, now)) for query in queries])

    def _value(self, query: Query, now: int) -> int | None:
        key, signal = str(query.key), query.signal.value
        if isinstance(query, Count | LastSeen):
            window = query.window if isinstance(query, Count) else Window.DAY
            rows = [
                value
                for (k, s, span, start), value in self.buckets.items()
                if (k, s, span) == (key, signal, window.span_s) and counted(window, start, now)
            ]
            if isinstance(query, Count):
                return sum(events for events, _ in rows)
            return max((last for _, last in rows), default=None)
        assert isinstance(query, Distinct)
        return sum(
            1
            for (subject, s, _), (kind, last) in self.pairs.items()
            if (subject, s, kind) == (key, signal, query.of.value)
            and now - query.window.span_s < last <= now
        )

    def seen_with(
        self, key: Key, signal: Signal, of: KeyKind, *, window: Window, now: int, limit: int
    ) -> list[tuple[Key, int]]:
        if not 0 < limit <= SEEN_WITH_MAX:
            raise ValueError(f"a limit of 1 to {SEEN_WITH_MAX}")
        found = [
            (Key.parse(other), last)
            for (subject, s, other), (kind, last) in self.pairs.items()
            if (subject, s, kind) == (str(key), signal.value, of.value)
            and now - window.span_s < last <= now
        ]
        return sorted(found, key=lambda seen: (-seen[1], str(seen[0])))[:limit]

    def expire(self, *, now: int) -> int:
        gone = [at for at in self.buckets if at[3] <= now - at[2]]  # start <= now - span
        gone_pairs = [at for at, (_, last) in self.pairs.items() if last <= now - RETENTION_S]
        for at in gone:
            del self.buckets[at]
        for at3 in gone_pairs:
            del self.pairs[at3]
        return len(gone) + len(gone_pairs)
