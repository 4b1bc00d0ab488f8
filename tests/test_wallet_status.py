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

from tests.server.harness import running_server

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
    assert re.search(r"^held        180\.00 CNY: 6 offline codes", text, re.MULTILINE), text
    assert "a sync releases the codes never shown" in text
    assert re.search(rf"credential  valid until {LOCAL_TIME}, offline and online", text), text
    assert "4 left of 6 (2 shown), up to 30.00 CNY each" in text, text
    assert re.search(
        rf"stays held until its payment arrives, at the latest until {LOCAL_TIME}", text
    )
    assert not re.search(r"\b1\d{9}\b", text), "no Unix times"
    assert "18300" not in text
    raw = json.loads(_wallet(data, "status", "--json").stdout)
    assert raw["account"]["balance"] == 18_300 and isinstance(raw["credential"]["exp"], int)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.iterdir()}
    assert {"wallet.db", "device.jwk"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_status_of_a_missing_wallet_makes_no_folder(tmp_path):
    missing = tmp_path / "nowhere"
    done = _wallet(missing, "status")
    assert done.returncode == 3 and "duopass wallet enrol" in done.stderr
    assert not missing.exists()
