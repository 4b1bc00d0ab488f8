"""The risk features' reference store, in the database (`duopass.risk.FeatureStore`): it works
in its caller's transaction, so a decision and the counts it read and added commit together, and
every server process and a restart see the same counts. `store_for` gives a unit this store, or
the Redis one (`risk_redis`) where the settings choose it.

An observation costs two statements at most: one multi-row upsert of every bucket row it adds
to (each key in each window) and one of its pairs; a read of any number of queries (up to
`QUERIES_MAX`) is one statement. The texts are made once per row count and per shape of read,
and run on the driver, as the hot paths' are (`store.sql`). Rows expire with their window:
maintenance deletes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy import delete, event
from sqlalchemy.orm import Session

from duopass.risk import (
    Count,
    Distinct,
    Features,
    FeatureStore,
    Key,
    KeyKind,
    Observation,
    Pair,
    Query,
    Signal,
    Window,
    network_of,
)
from duopass.risk.buckets import bucket_rows, pair_rows
from duopass.risk.features import QUERIES_MAX, SEEN_WITH_MAX
from duopass.risk.windows import RETENTION_S
from duopass.server.store import sql
from duopass.server.store.risk import RiskBucket, RiskPair
from duopass.server.unit_of_work import Unit

__all__ = [
    "ROWS_PER_STATEMENT",
    "DatabaseFeatureStore",
    "account_key",
    "attempt",
    "counted",
    "failed",
    "installation_key",
    "observe",
    "observe_at_commit",
    "sign_in",
    "store_for",
    "tried",
    "withdrawn",
]


class DatabaseFeatureStore:
    """`FeatureStore` in the tables of `store.risk`, on one unit's session. Its statements go to
    the driver (`store.sql.Raw`): a write waits to go with the next read inside `deferred()`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        raw = sql.raw(self.session)
        writes: list[tuple[str, tuple[str, ...], Sequence[Any]]] = [
            (_BUCKET_UPSERT, _BUCKET, bucket_rows(observations, now)),
            (_PAIR_UPSERT, _PAIR, pair_rows(observations, now)),
        ]
        for template, columns, rows in writes:
            for first in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[first : first + ROWS_PER_STATEMENT]
                upsert = _upsert(template, columns, len(chunk))
                if raw.is_sqlite:  # by position: the rows' values in the statement's order
                    values = attrgetter(*columns)
                    raw.run_values(upsert, [value for row in chunk for value in values(row)])
                    continue
                params = {
                    f"{name}{n}": getattr(row, name)
                    for n, row in enumerate(chunk)
                    for name in columns
                }
                raw.later(upsert, params)

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        if len(queries) > QUERIES_MAX:
            raise ValueError(f"at most {QUERIES_MAX} queries in one read")
        if not queries:
            return Features()
        params: dict[str, Any] = {}
        for n, query in enumerate(queries):
            params |= _params(n, query, now)
        shape = tuple(type(query).__name__ for query in queries)
        rows = sql.raw(self.session).all(_union(shape), params)
        values = {n: None if value is None else int(value) for n, value in rows}
        return Features([(query, values[n]) for n, query in enumerate(queries)])

    def seen_with(
        self, key: Key, signal: Signal, of: KeyKind, *, window: Window, now: int, limit: int
    ) -> list[tuple[Key, int]]:
        if not 0 < limit <= SEEN_WITH_MAX:
            raise ValueError(f"a limit of 1 to {SEEN_WITH_MAX}")
        params: dict[str, Any] = {"key": str(key), "signal": signal.value, "kind": of.value}
        params |= {"since": now - window.span_s, "limit": limit}
        rows = sql.raw(self.session).all(_SEEN_WITH, params)
        return [(Key.parse(other), int(last)) for other, last in rows]

    def expire(self, *, now: int) -> int:
        buckets = self.session.execute(
            delete(RiskBucket).where(RiskBucket.start + RiskBucket.span_s <= now)
        )
        pairs = self.session.execute(delete(RiskPair).where(RiskPair.last_at <= now - RETENTION_S))
        return _rows(buckets) + _rows(pairs)


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


ROWS_PER_STATEMENT = 500
"""Most rows one upsert writes (six parameters each): an observation's are at most 24 (8 keys,
3 windows); a batch of many observations takes one statement per 500 rows."""
_BUCKET = ("key", "signal", "span_s", "start", "events", "last_at")
_BUCKET_UPSERT = (
    'INSERT INTO risk_buckets ("key", signal, span_s, start, events, last_at) VALUES {rows} '
    'ON CONFLICT ("key", signal, span_s, start) DO UPDATE SET '
    "events = risk_buckets.events + excluded.events, last_at = CASE "
    "WHEN excluded.last_at > risk_buckets.last_at THEN excluded.last_at "
    "ELSE risk_buckets.last_at END"
)
_PAIR = ("subject", "signal", "kind", "other", "last_at")
_PAIR_UPSERT = (
    "INSERT INTO risk_pairs (subject, signal, kind, other, last_at) VALUES {rows} "
    "ON CONFLICT (subject, signal, kind, other) DO UPDATE SET last_at = CASE "
    "WHEN excluded.last_at > risk_pairs.last_at THEN excluded.last_at "
    "ELSE risk_pairs.last_at END"
)
_PARTS = {
    "Count": (
        'SELECT {n}, COALESCE(SUM(events), 0) FROM risk_buckets WHERE "key" = :key{n} '
        "AND signal = :signal{n} AND span_s = :span{n} AND start > :since{n}"
    ),
    "LastSeen": (
        'SELECT {n}, MAX(last_at) FROM risk_buckets WHERE "key" = :key{n} '
        "AND signal = :signal{n} AND span_s = :span{n} AND start > :since{n}"
    ),
    "Distinct": (
        "SELECT {n}, COUNT(*) FROM risk_pairs WHERE subject = :key{n} AND signal = :signal{n} "
        "AND kind = :kind{n} AND last_at > :since{n}"
    ),
}
"""One query as one row: its index and its value (standard SQL: one text for both databases)."""
_SEEN_WITH = sql.statement(
    "SELECT other, last_at FROM risk_pairs WHERE subject = :key AND signal = :signal "
    "AND kind = :kind AND last_at > :since ORDER BY last_at DESC LIMIT :limit"
)


@lru_cache(maxsize=128)
def _upsert(template: str, columns: tuple[str, ...], rows: int) -> sql.Statement:
    """The multi-row upsert of `rows` rows (one text per row count: a few dozen at most)."""
    values = ", ".join(
        "(" + ", ".join(f":{name}{n}" for name in columns) + ")" for n in range(rows)
    )
    return sql.statement(template.format(rows=values))


@lru_cache(maxsize=256)
def _union(shape: tuple[str, ...]) -> sql.Statement:
    """The one statement that reads queries of these kinds, in this order."""
    return sql.statement(
        " UNION ALL ".join(_PARTS[kind].format(n=n) for n, kind in enumerate(shape))
    )


def _params(n: int, query: Query, now: int) -> dict[str, Any]:
    found: dict[str, Any] = {f"key{n}": str(query.key), f"signal{n}": query.signal.value}
    if isinstance(query, Distinct):
        found |= {f"kind{n}": query.of.value, f"since{n}": now - query.window.span_s}
        return found
    window = query.window if isinstance(query, Count) else Window.DAY
    return found | {f"span{n}": window.span_s, f"since{n}": now - window.span_s}


def store_for(unit: Unit) -> FeatureStore:
    """The feature store a unit records in and reads from: the database's, in its transaction;
    or, with `risk_store = "redis"`, this process's Redis store, written once the unit has
    committed (`risk_redis.UnitStore`)."""
    if unit.settings.risk_store == "redis":
        # Imported when asked for: the Redis client takes a quarter of a second to import.
        from duopass.server.services import risk_redis  # noqa: PLC0415

        return risk_redis.UnitStore(risk_redis.store(unit.settings), unit.session)
    return DatabaseFeatureStore(unit.session)


def counted(unit: Unit, observations: Sequence[Observation], queries: Sequence[Query]) -> Features:
    """Count `observations` at the unit's time and read `queries` with them counted, no other
    unit's count between the two: the database's in the unit's transaction (the count's rows
    stay locked until it ends; a caller whose reads must see every other unit's count
    serialises those units itself, as `partners.guard` locks the client's row), Redis's in one
    `MULTI` at once, not once the unit commits (`risk_redis.UnitStore.counted`). The caller
    checks `settings.risk_engine`."""
    if unit.settings.risk_store == "redis":
        from duopass.server.services import risk_redis  # noqa: PLC0415 (as `store_for`)

        store = risk_redis.UnitStore(risk_redis.store(unit.settings), unit.session)
        return store.counted(observations, queries, now=unit.now)
    database = DatabaseFeatureStore(unit.session)
    database.record(observations, now=unit.now)
    return database.read(queries, now=unit.now)


def observe(unit: Unit, *observations: Observation) -> None:
    """Count `observations` in the unit's feature store, at the unit's time (nothing with the
    engine off: `settings.risk_engine`)."""
    if unit.settings.risk_engine:
        store_for(unit).record(observations, now=unit.now)


_PENDING = "risk_features_pending"
"""`Session.info` key: observations counted when the transaction commits (a tuple: a savepoint
that fails puts the unit's `info` back, and with it what came before its own)."""
_STORE = "risk_features_store"
"""`Session.info` key: the feature store they are counted in (`store_for` the first unit's)."""


def observe_at_commit(unit: Unit, *observations: Observation) -> None:
    """Count `observations` as the unit's transaction commits, together with those of every
    other unit of that transaction (a group commit's scans): one upsert for the batch, not one
    a request. In the same transaction (they commit together); reads made before then do not
    see them. Nothing with the engine off."""
    if not unit.settings.risk_engine:
        return
    info = unit.session.info
    pending = info.get(_PENDING)
    if pending is None:
        info[_STORE] = store_for(unit)
    info[_PENDING] = (*(pending or ()), *observations)


@event.listens_for(Session, "before_commit")
def _flush(session: Session) -> None:
    """Every session's commit (one listener for the class: a session's own would be one more
    to register a transaction, and a session kept for many, `store.db.KeptUnits`, would
    gather them)."""
    info = session.info
    if _PENDING in info:
        pending = info.pop(_PENDING)
        store: FeatureStore = info.pop(_STORE)
        if pending:
            store.record(pending, now=max(observation.at for observation in pending))


def account_key(unit: Unit, *, staff: bool, principal_id: int | None, login: str) -> Key:
    """An account's key: `holder:ID` or `staff:ID`; for a login nobody has, a keyed digest of
    it (people type passwords into the login field: an unknown login is never stored)."""
    if principal_id is not None:
        return Key(KeyKind.ACCOUNT, f"{'staff' if staff else 'holder'}:{principal_id}")
    named = f"{'staff' if staff else 'holder'}\n{login}".encode()
    digest = hmac.new(unit.keyring.digest_key, b"risk-login\n" + named, hashlib.sha256)
    return Key(KeyKind.ACCOUNT, "login:" + digest.hexdigest()[:24])


def installation_key(unit: Unit, installation: str | None) -> Key | None:
    """The key of the wallet installation a request names (`Duopass-Installation`, checked by
    the route), a keyed digest of it: the id is the client's own choice, kept like a login a
    nobody has. None when the request names none."""
    if installation is None:
        return None
    named = b"risk-installation\n" + installation.encode()
    digest = hmac.new(unit.keyring.digest_key, named, hashlib.sha256)
    return Key(KeyKind.INSTALLATION, digest.hexdigest()[:24])


def tried(account: Key, installation: Key | None, *, at: int) -> tuple[Observation, ...]:
    """An installation offered for `account` (a sign-in, a device enrolment), whatever comes
    of it: counted per installation, which is seen with the account. Nothing without one."""
    if installation is None:
        return ()
    pair = Pair(installation, account)
    return (Observation(at, Signal.ACCOUNT_ATTEMPT, (installation,), (pair,)),)


def sign_in(
    account: Key, client: str | None, *, at: int, failed: bool, device: Key | None = None
) -> Observation:
    """A sign-in (or a failed one) of `account` from the address `client`, with a device key's
    signature where `device` is given: counted per account, device, address and network; the
    network and the account each seen with the other, the account with the device."""
    keys, pairs = [account], []
    if device is not None:
        keys.append(device)
        pairs.append(Pair(account, device))
    network = network_of(client)
    if client is not None and network is not None:
        net = Key(KeyKind.NETWORK, network)
        keys += [Key(KeyKind.ADDRESS, client), net]
        pairs += [Pair(net, account), Pair(account, net)]
    signal = Signal.SIGN_IN_FAILURE if failed else Signal.SIGN_IN
    return Observation(at, signal, tuple(keys), tuple(pairs))


def attempt(account: Key, client: str | None, *, at: int, device: Key | None = None) -> Observation:
    """A sign-in as it starts: a pending failure, counted per account (device), address and
    network before the policy reads them, so that parallel attempts (a burst of guesses) each
    see the others; its pairs wait for the outcome (`failed`), or it is `withdrawn`."""
    return replace(sign_in(account, client, at=at, failed=True, device=device), pairs=())


def failed(pending: Observation, *, at: int) -> Observation:
    """The pending failure's outcome, a wrong password or signature: the pairs (network and
    account each seen with the other, the account with the device) that make distinct counts;
    its counts are already in."""
    account, others = pending.keys[0], pending.keys[1:]
    pairs = [Pair(account, key) for key in others if key.kind is KeyKind.DEVICE]
    for net in (key for key in others if key.kind is KeyKind.NETWORK):
        pairs += [Pair(net, account), Pair(account, net)]
    return Observation(at, Signal.SIGN_IN_FAILURE, (), tuple(pairs))


def withdrawn(pending: Observation) -> Observation:
    """What takes the pending failure back (the password was right, or the attempt refused
    before any guess): -1 event at the time it was counted, in the same buckets."""
    return replace(pending, events=-1)
