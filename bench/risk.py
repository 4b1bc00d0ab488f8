"""The risk engine's cost: a feature update plus a rule evaluation per request, in process, on
each feature store (memory, the database's on SQLite and PostgreSQL, Redis); and the online
scan rate over HTTP with the engine on, as a ratio to the same server with it off
(`DUOPASS_RISK_ENGINE=0` in its environment). Goal: >= 0.9x.

One request is a sign-in as the server judges it: its attempt counted (per account, address,
network), the point's six features read (one statement), the packaged policy's signals and
guards evaluated. Traffic spreads over 200 accounts and 50 networks, one request a second.

    python -m bench.risk [--quick] [--postgres] [--redis]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import online
from bench.online_server import postgres_database
from bench.timing import best_of, parser, table, us
from duopass.policy import DEFAULT_POLICY
from duopass.policy.load import load
from duopass.risk import FeatureStore, Key, KeyKind, MemoryFeatureStore
from duopass.risk.points import Point, Subject, judge, queries
from duopass.server.services.risk_features import DatabaseFeatureStore, attempt
from duopass.server.store.db import Database

START = 1_800_000_000
POLICY = load(DEFAULT_POLICY.read_text())


def _request(n: int) -> tuple[Key, str, int]:
    account = Key(KeyKind.ACCOUNT, f"holder:{n % 200}")
    return account, f"10.{n % 50}.{n % 7}.{n % 200 + 1}", START + n


def requests(store: FeatureStore, first: int, count: int) -> None:
    """`count` sign-ins: each counted, its features read, the policy's decision made; what
    expired forgotten every minute, as the server's maintenance does."""
    for n in range(first, first + count):
        account, client, now = _request(n)
        if n % 60 == 0:
            store.expire(now=now)
        store.record([attempt(account, client, at=now)], now=now)
        features = store.read(queries(Point.SIGN_IN, Subject(account, None, client)), now=now)
        judge(POLICY, Point.SIGN_IN, features, {"staff": False, "allowlisted": False})


def judging(count: int) -> Callable[[], None]:
    """The rule evaluation alone, on features already read."""
    store = MemoryFeatureStore()
    account, client, now = _request(0)
    features = store.read(queries(Point.SIGN_IN, Subject(account, None, client)), now=now)

    def run() -> None:
        for _ in range(count):
            judge(POLICY, Point.SIGN_IN, features, {"staff": False, "allowlisted": False})

    return run


def stepping(make: Callable[[], FeatureStore], count: int) -> Callable[[], None]:
    """Successive runs continue the stream (times go on), on one store."""
    store, done = make(), [0]

    def run() -> None:
        requests(store, done[0], count)
        done[0] += count

    return run


@contextmanager
def database_store(url: str) -> Iterator[Callable[[], FeatureStore]]:
    """A migrated database; each run in one transaction (a request's statements, without the
    commit every request makes anyway)."""
    database = Database(url)
    database.migrate()
    sessions: list[object] = []

    def make() -> FeatureStore:
        session = database._sessions()  # the bench's own: no unit of work around it
        sessions.append(session)
        return DatabaseFeatureStore(session)

    try:
        yield make
    finally:
        for session in sessions:
            session.commit()  # type: ignore[attr-defined]
            session.close()  # type: ignore[attr-defined]
        database.dispose()


def in_process(quick: bool, postgres: bool, use_redis: bool) -> None:
    count, rounds = (200, 2) if quick else (500, 5)
    rows = {"rule evaluation alone (judge)": judging(count)}
    # the memory store reads by scanning every row it holds (it is the tests' reference):
    # a few hundred requests show its cost
    rows["memory store: count + read + judge"] = stepping(MemoryFeatureStore, count)
    with tempfile.TemporaryDirectory() as tmp, database_store(f"sqlite:///{tmp}/risk.db") as db:
        rows["database store, SQLite: count + read + judge"] = stepping(db, count)
        if postgres:
            with database_store(postgres_database()) as pg:
                rows["database store, PostgreSQL: count + read + judge"] = stepping(pg, count)
                _report(rows, count, rounds, use_redis)
        else:
            _report(rows, count, rounds, use_redis)


def _report(rows: dict[str, Callable[[], None]], count: int, rounds: int, use_redis: bool) -> None:
    if use_redis:
        from duopass.server.services.risk_redis import store as redis_store
        from duopass.server.settings import Settings
        from tests.redis import OwnRedis

        with OwnRedis() as own, tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                db_url=f"sqlite:///{tmp}/x.db",
                data_dir=Path(tmp),
                risk_store="redis",
                redis_url=own.url,
            )
            rows["Redis store: count + read + judge"] = stepping(
                lambda: redis_store(settings), count
            )
            best = best_of(rows, count, rounds)
    else:
        best = best_of(rows, count, rounds)
    print(
        f"risk engine in process, per sign-in request ({count} a round, best of {rounds}):",
        flush=True,
    )
    table([(name, us(seconds)) for name, seconds in best.items()])


def scan_rates(quick: bool) -> float:
    """The online scan rate with the engine on over the rate with it off (SQLite, one
    process), each the best of its runs, runs alternating."""
    best = {"off": 0.0, "on": 0.0}
    for _ in range(1 if quick else 2):
        for side in ("off", "on"):
            os.environ["DUOPASS_RISK_ENGINE"] = "1" if side == "on" else "0"
            try:
                _, result, _ = online.measure_one("sqlite", quick, 1)
            finally:
                del os.environ["DUOPASS_RISK_ENGINE"]
            best[side] = max(best[side], result[0])
    print("online payment scans over HTTP, SQLite, one server process (bench.online's load):")
    print(f"  ({'200 scans, 4 connections' if quick else '2,000 scans, 8 connections'} a run)")
    table([(f"engine {side}", f"{rate:8.0f} scans/s") for side, rate in best.items()])
    return best["on"] / best["off"]


def main() -> None:
    parse = parser(__doc__)
    parse.add_argument("--postgres", action="store_true", help="also the PostgreSQL store")
    parse.add_argument("--redis", action="store_true", help="also the Redis store")
    args = parse.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    in_process(args.quick, args.postgres, args.redis)
    ratio = scan_rates(args.quick)
    print(f"  engine on / off: {ratio:.2f}x (goal >= 0.9x)")
    print(f"RATIO risk_scan_on_vs_off {ratio:.3f}")


if __name__ == "__main__":
    main()
