"""What a card office reads in the server's output: JSON lines on standard output, an event line
for each thing it must see (after the unit that did it committed, never for one rolled back),
the access log in the combined form, and no secret anywhere; and the data directory readable by
its owner only."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from duopass.demo.serving import free_port, wait_until_up
from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode
from duopass.server.api.access_log import redacted_query
from duopass.server.logbook import EVENTS, Event, JsonLines, note
from duopass.server.problems import Problem, ProblemCode
from tests.server.harness import Admin, TerminalClient, Wallet, enrolled_till, ready_wallet

COMBINED = (
    r"^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" '
    r'"(?P<agent>[^"]*)"$'
)


@dataclass
class Served:
    url: str
    data: Path
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stop(self) -> tuple[list[dict[str, Any]], str]:
        """Stop the server; its standard output as JSON objects, and all it wrote."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        text = self.out.read_text()
        lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
        return lines, text + self.err.read_text()


@contextmanager
def serve(tmp_path: Path, *options: str) -> Iterator[Served]:
    port, data = free_port(), tmp_path / "data"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "-m", "duopass", "serve", "--data-dir", str(data)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options], stdout=stdout, stderr=stderr
        )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        yield Served(f"http://127.0.0.1:{port}", data, process, out, err)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _events(lines: list[dict[str, Any]], event: Event) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == event.value]


def _clone(http: httpx.Client, wallet: Wallet, codes: dict[str, str]) -> None:
    """One counter accepted offline at two tills, minutes apart: a clone alert, offline use
    suspended; both batches accepted."""
    north1, north2 = TerminalClient(http, "till-north-1"), TerminalClient(http, "till-north-2")
    for till in (north1, north2):
        assert till.enrol(codes[till.terminal_id]).status_code == 200
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    first = make_code(credential, wallet.key, ctr=wallet.counter, ts=now - 200)
    again = make_code(credential, wallet.key, ctr=wallet.counter, ts=now)
    entry = north1.entry(first, seq=1, scanned_at=now - 200, venue="canteen-north")
    assert north1.journal([entry]).status_code == 200
    entry = north2.entry(again, seq=1, scanned_at=now, venue="canteen-north")
    assert north2.journal([entry]).status_code == 200
    stranger = north1.journal([north1.entry(first, seq=2)], signer=SigningKey.generate())
    assert stranger.json()["code"] == "bad_batch"


def test_the_card_office_reads_events_as_json_and_no_secret(tmp_path):
    with serve(tmp_path, "--demo") as served, httpx.Client(base_url=served.url, timeout=30) as http:
        demo = json.loads((served.data / "demo.json").read_text())
        token = http.post("/v1/admin/session", json=demo["admin"]).json()["token"]
        admin = Admin(http, {"Authorization": f"Bearer {token}"})
        password = demo["holders"]["password"]
        wallet = Wallet(http, "student0000", password=password)
        wallet.sign_in()
        wallet.enrol()
        assert wallet.sync().status_code == 200
        totp = http.post("/v1/me/totp/new", headers=wallet.auth).json()["secret"]
        refused = [
            http.post("/v1/session", json={"login": "student0001", "password": f"wrong-{n}"})
            for n in range(10)
        ]
        assert 429 in [answer.status_code for answer in refused]
        till = TerminalClient(http, "till-south-1")
        assert till.enrol(demo["terminals"]["till-south-1"]).status_code == 200
        assert till.scan(wallet.code(), amount=250)["ok"]
        _clone(http, wallet, demo["terminals"])
        handles = demo["holders"]["first_handles"]
        assert admin.post(f"/v1/admin/holders/{handles[1]}/freeze", {"reason": "r"}).is_success
        assert admin.post(f"/v1/admin/holders/{handles[2]}/loss-report", {}).is_success
        http.get(f"/v1/admin/alerts?token={token}&limit=5", headers=admin.auth)
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in served.data.iterdir()}
        data_mode = stat.S_IMODE(served.data.stat().st_mode)
        lines, everything = served.stop()

    assert data_mode == 0o700
    assert {"duopass.db", "duopass.db-wal", "demo.json", "root.jwk"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
    throttled = _events(lines, Event.SIGN_IN_THROTTLED)
    assert throttled[0]["scope"] == "account" and throttled[0]["blocked"] == "holder:student0001"
    assert throttled[0]["retry_after_s"] > 0
    alert = next(a for a in _events(lines, Event.ALERT_RAISED) if a["kind"] == "clone")
    assert alert["holder_id"] is not None and alert["terminal_id"] == "till-north-2"
    (suspended,) = _events(lines, Event.OFFLINE_SUSPENDED)
    assert suspended["holder_id"] == alert["holder_id"] and suspended["reason"] == "clone"
    accepted = _events(lines, Event.JOURNAL_BATCH_ACCEPTED)
    assert {(a["terminal_id"], a["entries"], a["acked_seq"]) for a in accepted} == {
        ("till-north-1", 1, 1),
        ("till-north-2", 1, 1),
    }
    (batch_refused,) = _events(lines, Event.JOURNAL_BATCH_REFUSED)
    assert batch_refused["terminal_id"] == "till-north-1" and batch_refused["reason"] == "bad_batch"
    (frozen,) = _events(lines, Event.HOLDER_FROZEN)
    (lost,) = _events(lines, Event.LOSS_REPORTED)
    assert frozen["holder_id"] != lost["holder_id"] and lost["reported_by"] == "staff"
    requests = [line["message"] for line in _events(lines, Event.REQUEST)]
    assert any('"POST /v1/terminal/scans HTTP/1.1" 200' in r for r in requests)
    assert all(re.match(COMBINED, line) for line in requests), requests
    assert any("GET /v1/admin/alerts?token=[redacted]&limit=5 HTTP/1.1" in r for r in requests)
    secrets = [demo["admin"]["password"], password, token, totp, *demo["terminals"].values()]
    secrets += [wallet.auth["Authorization"].removeprefix("Bearer ")]
    leaked = [secret for secret in secrets if secret in everything]
    assert not leaked, leaked


def test_the_access_log_can_be_off_and_open_files_are_closed_to_others(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "notes.txt").write_text("left open by hand")
    os.chmod(data, 0o755)
    os.chmod(data / "notes.txt", 0o644)
    with serve(tmp_path, "--init", "--no-access-log") as served:
        assert httpx.get(f"{served.url}/healthz").status_code == 200
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.iterdir()}
        lines, _ = served.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert set(modes.values()) == {0o600}, modes
    (made,) = _events(lines, Event.FILES_MADE_PRIVATE)
    assert made["files"] == 2
    assert not _events(lines, Event.REQUEST)
    assert _events(lines, Event.SERVING)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(JsonLines())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def kept() -> Iterator[list[dict[str, Any]]]:
    handler = _Kept()
    EVENTS.addHandler(handler)
    level = EVENTS.level
    EVENTS.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        EVENTS.removeHandler(handler)
        EVENTS.setLevel(level)


def test_an_event_is_logged_only_when_its_unit_commits(sqlite_server, kept):
    ctx = sqlite_server.ctx

    def refused(unit: Any) -> None:
        note(unit.session, Event.HOLDER_FROZEN, "never", holder_id=1)
        raise Problem(ProblemCode.CONFLICT, "rolled back")

    with pytest.raises(Problem):
        ctx.run(refused)
    assert kept == []
    ctx.run(lambda unit: note(unit.session, Event.HOLDER_FROZEN, "kept", holder_id=2))
    assert [(line["event"], line["holder_id"]) for line in kept] == [("holder_frozen", 2)]


def test_a_scan_rolled_back_in_a_group_commit_logs_nothing_of_its_own(sqlite_server, kept):
    """A unit of a group commit that fails rolls back to its savepoint: its lines go with it,
    the batch's others are logged."""
    import asyncio

    ctx = sqlite_server.ctx

    def fails(unit: Any) -> None:
        note(unit.session, Event.HOLDER_FROZEN, "never", holder_id=1)
        raise Problem(ProblemCode.CONFLICT, "rolled back")

    def works(unit: Any) -> None:
        note(unit.session, Event.HOLDER_FROZEN, "kept", holder_id=2)

    async def both() -> tuple[Any, ...]:
        runs = (ctx.group.run(fails), ctx.group.run(works))
        return await asyncio.gather(*runs, return_exceptions=True)

    outcomes = asyncio.run(both())
    assert isinstance(outcomes[0], Problem) and outcomes[1] is None
    assert [line["holder_id"] for line in kept] == [2]


def test_a_review_that_freezes_logs_it(sqlite_server, kept):
    http, admin = sqlite_server.http, sqlite_server.admin()
    wallet = ready_wallet(http, admin, "rhea", balance=10_000)
    till, _ = enrolled_till(http, admin)
    other, _ = enrolled_till(http, admin, "till-2")
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    for terminal, ts in ((till, now - 200), (other, now)):
        code = make_code(credential, wallet.key, ctr=0, ts=ts)
        assert terminal.journal([terminal.entry(code, seq=1, scanned_at=ts)]).status_code == 200
    alert = next(line for line in kept if line["event"] == "alert_raised")
    answer = admin.post(f"/v1/admin/alerts/{alert['alert']}/review", {"action": "freeze"})
    assert answer.status_code == 200, answer.text
    assert {line["event"] for line in kept} >= {
        "alert_raised",
        "offline_suspended",
        "journal_batch_accepted",
        "holder_frozen",
        "alert_reviewed",
    }
    # what a person must look at survives a log filtered to WARNING and above
    levels = {line["event"]: line["level"] for line in kept}
    assert levels["alert_raised"] == levels["offline_suspended"] == "WARNING"
    assert levels["journal_batch_accepted"] == "INFO"


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("limit=5", "limit=5"),
        ("token=abc&limit=5", "token=[redacted]&limit=5"),
        ("enrol_code=x&Password=y", "enrol_code=[redacted]&Password=[redacted]"),
        ("api_key=z&cursor=9", "api_key=[redacted]&cursor=9"),
        ("q=Wang%20Li&limit=5", "q=[redacted]&limit=5"),  # a search: personal data
        ("Q=2026000042", "Q=[redacted]"),
    ],
)
def test_secret_query_parameters_lose_their_values(query, logged):
    assert redacted_query(query) == logged


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def",
        "password=hunter2 failed",
        '{"token": "abc"}',
        "enrol_code: abc",
        "client dpc_x given dpsec_abc.def",  # a partner client's secret, no key word before it
        "AUTHORIZATION: BEARER abc.def",  # the screen of key words ignores case, as the patterns
        "PassWord=hunter2 failed",
        "Client-Secret: x; Enrol_Code: abc",
    ],
)
def test_a_secret_in_free_text_is_blanked(text):
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, text, None, None)
    line = json.loads(JsonLines().format(record))
    assert line["event"] == "error"
    assert not {"abc.def", "hunter2", "abc"} & set(line["message"].replace('"', " ").split())
    assert "dpsec_abc" not in line["message"]
