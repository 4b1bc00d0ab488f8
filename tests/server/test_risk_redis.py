"""The risk features in Redis (issue 15, "Features"): every read the same as the reference
store's over the two-day stream test_risk_features feeds the database's; a record and a read one
round trip each; state bounded by TTLs Redis enforces itself; counts shared by clients of
several processes, kept across a restart of a Redis with an append-only file; a password and a
key prefix; and failed sign-ins over HTTP counted in Redis, none in the database."""

from __future__ import annotations

import multiprocessing
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import islice
from typing import Any

import pytest
import redis
import typer
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from duopass.cli.serve import serve
from duopass.demo.serving import free_port
from duopass.risk import (
    Count,
    Distinct,
    Features,
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
from duopass.server.services import risk_redis, risk_redis_lua
from duopass.server.services.risk_features import store_for
from duopass.server.services.risk_redis import RedisFeatureStore
from duopass.server.settings import Settings
from duopass.server.store.risk import RiskBucket, RiskPair
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit
from tests.redis import OwnRedis, redis_url_fixture  # noqa: F401
from tests.server.conftest import database_url
from tests.server.harness import ADMIN_PASSWORD, Running, running_server
from tests.server.test_risk_features import (
    ACCOUNTS,
    INSTALLATIONS,
    NETWORKS,
    T0,
    _attempt_queries,
    _attempts,
    _from,
    _queries,
    _stream,
)


@pytest.fixture
def prefix() -> str:
    """A test's own keys on the run's shared Redis."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store(client: redis.Redis, prefix: str) -> RedisFeatureStore:
    return RedisFeatureStore(client, prefix)


def _keys(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(client.scan_iter(match=f"{prefix}*", count=1000))


def _seen_with(store: Any, now: int, limit: int) -> list[tuple[Key, int]]:
    args = (NETWORKS[0], Signal.SIGN_IN_FAILURE, KeyKind.ACCOUNT)
    return list(store.seen_with(*args, window=Window.HOUR, now=now, limit=limit))


def test_every_read_is_the_reference_stores_as_the_clock_moves(store):
    """The database's test, on Redis: one record per observation, every read (20 features) and
    every `seen_with` equal to the in-memory reference's, expiry or not."""
    reference = MemoryFeatureStore()
    queries = _queries()
    for step, (now, observation) in enumerate(_stream(seed=15)):
        store.record([observation], now=now)
        reference.record([observation], now=now)
        if step % 2 == 0:
            assert dict(store.read(queries, now=now)) == dict(reference.read(queries, now=now))
            for limit in (2, SEEN_WITH_MAX):
                seen, expected = _seen_with(store, now, limit), _seen_with(reference, now, limit)
                assert [at for _, at in seen] == [at for _, at in expected]  # ties: any order
                assert limit == 2 or sorted(seen) == sorted(expected)
        if step % 10 == 0:
            assert store.expire(now=now) == 0  # Redis forgets by itself
            reference.expire(now=now)
    final = dict(store.read(queries, now=now))
    assert final == dict(reference.read(queries, now=now))
    assert any(v for k, v in final.items() if k.endswith(".1d"))


def test_distinct_accounts_per_installation_are_the_reference_stores(store):
    """The database's test of the installation -> accounts query, on Redis."""
    reference, most = MemoryFeatureStore(), 0
    for now, observation in _attempts(seed=16):
        store.record([observation], now=now)
        reference.record([observation], now=now)
        for installation in INSTALLATIONS:
            queries = _attempt_queries(installation)
            expected = dict(reference.read(queries, now=now))
            assert dict(store.read(queries, now=now)) == expected, (now, installation)
            most = max(most, expected["installation.account_attempt.distinct_account.1d"] or 0)
    assert most >= 4


def test_reads_at_the_edges_of_every_window_are_the_reference_stores(store):
    """Events on one account and network, often exactly a bucket, a window or a second either
    side of one apart (the random stream rarely lands there), each read at its own time and at
    later times on and beside every window's edge: the same as the reference's."""
    rng = random.Random(7)
    reference, queries = MemoryFeatureStore(), _queries()
    account, network = ACCOUNTS[0], NETWORKS[0]
    now = T0 - T0 % 3600  # on every window's bucket edge
    later = (0, 1, 59, 60, 3599, 3600, 3601, 86399, 86400)
    for _ in range(60):
        now += rng.choice([0, 1, 59, 60, 61, 3540, 3599, 3600, 3601])
        signal = rng.choice([Signal.SIGN_IN, Signal.SIGN_IN_FAILURE])
        pairs = (Pair(network, account), Pair(account, network))
        observation = Observation(
            now - rng.choice([0, 0, 1, 60]), signal, (account, network), pairs
        )
        store.record([observation], now=now)
        reference.record([observation], now=now)
        reference.expire(now=now)  # what no later read counts: the reference's reads stay quick
        for at in (now + d for d in later):
            assert dict(store.read(queries, now=at)) == dict(reference.read(queries, now=at)), at


class _Counting(redis.Connection):
    """A connection that counts the requests it sends (a pipeline's: one)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_a_record_and_a_read_are_one_round_trip_each(redis_url, prefix):
    pool = redis.ConnectionPool.from_url(
        redis_url, connection_class=_Counting, decode_responses=True
    )
    counted = RedisFeatureStore(redis.Redis(connection_pool=pool), prefix)
    counted.client.ping()
    counted.client.script_load(risk_redis_lua.RECORD)  # as after a first use: no NOSCRIPT retry
    counted.client.script_load(risk_redis_lua.READ)
    now, observation = next(_stream(seed=1))
    _Counting.sent = 0
    counted.record([observation], now=now)  # 6 buckets, 2 latest times, 2 pairs
    assert _Counting.sent == 1
    assert len(counted.read(_queries(), now=now)) == 20
    assert _Counting.sent == 2
    pool.disconnect()


def test_every_key_expires_with_the_windows_that_count_it(store, client, prefix):
    """A day of one failure every 30 s (2,880 observations, in batches of an hour): each hash
    holds at most the buckets its window counts, each key's TTL ends when the last window that
    counts it does; and a key no window counts any more is gone when its TTL ends, by Redis's own
    clock, with `expire` doing nothing."""
    account, network = ACCOUNTS[0], NETWORKS[0]
    now = T0 + 86400
    for hour in range(24):
        batch = [
            Observation(
                T0 + hour * 3600 + s, Signal.SIGN_IN_FAILURE, (account,), (Pair(network, account),)
            )
            for s in range(0, 3600, 30)
        ]
        store.record(batch, now=T0 + hour * 3600 + 3599)
    count = Count(account, Signal.SIGN_IN_FAILURE, Window.DAY)
    assert store.read([count], now=now)[count.feature] == 23 * 120  # the first hour has left
    last = T0 + 23 * 3600 + 3570
    keys = _keys(client, prefix)
    assert len(keys) == 5  # 3 windows' buckets, the day's latest times, the network's accounts
    for key in keys:
        ttl = client.ttl(key)
        if ":risk:b:" in key:
            window = Window.of_span(int(key.split(":")[3]))
            assert client.hlen(key) <= window.span_s // window.bucket_s
            assert 0 < ttl <= window.span_s
        else:
            assert 0 < ttl <= last + 86400 - (T0 + 23 * 3600 + 3599)
    real_now = int(time.time())
    almost_a_day_ago = Observation(
        real_now - 86399, Signal.SIGN_IN, (account,), (Pair(account, network),)
    )
    store.record([almost_a_day_ago], now=real_now)  # counted for one more second
    pairs = f"{prefix}risk:p:sign_in:network:{account}"
    assert client.zcard(pairs) == 1
    time.sleep(1.2)
    assert not client.exists(pairs)


def test_a_batch_of_many_rows_is_written_in_several_scripts(store):
    """A journal's worth of acceptances at once: 1,216 rows, three scripts of at most 500."""
    terminals = [Key(KeyKind.TERMINAL, f"till-{n}") for n in range(300)]
    batch = [
        Observation(T0, Signal.OFFLINE_ACCEPTANCE, (terminal, ACCOUNTS[n % 4]))
        for n, terminal in enumerate(terminals)
    ]
    store.record(batch, now=T0 + 10)
    queries: list[Query] = [
        Count(terminals[0], Signal.OFFLINE_ACCEPTANCE, Window.MINUTE, name="first"),
        Count(terminals[-1], Signal.OFFLINE_ACCEPTANCE, Window.MINUTE, name="last"),
        Count(ACCOUNTS[0], Signal.OFFLINE_ACCEPTANCE, Window.DAY),
        LastSeen(terminals[-1], Signal.OFFLINE_ACCEPTANCE),
    ]
    assert list(store.read(queries, now=T0 + 10).values()) == [1, 1, 75, T0]


def _count_ten(settings: Settings, failure: Observation) -> None:
    for _ in range(10):
        risk_redis.store(settings).record([failure], now=T0)


def test_processes_share_the_counts_and_a_restart_keeps_them():
    """Server processes forked after their parent used Redis (`serve --workers`) and threads of
    each count into the same keys and none loses another's; the Redis, shut down and started
    again on its append-only file, still has every count."""
    account, network = ACCOUNTS[1], NETWORKS[1]
    failure = Observation(T0, Signal.SIGN_IN_FAILURE, (account, network), (Pair(network, account),))
    with OwnRedis() as own:
        settings = Settings(risk_store="redis", redis_url=own.url, redis_prefix="shared:")
        _count_ten(settings, failure)  # the parent's client exists before the fork
        fork = multiprocessing.get_context("fork")
        workers = [fork.Process(target=_count_ten, args=(settings, failure)) for _ in range(2)]
        for worker in workers:
            worker.start()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: _count_ten(settings, failure), range(2)))
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        own.restart()
        restarted = RedisFeatureStore(
            redis.Redis.from_url(own.url, decode_responses=True), "shared:"
        )
        queries: list[Query] = [
            *(Count(account, Signal.SIGN_IN_FAILURE, w) for w in Window),
            Distinct(network, Signal.SIGN_IN_FAILURE, KeyKind.ACCOUNT, Window.HOUR),
            LastSeen(network, Signal.SIGN_IN_FAILURE),
        ]
        assert dict(restarted.read(queries, now=T0 + 1)) == {
            "account.sign_in_failure.1m": 50,
            "account.sign_in_failure.1h": 50,
            "account.sign_in_failure.1d": 50,
            "network.sign_in_failure.distinct_account.1h": 1,
            "network.sign_in_failure.last_at": T0,
        }
        restarted.client.close()


def test_a_password_from_the_settings_and_keys_under_the_prefix(client, redis_url, prefix):
    """A Redis user who may touch only keys under the deployment's prefix, its password from
    `DUOPASS_REDIS_PASSWORD` (the settings' secret); the URL never holds it."""
    user, password = f"duopass-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=[f"{prefix}*"], commands=["+@all"]
    )
    try:
        url = redis_url.replace("redis://", f"redis://{user}@")
        settings = Settings(
            risk_store="redis",
            redis_url=url,
            redis_password=SecretStr(password),
            redis_prefix=prefix,
        )
        failure = Observation(T0, Signal.SIGN_IN_FAILURE, (ACCOUNTS[2],))
        risk_redis.store(settings).record([failure], now=T0)
        count = Count(ACCOUNTS[2], Signal.SIGN_IN_FAILURE, Window.MINUTE)
        assert risk_redis.store(settings).read([count], now=T0)[count.feature] == 1
        elsewhere = settings.model_copy(update={"redis_prefix": "another:"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            risk_redis.store(elsewhere).record([failure], now=T0)
    finally:
        client.acl_deluser(user)
    with pytest.raises(ValueError, match="no password in the URL"):
        Settings(redis_url=redis_url.replace("redis://", f"redis://{user}:{password}@"))


@pytest.fixture(params=["sqlite"])  # the counts are Redis's: the database does not matter
def redis_server(request, tmp_path, clock, redis_url, prefix) -> Iterator[Running]:
    url = database_url(request, tmp_path)
    redis_settings = {"risk_store": "redis", "redis_url": redis_url, "redis_prefix": prefix}
    with running_server(url, tmp_path / "data", clock=clock, **redis_settings) as running:
        yield running


def test_failed_sign_ins_over_http_are_counted_in_redis(redis_server, clock, client, prefix):
    server: Running = redis_server
    admin = server.admin()
    admin.holder("mia")
    here, there = _from("127.0.0.2", server.url), _from("127.0.1.3", server.url)
    wrong = {"password": "wrong-password"}
    with here, there:
        for login in ("mia", "mia", "nobody"):
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
        Count(account, failure, Window.MINUTE),
        Count(network, failure, Window.HOUR),
        Distinct(network, failure, KeyKind.ACCOUNT, Window.HOUR),
        Distinct(account, failure, KeyKind.NETWORK, Window.DAY),
        Count(Key(KeyKind.ADDRESS, "127.0.1.3"), Signal.SIGN_IN, Window.MINUTE),
    ]

    def read(unit: Unit) -> dict[str, int | None]:
        assert isinstance(store_for(unit), risk_redis.UnitStore)
        return dict(store_for(unit).read(queries, now=unit.now))

    assert server.ctx.run(read) == {
        "account.sign_in_failure.1m": 3,
        "network.sign_in_failure.1h": 3,  # 127.0.0.2's: 127.0.1.3 is in another /24
        "network.sign_in_failure.distinct_account.1h": 2,  # mia and a login nobody has
        "account.sign_in_failure.distinct_network.1d": 2,
        "address.sign_in.1m": 1,
    }
    clock.advance(60)
    assert server.ctx.run(read)["account.sign_in_failure.1m"] == 0
    maintenance.run_once(server.ctx)  # expiry asks Redis nothing

    def rows(unit: Unit) -> int:
        tables = (RiskBucket, RiskPair)
        return sum(unit.session.scalar(select(func.count()).select_from(t)) or 0 for t in tables)

    assert server.ctx.run(rows) == 0  # nothing in the database
    assert _keys(client, prefix)


def test_a_redis_that_does_not_answer_makes_sign_in_busy_not_uncounted(sqlite_schema, tmp_path):
    """Redis down: a sign-in is 503 `busy` (send it again), not taken without its count."""
    shutil.copyfile(sqlite_schema, tmp_path / "duopass.db")
    down = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    with running_server(url, tmp_path / "data", risk_store="redis", redis_url=down) as server:
        sign_in = {"login": "admin", "password": ADMIN_PASSWORD}
        answer = server.http.post("/v1/admin/session", json=sign_in)
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "busy"


def test_serve_refuses_a_password_in_the_redis_url_without_repeating_it(tmp_path):
    """`duopass serve --redis-url` with a password in it: refused in one line, before anything
    is made, and the password is in no output (it belongs in `DUOPASS_REDIS_PASSWORD`)."""
    command = typer.Typer()
    command.command()(serve)
    secret = "hunter2-" + uuid.uuid4().hex
    flags = ["--data-dir", str(tmp_path / "data"), "--redis-url", f"redis://:{secret}@h:6379/0"]
    done = CliRunner().invoke(command, flags)
    assert done.exit_code == 2, done.output
    assert done.stderr == "duopass: redis_url: no password in the URL: set DUOPASS_REDIS_PASSWORD\n"
    assert secret not in done.output
    assert not (tmp_path / "data").exists()


def test_counted_reads_each_count_with_its_own_and_no_later_one(store):
    """`counted` (a count and a read in one MULTI) from many threads at once: each reads the
    count its own observation made, so the counts read are 1 to 40, each once; the stream's
    reads equal the reference's, and a count taken back (-1 events) reads as before it."""
    key = Key(KeyKind.CLIENT, "7")
    call = Observation(T0, Signal.PARTNER_CALL, (key,), ())
    (query,) = [Count(key, Signal.PARTNER_CALL, Window.MINUTE)]
    with ThreadPoolExecutor(20) as pool:
        read = list(pool.map(lambda _: store.counted([call], [query], now=T0), range(40)))
    assert sorted(features[query.feature] for features in read) == list(range(1, 41))
    assert store.counted([replace(call, events=-1)], [], now=T0) == Features()
    assert store.read([query], now=T0)[query.feature] == 39
    reference, queries = MemoryFeatureStore(), _queries()
    for now, observation in islice(_stream(seed=17), 400):
        reference.record([observation], now=now)
        assert dict(store.counted([observation], queries, now=now)) == dict(
            reference.read(queries, now=now)
        )
