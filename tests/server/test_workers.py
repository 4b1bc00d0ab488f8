"""`duopass serve --workers 3` on PostgreSQL: concurrent payments from several tills, each on a
fresh connection (so the kernel hands them to every worker), are booked once each, the books
balance, the ledger audits and its checkpoints, signed by whichever worker was asked, form one
consistent sequence; a terminal revoked through one worker is refused by all of them at once."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from duopass.cli.app import app as cli
from duopass.demo.serving import free_port, wait_until_up
from duopass.ledger import NoteVerifier, open_checkpoint, verify_consistency
from duopass.server.keyring import Keyring
from tests.pg import postgres_url_fixture  # noqa: F401
from tests.server.conftest import _postgres_database
from tests.server.harness import (
    ADMIN_PASSWORD,
    Admin,
    TerminalClient,
    enrolled_till,
    ready_wallet,
)

WORKERS = 3
TILLS = 3
WALLETS = 4
PAYMENTS_EACH = 6  # per wallet: 24 payments, within the 10 offline uses of a credential
AMOUNT = 100
BUSY_TRIES = 5


def _fresh() -> dict[str, Any]:
    """httpx options for one connection per request: the kernel picks a worker for each."""
    return {"limits": httpx.Limits(max_keepalive_connections=0), "timeout": 30}


def _workers_logged(log: Path, start: int, path: str, status: int) -> set[int]:
    """The workers whose access log, from byte `start`, answered `path` with `status`."""
    seen = set()
    with log.open("rb") as lines:
        lines.seek(start)
        for line in lines:
            entry = json.loads(line)
            if entry.get("path") == path and entry.get("status") == status:
                seen.add(entry["worker"])
    return seen


def _until_every_worker(log: Path, start: int, status: int, ask: Any) -> None:
    """Ask (in parallel bursts, fresh connections) until every worker has answered `status`;
    then until the log holds a line for every request asked (a worker writes its line once the
    answer is sent, so a client can hold an answer whose line is still to come)."""
    asked_from = log.stat().st_size
    for rounds in range(1, 41):
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda _: ask(), range(6)))
        if _workers_logged(log, start, "/v1/terminal/bundle", status) == set(range(WORKERS)):
            _until_logged(log, asked_from, "/v1/terminal/bundle", 6 * rounds)
            return
    raise AssertionError("the kernel never handed a connection to every worker")


def _until_logged(log: Path, start: int, path: str, count: int) -> None:
    """Wait (10 s at most) until the log, from byte `start`, holds `count` lines for `path`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with log.open("rb") as lines:
            lines.seek(start)
            whole = (line for line in lines if line.endswith(b"\n"))  # not one being written
            if sum(json.loads(line).get("path") == path for line in whole) >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"the log never held {count} lines for {path}")


def test_sqlite_stays_one_process(tmp_path):
    done = CliRunner().invoke(
        cli, ["serve", "--init", "--workers", "2", "--data-dir", str(tmp_path), "--port", "0"]
    )
    assert done.exit_code == 2
    assert done.stderr.startswith("duopass: --workers 2 needs PostgreSQL")
    assert done.stderr.count("\n") == 1


def test_workers_book_each_payment_once_and_share_one_ledger(tmp_path, request):
    data, port, log = tmp_path / "data", free_port(), tmp_path / "server.log"
    db = _postgres_database(request)
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--workers", str(WORKERS)]
    command += ["--db", db, "--data-dir", str(data)]
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{url}/healthz", timeout_s=60)
        where = ["--data-dir", str(data), "--db", db]
        password = tmp_path / "password"
        password.write_text(ADMIN_PASSWORD + "\n")
        added = CliRunner().invoke(
            cli,
            ["staff", "add", "admin", "--role", "admin", "--password-file", str(password), *where],
        )
        assert added.exit_code == 0, added.output
        with httpx.Client(base_url=url, **_fresh()) as http:
            _pay_check_and_revoke(http, data, log)
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0


def _pay_check_and_revoke(http: httpx.Client, data: Path, log: Path) -> None:
    signed_in = http.post("/v1/admin/session", json={"login": "admin", "password": ADMIN_PASSWORD})
    admin = Admin(http, {"Authorization": f"Bearer {signed_in.json()['token']}"})
    merchant = admin.merchant("canteen-workers")
    tills = [enrolled_till(http, admin, f"w-till-{n}", merchant=merchant)[0] for n in range(TILLS)]
    wallets = [ready_wallet(http, admin, f"w{n}", balance=40_000) for n in range(WALLETS)]
    before = {w.login: w.account()["balance"] for w in wallets}
    taken_before = admin.account(merchant)["balance"]

    jobs = [(tills[i % TILLS], w) for i, w in enumerate(wallets * PAYMENTS_EACH)]
    seqs = {id(t): iter(range(1, 1000)) for t in tills}
    work = [(till, wallet.code(), next(seqs[id(till)])) for till, wallet in jobs]
    notes: list[bytes] = []

    def pay(job: tuple[TerminalClient, str, int]) -> dict[str, Any]:
        till, code, seq = job
        notes.append(http.get("/v1/ledger/checkpoint").content)  # signed by some worker
        for _ in range(BUSY_TRIES):
            answer = till.scan_answer(code, amount=AMOUNT, seq=seq)
            # a unit moved out of too many batches by the workers' lock conflicts is answered
            # 503 `busy`; a till sends the same seq again, as here (a loaded machine meets it)
            if not (answer.status_code == 503 and answer.json().get("code") == "busy"):
                break
            time.sleep(0.2)  # a till waits a moment before it sends it again
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    with ThreadPoolExecutor(12) as pool:
        verdicts = list(pool.map(pay, work))
    assert all(v["ok"] for v in verdicts), [v for v in verdicts if not v["ok"]]
    for till, code, seq in work[:3]:  # a repeat books nothing: the verdict it holds
        assert till.scan(code, amount=AMOUNT, seq=seq)["ok"]
    for wallet in wallets:
        assert wallet.account()["balance"] == before[wallet.login] - PAYMENTS_EACH * AMOUNT
    assert admin.account(merchant)["balance"] == taken_before + len(work) * AMOUNT
    assert admin.books() == 0
    assert _workers_logged(log, 0, "/v1/terminal/scans", 200) == set(range(WORKERS))

    verifier = NoteVerifier.parse(Keyring.load(data).ledger.verifier.vkey())
    notes.append(http.get("/v1/ledger/checkpoint").content)
    _one_sequence(http, verifier, notes)
    audited = CliRunner().invoke(
        cli,
        [
            "audit",
            "--url",
            str(http.base_url),
            "--key",
            verifier.vkey(),
            "--state",
            str(data.parent / "audit.json"),
        ],
    )
    assert audited.exit_code == 0 and "audit passed" in audited.output, audited.output

    till = tills[0]
    _until_every_worker(log, 0, 200, till.bundle)  # cached by every worker
    revoked_at = log.stat().st_size
    assert admin.post(f"/v1/admin/terminals/{till.terminal_id}/revoke", {}).json() == {
        "revoked": True
    }

    def refused() -> None:
        target = "/v1/terminal/bundle?since=0"
        answer = http.get(target, headers=till._signed("GET", target, b""))
        assert answer.status_code == 401, answer.text

    _until_every_worker(log, revoked_at, 401, refused)
    assert _workers_logged(log, revoked_at, "/v1/terminal/bundle", 200) == set()


def _one_sequence(http: httpx.Client, verifier: NoteVerifier, notes: list[bytes]) -> None:
    """Every checkpoint handed out verifies and extends the one before it."""
    checkpoints = sorted(
        {open_checkpoint(note, verifier).checkpoint for note in notes}, key=lambda c: c.size
    )
    assert len({c.size for c in checkpoints}) == len(checkpoints)  # one root for each size
    for old, new in itertools.pairwise(checkpoints):
        proof = http.get(
            "/v1/ledger/proofs/consistency", params={"old": old.size, "new": new.size}
        ).json()["proof"]
        verify_consistency(
            size1=old.size,
            size2=new.size,
            proof=[base64.b64decode(p) for p in proof],
            root1=old.root,
            root2=new.root,
        )
