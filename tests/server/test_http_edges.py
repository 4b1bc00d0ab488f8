"""HTTP at its edges, against a live server, over raw sockets where no client library would
send the request: numbers in headers, chunked bodies, clients that stall, methods a route lacks,
what the OpenAPI document promises, and who reads the metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Match

from duopass.demo.serving import free_port, wait_until_up
from duopass.server.api.middleware import BodyLimit
from duopass.server.api.routes.oauth import OAUTH_ERROR_SCHEMA
from duopass.server.app import create_app
from duopass.server.keyring import Keyring
from duopass.server.limits import BODY_BYTES_MAX, REQUEST_HEAD_BYTES_MAX
from duopass.server.problems import ProblemCode
from duopass.server.settings import Settings
from tests.server.conftest import _sqlite_database
from tests.server.harness import Running, enrolled_till, ready_wallet, running_server
from tests.server.raw import (
    HANG_GUARD_S,
    Raw,
    address,
    chunked,
    closed_by_server,
    exchange,
    logged,
    request,
)


def _is_problem(answer: Raw, status: int, code: str) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code


# -- A: numbers in headers are ASCII digits -------------------------------------------------

TERMINAL_ROUTES = [  # bodies valid as far as their models go, so the signature is checked
    ("GET", "/v1/terminal/bundle", b""),
    (
        "POST",
        "/v1/terminal/scans",
        b'{"code": "DP1:X", "mode": "identity", "terminal_id": "till-north-1", "seq": 1,'
        b' "scanned_at": 0}',
    ),
    ("POST", "/v1/terminal/journal", b'{"batch": "AAAA"}'),
    ("POST", "/v1/terminal/heartbeat", b'{"backlog": 0}'),
]


@pytest.mark.parametrize("time", [b"\xb2", b"\xb3", b"\xb9", b"1\xb2", b"\xb2" * 12])
@pytest.mark.parametrize(("method", "path", "body"), TERMINAL_ROUTES)
def test_a_time_of_superscript_digits_is_refused_not_a_crash(
    sqlite_server, method, path, body, time
):
    enrolled_till(sqlite_server.http, sqlite_server.admin(), "till-north-1")
    headers = {
        "Duopass-Terminal": "till-north-1",
        "Duopass-Time": time.decode("latin-1"),
        "Duopass-Signature": "AAAA",
        "Content-Type": "application/json",
    }
    with logged() as records:
        answer = exchange(sqlite_server.url, request(method, path, headers, body))
    _is_problem(answer, 401, "unauthenticated")
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], records


@pytest.mark.parametrize(
    "length", [b"\xb2", b"\xd9\xa1", b"1_0", b"+10", b"1" * 5000, b"0" * 30 + b"10"]
)
def test_a_content_length_that_is_not_ascii_digits_is_refused(sqlite_server, length):
    request = (
        b"POST /v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    with logged() as records:
        answer = exchange(sqlite_server.url, request)
    assert 400 <= answer.status < 500, answer
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], records


@pytest.mark.parametrize("length", [b"1" * 5000, b"\xb2", b"\xd9\xa1", b"1_0", b"+1"])
def test_the_body_limit_reads_a_content_length_as_ascii_digits(length):
    """h11 lets only 1 to 20 ASCII digits through, so this is the middleware alone, as it would
    run behind a server that does not: int() of 5,000 digits raised ValueError, a 500."""
    sent: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        raise AssertionError("the body limit let the request through")

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    headers = [(b"content-length", length)]
    scope = {"type": "http", "method": "POST", "path": "/v1/session", "headers": headers}
    asyncio.run(BodyLimit(app, limit=64)(scope, receive, send))
    assert sent[0]["status"] == 413


@pytest.mark.parametrize(
    "query", ["since=%C2%B2", "since=%D9%A1", "since=1_0", "since=+1", "since=%201", "since=1.0"]
)
def test_query_numbers_are_ascii_digits(sqlite_server, query):
    till, _ = enrolled_till(sqlite_server.http, sqlite_server.admin(), "till-q")
    target = f"/v1/terminal/bundle?{query}"
    answer = sqlite_server.http.get(target, headers=till._signed("GET", target, b""))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_request"


# -- B: a chunked body over the limit is 413 as a declared one is ---------------------------


def _json_of(size: int) -> bytes:
    return b'{"login": "' + b"a" * (size - 14) + b'"}'


def test_a_chunked_body_over_the_limit_is_413(sqlite_server):
    json_type = {"Content-Type": "application/json"}
    over = _json_of(BODY_BYTES_MAX + 100)
    for path in ("/v1/session", "/v1/admin/session", "/v1/terminal/enrol"):
        answer = exchange(sqlite_server.url, chunked("POST", path, json_type, over))
        _is_problem(answer, 413, "body_too_large")
    # A chunked body within the limit is read as ever.
    within = chunked("POST", "/v1/session", json_type, b'{"login": "x", "password": "y"}')
    _is_problem(exchange(sqlite_server.url, within), 401, "unauthenticated")


def test_a_chunked_body_over_the_limit_on_a_signed_route_is_413(sqlite_server):
    till, _ = enrolled_till(sqlite_server.http, sqlite_server.admin(), "till-c")
    body = _json_of(BODY_BYTES_MAX + 100)
    headers = {
        **till._signed("POST", "/v1/terminal/scans", body),
        "Content-Type": "application/json",
    }
    answer = exchange(sqlite_server.url, chunked("POST", "/v1/terminal/scans", headers, body))
    _is_problem(answer, 413, "body_too_large")


# -- D: the OpenAPI document names every error answer; a 405 says what is allowed ------------

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PRETIX_SHAPED = {("POST", "/v1/checkin/redeem", "400"), ("POST", "/v1/checkin/redeem", "404")}
"""The redeem route answers a refused check-in as pretix's check-in API does (`{status: error,
reason, ...}`, docs/checkin.md), beside the problem documents of a bad request."""
REDEEM_OUT = {"schema": {"$ref": "#/components/schemas/RedeemOut"}}
OAUTH_SHAPED = {("POST", "/v1/oauth/token", "400"), ("POST", "/v1/oauth/token", "401")}
"""The token endpoint answers its refusals as RFC 6749 §5.2 says (`{error, error_description}`),
beside the problem documents of what fails before its rules run."""


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_operation_documents_its_problem_answers(sqlite_server):
    document = sqlite_server.http.get("/openapi.json").json()
    schema = document["components"]["schemas"]["Problem"]
    assert set(schema["required"]) == {"type", "title", "status", "detail", "code"}
    assert set(schema["properties"]["code"]["enum"]) == {code.value for code in ProblemCode}
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's 422, never sent
    operations = list(_operations(document))
    assert len(operations) >= 30
    for method, path, operation in operations:
        errors = {s: a for s, a in operation["responses"].items() if not s.startswith("2")}
        assert "default" in errors, (method, path)
        for status, answer in errors.items():
            wanted: dict[str, Any] = PROBLEM
            if (method, path, status) in PRETIX_SHAPED:
                wanted = {**PROBLEM, "application/json": REDEEM_OUT}
            if (method, path, status) in OAUTH_SHAPED:
                wanted = {**PROBLEM, "application/json": {"schema": OAUTH_ERROR_SCHEMA}}
            assert answer["content"] == wanted, (method, path, status)
        derived = set()
        if operation.get("security"):  # a bearer token (403 where a role is needed too)
            derived.add("401")
        if path.startswith("/v1/terminal/") and path != "/v1/terminal/enrol":  # signed
            derived |= {"401", "413"}
        if "requestBody" in operation:
            derived |= {"413", "422"}
        if path == "/v1/oauth/token":  # RFC 6749: a form it cannot use is 400 invalid_request
            derived.discard("422")
        if operation.get("parameters"):
            derived.add("422")
        assert derived <= errors.keys(), (method, path, derived - errors.keys())


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("POST", "/v1/session", {"401", "413", "422", "503"}),
        ("POST", "/v1/admin/session", {"401", "413", "422", "503"}),
        ("POST", "/v1/wallet/sync", {"401", "403", "404", "409", "413", "422", "429", "503"}),
        ("DELETE", "/v1/me/devices/{device_id}", {"401", "403", "404", "422", "503"}),
        ("GET", "/v1/terminal/bundle", {"401", "413", "422", "503"}),
        ("POST", "/v1/terminal/heartbeat", {"401", "413", "422", "503"}),
        ("POST", "/v1/admin/alerts/{alert_id}/review", {"401", "403", "404", "409", "422"}),
        ("GET", "/v1/ledger/entries/{index}", {"404", "422", "503"}),
        ("GET", "/healthz", {"503"}),
        ("GET", "/v1/admin/books", {"401", "403", "503"}),
    ],
)
def test_routes_name_the_statuses_of_their_own_refusals(sqlite_server, method, path, statuses):
    document = sqlite_server.http.get("/openapi.json").json()
    responses = document["paths"][path][method.lower()]["responses"]
    assert statuses <= responses.keys(), statuses - responses.keys()
    if "429" in responses:
        assert "Retry-After" in responses["429"]["headers"]


def test_a_method_a_route_lacks_is_405_with_allow(sqlite_server):
    for method, path, allowed in [("DELETE", "/v1/ping", "GET"), ("GET", "/v1/session", "POST")]:
        answer = sqlite_server.http.request(method, path)
        assert answer.status_code == 405, answer.text
        assert answer.json()["code"] == "method_not_allowed"
        assert allowed in answer.headers["allow"].split(", "), answer.headers


# -- E: metrics are for staff, or for a scraper on a listener of its own ---------------------


def test_metrics_need_a_staff_token(sqlite_server):
    http, admin = sqlite_server.http, sqlite_server.admin()
    anonymous = http.get("/metrics")
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["code"] == "unauthenticated"
    holder = ready_wallet(http, admin, "mo", balance=0)
    assert http.get("/metrics", headers=holder.auth).json()["code"] == "forbidden"
    staff = http.get("/metrics", headers=admin.auth)
    assert staff.status_code == 200
    assert "duopass_scans" in staff.text


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, str]]:
    """`duopass serve` in a process of its own: its URL and that of its metrics listener."""
    port, metrics_port = free_port(), free_port()
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--data-dir", str(tmp_path)]
    command += ["--port", str(port), "--metrics-port", str(metrics_port)]
    env = {**os.environ, "DUOPASS_HEADER_TIMEOUT_S": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    finally:
        process.terminate()
        process.wait(timeout=HANG_GUARD_S)


def test_serve_can_give_scrapers_a_listener_of_their_own(served):
    url, metrics_url = served
    scraped = httpx.get(f"{metrics_url}/metrics", timeout=HANG_GUARD_S)
    assert scraped.status_code == 200
    assert "duopass_scans" in scraped.text
    assert httpx.get(f"{url}/metrics").status_code == 401


# -- C: a client that stalls is closed; others are served meanwhile -------------------------

HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2.0, 3.0
"""Short deadlines for the impatient server; the tests only say `closed before HANG_GUARD_S`."""


@pytest.fixture(params=["httptools", "h11"])
def impatient(tmp_path, request) -> Iterator[Running]:
    """A server of short deadlines, on each HTTP parser the server can run (`http_parser`)."""
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}",
        tmp_path / "data",
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        http_parser=request.param,
    ) as running:
        yield running


def test_a_connection_that_sends_half_its_headers_is_closed(impatient):
    with logged() as records:
        stalled = socket.create_connection(address(impatient.url))
        idle = socket.create_connection(address(impatient.url))  # sends nothing at all
        with stalled, idle:
            stalled.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            assert impatient.http.get("/v1/ping").json() == {"ok": True}  # served meanwhile
            assert closed_by_server(stalled)
            assert closed_by_server(idle)
    assert not [r for r in records if r.levelno >= logging.ERROR], records


@pytest.mark.parametrize("signed", [False, True])
def test_a_body_that_stalls_is_closed(impatient, signed):
    if signed:  # a GET whose dependency reads the body: the client's leaving must not be a 500
        till, _ = enrolled_till(impatient.http, impatient.admin(), "till-s")
        head = request(
            "GET", "/v1/terminal/bundle", till._signed("GET", "/v1/terminal/bundle", b"")
        )
        head = head.replace(b"Connection: close\r\n", b"Content-Length: 100\r\n")
    else:
        head = request("POST", "/v1/session", {"Content-Type": "application/json"}, b"x" * 100)
        head = head[:-100]
    with logged() as records, socket.create_connection(address(impatient.url)) as sock:
        sock.sendall(head + b'{"login": ')
        assert impatient.http.get("/v1/ping").json() == {"ok": True}
        assert closed_by_server(sock)
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], records


def test_a_head_over_the_limit_is_refused_on_either_parser(impatient):
    """h11 refuses a head still incomplete past 16 KiB; llhttp buffers nothing, so the
    httptools protocol counts for it. Sent in pieces, as a head larger than a segment comes."""
    with logged() as records, socket.create_connection(address(impatient.url)) as sock:
        sock.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(REQUEST_HEAD_BYTES_MAX // 1000 + 1):  # the last one crosses it
            sock.sendall(f"X-Pad-{n}: ".encode() + b"y" * 990 + b"\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert not [r for r in records if r.levelno >= logging.ERROR], records


def test_a_head_within_the_limit_is_served_on_either_parser(impatient):
    pads = {f"X-Pad-{n}": "y" * 990 for n in range(REQUEST_HEAD_BYTES_MAX // 1000 - 2)}
    answer = exchange(impatient.url, request("GET", "/v1/ping", pads))
    assert answer.status == 200, answer


def test_a_slowloris_is_closed_however_steadily_it_dribbles(impatient):
    """One header byte a second, more often than the header deadline: a timer that each byte
    restarted would never fire; this deadline runs from the first byte."""
    dribbled = request("GET", "/v1/ping", {f"X-Pad-{n}": "y" * 20 for n in range(50)})
    closed = False
    with socket.create_connection(address(impatient.url)) as sock:
        sock.settimeout(1.0)
        for byte in dribbled[: int(HANG_GUARD_S)]:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue  # a second went by, nothing from the server: the next byte
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert impatient.http.get("/v1/ping").json() == {"ok": True}
    assert closed, "the server was still reading the headers after the hang guard"


def test_duopass_serve_closes_a_stalled_connection_too(served):
    url, _ = served
    with socket.create_connection(address(url)) as sock:
        sock.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert closed_by_server(sock)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/session", {"login": "student\u00000", "password": "x"}),
        ("/v1/admin/session", {"login": "ad\u0000min", "password": "x"}),
        ("/v1/admin/holders/h-1/freeze", {"reason": "cloned\u0000"}),
        ("/v1/admin/holders", {"login": "nul\u0000", "password": "long enough", "name": "N"}),
    ],
)
def test_text_with_a_nul_character_is_refused_not_a_crash(server: Running, path, body):
    """PostgreSQL cannot store a NUL in text (SQLite can): either way the answer is a
    refusal, never a 500 (found on the staff sign-in, before any authentication)."""
    admin = server.admin()
    answer = server.http.post(path, json=body, headers=admin.auth)
    assert answer.status_code in {401, 404, 422}, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_scan_and_redeem_routes_are_tried_before_fastapis_own(request, tmp_path):
    """The router tries routes in order: the hottest paths come before FastAPI's own (the
    OpenAPI document and its pages), and no other route takes their requests."""
    config = Settings(db_url=_sqlite_database(request, tmp_path), data_dir=tmp_path / "data")
    keyring = Keyring.create(tmp_path / "data", origin="demo-univ/ledger")
    app = create_app(config, keyring=keyring, testing=True)
    app.state.context.db.dispose()
    routes = app.router.routes
    paths = [getattr(route, "path", None) for route in routes]
    for path in ("/v1/terminal/scans", "/v1/checkin/redeem"):
        scope = {"type": "http", "method": "POST", "path": path, "root_path": ""}
        taking = [route for route in routes if route.matches(scope)[0] is not Match.NONE]
        assert taking == [routes[paths.index(path)]]
        assert paths.index(path) < paths.index("/openapi.json") < paths.index("/docs")
