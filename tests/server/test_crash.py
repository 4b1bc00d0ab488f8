"""The server killed (SIGKILL) in the middle of a stream of online payments and restarted on
the same database: every payment applied exactly once, nothing lost, money conserved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from duopass.demo.serving import free_port, wait_until_up
from tests.server.harness import Admin, TerminalClient, Wallet

PAYMENTS = 50
WALLETS = 5  # 10 offline uses each: a counter per payment
AMOUNT = 100
DEADLINE_S = 180


def _serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "duopass",
            "serve",
            "--demo",
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(server, f"http://127.0.0.1:{port}/healthz")


def _pay(till: TerminalClient, code: str, seq: int, failures: list[int]) -> dict[str, object]:
    """One scan, retried with the same (terminal, seq) until the server answers."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return till.scan(code, amount=AMOUNT, seq=seq)
        except httpx.TransportError:
            failures.append(seq)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_killed_server_loses_and_repeats_no_payment(tmp_path):
    data, port = tmp_path / "data", free_port()
    server = _serve(data, port)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        demo = json.loads((data / "demo.json").read_text())
        token = http.post("/v1/admin/session", json=demo["admin"]).json()["token"]
        admin = Admin(http, {"Authorization": f"Bearer {token}"})
        wallets = []
        for n in range(WALLETS):
            wallet = Wallet(http, f"student{n:04d}", password=demo["holders"]["password"])
            wallet.sign_in()
            assert admin.top_up(demo["holders"]["first_handles"][n], 50_000).status_code == 200
            wallet.enrol()
            assert wallet.sync().status_code == 200
            wallets.append(wallet)
        till = TerminalClient(http, "till-north-1")
        assert till.enrol(demo["terminals"]["till-north-1"]).status_code == 200
        merchant = demo["merchants"]["canteen-north"]
        merchant_before = admin.account(merchant)["balance"]
        funds_before = sum(w.account()["balance"] for w in wallets)

        verdicts: dict[int, dict[str, object]] = {}
        codes: dict[int, str] = {}
        half = threading.Event()
        failures: list[int] = []

        def stream() -> None:
            for seq in range(1, PAYMENTS + 1):
                codes[seq] = wallets[seq % len(wallets)].code()
                verdicts[seq] = _pay(till, codes[seq], seq, failures)
                if seq == PAYMENTS // 2:
                    half.set()

        payer = threading.Thread(target=stream)
        payer.start()
        assert half.wait(DEADLINE_S)
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: requests in flight are cut
        server.wait()
        server = _serve(data, port)
        payer.join(DEADLINE_S)
        assert not payer.is_alive()

        assert all(v["ok"] for v in verdicts.values()), [
            v for v in verdicts.values() if not v["ok"]
        ]
        assert admin.account(merchant)["balance"] - merchant_before == PAYMENTS * AMOUNT
        assert funds_before - sum(w.account()["balance"] for w in wallets) == PAYMENTS * AMOUNT
        assert admin.books() == 0
        for seq in (1, PAYMENTS // 2, PAYMENTS // 2 + 1, PAYMENTS):  # retries change nothing
            assert till.scan(codes[seq], amount=AMOUNT, seq=seq) == verdicts[seq]
        assert admin.account(merchant)["balance"] - merchant_before == PAYMENTS * AMOUNT
    finally:
        http.close()
        server.kill()
        server.wait()
