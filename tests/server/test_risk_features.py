"""The risk features in the database (issue 15, "Features"): every read the same as the reference
store's as the clock moves through the three windows, on SQLite and PostgreSQL; state bounded by
expiry; counts shared by two processes' engines and kept across a restart; and failed sign-ins
over HTTP counted per account and network."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import event, func, select

from duopass.risk import (
    Count,
    Distinct,
    Key,
    KeyKind,
    LastSeen,
    MemoryFeatureStore,
    Observation,
    Pair,
    Query,
    Signal,
    Window,
)
from duopass.risk.features import SEEN_WITH_MAX
from duopass.server import maintenance
from duopass.server.services.risk_features import DatabaseFeatureStore
from duopass.server.store.db import Database
from duopass.server.store.risk import RiskBucket, RiskPair
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit
from tests.server.conftest import database_url
from tests.server.harness import Running

T0 = 1_800_000_000
ACCOUNTS = [Key(KeyKind.ACCOUNT, f"holder:{n}") for n in range(4)]
NETWORKS = [Key(KeyKind.NETWORK, f"10.0.{n}.0/24") for n in range(2)]
SIGNALS = [Signal.SIGN_IN, Signal.SIGN_IN_FAILURE]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    return database_url(request, tmp_path)


@pytest.fixture
def database(url) -> Iterator[Database]:
    database = Database(url)
    yield database
    database.dispose()


def _record(database: Database, observations: list[Observation], now: int) -> None:
    with database.unit() as session:
        DatabaseFeatureStore(session).record(observations, now=now)


def _read(database: Database, queries: list[Query], now: int) -> dict[str, int | None]:
    with database.unit() as session:
        return dict(DatabaseFeatureStore(session).read(queries, now=now))


def _seen_with(store: Database | MemoryFeatureStore, now: int, limit: int) -> list[tuple[Key, int]]:
    """The accounts that failed to sign in from the first network in the last hour."""
    args = (NETWORKS[0], Signal.SIGN_IN_FAILURE, KeyKind.ACCOUNT)
    if isinstance(store, MemoryFeatureStore):
        return store.seen_with(*args, window=Window.HOUR, now=now, limit=limit)
    with store.unit() as session:
        return DatabaseFeatureStore(session).seen_with(
            *args, window=Window.HOUR, now=now, limit=limit
        )


def _stream(seed: int) -> Iterator[tuple[int, Observation]]:
    """Sign-ins and failures of a few accounts from two networks, at uneven gaps: some within
    a second, some minutes or hours apart, over two days."""
    rng = random.Random(seed)
    now = T0 + rng.randrange(3600)
    while now < T0 + 2 * 86400:
        now += rng.choice([0, 1, 1, 7, 30, 59, 61, 600, 3599, 3601, 20_000])
        account, network = rng.choice(ACCOUNTS), rng.choice(NETWORKS)
        pairs = (Pair(network, account), Pair(account, network))
        yield now, Observation(now, rng.choice(SIGNALS), (account, network), pairs)


def _queries() -> list[Query]:
    account, network = ACCOUNTS[0], NETWORKS[0]
    return [
        *(
            Count(key, signal, w)
            for key in (account, network)
            for signal in SIGNALS
            for w in Window
        ),
        *(Distinct(network, Signal.SIGN_IN_FAILURE, KeyKind.ACCOUNT, w) for w in Window),
        *(Distinct(account, Signal.SIGN_IN, KeyKind.NETWORK, w) for w in Window),
        LastSeen(account, Signal.SIGN_IN_FAILURE),
        LastSeen(network, Signal.SIGN_IN),
    ]


INSTALLATIONS = [Key(KeyKind.INSTALLATION, f"{n:024x}") for n in range(2)]
TRIED = [Key(KeyKind.ACCOUNT, f"holder:{n}") for n in range(7)]


def _attempts(seed: int) -> Iterator[tuple[int, Observation]]:
    """Two wallet installations trying seven accounts (`account_attempt`, installation ->
    account) at uneven gaps over two days: one installation on many accounts, as a farm's phone."""
    rng = random.Random(seed)
    now = T0 + rng.randrange(3600)
    while now < T0 + 2 * 86400:
        now += rng.choice([0, 1, 59, 61, 600, 1800, 3599, 3601, 20_000])
        installation, account = rng.choice(INSTALLATIONS), rng.choice(TRIED)
        pair = Pair(installation, account)
        yield now, Observation(now, Signal.ACCOUNT_ATTEMPT, (installation,), (pair,))


def _attempt_queries(installation: Key) -> list[Query]:
    """Distinct accounts per installation (the engine reads the hour's and the day's) and its
    attempts, in every window."""
    tried = Signal.ACCOUNT_ATTEMPT
    return [
        *(Distinct(installation, tried, KeyKind.ACCOUNT, w) for w in Window),
        *(Count(installation, tried, w) for w in Window),
    ]


def test_distinct_accounts_per_installation_are_the_reference_stores(database):
    """The installation -> accounts query of every window, read at every step of its stream:
    the same as the in-memory reference's, which counted several accounts (or the stream would
    prove nothing)."""
    reference, most = MemoryFeatureStore(), 0
    for now, observation in _attempts(seed=16):
        _record(database, [observation], now)
        reference.record([observation], now=now)
        for installation in INSTALLATIONS:
            queries = _attempt_queries(installation)
            expected = dict(reference.read(queries, now=now))
            assert _read(database, queries, now) == expected, (now, installation)
            most = max(most, expected["installation.account_attempt.distinct_account.1d"] or 0)
    assert most >= 4


def test_every_read_is_the_reference_stores_as_the_clock_moves(database):
    """One observation per transaction, as units record them; every read (20 features) equals
    the in-memory reference's, and expiring changes none of them."""
    reference = MemoryFeatureStore()
    queries = _queries()
    for step, (now, observation) in enumerate(_stream(seed=15)):
        _record(database, [observation], now)
        reference.record([observation], now=now)
        if step % 2 == 0:
            assert _read(database, queries, now) == dict(reference.read(queries, now=now)), now
            for limit in (2, SEEN_WITH_MAX):
                seen, expected = _seen_with(database, now, limit), _seen_with(reference, now, limit)
                assert [at for _, at in seen] == [at for _, at in expected]  # ties: any order
                assert limit == 2 or sorted(seen) == sorted(expected)
        if step % 10 == 0:
            with database.unit() as session:
                DatabaseFeatureStore(session).expire(now=now)
            reference.expire(now=now)
            assert _read(database, queries, now) == dict(reference.read(queries, now=now))
    assert any(v for k, v in _read(database, queries, now).items() if k.endswith(".1d"))


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)  # its driver reports each statement
def test_an_observation_is_two_statements_and_a_read_one(database):
    statements: list[str] = []

    def traced(dbapi, _record) -> None:
        dbapi.set_trace_callback(statements.append)

    def kinds() -> list[str]:
        return [s.split()[0] for s in statements if s.startswith(("INSERT", "SELECT"))]

    event.listen(database.engine, "connect", traced)
    now, observation = next(_stream(seed=1))
    _record(database, [observation], now)
    assert kinds() == ["INSERT", "INSERT"]  # every bucket row in one upsert, the pairs in one
    del statements[:]
    assert len(_read(database, _queries(), now)) == 20
    assert kinds() == ["SELECT"]


def test_expiry_keeps_the_state_bounded(database):
    """A day of one failure every 30 s on one account (2,880 observations,
    in batches): after expiry at most the buckets its windows count remain."""
    account, network = ACCOUNTS[0], NETWORKS[0]
    now = T0 + 86400
    for hour in range(24):
        batch = [
            Observation(
                T0 + hour * 3600 + s, Signal.SIGN_IN_FAILURE, (account,), (Pair(network, account),)
            )
            for s in range(0, 3600, 30)
        ]
        _record(database, batch, now=T0 + hour * 3600 + 3599)
    with database.unit() as session:
        rows = session.scalar(select(func.count()).select_from(RiskBucket))
        gone = DatabaseFeatureStore(session).expire(now=now)
    with database.unit() as session:
        left = session.scalar(select(func.count()).select_from(RiskBucket))
        assert left <= 60 + 60 + 24
        assert rows - left == gone
    count = Count(account, Signal.SIGN_IN_FAILURE, Window.DAY)
    assert _read(database, [count], now)[count.feature] == 23 * 120  # the first hour has left
    with database.unit() as session:
        DatabaseFeatureStore(session).expire(now=now + 86400)
    with database.unit() as session:
        assert session.scalar(select(func.count()).select_from(RiskBucket)) == 0
        assert session.scalar(select(func.count()).select_from(RiskPair)) == 0


def test_two_processes_share_the_counts_and_a_restart_keeps_them(url, database):
    """Two engines on one database (two server processes) count concurrently into the same rows
    and neither loses the other's; a third opened afterwards (a restart) reads them all."""
    other = Database(url)
    account, network = ACCOUNTS[1], NETWORKS[1]
    failure = Observation(T0, Signal.SIGN_IN_FAILURE, (account, network), (Pair(network, account),))

    def count_ten(db: Database) -> None:
        for _ in range(10):
            _record(db, [failure], now=T0)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(count_ten, [database, other, database, other]))
    other.dispose()
    database.dispose()
    restarted = Database(url)
    queries: list[Query] = [
        *(Count(account, Signal.SIGN_IN_FAILURE, w) for w in Window),
        Distinct(network, Signal.SIGN_IN_FAILURE, KeyKind.ACCOUNT, Window.HOUR),
        LastSeen(network, Signal.SIGN_IN_FAILURE),
    ]
    assert _read(restarted, queries, T0 + 1) == {
        "account.sign_in_failure.1m": 40,
        "account.sign_in_failure.1h": 40,
        "account.sign_in_failure.1d": 40,
        "network.sign_in_failure.distinct_account.1h": 1,
        "network.sign_in_failure.last_at": T0,
    }
    restarted.dispose()


def _from(address: str, base_url: str) -> httpx.Client:
    """A client whose connections come from `address` (another 127.0.0.0/8 address)."""
    return httpx.Client(
        base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=30
    )


def test_failed_sign_ins_are_counted_per_account_and_network(clocked_server, clock):
    server: Running = clocked_server
    admin = server.admin()
    admin.holder("mia")
    admin.holder("noa")
    here, there = _from("127.0.0.2", server.url), _from("127.0.1.3", server.url)
    wrong = {"password": "wrong-password"}
    with here, there:
        for login in ("mia", "mia", "noa", "nobody"):
            assert here.post("/v1/session", json={"login": login, **wrong}).status_code == 401
        assert there.post("/v1/session", json={"login": "mia", **wrong}).status_code == 401
        right = {"login": "mia", "password": "pw-mia-secret"}
        assert there.post("/v1/session", json=right).status_code == 200
    mia = server.ctx.run(
        lambda unit: unit.session.scalar(select(Holder.id).where(Holder.login == "mia"))
    )
    account = Key(KeyKind.ACCOUNT, f"holder:{mia}")
    network = Key(KeyKind.NETWORK, "127.0.0.0/24")
    failure = Signal.SIGN_IN_FAILURE
    queries: list[Query] = [
        *(Count(account, failure, w) for w in Window),
        *(Count(network, failure, w) for w in Window),
        Distinct(network, failure, KeyKind.ACCOUNT, Window.HOUR),
        Count(Key(KeyKind.ADDRESS, "127.0.1.3"), Signal.SIGN_IN, Window.MINUTE),
        Distinct(account, failure, KeyKind.NETWORK, Window.DAY),
    ]

    def read() -> dict[str, int | None]:
        def in_unit(unit: Unit) -> dict[str, int | None]:
            return dict(DatabaseFeatureStore(unit.session).read(queries, now=unit.now))

        return server.ctx.run(in_unit)

    assert read() == {
        "account.sign_in_failure.1m": 3,
        "account.sign_in_failure.1h": 3,
        "account.sign_in_failure.1d": 3,
        "network.sign_in_failure.1m": 4,
        "network.sign_in_failure.1h": 4,
        "network.sign_in_failure.1d": 4,
        "network.sign_in_failure.distinct_account.1h": 3,  # mia, noa and a login nobody has
        "address.sign_in.1m": 1,
        "account.sign_in_failure.distinct_network.1d": 2,
    }
    clock.advance(60)
    after_a_minute = read()
    assert after_a_minute["account.sign_in_failure.1m"] == 0
    assert after_a_minute["account.sign_in_failure.1h"] == 3
    clock.advance(3600)
    after_an_hour = read()
    assert after_an_hour["network.sign_in_failure.1h"] == 0
    assert after_an_hour["network.sign_in_failure.1d"] == 4
    clock.advance(86400)
    assert set(read().values()) == {0}
    maintenance.run_once(server.ctx)  # what the server does every minute: the rows are gone

    def rows(unit: Unit) -> int:
        tables = (RiskBucket, RiskPair)
        return sum(unit.session.scalar(select(func.count()).select_from(t)) or 0 for t in tables)

    assert server.ctx.run(rows) == 0


def test_a_batch_of_many_rows_is_written_in_chunks(database):
    """A journal's worth of acceptances at once: 900 bucket rows, more than one upsert holds."""
    terminals = [Key(KeyKind.TERMINAL, f"till-{n}") for n in range(300)]
    batch = [
        Observation(T0, Signal.OFFLINE_ACCEPTANCE, (terminal, ACCOUNTS[n % 4]))
        for n, terminal in enumerate(terminals)
    ]
    _record(database, batch, now=T0 + 10)
    queries: list[Query] = [
        Count(terminals[-1], Signal.OFFLINE_ACCEPTANCE, Window.MINUTE),
        Count(ACCOUNTS[0], Signal.OFFLINE_ACCEPTANCE, Window.DAY),
    ]
    assert list(_read(database, queries, T0 + 10).values()) == [1, 75]
    with database.unit() as session:
        assert session.scalar(select(func.count()).select_from(RiskBucket)) == 3 * 304
