"""Payments confirmed in the wallet over the real server (issue 15): a payment above the holder's
PIN amount without a PIN is `403 pin_required` with a confirmation id; the holder approves it
with the PIN (or declines it) in their wallet, and the till's retry of the same seq passes once;
a confirmation passes only the payment it was made for, expires on the server's clock, and its
wrong PINs count with the till's."""

from __future__ import annotations

from typing import Any

import httpx

from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode
from tests.server.harness import (
    Admin,
    ManualClock,
    Running,
    TerminalClient,
    Wallet,
    enrolled_till,
    ready_wallet,
)
from tests.server.test_purse_limits import _at, _paid, _pay, _refused, _set_bounds, _takings

PIN = "204913"


def _setup(server: Running, clock: ManualClock, login: str) -> tuple[Admin, Wallet, TerminalClient]:
    _at(clock, 15)  # between meals, today
    admin = server.admin()
    _set_bounds(admin, confirm_max=2000, confirm_default=1000)
    wallet = ready_wallet(server.http, admin, login, balance=20_000)
    answer = wallet.http.put("/v1/wallet/pin", json={"pin": PIN}, headers=wallet.auth)
    assert answer.status_code == 200, answer.text
    till, merchant = enrolled_till(server.http, admin, f"till-{login}")
    till.merchant = merchant  # type: ignore[attr-defined]
    return admin, wallet, till


def _asked(answer: httpx.Response) -> str:
    """The confirmation id a `pin_required` carries."""
    _refused(answer, "pin_required")
    confirmation = answer.json()["confirmation"]
    assert isinstance(confirmation, str) and confirmation
    return confirmation


def _waiting(wallet: Wallet) -> list[dict[str, Any]]:
    answer = wallet.http.get("/v1/wallet/confirmations", headers=wallet.auth)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["confirmations"])


def _confirm(wallet: Wallet, confirmation: str, **body: Any) -> httpx.Response:
    target = f"/v1/wallet/confirmations/{confirmation}"
    return wallet.http.post(target, json=body, headers=wallet.auth)


def test_approved_in_the_wallet_the_same_payment_passes_once(clocked_server, clock):
    admin, wallet, till = _setup(clocked_server, clock, "mei")
    other = ready_wallet(clocked_server.http, admin, "bo", balance=100)
    code = wallet.code(int(clock.now))
    confirmation = _asked(_pay(till, clock, code, 1500, seq=100))
    assert _asked(_pay(till, clock, code, 1500, seq=100)) == confirmation  # still waiting
    [shown] = _waiting(wallet)
    assert shown["id"] == confirmation and shown["state"] == "pending"
    assert (shown["amount"], shown["currency"], shown["venue"]) == (1500, "CNY", "canteen")
    assert (shown["terminal"], shown["seq"]) == (till.terminal_id, 100)
    assert shown["expires_at"] == int(clock.now) + 120
    assert wallet.account()["balance"] == 20_000  # nothing held, nothing booked

    assert _waiting(other) == []  # another holder sees none of it, nor may decide it
    _refused(_confirm(other, confirmation, pin=PIN), "not_found", 404)
    deleted = other.http.delete(f"/v1/wallet/confirmations/{confirmation}", headers=other.auth)
    _refused(deleted, "not_found", 404)
    _refused(_confirm(wallet, confirmation, pin="000000"), "pin_wrong")
    _refused(_confirm(wallet, confirmation), "invalid_request", 422)
    _refused(_confirm(wallet, confirmation, pin=PIN, decline=True), "invalid_request", 422)
    approved = _confirm(wallet, confirmation, pin=PIN)
    assert approved.status_code == 200 and approved.json()["state"] == "approved", approved.text
    assert _waiting(wallet) == []

    # the approval is for this terminal, seq, amount and credential only
    elsewhere, _ = enrolled_till(clocked_server.http, admin, "till-mei-2")
    assert _asked(_pay(elsewhere, clock, code, 1500, seq=100)) != confirmation
    assert _asked(_pay(till, clock, code, 1600, seq=100)) != confirmation
    assert _asked(_pay(till, clock, code, 1500, seq=101)) != confirmation
    assert wallet.account()["balance"] == 20_000

    first = _pay(till, clock, code, 1500, seq=100)
    _paid(first)
    again = _pay(till, clock, code, 1500, seq=100)  # the duplicate seq's answer: paid once
    assert again.status_code == 200 and again.json() == first.json()
    assert wallet.account()["balance"] == 18_500 and _takings(admin, till) == 1500
    _refused(_confirm(wallet, confirmation, pin=PIN), "conflict", 409)  # used


def test_declined_and_expired_confirmations_refuse_the_retry(clocked_server, clock):
    _, wallet, till = _setup(clocked_server, clock, "lei")
    code = wallet.code(int(clock.now))
    declined = _asked(_pay(till, clock, code, 1500, seq=7))
    gone = wallet.http.delete(f"/v1/wallet/confirmations/{declined}", headers=wallet.auth)
    assert gone.status_code == 200 and gone.json()["state"] == "declined", gone.text
    _refused(_pay(till, clock, code, 1500, seq=7), "pin_declined")
    _refused(_confirm(wallet, declined, pin=PIN), "conflict", 409)

    waited = _asked(_pay(till, clock, code, 1500, seq=8))
    clock.advance(120)  # its time is up: neither the wallet nor the till may use it
    code = wallet.code(int(clock.now))  # a fresh code of the same credential
    assert _waiting(wallet) == []
    _refused(_confirm(wallet, waited, pin=PIN), "confirmation_expired")
    _refused(_pay(till, clock, code, 1500, seq=8), "confirmation_expired")

    late = _asked(_pay(till, clock, code, 1500, seq=9))
    answer = _confirm(wallet, late, decline=True)
    assert answer.status_code == 200 and answer.json()["state"] == "declined", answer.text
    approved = _asked(_pay(till, clock, code, 1500, seq=10))
    assert _confirm(wallet, approved, pin=PIN).status_code == 200
    clock.advance(121)  # approved, but the till came back too late
    code = wallet.code(int(clock.now))
    _refused(_pay(till, clock, code, 1500, seq=10), "confirmation_expired")
    assert wallet.account()["balance"] == 20_000
    _paid(_pay(till, clock, code, 1500, seq=10, pin=PIN))  # the keypad still works
    assert wallet.account()["balance"] == 18_500
    _asked(_pay(till, clock, wallet.code(int(clock.now)), 1500, seq=11))
    assert len(_waiting(wallet)) == 1
    _paid(_pay(till, clock, wallet.code(int(clock.now)), 1500, seq=11, pin=PIN))
    assert _waiting(wallet) == []  # settled at the keypad: nothing left to confirm


def test_wrong_pins_in_the_wallet_count_with_the_tills(clocked_server, clock):
    _, wallet, till = _setup(clocked_server, clock, "kai")
    code = wallet.code(int(clock.now))
    confirmation = _asked(_pay(till, clock, code, 1500, seq=3))
    for _ in range(4):
        _refused(_confirm(wallet, confirmation, pin="000000"), "pin_wrong")
    _refused(_pay(till, clock, code, 1500, seq=3, pin="111111"), "pin_wrong")  # the fifth
    blocked = _confirm(wallet, confirmation, pin=PIN)
    _refused(blocked, "throttled", 429)
    _refused(_pay(till, clock, code, 1500, seq=3, pin=PIN), "throttled", 429)
    clock.advance(int(blocked.headers["retry-after"]))
    assert _confirm(wallet, confirmation, pin=PIN).status_code == 200
    _paid(_pay(till, clock, code, 1500, seq=3))
    assert wallet.account()["balance"] == 18_500


def test_a_forged_code_does_not_forget_wrong_pins(clocked_server, clock):
    """A code that names the holder but does not verify (signed by another device key) is
    refused before the PIN matters: the right PIN sent with it forgets nothing."""
    _, wallet, till = _setup(clocked_server, clock, "yan")
    code = wallet.code(int(clock.now))
    for _ in range(4):
        _refused(_pay(till, clock, code, 1500, seq=20, pin="000000"), "pin_wrong")
    forged = make_code(
        b64u_decode(wallet.credential["credential"]),
        SigningKey.generate(),
        ctr=50,
        ts=int(clock.now),
    )
    refused = _pay(till, clock, forged, 1500, seq=21, pin=PIN)
    assert refused.status_code == 200 and not refused.json()["ok"], refused.text
    _refused(_pay(till, clock, code, 1500, seq=20, pin="000000"), "pin_wrong")  # the fifth
    _refused(_pay(till, clock, code, 1500, seq=20, pin=PIN), "throttled", 429)
    assert wallet.account()["balance"] == 20_000
