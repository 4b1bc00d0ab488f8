"""The risk features in Redis (`duopass.risk.FeatureStore`), for deployments whose traffic
outgrows the database's tables: the same reads as the reference store, shared by every server
process, kept across a restart as Redis keeps its data (append-only file or snapshots). Not in
the database's transaction, but after it: a unit's store (`UnitStore`) writes what the unit
records once its transaction has committed, so a unit rolled back counts nothing and one
retried counts once; its own reads add what it has recorded and not yet written
(docs/server.md "Risk features"). The one exception is `counted`, a count that the request is
judged on (a partner's call against its rate limit): written at once, and read in the same step.

Per key and signal, each window is a hash of bucket start -> events (the day's also a hash of
bucket start -> latest time, for `LastSeen`), and each (subject, signal, kind of the other) a
sorted set of the others scored by when each was last seen. A record is one Lua script (every
row of its observations, one round trip; the scripts are in `risk_redis_lua`), a read of any
number of queries another, a record and a read counted together both in one `MULTI`/`EXEC`,
`seen_with` one command. Every key carries a TTL to the end of the last window that counts
what it holds, and a hash forgets its stale buckets when it gets a new one: Redis keeps at most
a day of traffic by itself, and `expire` has nothing to do.

Keys are `PREFIX risk:b:SPAN:SIGNAL:KEY`, `PREFIX risk:t:SIGNAL:KEY` and
`PREFIX risk:p:SIGNAL:KIND:KEY` (the feature key last: it may hold colons), so deployments with
their own prefixes share one Redis. One Redis (or a primary and its replicas), not a Cluster:
a script's keys are in many slots. Redis 6.2 or later (`ZADD GT`): the version is checked when
the server starts and when a process first connects, and an older one is refused by name.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import cast

import redis
from sqlalchemy.orm import Session

from duopass.risk import (
    Count,
    Distinct,
    Features,
    Key,
    KeyKind,
    LastSeen,
    MemoryFeatureStore,
    Observation,
    Query,
    Signal,
    Window,
)
from duopass.risk.buckets import bucket_rows, pair_rows
from duopass.risk.features import QUERIES_MAX, SEEN_WITH_MAX
from duopass.risk.windows import RETENTION_S
from duopass.server.logbook import Event, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services.risk_redis_lua import READ as _READ
from duopass.server.services.risk_redis_lua import RECORD as _RECORD
from duopass.server.settings import Settings
from duopass.server.store.db import after_commit

__all__ = [
    "REDIS_VERSION_MIN",
    "ROWS_PER_SCRIPT",
    "RedisFeatureStore",
    "RedisTooOld",
    "UnitStore",
    "check",
    "check_version",
    "store",
]

ROWS_PER_SCRIPT = 500
"""Most rows one record script writes: an observation's are at most 32 (8 keys in 3 windows and
the day's latest times, 8 pairs); a journal's batch takes one script per 500 rows, so that no
script holds Redis for long."""


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """Redis unreachable or too slow: 503 `busy`, the request not done (its unit rolls back),
    rather than a decision taken without its counts."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise Problem(ProblemCode.BUSY, "the risk store does not answer: send it again") from exc


class RedisFeatureStore:
    """`FeatureStore` in one Redis, its keys under `prefix`."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self._record = client.register_script(_RECORD)
        self._read = client.register_script(_READ)

    def _bucket(self, span_s: int, signal: str, key: str) -> str:
        return f"{self.prefix}risk:b:{span_s}:{signal}:{key}"

    def _latest(self, signal: str, key: str) -> str:
        return f"{self.prefix}risk:t:{signal}:{key}"

    def _pairs(self, signal: str, kind: str, subject: str) -> str:
        return f"{self.prefix}risk:p:{signal}:{kind}:{subject}"

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        for keys, args in self._writes(observations, now):
            with _answering():
                self._record(keys=keys, args=args)

    def _writes(
        self, observations: Sequence[Observation], now: int
    ) -> list[tuple[list[str], list[str | int]]]:
        """The record script's calls for `observations`: its keys and arguments, each."""
        rows = bucket_rows(observations, now)
        writes: list[tuple[str, str, tuple[str | int, ...]]] = [  # (what, its key, its row)
            *(
                ("b", self._bucket(r.span_s, r.signal, r.key), (r.start, r.events, r.span_s))
                for r in rows
            ),
            *(
                ("t", self._latest(r.signal, r.key), (r.start, r.last_at))
                for r in rows
                if r.span_s == RETENTION_S
            ),
            *(
                ("p", self._pairs(p.signal, p.kind, p.subject), (p.other, p.last_at))
                for p in pair_rows(observations, now)
            ),
        ]
        calls: list[tuple[list[str], list[str | int]]] = []
        for first in range(0, len(writes), ROWS_PER_SCRIPT):
            chunk = writes[first : first + ROWS_PER_SCRIPT]  # still in the script's order
            counts = [sum(1 for what, _, _ in chunk if what == kind) for kind in "btp"]
            args = [now, RETENTION_S, *counts, *(value for _, _, row in chunk for value in row)]
            calls.append(([key for _, key, _ in chunk], args))
        return calls

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        if len(queries) > QUERIES_MAX:
            raise ValueError(f"at most {QUERIES_MAX} queries in one read")
        if not queries:
            return Features()
        keys, args = self._reads(queries, now)
        with _answering():
            values = self._read(keys=keys, args=args)
        return _features(queries, values)

    def counted(
        self, observations: Sequence[Observation], queries: Sequence[Query], *, now: int
    ) -> Features:
        """`record` then `read` in one `MULTI`/`EXEC`: no other client's command comes between,
        so what is read holds these observations and every one counted before, none after (a
        partner's call counted and its limit judged on the count: `partners.guard`)."""
        if len(queries) > QUERIES_MAX:
            raise ValueError(f"at most {QUERIES_MAX} queries in one read")
        with _answering(), self.client.pipeline(transaction=True) as pipe:
            for keys, args in self._writes(observations, now):
                self._record(keys=keys, args=args, client=pipe)
            if queries:
                self._read(*self._reads(queries, now), client=pipe)
            answers = pipe.execute()
        values = answers[-1] if queries else []
        return _features(queries, values)

    def _reads(self, queries: Sequence[Query], now: int) -> tuple[list[str], list[str | int]]:
        """The read script's keys and arguments for `queries`."""
        keys: list[str] = []
        args: list[str | int] = [now]
        for query in queries:
            key, signal = str(query.key), query.signal.value
            if isinstance(query, Distinct):
                keys.append(self._pairs(signal, query.of.value, key))
                args += ["d", now - query.window.span_s]
            elif isinstance(query, Count):
                keys.append(self._bucket(query.window.span_s, signal, key))
                args += ["c", now - query.window.span_s]
            else:
                assert isinstance(query, LastSeen)
                keys.append(self._latest(signal, key))
                args += ["l", now - RETENTION_S]
        return keys, args

    def seen_with(
        self, key: Key, signal: Signal, of: KeyKind, *, window: Window, now: int, limit: int
    ) -> list[tuple[Key, int]]:
        if not 0 < limit <= SEEN_WITH_MAX:
            raise ValueError(f"a limit of 1 to {SEEN_WITH_MAX}")
        with _answering():
            found = self.client.zrevrangebyscore(
                self._pairs(signal.value, of.value, str(key)),
                now,
                f"({now - window.span_s}",
                start=0,
                num=limit,
                withscores=True,
                score_cast_func=int,
            )
        return [(Key.parse(other), last) for other, last in cast(list[tuple[str, int]], found)]

    def expire(self, *, now: int) -> int:
        """Nothing to do: Redis forgets a key at the end of its TTL, and a hash its stale
        buckets when it gets a new one (see the module). Returns 0."""
        del now
        return 0


_PENDING = "risk_redis_pending"
"""`Session.info` key: what the unit's transaction has recorded and not yet written (a tuple:
a group commit's savepoint that fails puts `info` back, and with it what came before)."""


class UnitStore:
    """The Redis store as one unit sees it: what the unit records is written once its
    transaction has committed (`store.db.after_commit`: one script for the transaction), never
    when it rolls back, so a unit retried after a lost race counts once. Its reads add what it
    has recorded and not yet written: counts and latest times (an attempt counts itself before
    the policy reads); a distinct count is Redis's, or the unit's own if more. Other units see
    its counts once it has committed; one whose write fails then (Redis gone meanwhile) leaves
    them out, with an error logged."""

    def __init__(self, store: RedisFeatureStore, session: Session) -> None:
        self.store, self.session = store, session

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        del now  # written at the latest time among them (`_write`)
        info = self.session.info
        pending = info.get(_PENDING)
        if pending is None:
            after_commit(self.session, partial(_write, self.store, self.session))
        info[_PENDING] = (*(pending or ()), *observations)

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        return self._with_own(queries, self.store.read(queries, now=now), now)

    def counted(
        self, observations: Sequence[Observation], queries: Sequence[Query], *, now: int
    ) -> Features:
        """`RedisFeatureStore.counted`: written at once, not once the unit commits (a unit
        that fails after it, or is retried, leaves them counted); read as `read` reads."""
        return self._with_own(queries, self.store.counted(observations, queries, now=now), now)

    def _with_own(self, queries: Sequence[Query], found: Features, now: int) -> Features:
        pending = self.session.info.get(_PENDING, ())
        if not pending or not queries:
            return found
        own = MemoryFeatureStore()
        own.record(pending, now=now)
        mine = own.read(queries, now=now)
        return Features([(q, _plus(q, found[q.feature], mine[q.feature])) for q in queries])

    def seen_with(
        self, key: Key, signal: Signal, of: KeyKind, *, window: Window, now: int, limit: int
    ) -> list[tuple[Key, int]]:
        return self.store.seen_with(key, signal, of, window=window, now=now, limit=limit)

    def expire(self, *, now: int) -> int:
        return self.store.expire(now=now)


def _features(queries: Sequence[Query], values: list[int | None]) -> Features:
    return Features(
        [(q, None if v is None else int(v)) for q, v in zip(queries, values, strict=True)]
    )


def _plus(query: Query, theirs: int | None, mine: int | None) -> int | None:
    if theirs is None or mine is None:
        return mine if theirs is None else theirs
    if isinstance(query, Count):
        return theirs + mine
    return max(theirs, mine)  # the latest time; a distinct count at least the unit's own


def _write(store: RedisFeatureStore, session: Session) -> None:
    pending = session.info.pop(_PENDING, ())
    if pending:
        store.record(pending, now=max(observation.at for observation in pending))


REDIS_VERSION_MIN = (6, 2)
"""The oldest Redis the scripts run on: `ZADD ... GT` came with 6.2."""


class RedisTooOld(RuntimeError):
    """The Redis at `redis_url` is older than `REDIS_VERSION_MIN` (or does not say)."""


def check_version(client: redis.Redis) -> str:
    """The server's version (`HELLO`, which every user may send, unlike `INFO`), or
    `RedisTooOld`; Redis before 6.0 has no `HELLO` at all."""
    try:
        hello = client.execute_command("HELLO")  # type: ignore[no-untyped-call]
    except redis.ResponseError as exc:
        if "unknown command" not in str(exc).lower():
            raise
        raise RedisTooOld(_too_old("before 6.0 (it has no HELLO)")) from exc
    if isinstance(hello, list):  # a RESP2 answer: names and values in turn
        hello = dict(zip(hello[::2], hello[1::2], strict=True))
    version = str(hello.get("version", "")) if isinstance(hello, dict) else ""
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if len(numbers) < 2 or numbers < REDIS_VERSION_MIN:
        raise RedisTooOld(_too_old(version or "of no version"))
    return version


def _too_old(version: str) -> str:
    least = ".".join(map(str, REDIS_VERSION_MIN))
    return (
        f"the risk store's Redis is {version}: it needs {least} or later (ZADD GT); "
        "upgrade it, or keep the risk features in the database (no --redis-url)"
    )


def check(settings: Settings) -> None:
    """At start: `RedisTooOld` if the Redis `settings` name answers with an older version.
    One that does not answer yet is checked when first used (`store`)."""
    try:
        store(settings)
    except Problem as exc:
        if isinstance(exc.__cause__, RedisTooOld):
            raise exc.__cause__ from None
        # not answering: each request answers 503 busy until it does, checked then


_STORES: dict[tuple[str, str | None, str, float, int], RedisFeatureStore] = {}
_STORES_LOCK = threading.Lock()


def store(settings: Settings) -> RedisFeatureStore:
    """The Redis store `settings` name (`redis_url`, `redis_password`, `redis_prefix`), on this
    process's one client (a pool of connections), made when first asked for: a process forked
    by `serve --workers` makes its own rather than sharing its parent's sockets."""
    assert settings.redis_url is not None  # Settings refuse the Redis store without one
    secret = settings.redis_password
    password = None if secret is None else secret.get_secret_value()
    timeout = settings.redis_timeout_s
    at = (settings.redis_url, password, settings.redis_prefix, timeout, os.getpid())
    with _STORES_LOCK:
        found = _STORES.get(at)
        if found is None:
            client = redis.Redis.from_url(
                settings.redis_url,
                password=password,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            with _answering():
                _checked(client)
            found = _STORES[at] = RedisFeatureStore(client, settings.redis_prefix)
    return found


def _checked(client: redis.Redis) -> None:
    """`check_version`, or 500 internal naming the version (and an error logged): a Redis
    this old would refuse the scripts' commands one request at a time."""
    try:
        check_version(client)
    except RedisTooOld as exc:
        client.close()
        emit(Event.ERROR, str(exc))
        raise Problem(ProblemCode.INTERNAL, str(exc)) from exc
