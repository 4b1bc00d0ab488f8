"""The risk features' reference store, in the database (`duopass.risk.FeatureStore`): it works
in its caller's transaction, so a decision and the counts it read and added commit together, and
every server process and a restart see the same counts.

An observation costs two statements at most: one multi-row upsert of every bucket row it adds
to (each key in each window) and one of its pairs; a read of any number of queries (up to
`QUERIES_MAX`) is one statement. Rows expire with their window: maintenance deletes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, delete, func, literal_column, select
from sqlalchemy import union_all as sql_union_all
from sqlalchemy.dialects import postgresql, sqlite
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
from duopass.risk.features import QUERIES_MAX
from duopass.risk.windows import RETENTION_S
from duopass.server.store.risk import RiskBucket, RiskPair
from duopass.server.unit_of_work import Unit

__all__ = ["DatabaseFeatureStore", "account_key", "observe", "sign_in", "store_for"]


class DatabaseFeatureStore:
    """`FeatureStore` in the tables of `store.risk`, on one unit's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name != "sqlite"

    def record(self, observations: Sequence[Observation], *, now: int) -> None:
        buckets = [vars(row) for row in bucket_rows(observations, now)]
        if buckets:
            insert = self._insert(RiskBucket).values(buckets)
            self.session.execute(
                insert.on_conflict_do_update(
                    index_elements=["key", "signal", "span_s", "start"],
                    set_={
                        "events": RiskBucket.events + insert.excluded.events,
                        "last_at": self._greatest(RiskBucket.last_at, insert.excluded.last_at),
                    },
                )
            )
        pairs = [vars(row) for row in pair_rows(observations, now)]
        if pairs:
            insert = self._insert(RiskPair).values(pairs)
            self.session.execute(
                insert.on_conflict_do_update(
                    index_elements=["subject", "signal", "other"],
                    set_={"last_at": self._greatest(RiskPair.last_at, insert.excluded.last_at)},
                )
            )

    def read(self, queries: Sequence[Query], *, now: int) -> Features:
        if len(queries) > QUERIES_MAX:
            raise ValueError(f"at most {QUERIES_MAX} queries in one read")
        if not queries:
            return Features()
        parts = [_part(n, query, now) for n, query in enumerate(queries)]
        values: dict[int, int | None] = {
            n: None if value is None else int(value)
            for n, value in self.session.execute(sql_union_all(*parts))
        }
        return Features([(query, values[n]) for n, query in enumerate(queries)])

    def expire(self, *, now: int) -> int:
        gone = 0
        for window in Window:
            result = self.session.execute(
                delete(RiskBucket).where(
                    RiskBucket.span_s == window.span_s, RiskBucket.start <= now - window.span_s
                )
            )
            gone += _rows(result)
        result = self.session.execute(delete(RiskPair).where(RiskPair.last_at <= now - RETENTION_S))
        return gone + _rows(result)

    def _insert(self, table: type[RiskBucket] | type[RiskPair]) -> Any:
        """The dialect's INSERT, which has ON CONFLICT DO UPDATE on both."""
        return (postgresql.insert if self._postgres else sqlite.insert)(table)

    def _greatest(self, a: Any, b: Any) -> ColumnElement[Any]:
        return func.greatest(a, b) if self._postgres else func.max(a, b)


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _part(n: int, query: Query, now: int) -> Select[int, int]:
    """One query as one row (its index, its value), for a UNION ALL of them all."""
    index = literal_column(str(n), BigInteger).label("n")  # an int of ours, inlined
    key, signal = str(query.key), query.signal.value
    if isinstance(query, Distinct):
        return select(index, cast(func.count(), BigInteger).label("value")).where(
            RiskPair.subject == key,
            RiskPair.signal == signal,
            RiskPair.kind == query.of.value,
            RiskPair.last_at > now - query.window.span_s,
        )
    window = query.window if isinstance(query, Count) else Window.DAY
    value = (
        func.coalesce(func.sum(RiskBucket.events), 0)
        if isinstance(query, Count)
        else func.max(RiskBucket.last_at)
    )
    return select(index, cast(value, BigInteger).label("value")).where(
        RiskBucket.key == key,
        RiskBucket.signal == signal,
        RiskBucket.span_s == window.span_s,
        RiskBucket.start > now - window.span_s,
    )


def store_for(unit: Unit) -> FeatureStore:
    """The feature store a unit records in and reads from: the database's, in its transaction."""
    return DatabaseFeatureStore(unit.session)


def observe(unit: Unit, *observations: Observation) -> None:
    """Count `observations` in the unit's feature store, at the unit's time."""
    store_for(unit).record(observations, now=unit.now)


def account_key(unit: Unit, *, staff: bool, principal_id: int | None, login: str) -> Key:
    """An account's key: `holder:ID` or `staff:ID`; for a login nobody has, a keyed digest of
    it (people type passwords into the login field: an unknown login is never stored)."""
    if principal_id is not None:
        return Key(KeyKind.ACCOUNT, f"{'staff' if staff else 'holder'}:{principal_id}")
    named = f"{'staff' if staff else 'holder'}\n{login}".encode()
    digest = hmac.new(unit.keyring.digest_key, b"risk-login\n" + named, hashlib.sha256)
    return Key(KeyKind.ACCOUNT, "login:" + digest.hexdigest()[:24])


def sign_in(account: Key, client: str | None, *, at: int, failed: bool) -> Observation:
    """A password sign-in (or a failed one) of `account` from the address `client`: counted per
    account, address and network; the network and the account each seen with the other."""
    keys, pairs = [account], []
    network = network_of(client)
    if client is not None and network is not None:
        net = Key(KeyKind.NETWORK, network)
        keys += [Key(KeyKind.ADDRESS, client), net]
        pairs = [Pair(net, account), Pair(account, net)]
    signal = Signal.SIGN_IN_FAILURE if failed else Signal.SIGN_IN
    return Observation(at, signal, tuple(keys), tuple(pairs))
