"""`duopass wallet limits`, `duopass wallet pin` and `duopass wallet confirm` through the real
command against a real server: the holder's limits shown and set within the office's bounds
(above one is refused), the PIN set after the password, and then asked for above the amount;
a payment above it confirmed (or declined) in the wallet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duopass.wallet import EXIT_STATUS, Failure, Wallet
from duopass.wallet.confirmations import waiting as waiting_payments
from duopass.wallet.purse import limits, set_limits, set_pin
from tests.server.harness import ManualClock, Running, enrolled_till, running_server
from tests.server.test_purse_limits import _paid, _pay, _refused


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


def test_wallet_confirm_lists_approves_and_declines(server: Running, tmp_path):
    """`duopass wallet confirm`: a till's payment above the PIN amount, sent without the PIN,
    is listed, approved with the PIN (a wrong one refused) and then passes at the till; another
    is declined and the till's ask for it is refused."""
    admin = server.admin()
    bounds = {"confirm_max": 1000, "confirm_default": 1000}
    assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
    account = admin.holder("eli", balance=10_000)["account_id"]
    data = tmp_path / "wallet"
    with Wallet(data, create=True) as wallet:
        wallet.enrol(server=server.url, login="eli", password="pw-eli-secret")
        assert set_pin(wallet, password="pw-eli-secret", pin="204913")
        wallet.sync()
        codes = [wallet.show().text(int(time.time())) for _ in range(2)]
    till, _ = enrolled_till(server.http, admin, "till-eli")
    clock = ManualClock()
    _refused(_pay(till, clock, codes[0], 1500, seq=1), "pin_required")
    bad = _wallet(data, "confirm", "--decline", "not/an/id")
    assert bad.returncode == EXIT_STATUS[Failure.REFUSED] and "not a confirmation id" in bad.stderr

    listed = _wallet(data, "confirm", "--json")
    assert listed.returncode == 0, listed.stderr
    [waiting] = json.loads(listed.stdout)
    assert (waiting["amount"], waiting["venue"], waiting["seq"]) == (1500, "canteen", 1)
    shown = _wallet(data, "confirm")
    assert shown.stdout.startswith(f"{waiting['id']}  15.00 CNY at canteen (till-eli, seq 1)")
    wrong = _wallet(data, "confirm", "--approve", waiting["id"], DUOPASS_WALLET_PIN="000000")
    assert wrong.returncode == EXIT_STATUS[Failure.REFUSED] and "pin_wrong" in wrong.stderr
    right = _wallet(data, "confirm", "--approve", waiting["id"], DUOPASS_WALLET_PIN="204913")
    assert right.returncode == 0 and "payment approved: " in right.stderr, right.stderr
    _paid(_pay(till, clock, codes[0], 1500, seq=1))
    assert _wallet(data, "confirm").stdout.splitlines() == ["nothing to confirm"]

    _refused(_pay(till, clock, codes[1], 1200, seq=2), "pin_required")
    with Wallet(data) as wallet:
        [waiting2] = waiting_payments(wallet)
    declined = _wallet(data, "confirm", "--decline", waiting2.id)
    assert declined.returncode == 0 and "payment declined: " in declined.stderr, declined.stderr
    _refused(_pay(till, clock, codes[1], 1200, seq=2), "pin_declined")
    assert admin.account(account)["balance"] == 8_500


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
