"""Purse limits over the real server (issue 15): a daily total and a count per meal period per
holder within the office's bounds, and a PIN above a single-payment amount, on the online pay
path; every refusal leaves the money where it was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from duopass.protocol.signed_requests import sign_request
from tests.server.harness import (
    Admin,
    ManualClock,
    Running,
    TerminalClient,
    Wallet,
    enrolled_till,
    ready_wallet,
)

ZONE = ZoneInfo("Asia/Shanghai")  # the issuer's time zone (Settings.timezone's default)
BOUNDS = {"daily_max": 5000, "daily_default": 3000, "meal_max": 3, "meal_default": 2}


def _at(clock: ManualClock, hour: int, minute: int = 0, *, days: int = 0) -> None:
    """Move the clock to a local time of the day it shows (`days` later)."""
    local = datetime.fromtimestamp(clock.now, ZONE) + timedelta(days=days)
    clock.now = local.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def _pay(
    till: TerminalClient,
    clock: ManualClock,
    code: str,
    amount: int,
    *,
    seq: int | None = None,
    pin: str | None = None,
) -> httpx.Response:
    """A till's online payment, signed at the server's (test) time."""
    if seq is None:
        till.seq += 1
        seq = till.seq
    fields: dict[str, Any] = {"code": code, "mode": "pay", "amount": amount}
    fields |= {"terminal_id": till.terminal_id, "seq": seq, "scanned_at": int(clock.now)}
    if pin is not None:
        fields["pin"] = pin
    body = json.dumps(fields).encode()
    target = "/v1/terminal/scans"
    headers = sign_request(
        till.key, till.terminal_id, method="POST", target=target, time=int(clock.now), body=body
    )
    return till.http.post(
        target, content=body, headers={**headers, "Content-Type": "application/json"}
    )


def _refused(answer: httpx.Response, code: str, status: int = 403) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code, answer.text


def _paid(answer: httpx.Response) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"], answer.text


def _set_bounds(admin: Admin, **bounds: Any) -> dict[str, Any]:
    answer = admin.http.put("/v1/admin/purse-limits", json=bounds, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _setup(server: Running, clock: ManualClock, login: str) -> tuple[Admin, Wallet, TerminalClient]:
    _at(clock, 12)  # lunch, today
    admin = server.admin()
    _set_bounds(admin, **BOUNDS)
    wallet = ready_wallet(server.http, admin, login, balance=20_000)
    till, merchant = enrolled_till(server.http, admin, f"till-{login}")
    till.merchant = merchant  # type: ignore[attr-defined]
    return admin, wallet, till


def _takings(admin: Admin, till: TerminalClient) -> int:
    return int(admin.account(till.merchant)["balance"])  # type: ignore[attr-defined]


def test_daily_total_and_meal_count_refused_then_allowed_later(clocked_server, clock):
    admin, wallet, till = _setup(clocked_server, clock, "ming")
    limits = wallet.http.get("/v1/wallet/limits", headers=wallet.auth).json()
    assert limits["effective"] == {"daily": 3000, "meal": 2, "confirm_above": None}
    now = int(clock.now)
    _paid(_pay(till, clock, wallet.code(now), 1000))
    _paid(_pay(till, clock, wallet.code(now), 1000))
    _refused(_pay(till, clock, wallet.code(now), 500), "limit_meal_count")
    assert wallet.account()["balance"] == 18_000 and _takings(admin, till) == 2000

    _at(clock, 17)  # dinner: a new meal period, the same day
    now = int(clock.now)
    _refused(_pay(till, clock, wallet.code(now), 1500), "limit_daily_total")
    assert wallet.account()["balance"] == 18_000
    _paid(_pay(till, clock, wallet.code(now), 1000))  # exactly the daily total
    _refused(_pay(till, clock, wallet.code(now), 1), "limit_daily_total")
    assert wallet.account()["balance"] == 17_000 and _takings(admin, till) == 3000

    _at(clock, 8, days=1)  # the next day's breakfast: the day and the meal start again
    wallet.sign_in()
    assert wallet.sync().status_code == 200  # yesterday's credential has expired
    _paid(_pay(till, clock, wallet.code(int(clock.now)), 3000))
    assert wallet.account()["balance"] == 14_000


def test_a_refused_seq_is_free_and_its_code_unspent(clocked_server, clock):
    """A limit refusal records nothing for the seq and consumes no counter: the till may send
    the same seq again (with a PIN, or once the limit allows)."""
    _, wallet, till = _setup(clocked_server, clock, "lan")
    code = wallet.code(int(clock.now))
    _refused(_pay(till, clock, code, 3001, seq=41), "limit_daily_total")
    _paid(_pay(till, clock, code, 3000, seq=41))
    assert wallet.account()["balance"] == 17_000


def test_holder_sets_limits_within_the_offices_bounds(server: Running) -> None:
    admin = server.admin()
    _set_bounds(admin, **BOUNDS, confirm_max=2000)
    wallet = ready_wallet(server.http, admin, "hua", balance=100)

    def put(**own: Any) -> httpx.Response:
        return server.http.put("/v1/wallet/limits", json=own, headers=wallet.auth)

    _refused(put(daily=5001), "limit_above_bound", 422)
    _refused(put(meal=4), "limit_above_bound", 422)
    _refused(put(confirm_above=2001), "limit_above_bound", 422)
    answer = put(daily=4000, meal=1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["effective"] == {"daily": 4000, "meal": 1, "confirm_above": 2000}
    assert answer.json()["own"] == {"daily": 4000, "meal": 1, "confirm_above": None}
    _set_bounds(admin, **{**BOUNDS, "daily_max": 2500, "daily_default": 2000})  # lowered
    limits = server.http.get("/v1/wallet/limits", headers=wallet.auth).json()
    assert limits["effective"]["daily"] == 2500 and limits["own"]["daily"] == 4000
    assert limits["effective"]["confirm_above"] is None  # the office dropped its bound
    bad = admin.http.put(
        "/v1/admin/purse-limits", json={"daily_max": 10, "daily_default": 11}, headers=admin.auth
    )
    _refused(bad, "limit_above_bound", 422)
    by_holder = server.http.put("/v1/admin/purse-limits", json={}, headers=wallet.auth)
    assert by_holder.status_code == 403, by_holder.text
    overlapping = [{"name": "a", "start": "06:00", "end": "10:00"}]
    overlapping.append({"name": "b", "start": "09:00", "end": "11:00"})
    bad = admin.http.put("/v1/admin/purse-limits", json={"meals": overlapping}, headers=admin.auth)
    _refused(bad, "invalid_request", 422)


def test_pin_above_the_amount_and_wrong_pins_throttled(clocked_server, clock):
    admin, wallet, till = _setup(clocked_server, clock, "jun")
    _set_bounds(admin, confirm_max=2000, confirm_default=1000)
    now = int(clock.now)
    _refused(_pay(till, clock, wallet.code(now), 1500), "pin_not_set")
    pin = wallet.http.put("/v1/wallet/pin", json={"pin": "204913"}, headers=wallet.auth)
    assert pin.status_code == 200 and pin.json() == {"pin_set": True}, pin.text
    assert wallet.http.get("/v1/wallet/limits", headers=wallet.auth).json()["pin_set"]
    _paid(_pay(till, clock, wallet.code(now), 1000))  # at the amount: no PIN asked
    code = wallet.code(now)
    _refused(_pay(till, clock, code, 1500, seq=100), "pin_required")
    _refused(_pay(till, clock, code, 1500, seq=100, pin="111111"), "pin_wrong")
    assert wallet.account()["balance"] == 19_000
    _paid(_pay(till, clock, code, 1500, seq=100, pin="204913"))
    assert wallet.account()["balance"] == 17_500

    code = wallet.code(now)
    for _ in range(5):  # five wrong PINs are free; the fifth blocks the holder's PIN for 2 s
        _refused(_pay(till, clock, code, 1500, seq=101, pin="000000"), "pin_wrong")
    throttled = _pay(till, clock, code, 1500, seq=101, pin="204913")
    _refused(throttled, "throttled", 429)
    assert int(throttled.headers["retry-after"]) >= 1
    assert wallet.account()["balance"] == 17_500
    clock.advance(int(throttled.headers["retry-after"]))
    _paid(_pay(till, clock, code, 1500, seq=101, pin="204913"))
    assert wallet.account()["balance"] == 16_000

    clock.advance(601)  # no longer a recent sign-in: the PIN stays as it is
    stale = wallet.http.put("/v1/wallet/pin", json={"pin": "999999"}, headers=wallet.auth)
    _refused(stale, "step_up_required", 401)
    # a stale session (a lost phone's) may lower a limit, but neither lift one nor drop its
    # own for the office's looser default
    lowered = wallet.http.put("/v1/wallet/limits", json={"confirm_above": 500}, headers=wallet.auth)
    assert lowered.status_code == 200, lowered.text
    for looser in ({"confirm_above": 2000}, {"confirm_above": None}):
        lifted = wallet.http.put("/v1/wallet/limits", json=looser, headers=wallet.auth)
        _refused(lifted, "step_up_required", 401)
    _refused(_pay(till, clock, wallet.code(int(clock.now)), 600, seq=102), "pin_required")


def test_a_new_credential_carries_the_daily_total_offline(server: Running):
    """Offline a till can check neither a PIN nor a day: the credential's `txmax` (the largest
    payment a till takes offline) is at most the daily total; the PIN amount leaves it as the
    office set it (held down to it, a payment above it could not be paid online either)."""
    admin = server.admin()
    plain = ready_wallet(server.http, admin, "yue", balance=20_000).credential
    _set_bounds(admin, daily_default=2500, confirm_default=1000)
    pin = ready_wallet(server.http, admin, "xia", balance=20_000).credential
    _set_bounds(admin, daily_default=800, confirm_default=1000)
    daily = ready_wallet(server.http, admin, "qiu", balance=20_000).credential
    assert [c["txmax"] for c in (plain, pin, daily)] == [3000, 2500, 800]
    assert pin["offline"] and daily["offline"]
