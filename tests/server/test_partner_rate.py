"""A partner client's rate limit is the risk engine's (issue 17: "rate-limited per client through
the risk engine"): its calls counted in the engine's shared counters, judged at the point
`partner_call` by the packaged guard `partner_rate_limit`, whose refusal is a risk decision the
card office's risk page lists; a policy without that guard does not lift the client's own
limit; and the count holds across two server processes, on PostgreSQL's counters and on Redis's,
exactly for a burst of concurrent calls (each counted and judged in one step, refused ones taken
back).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import create_engine, text

from duopass.demo.serving import free_port, wait_until_up
from duopass.policy import DEFAULT_POLICY
from duopass.server.partners.guard import FLOOR_RULE
from tests.redis import redis_url_fixture  # noqa: F401
from tests.server.conftest import _postgres_database, _sqlite_database
from tests.server.harness import Admin, running_server
from tests.server.partners import console_page, make_client, token

CLOCKED_SQLITE = pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)
GUARD = "partner_rate_limit"
ISSUER = "https://api.campus.example.edu"


def _redeem(http: httpx.Client, access: str) -> httpx.Response:
    return http.post(
        "/v1/checkin/redeem",
        json={"secret": "not-a-code", "lists": [1]},
        headers={"Authorization": f"Bearer {access}"},
    )


def _decisions(admin: Admin) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/risk", params={"point": "partner_call"}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["decisions"]["items"])


@CLOCKED_SQLITE
def test_past_its_limit_a_client_meets_the_risk_engines_guard_on_the_risk_page(
    clocked_server, clock
):
    server, admin = clocked_server, clocked_server.admin()
    client = make_client(admin, ["checkin:redeem"], calls_per_minute=3)
    access = token(server.http, client).json()["access_token"]  # the first call
    for _ in range(2):
        assert _redeem(server.http, access).json()["code"] == "not_found"
    limited = _redeem(server.http, access)
    assert (limited.status_code, limited.json()["code"]) == (429, "partner_rate_limited")
    assert limited.headers["retry-after"] == "60" and GUARD in limited.json()["detail"]
    (decision,) = _decisions(admin)
    assert (decision["guard"], decision["action"]) == (GUARD, "rate_limit")
    assert decision["subject"] == [f"client:{client['id']}"]
    assert decision["features"] == [
        {"feature": "client.partner_call.1m", "key": f"client:{client['id']}", "value": 3}
    ]
    clock.advance(59)
    assert _redeem(server.http, access).status_code == 429  # the minute is still on them
    assert len(_decisions(admin)) == 1  # one record a minute, however many refusals
    clock.advance(1)
    assert _redeem(server.http, access).json()["code"] == "not_found"  # slid out of it
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = console_page(browser, "/console/risk")
    assert GUARD in page and "partner_call" in page and f"client:{client['id']}" in page


def test_a_policy_without_the_guard_does_not_lift_a_clients_limit(request, tmp_path):
    text = DEFAULT_POLICY.read_text()
    without = tmp_path / "no-partner-guard.toml"
    without.write_text(text[: text.index('[[guard]]\nname = "partner_rate_limit"')])
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data", policy_file=without) as server:
        admin = server.admin()
        client = make_client(admin, ["checkin:redeem"], calls_per_minute=2)
        access = token(server.http, client).json()["access_token"]
        assert _redeem(server.http, access).json()["code"] == "not_found"
        limited = _redeem(server.http, access)
        assert (limited.status_code, limited.json()["code"]) == (429, "partner_rate_limited")
        assert FLOOR_RULE in limited.json()["detail"] and limited.headers["retry-after"] == "60"
        assert _decisions(admin) == []  # the policy decided nothing: no record of its


@contextmanager
def _process(url: str, data: Path, redis: str | None, prefix: str) -> Iterator[httpx.Client]:
    """`duopass serve` in a process of its own on the database `url`, keys in `data`."""
    port = free_port()
    command = [sys.executable, "-m", "duopass", "serve", "--db", url, "--data-dir", str(data)]
    command += ["--port", str(port)] + (["--redis-url", redis] if redis else [])
    env = {**os.environ, "DUOPASS_WEBHOOK_DELIVERY": "false", "DUOPASS_REDIS_PREFIX": prefix}
    env["DUOPASS_OAUTH_ISSUER"] = ISSUER  # one issuer behind both (each has its own port)
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until_up(server, f"http://127.0.0.1:{port}/healthz")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.terminate()
        server.wait(60)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_the_limit_holds_across_two_server_processes(request, tmp_path, store):
    url, data = _postgres_database(request), tmp_path / "data"
    redis = request.getfixturevalue("redis_url") if store == "redis" else None
    prefix = f"t{os.getpid()}{tmp_path.name[-8:]}:"
    with running_server(url, data) as setup:  # the admin, the keys and the client
        client = make_client(setup.admin(), ["checkin:redeem"], calls_per_minute=6)
    with _process(url, data, redis, prefix) as first, _process(url, data, redis, prefix) as second:
        access = token(first, client).json()["access_token"]  # 1
        answers = [_redeem(http, access) for http in (second, first, second, first, second)]
        assert [a.json()["code"] for a in answers] == ["not_found"] * 5  # 6 calls, 3 on each
        for http in (first, second):
            limited = _redeem(http, access)
            assert (limited.status_code, limited.json()["code"]) == (429, "partner_rate_limited")
        refused = token(second, client)
        assert (refused.status_code, refused.json()["code"]) == (429, "partner_rate_limited")
    if redis is not None:  # counted there, not in the database
        with Redis.from_url(redis, decode_responses=True) as counts:
            assert any("partner_call:client:" in key for key in counts.scan_iter(f"{prefix}*"))


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_burst_of_concurrent_calls_admits_exactly_the_limit(request, tmp_path, store):
    """40 calls at once, 20 on each of two processes, against a limit of 5 (the token is the
    first): each is counted and judged in one step, so 4 are admitted, never more (the count
    read, then added to later, let PostgreSQL admit 7 of such a burst on one process)."""
    url, data = _postgres_database(request), tmp_path / "data"
    redis = request.getfixturevalue("redis_url") if store == "redis" else None
    prefix = f"b{os.getpid()}{tmp_path.name[-8:]}:"
    with running_server(url, data) as setup:
        client = make_client(setup.admin(), ["checkin:redeem"], calls_per_minute=5)
    with _process(url, data, redis, prefix) as first, _process(url, data, redis, prefix) as second:
        access = token(first, client).json()["access_token"]  # 1
        calls = [first, second] * 20
        with ThreadPoolExecutor(len(calls)) as pool:
            answers = list(pool.map(lambda http: _redeem(http, access), calls))
        codes = sorted(a.json()["code"] for a in answers)
        assert codes == ["not_found"] * 4 + ["partner_rate_limited"] * 36, codes
        refused = token(second, client)
        assert (refused.status_code, refused.json()["code"]) == (429, "partner_rate_limited")
    assert _counted(url, redis, prefix, client["id"]) == 5  # the refused taken back


def _counted(url: str, redis: str | None, prefix: str, client: int) -> int:
    """The calls of `client` in the engine's minute buckets, in Redis or in the database."""
    key = f"client:{client}"
    if redis is not None:
        with Redis.from_url(redis, decode_responses=True) as counts:
            buckets = counts.hgetall(f"{prefix}risk:b:60:partner_call:{key}")
            return sum(int(events) for events in buckets.values())
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(_MINUTE, {"key": key}) or 0)
    finally:
        engine.dispose()


_MINUTE = text(
    "SELECT SUM(events) FROM risk_buckets "
    "WHERE key = :key AND signal = 'partner_call' AND span_s = 60"
)
