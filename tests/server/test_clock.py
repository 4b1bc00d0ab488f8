"""One clock the whole server reads, movable by tests only (issue 11): hours pass without
sleeping, over HTTP or in process; a server not started for tests refuses the setting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from duopass.demo.serving import free_port, wait_until_up
from duopass.server.app import create_app
from duopass.server.clock import MovableClock, MovableClockRefused
from duopass.server.keyring import Keyring
from duopass.server.settings import Settings
from tests.server.harness import Wallet, running_server

HOUR = 3600


def _date(answer: httpx.Response) -> float:
    return parsedate_to_datetime(answer.headers["date"]).timestamp()


def test_a_production_server_refuses_the_test_clock(tmp_path):
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'd.db'}", data_dir=tmp_path / "data", test_clock=True
    )
    keyring = Keyring.create(tmp_path / "data", origin="demo-univ/ledger")
    with pytest.raises(MovableClockRefused):
        create_app(settings, keyring=keyring)


def test_a_normal_server_has_no_clock_route(server):
    admin = server.admin()
    assert (
        server.http.post("/v1/test/clock", json={"advance_s": 1}, headers=admin.auth).status_code
        == 404
    )


def test_tests_move_the_servers_clock_forward_over_http(tmp_path):
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    with running_server(url, tmp_path / "data", test_clock=True) as server:
        admin = server.admin()
        admin.holder("mia")
        wallet = Wallet(server.http, "mia")
        wallet.sign_in()
        before = server.http.get("/v1/test/clock", headers=admin.auth).json()
        assert before["offset_s"] == 0
        holder = server.http.get("/v1/test/clock", headers=wallet.auth)
        assert holder.status_code == 403
        moved = server.http.post("/v1/test/clock", json={"advance_s": 9 * HOUR}, headers=admin.auth)
        assert moved.status_code == 200, moved.text
        assert moved.json()["now"] >= before["now"] + 9 * HOUR
        assert abs(_date(moved) - moved.json()["now"]) <= 2  # Date comes from the same clock
        # the holder's 8-hour session has ended on the server's clock
        assert server.http.get("/v1/me/account", headers=wallet.auth).status_code == 401
        admin = server.admin()  # the admin's session ended too
        back = server.http.post("/v1/test/clock", json={"to": before["now"]}, headers=admin.auth)
        assert back.status_code == 409
        assert isinstance(server.ctx.clock, MovableClock)
        server.ctx.clock.advance(HOUR)  # in process, the same clock
        now = server.http.get("/v1/test/clock", headers=server.admin().auth).json()["now"]
        assert now >= before["now"] + 10 * HOUR


def test_duopass_serve_takes_the_test_clock_only_with_testing(tmp_path):
    env = {**os.environ, "DUOPASS_TEST_CLOCK": "true"}
    data = tmp_path / "data"
    command = [sys.executable, "-m", "duopass", "serve", "--init", "--data-dir", str(data)]
    refused = subprocess.run(
        [*command, "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "only a server started for tests" in refused.stderr
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port), "--testing"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert abs(_date(answer) - time.time()) < 60
    finally:
        process.terminate()
        process.wait(timeout=30)
