"""Where requests come from (issue 15): each simulated client has its own source address (another
127.0.0.0/8 address bound by its transport); behind a trusted proxy the client is the one
`X-Forwarded-For` names, for the throttles and the access log alike; from any other peer, and
by default from every peer, the header is ignored."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from duopass.policy import DEFAULT_POLICY
from duopass.server.limits import FORWARDED_HOPS_MAX
from duopass.server.logbook import ACCESS, EVENTS, Event, JsonLines
from duopass.server.services import throttle
from tests.server.harness import ManualClock, Running, running_server

PROXY = "127.0.0.1"
"""The reverse proxy: the tests' default client, bound to nothing in particular."""
CAMPUS = "203.0.113.0/24"
"""The campus NAT's range, exempt from the network count."""
RIGHT = {"login": "mia", "password": "pw-mia-secret"}
LOG_WAIT_S = 10.0
CHAIN = f", {PROXY}"
"""One more trusted proxy on the way."""


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(JsonLines())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def wait_for(self, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first line `found` accepts, once it is logged: a request is logged after its
        answer is sent."""
        deadline = time.monotonic() + LOG_WAIT_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found(line):
                    return line
            time.sleep(0.01)
        raise AssertionError(f"no such line in {self.lines[-5:]}")


@pytest.fixture
def logged() -> Iterator[_Lines]:
    """The access log and the events of the servers this process runs."""
    handler = _Lines()
    levels = ACCESS.level, EVENTS.level
    for logger in (ACCESS, EVENTS):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip((ACCESS, EVENTS), levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _server(sqlite_schema, tmp_path, **settings: Any) -> Iterator[Running]:
    """On SQLite only: what address a request is counted against does not depend on the store
    (the counting itself runs on both in test_throttle). The throttles alone: a policy without
    the risk engine's guards, whose credential-stuffing guard holds a network sooner (by the
    same address: tests/server/test_risk_engine.py)."""
    shutil.copyfile(sqlite_schema, tmp_path / "duopass.db")
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    unguarded = tmp_path / "unguarded.toml"
    unguarded.write_text(DEFAULT_POLICY.read_text().split("[[guard]]")[0])
    settings = {"policy_file": unguarded, **settings}
    with running_server(url, tmp_path / "data", clock=ManualClock(), **settings) as running:
        running.admin().holder("mia")
        yield running


@pytest.fixture
def proxied(sqlite_schema, tmp_path) -> Iterator[Running]:
    """A server behind a proxy on 127.0.0.1, with a campus range exempt."""
    trusted = {"trusted_proxies": (f"{PROXY}/32",), "throttle_exempt_networks": (CAMPUS,)}
    yield from _server(sqlite_schema, tmp_path, **trusted)


@pytest.fixture
def direct(sqlite_schema, tmp_path) -> Iterator[Running]:
    """A server with no proxy setting (the default)."""
    yield from _server(sqlite_schema, tmp_path)


def _from(address: str, base_url: str) -> httpx.Client:
    """A client whose connections come from `address` (another 127.0.0.0/8 address)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


def _sign_in(http: httpx.Client, body: dict[str, str], forwarded: str | None = None) -> int:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return http.post("/v1/session", json=body, headers=headers).status_code


def _fail_from_network(http: httpx.Client, forwarded: Callable[[int], str | None]) -> None:
    """As many wrong guesses as a network has free, each for another login."""
    for n in range(throttle.NETWORK.free):
        guess = {"login": f"user-{n}", "password": "guess"}
        assert _sign_in(http, guess, forwarded(n)) == 401


def _access(lines: _Lines, client: str, agent: str) -> dict[str, Any]:
    """The access log line of the request a client sent with this user agent."""
    line = lines.wait_for(lambda line: agent in line.get("message", ""))
    assert line["event"] == Event.REQUEST.value
    assert line["message"].startswith(f"{client} - - [")
    assert line["client"] == client
    return line


def test_each_source_network_is_counted_apart(direct):
    """Failures from 127.0.5.x throttle that /24, whichever of its addresses tries next; a
    client in 127.0.6.x signs in meanwhile."""
    with _from("127.0.5.7", direct.url) as noisy, _from("127.0.5.8", direct.url) as neighbour:
        _fail_from_network(noisy, lambda _: None)
        assert _sign_in(neighbour, RIGHT) == 429
    with _from("127.0.6.7", direct.url) as elsewhere:
        assert _sign_in(elsewhere, RIGHT) == 200


def test_with_no_trusted_proxy_a_local_client_cannot_name_its_address(direct, logged):
    """uvicorn's own default would trust X-Forwarded-For from 127.0.0.1: each guess would then
    count against another network, and none would fill."""
    _fail_from_network(direct.http, lambda n: f"198.51.{n}.1")
    assert _sign_in(direct.http, RIGHT, "192.0.2.1") == 429
    agent = {"User-Agent": "direct-1"}
    direct.http.get("/healthz", headers={"X-Forwarded-For": "192.0.2.1", **agent})
    assert "proxy" not in _access(logged, PROXY, "direct-1")


def test_behind_the_proxy_the_forwarded_address_is_throttled_and_logged(proxied, logged):
    proxy = proxied.http
    # the proxy appends the address it was reached from: what the client wrote comes before
    _fail_from_network(proxy, lambda n: f"forged-{n}, 198.51.100.{n}")
    assert _sign_in(proxy, RIGHT, "198.51.100.200") == 429
    throttled = logged.wait_for(lambda line: line["event"] == Event.SIGN_IN_THROTTLED.value)
    assert throttled["blocked"] == "198.51.100.0/24"
    assert _sign_in(proxy, RIGHT, "198.51.100.200, 127.0.0.1") == 429  # two proxies deep
    assert _sign_in(proxy, RIGHT, "198.51.100.200, 198.51.101.7") == 200  # the client is .101
    assert _sign_in(proxy, RIGHT) == 200  # the proxy itself is another network
    proxy.get("/healthz", headers={"X-Forwarded-For": "[2001:db8::7]:443", "User-Agent": "p-1"})
    assert _access(logged, "2001:db8::7", "p-1")["proxy"] == PROXY


def test_an_exempt_campus_is_not_throttled_as_one_but_its_accounts_are(proxied):
    proxy = proxied.http
    _fail_from_network(proxy, lambda n: f"203.0.113.{n}")
    assert _sign_in(proxy, RIGHT, "203.0.113.250") == 200
    wrong = {**RIGHT, "password": "not-the-password"}
    for _ in range(throttle.ACCOUNT.free):
        assert _sign_in(proxy, wrong, "203.0.113.9") == 401
    assert _sign_in(proxy, RIGHT, "203.0.113.10") == 429


def test_an_untrusted_peer_cannot_name_its_address(proxied, logged):
    with _from("127.0.9.9", proxied.url) as peer:
        _fail_from_network(peer, lambda n: f"198.51.{n}.1")
        assert _sign_in(peer, RIGHT, "203.0.113.9") == 429  # not even the campus
        peer.get("/healthz", headers={"X-Forwarded-For": "192.0.2.1", "User-Agent": "u-1"})
    assert "proxy" not in _access(logged, "127.0.9.9", "u-1")
    assert _sign_in(proxied.http, RIGHT, "192.0.2.1") == 200


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ([("X-Forwarded-For", "unknown")], PROXY),
        ([("X-Forwarded-For", "")], PROXY),
        ([("X-Forwarded-For", "198.51.100.1:99999")], PROXY),
        ([("X-Forwarded-For", "198.51.100.1,,127.0.0.1")], PROXY),
        ([("X-Forwarded-For", "x" * 3000)], PROXY),
        ([("X-Forwarded-For", b"\xff\xfe, 127.0.0.1")], PROXY),
        ([("X-Forwarded-For", "198.51.100.1" + CHAIN * FORWARDED_HOPS_MAX)], PROXY),
        ([("X-Forwarded-For", "198.51.100.1" + CHAIN * (FORWARDED_HOPS_MAX - 1))], "198.51.100.1"),
        ([("X-Forwarded-For", "junk " * 2000 + ", 198.51.100.2")], "198.51.100.2"),
        ([("X-Forwarded-For", "198.51.100.3"), ("X-Forwarded-For", "127.0.0.1")], "198.51.100.3"),
        ([("X-Forwarded-For", "::ffff:198.51.100.4")], "198.51.100.4"),
    ],
)
def test_a_header_the_proxy_cannot_have_written_leaves_the_proxy(proxied, logged, headers, client):
    """A hop that is no address, or more trusted hops than are read: the request is the
    proxy's, answered as any other; what the client wrote before its own address is not read."""
    agent = f"edge-{uuid.uuid4().hex}"
    answer = proxied.http.get("/healthz", headers=[*headers, ("User-Agent", agent)])
    assert answer.status_code == 200
    _access(logged, client, agent)


def test_serve_refuses_a_proxy_that_is_no_network(tmp_path):
    flags = ["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "proxy.example"]
    command = [sys.executable, "-m", "duopass", "serve", "--data-dir", str(tmp_path), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "duopass: trusted_proxies: not a network: 'proxy.example'\n"


def test_an_ipv4_client_of_a_dual_stack_listener_is_counted_in_its_own_network():
    """`duopass serve --host ::` sees IPv4 clients as `::ffff:a.b.c.d`: counted by their /24,
    not all in one /64."""
    assert throttle.network_of("::ffff:198.51.100.7") == "198.51.100.0/24"
    assert throttle.network_of("2001:db8::7") == "2001:db8::/64"


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        (PROXY, [b"https"], "https"),
        (PROXY, [b"http, https"], "https"),  # the nearest proxy's word is the last
        (PROXY, [b"https", b"http"], "http"),
        (PROXY, [b"gopher"], "http"),
        (PROXY, [], "http"),
        ("127.9.9.9", [b"https"], "http"),  # not a trusted proxy: ignored
    ],
)
def test_the_trusted_proxys_scheme_is_the_requests(peer, proto, scheme):
    """Behind a proxy that ends TLS, `X-Forwarded-Proto` from it makes the request https (the
    console then marks its cookies Secure); from anyone else it is ignored."""
    import asyncio

    from duopass.server.api.forwarded import ForwardedFor

    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    headers = [(b"x-forwarded-proto", value) for value in proto]
    scope = {"type": "http", "scheme": "http", "client": (peer, 5000), "headers": headers}
    asyncio.run(ForwardedFor(app, [PROXY + "/32"])(scope, None, None))  # type: ignore[arg-type]
    assert seen["scheme"] == scheme
