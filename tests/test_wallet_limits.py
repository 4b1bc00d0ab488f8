"""`duopass wallet limits` and `duopass wallet pin` through the real command against a real
server: the holder's limits shown and set within the office's bounds (above one is refused),
the PIN set after the password, and then asked for above the amount."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from duopass.wallet import EXIT_STATUS, Failure, Wallet
from duopass.wallet.purse import limits, set_limits, set_pin
from tests.server.harness import ManualClock, Running, running_server


@pytest.fixture
def server(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "data") as running:
        yield running


def _wallet(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duopass", "wallet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DUOPASS_WALLET_DIR": str(data_dir), **env},
    )


def test_limits_are_shown_and_set_within_bounds_and_the_pin_set(server: Running, tmp_path):
    admin = server.admin()
    bounds = {"daily_max": 5000, "daily_default": 3000, "meal_max": 3, "confirm_max": 2000}
    assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
    admin.holder("ana", balance=10_000)
    data, password = tmp_path / "wallet", {"DUOPASS_WALLET_PASSWORD": "pw-ana-secret"}
    with Wallet(data, create=True) as wallet:  # the library, as `duopass wallet enrol` drives it
        wallet.enrol(server=server.url, login="ana", password="pw-ana-secret")

    over = _wallet(data, "limits", "--daily", "50.01")
    assert over.returncode == EXIT_STATUS[Failure.REFUSED], over.stderr
    assert "above the office's 5000" in over.stderr
    lowered = _wallet(data, "limits", "--daily", "40", "--confirm-above", "10.50")
    assert lowered.returncode == 0, lowered.stderr
    assert lowered.stdout.splitlines() == [
        "daily total: 40.00 (yours; the office allows at most 50.00)",
        "payments per meal: 3 (the office's default; the office allows at most 3)",
        "PIN asked above: 10.50 (yours; the office allows at most 20.00)",
        "PIN: not set",
        "meal periods: breakfast 06:00-10:00, lunch 10:30-14:00, dinner 16:30-20:00",
    ]
    pin = _wallet(data, "pin", **password, DUOPASS_WALLET_PIN="204913")
    assert pin.returncode == 0 and "PIN set" in pin.stderr, pin.stderr

    with Wallet(data) as wallet:  # what the commands did, read back through the library
        found = limits(wallet)
        assert found.pin_set and found.own == {"daily": 4000, "meal": None, "confirm_above": 1050}
        again = set_limits(wallet, {**found.own, "meal": 1})
        assert again.effective == {"daily": 4000, "meal": 1, "confirm_above": 1050}
        assert set_limits(wallet, {}).effective["daily"] == 3000  # the office's defaults
        assert not set_pin(wallet, password="pw-ana-secret", pin=None)


def test_a_raise_asks_for_the_password_once_the_sign_in_is_old(tmp_path):
    """Raising a limit on a session whose password sign-in is older than `recent_auth_s`: the
    server answers 401 step_up_required, and the command asks for the password (from
    `DUOPASS_WALLET_PASSWORD`, else the terminal), signs in again and sets it; lowering asks
    nothing, and a wrong password sets nothing."""
    clock = ManualClock()
    url = f"sqlite:///{tmp_path / 'duopass.db'}"
    with running_server(url, tmp_path / "data", clock=clock) as server:
        admin = server.admin()
        bounds = {"daily_max": 5000, "daily_default": 3000}
        assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
        admin.holder("bo")
        data = tmp_path / "wallet"
        with Wallet(data, create=True) as wallet:
            wallet.enrol(server=server.url, login="bo", password="pw-bo-secret")
        clock.advance(server.ctx.settings.recent_auth_s + 1)  # the enrolment's sign-in is old

        lowered = _wallet(data, "limits", "--daily", "20")
        assert lowered.returncode == 0, lowered.stderr  # lowering is free: nothing asked
        assert "password" not in lowered.stderr
        wrong = _wallet(data, "limits", "--daily", "45", DUOPASS_WALLET_PASSWORD="not-bo-at-all")
        assert wrong.returncode == EXIT_STATUS[Failure.REFUSED], wrong.stderr
        typed = subprocess.run(
            [sys.executable, "-m", "duopass", "wallet", "limits", "--daily", "45"],
            input="pw-bo-secret\n",
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DUOPASS_WALLET_DIR": str(data)},
        )
        assert typed.returncode == 0, typed.stderr
        assert "password (raising a limit asks for it)" in typed.stdout + typed.stderr
        assert "daily total: 45.00 (yours; the office allows at most 50.00)" in typed.stdout
        clock.advance(server.ctx.settings.recent_auth_s + 1)
        raised = _wallet(data, "limits", "--daily", "50", DUOPASS_WALLET_PASSWORD="pw-bo-secret")
        assert raised.returncode == 0, raised.stderr
        assert raised.stdout.splitlines()[0] == (
            "daily total: 50.00 (yours; the office allows at most 50.00)"
        )
        with Wallet(data) as wallet:
            assert limits(wallet).own["daily"] == 5000
