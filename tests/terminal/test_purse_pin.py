"""Purse limits at the till, through the real `duopass terminal run`: the server wants the PIN
for a payment above the holder's amount, the cashier's keypad takes it (a wrong one, then the
right one) and the till sends the same seq again, or the holder confirms it in their wallet
while the till waits; a payment over the daily total is refused online and never decided
again offline."""

from __future__ import annotations

import json
from typing import Any

from duopass.demo.netcut import Proxy
from duopass.protocol.reasons import Reason
from duopass.terminal import AgentSettings, TerminalAgent, enrol
from duopass.terminal.scan import WAIT_FOR_WALLET, WALLET_POLL_S
from tests.server.harness import Running, Wallet, ready_wallet
from tests.terminal.conftest import (
    DEADLINE_S,
    TerminalProcess,
    cli,
    enrol_till,
    till_code,
    wait_for,
)


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


def _confirmation(server: Running, wallet: Wallet) -> dict[str, Any]:
    """The payment waiting in the holder's wallet, once the till's ask has reached the server."""
    found: list[dict[str, Any]] = []

    def waiting() -> bool:
        answer = server.http.get("/v1/wallet/confirmations", headers=wallet.auth)
        found[:] = answer.json()["confirmations"]
        return bool(found)

    wait_for(waiting, "a confirmation in the wallet")
    return found[0]


def test_the_holder_confirms_in_the_wallet_while_the_till_waits(
    server: Running, proxy: Proxy, tmp_path
) -> None:
    admin = server.admin()
    bounds = {"confirm_max": 1000, "confirm_default": 1000}
    assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
    wallet = ready_wallet(server.http, admin, "ivo", balance=10_000)
    pin = server.http.put("/v1/wallet/pin", json={"pin": "204913"}, headers=wallet.auth)
    assert pin.status_code == 200, pin.text
    code, merchant = till_code(admin)
    data = tmp_path / "till"
    enrol_till(proxy, code, data)
    till = TerminalProcess(data)
    for line in ("15.00", wallet.code(), ""):  # Enter at the PIN prompt: wait for the wallet
        till.send(line)
    waiting = _confirmation(server, wallet)
    assert (waiting["amount"], waiting["terminal"]) == (1500, "till-1")
    target = f"/v1/wallet/confirmations/{waiting['id']}"
    approved = server.http.post(target, json={"pin": "204913"}, headers=wallet.auth)
    assert approved.status_code == 200, approved.text
    paid = json.loads(till.lines.get(timeout=DEADLINE_S))
    assert paid["ok"] and paid["mode"] == "online" and paid["amount"] == 1500

    for line in ("12.00", wallet.code(), ""):
        till.send(line)
    waiting = _confirmation(server, wallet)
    declined = server.http.delete(f"/v1/wallet/confirmations/{waiting['id']}", headers=wallet.auth)
    assert declined.status_code == 200, declined.text
    refused = json.loads(till.lines.get(timeout=DEADLINE_S))
    assert not refused["ok"] and refused["note"] == "pin_declined"
    assert till.finish() == 0
    assert "confirm in your wallet: waiting up to 60 s" in till.stderr()
    assert wallet.account()["balance"] == 8_500
    assert admin.account(merchant)["balance"] == 1_500


def test_a_till_waits_for_the_wallet_a_bounded_time(
    server: Running, proxy: Proxy, tmp_path
) -> None:
    """Nobody confirms: the till sends the seq again a bounded number of times, then refuses
    the payment (journalled, never decided offline, and then no longer listed in the wallet);
    the typed PIN still works after it."""
    admin = server.admin()
    bounds = {"confirm_max": 1000, "confirm_default": 1000}
    assert admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth).is_success
    wallet = ready_wallet(server.http, admin, "uma", balance=10_000)
    pin = server.http.put("/v1/wallet/pin", json={"pin": "204913"}, headers=wallet.auth)
    assert pin.status_code == 200, pin.text
    code, _ = till_code(admin)
    data = tmp_path / "till"
    enrol(data, server=proxy.url, terminal_id="till-1", code=code)
    naps: list[float] = []
    asked: list[tuple[str, str | None]] = []

    def wallet_first(why: str, confirmation: str | None) -> str | None:
        asked.append((why, confirmation))
        return WAIT_FOR_WALLET if len(asked) == 1 else "204913"

    with TerminalAgent(data, AgentSettings(timeout_s=5.0)) as terminal:
        terminal.scan_path.sleep = naps.append
        terminal.scan_path.wallet_wait_s = 6.0
        refused = terminal.scan_path.scan(wallet.code(), amount=1500, pin_entry=wallet_first)
        assert (refused.reason, refused.online, refused.note) == (
            Reason.INSUFFICIENT_FUNDS,
            True,
            "pin_required",
        )
        assert naps == [WALLET_POLL_S] * 4
        assert asked[0][0] == "pin_required" and asked[0][1] is not None
        assert terminal.uploader.upload()  # the refusal journalled: nothing left to confirm
        listed = server.http.get("/v1/wallet/confirmations", headers=wallet.auth)
        assert listed.status_code == 200 and listed.json() == {"confirmations": []}
        paid = terminal.scan_path.scan(wallet.code(), amount=1500, pin_entry=wallet_first)
        assert paid.ok and paid.online and asked[1][0] == "pin_required"
    assert wallet.account()["balance"] == 8_500
