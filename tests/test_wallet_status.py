"""`duopass wallet status` for people, through the real command against a real server: money in
yuan, times in local time, held money explained; the raw fields behind --json; a missing wallet
folder is not made; the folder is its owner's only."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from duopass.cli.people import local_time, money
from duopass.cli.wallet_status import status_lines
from tests.server.harness import enrolled_till, running_server

LOCAL_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \S+"


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def _wallet(data_dir: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUOPASS_WALLET_DIR": str(data_dir), "DUOPASS_WALLET_PASSWORD": password}
    return subprocess.run(
        [sys.executable, "-m", "duopass", "wallet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_status_shows_yuan_local_times_and_why_money_is_held(server, tmp_path):
    server.admin().holder("mia", balance=18_300)
    data = tmp_path / "wallet"
    enrolled = _wallet(
        data, "enrol", "--server", server.url, "--login", "mia", password="pw-mia-secret"
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert _wallet(data, "sync").returncode == 0
    for _ in range(2):
        assert _wallet(data, "code", "--no-qr").returncode == 0
    shown = _wallet(data, "status")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "balance     183.00 CNY" in text
    assert re.search(r"^free        3\.00 CNY", text, re.MULTILINE), text
    assert re.search(r"^held        180\.00 CNY: offline codes", text, re.MULTILINE), text
    assert "a sync releases" not in text.lower()
    assert re.search(rf"credential  valid until {LOCAL_TIME}, offline and online", text), text
    assert "4 left of 6 (2 shown), up to 30.00 CNY each" in text, text
    assert re.search(rf"all of this wallet's by the first sweep after {LOCAL_TIME}\.", text)
    assert not re.search(r"\b1\d{9}\b", text), "no Unix times"
    assert "18300" not in text
    raw = json.loads(_wallet(data, "status", "--json").stdout)
    assert raw["account"]["balance"] == 18_300 and isinstance(raw["credential"]["exp"], int)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.iterdir()}
    assert {"wallet.db", "device.jwk"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


@pytest.mark.parametrize("command", [["status"], ["sync"], ["code", "--no-qr"]])
def test_a_missing_wallet_is_not_enrolled_and_no_folder_is_made(tmp_path, command):
    missing = tmp_path / "nowhere"
    done = _wallet(missing, *command)
    assert done.returncode == 3 and "duopass wallet enrol" in done.stderr, done.stderr
    assert not missing.exists()


def _enrolled(server, tmp_path: Path, login: str, **holder: int) -> Path:
    server.admin().holder(login, **holder)
    data = tmp_path / "wallet"
    done = _wallet(
        data, "enrol", "--server", server.url, "--login", login, password=f"pw-{login}-secret"
    )
    assert done.returncode == 0, done.stderr
    return data


def test_three_syncs_without_a_code_count_no_codes_and_promise_no_release(server, tmp_path):
    """The walk-through: overdraft 0, three syncs and no code shown. The second credential is
    sized to what the first left free, the third is online only; all 183.00 CNY stay held on the
    superseded credentials (a refresh releases holds only within the overdraft, §4.2). Status
    once counted 183.00 / the online-only credential's txmax of 0.01 = 18300 codes, and said a
    sync would release them."""
    data = _enrolled(server, tmp_path, "nora", balance=18_300)
    answers = [_wallet(data, "sync") for _ in range(3)]
    assert [done.returncode for done in answers] == [0, 0, 0]
    assert ", 6 codes, offline and online" in answers[0].stderr
    assert "online only: no funds to hold" in answers[2].stderr
    text = _wallet(data, "status").stdout
    raw = json.loads(_wallet(data, "status", "--json").stdout)
    assert raw["account"]["held"] == 18_300 and raw["credential"]["txmax"] == 1
    assert re.search(r"^held        183\.00 CNY: offline codes the server", text, re.M), text
    assert "18300" not in text
    assert not re.search(r"\d+ (offline )?codes? the server", text), text
    assert "a sync releases" not in text.lower()
    assert "A sync gives none of it back: that needs an overdraft." in text
    latest = local_time(raw["credential"]["exp"] + raw["hold_horizon_s"])
    assert f"all of this wallet's by the first sweep after {latest}." in text, text
    assert ", 1 code, offline and online" in answers[1].stderr, answers[1].stderr
    assert _wallet(data, "sync").returncode == 0  # and indeed a fourth sync frees nothing
    assert json.loads(_wallet(data, "status", "--json").stdout)["account"]["held"] == 18_300


def test_with_an_overdraft_a_sync_gives_back_only_up_to_it():
    doc = {
        "enrolled": True,
        "login": "olga",
        "server": "http://127.0.0.1:1",
        "device_id": 1,
        "signed_in": True,
        "codes": "ok",
        "account": {
            "currency": "CNY",
            "balance": 10_000,
            "overdraft": 5_000,
            "held": 9_000,
            "free_funds": 6_000,
            "recent": [],
        },
    }
    text = "\n".join(status_lines(doc))
    assert "A sync gives back codes never shown only up to 50.00 CNY." in text
    assert "after the credential it was held for expires plus the late window." in text
    assert "first sweep" not in text  # no credential: no date the wallet could know


def test_status_shows_the_latest_movements_in_yuan_and_local_time(server, tmp_path):
    data = _enrolled(server, tmp_path, "pia", balance=18_300)
    assert _wallet(data, "sync").returncode == 0
    code = _wallet(data, "code", "--no-qr")
    assert code.returncode == 0, code.stderr
    till, _ = enrolled_till(server.http, server.admin())
    assert till.scan(code.stdout.strip(), amount=1_250)["ok"]
    text = _wallet(data, "status").stdout
    recent = re.findall(rf"^recent      ({LOCAL_TIME})  (\S+) +(\S+ CNY)$", text, re.M)
    assert [(kind, amount) for _, kind, amount in recent] == [
        ("payment", "-12.50 CNY"),
        ("topup", "183.00 CNY"),
    ], text
    raw = json.loads(_wallet(data, "status", "--json").stdout)["account"]["recent"]
    assert [row["amount"] for row in raw] == [-1_250, 18_300]
    assert recent[0][0] == local_time(raw[0]["occurred_at"])
    assert money(raw[0]["amount"], "CNY") == "-12.50 CNY"
