"""`duopass wallet history`, `dispute` and `disputes` through the real command against a real
server on a clock the test sets: a payment made offline at 23:30 on one day and uploaded at 01:30
the next shows on the day it was made, in the device's time zone, with its booking time beside
it; a code shown and never uploaded is listed as pending; a payment is disputed once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from duopass.wallet import EXIT_STATUS, Failure, Wallet
from tests.server.harness import ManualClock, Running, running_server
from tests.server.test_disputes import _ClockedTill

ZONE = "Asia/Shanghai"


def _late_evening() -> float:
    """23:30 in ZONE, three days ago."""
    day = datetime.now(ZoneInfo(ZONE)).date() - timedelta(days=3)
    return datetime(day.year, day.month, day.day, 23, 30, tzinfo=ZoneInfo(ZONE)).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(now=_late_evening())


@pytest.fixture
def server(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    with running_server(url, tmp_path / "data", clock=clock) as running:
        yield running


def _wallet(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duopass", "wallet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DUOPASS_WALLET_DIR": str(data_dir), "TZ": ZONE},
    )


def _local(when: float) -> str:
    return datetime.fromtimestamp(when, ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M %Z")


def test_history_shows_the_day_it_was_spent_and_the_codes_not_yet_seen(
    server: Running, clock: ManualClock, tmp_path
):
    admin = server.admin()
    admin.holder("ivy", balance=10_000)
    merchant = admin.merchant("canteen")
    enrol = admin.terminal(
        "till-1", mode="pay", venue="hall-a", merchant_account_id=merchant, currency="CNY"
    )
    till = _ClockedTill(server.http, "till-1", clock=clock)
    assert till.enrol(enrol).status_code == 200
    data = tmp_path / "wallet"
    with Wallet(data, create=True) as wallet:
        wallet.enrol(server=server.url, login="ivy", password="pw-ivy-secret")
        wallet.sync()
        scanned = int(clock.now)
        offline = wallet.show().text(scanned)
        second = wallet.show().text(scanned + 60)
        wallet.show()  # shown, never scanned (or a till has not uploaded it)
    clock.advance(2 * 3600)  # 01:30 the next day: the till uploads
    entries = [
        till.entry(offline, seq=1, amount=1_250, venue="hall-a", scanned_at=scanned),
        till.entry(second, seq=2, amount=300, venue="hall-a", scanned_at=scanned + 60),
    ]
    assert till.journal(entries).status_code == 200

    shown = _wallet(data, "history")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    paid = next(line for line in lines if "-12.50 CNY" in line)
    assert paid.startswith(f"{_local(scanned)}  payment")  # the day it was spent
    assert f"canteen at hall-a (till-1), offline; booked {_local(clock.now)}" in paid
    assert _local(scanned)[:10] != _local(clock.now)[:10]  # spent on one day, booked the next
    other = next(line for line in lines if "-3.00 CNY" in line)
    assert f"{_local(scanned + 60)}  payment" in other and "dispute until" in other
    assert lines[-1].startswith("pending: codes shown, not yet seen by the server (counters 2)")

    entry_id = int(paid.split("  entry ")[1].split(",")[0])
    opened = _wallet(data, "dispute", str(entry_id), "--reason", "I was asleep")
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.startswith(f"dispute 1: entry {entry_id}, 12.50 CNY at canteen, paid ")
    assert opened.stdout.rstrip().endswith(": open")
    again = _wallet(data, "dispute", str(entry_id), "--reason", "once more")
    assert again.returncode == EXIT_STATUS[Failure.REFUSED]
    assert "already_disputed" in again.stderr
    listed = _wallet(data, "disputes")
    assert listed.returncode == 0 and listed.stdout.startswith("dispute 1: entry"), listed.stderr
    after = _wallet(data, "history").stdout
    assert "disputed (open)" in after
