"""Purse limits at the till, through the real `duopass terminal run`: the server wants the PIN
for a payment above the holder's amount, the cashier's keypad takes it (a wrong one, then the
right one) and the till sends the same seq again; a payment over the daily total is refused
online and never decided again offline."""

from __future__ import annotations

import json

from duopass.demo.netcut import Proxy
from tests.server.harness import Running, ready_wallet
from tests.terminal.conftest import cli, enrol_till, till_code


def test_the_till_asks_for_the_pin_and_a_limit_refusal_is_final(
    server: Running, proxy: Proxy, tmp_path
) -> None:
    admin = server.admin()
    bounds = {"confirm_max": 1000, "confirm_default": 1000, "daily_default": 2000}
    assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
    wallet = ready_wallet(server.http, admin, "pia", balance=10_000)
    pin = server.http.put("/v1/wallet/pin", json={"pin": "204913"}, headers=wallet.auth)
    assert pin.status_code == 200 and pin.json() == {"pin_set": True}, pin.text
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    typed = ["15.00", wallet.code(), "000000", "204913", "10.00", wallet.code()]
    done = cli("run", "--json", "--data-dir", str(data), stdin="\n".join(typed) + "\n")
    assert done.returncode == 0, done.stderr
    paid, refused = [json.loads(line) for line in done.stdout.splitlines()]
    assert paid["ok"] and paid["mode"] == "online" and paid["amount"] == 1500
    assert "wrong PIN, PIN for this payment?" in done.stderr
    assert refused["reason"] == "INSUFFICIENT_FUNDS" and refused["mode"] == "online"
    assert refused["note"] == "limit_daily_total"
    assert wallet.account()["balance"] == 8_500
    assert admin.account(merchant)["balance"] == 1_500
