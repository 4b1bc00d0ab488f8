"""The holder's history and disputes (§5.3) through a real server: a payment disputed within 30
days of its booking and upheld is charged back to the merchant on today's booking day (a closed
day never changes); too late, twice, another holder's entry and a top-up are refused; a dispute
is decided once, also when two staff race."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cbor2
import httpx

from duopass.protocol.signed_requests import sign_request
from duopass.server.services import staff
from tests.server.harness import Admin, ManualClock, TerminalClient, enrolled_till, ready_wallet
from tests.server.test_settlement_close import close_by_two

DAY = 86_400


def _history(wallet, **query: Any) -> dict[str, Any]:
    answer = wallet.http.get("/v1/wallet/history", params=query, headers=wallet.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _dispute(wallet, entry: int, reason: str = "I was not there") -> httpx.Response:
    answer: httpx.Response = wallet.http.post(
        "/v1/wallet/disputes", json={"entry": entry, "reason": reason}, headers=wallet.auth
    )
    return answer


def _decide(staff_member: Admin, dispute: int, outcome: str, note: str = "") -> httpx.Response:
    return staff_member.post(
        f"/v1/admin/disputes/{dispute}/decide", {"outcome": outcome, "note": note}
    )


def _code(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code


def _day(server, when: float) -> str:
    return datetime.fromtimestamp(when, ZoneInfo(server.ctx.settings.timezone)).date().isoformat()


def _events(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    leaves = http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    found = [cbor2.loads(base64.b64decode(text)) for text in leaves]
    return [leaf[4] for leaf in found if leaf[1] == kind]


@dataclass
class _ClockedTill(TerminalClient):
    """A till whose requests are signed at the test's clock (the server's)."""

    clock: ManualClock | None = None

    def _signed(self, method: str, target: str, body: bytes) -> dict[str, str]:
        assert self.clock is not None
        at = int(self.clock.now)
        return sign_request(
            self.key, self.terminal_id, method=method, target=target, time=at, body=body
        )


def test_an_offline_payment_disputed_and_upheld_is_charged_back(clocked_server, clock):
    server = clocked_server
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "dora", balance=10_000)
    merchant = admin.merchant("canteen-till-1")
    enrol = admin.terminal(
        "till-1", mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
    )
    till = _ClockedTill(server.http, "till-1", clock=clock)
    assert till.enrol(enrol).status_code == 200
    scanned = int(clock.now)
    code = wallet.code(scanned)
    clock.advance(DAY)  # spent on one day, uploaded (booked) the next
    upload = till.journal([till.entry(code, seq=1, amount=1_200, scanned_at=scanned)])
    assert upload.status_code == 200, upload.text
    wallet.sign_in()  # yesterday's sessions have ended
    rows = _history(wallet)["items"]
    payment = next(row for row in rows if row["kind"] == "payment")
    assert payment["amount"] == -1_200 and payment["online"] is False
    assert payment["occurred_at"] == scanned and payment["booked_at"] == int(clock.now)
    assert (payment["terminal"], payment["venue"], payment["merchant"]) == (
        "till-1",
        "canteen",
        "canteen-till-1",
    )
    assert payment["disputable"] and payment["dispute"] is None
    topup = next(row for row in rows if row["kind"] == "topup")
    assert not topup["disputable"]
    booked_day = _day(server, clock.now)
    clock.advance(DAY)
    wallet.sign_in()
    admin = server.admin()
    assert close_by_two(server, booked_day)["state"] == "closed"
    before = server.http.get(f"/v1/admin/settlement/{booked_day}", headers=admin.auth).json()
    opened = _dispute(wallet, payment["id"])
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert (dispute["state"], dispute["amount"], dispute["entry"]) == ("open", 1_200, payment["id"])
    _code(_dispute(wallet, payment["id"]), 409, "already_disputed")
    assert not _history(wallet)["items"][0]["disputable"]
    listed = admin.http.get("/v1/admin/disputes", headers=admin.auth).json()["items"]
    assert [(d["id"], d["holder_login"]) for d in listed] == [(dispute["id"], "dora")]
    upheld = _decide(admin, dispute["id"], "uphold", "the till was closed")
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["state"] == "upheld" and upheld.json()["chargeback"]
    _code(_decide(admin, dispute["id"], "reject"), 409, "conflict")
    assert admin.account(wallet.account_id)["balance"] == 10_000
    assert admin.account(merchant)["balance"] == 0
    assert admin.books() == 0
    after = server.http.get(f"/v1/admin/settlement/{booked_day}", headers=admin.auth).json()
    assert after == before  # the closed day never changes
    today = server.http.get(f"/v1/admin/settlement/{_day(server, clock.now)}", headers=admin.auth)
    (line,) = today.json()["lines"]
    assert (line["terminal"], line["other"], line["net"]) == ("till-1", -1_200, -1_200)
    chargeback = _history(wallet)["items"][0]
    assert (chargeback["kind"], chargeback["amount"]) == ("chargeback", 1_200)
    assert [e["outcome"] for e in _events(server.http, "dispute_decide")] == ["upheld"]
    assert [e["payment"] for e in _events(server.http, "dispute_open")] == [payment["id"]]
    mine = wallet.http.get("/v1/wallet/disputes", headers=wallet.auth).json()["items"]
    assert [(d["id"], d["state"]) for d in mine] == [(dispute["id"], "upheld")]


def test_refusals_too_late_another_holders_not_a_payment(clocked_server, clock):
    server = clocked_server
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "emil", balance=10_000)
    other = ready_wallet(server.http, admin, "fay", balance=1_000)
    till, merchant = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(int(clock.now)), amount=700)["ok"]
    rows = _history(wallet)["items"]
    payment = next(row for row in rows if row["kind"] == "payment")
    topup = next(row for row in rows if row["kind"] == "topup")
    assert payment["online"] is True
    _code(_dispute(other, payment["id"]), 404, "not_found")
    _code(_dispute(wallet, topup["id"]), 409, "not_disputable")
    _code(_dispute(wallet, 2**31 - 1), 404, "not_found")
    _code(_dispute(wallet, payment["id"], reason="x" * 501), 422, "invalid_request")
    clock.advance(30 * DAY + 1)
    wallet.sign_in()
    assert not _history(wallet)["items"][0]["disputable"]
    _code(_dispute(wallet, payment["id"]), 409, "dispute_too_late")
    admin = server.admin()
    assert admin.account(merchant)["balance"] == 700


def test_an_operator_rejects_but_does_not_uphold(server):
    admin = server.admin()
    login = {"login": "olga", "password": "operator-password"}
    server.ctx.run(lambda unit: staff.add(unit, role="operator", **login))
    token = server.http.post("/v1/admin/session", json=login).json()["token"]
    operator = Admin(server.http, {"Authorization": f"Bearer {token}"})
    wallet = ready_wallet(server.http, admin, "gus", balance=5_000)
    till, merchant = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(), amount=900)["ok"]
    payment = _history(wallet)["items"][0]
    dispute = _dispute(wallet, payment["id"]).json()
    _code(_decide(operator, dispute["id"], "uphold"), 403, "forbidden")
    rejected = _decide(operator, dispute["id"], "reject", "receipt signed")
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    _code(_decide(admin, dispute["id"], "uphold"), 409, "conflict")
    _code(_decide(admin, 2**31 - 1, "reject"), 404, "not_found")
    assert admin.account(merchant)["balance"] == 900
    assert admin.account(wallet.account_id)["balance"] == 5_000 - 900


def test_a_dispute_is_upheld_once_when_staff_race(postgres_server):
    server = postgres_server
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "hana", balance=5_000)
    till, merchant = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(), amount=1_000)["ok"]
    dispute = _dispute(wallet, _history(wallet)["items"][0]["id"]).json()
    statuses: list[int] = []
    start = threading.Barrier(4)

    def decide() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            start.wait()
            answer = Admin(http, admin.auth).post(
                f"/v1/admin/disputes/{dispute['id']}/decide", {"outcome": "uphold"}
            )
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    assert admin.account(merchant)["balance"] == 0
    assert admin.account(wallet.account_id)["balance"] == 5_000
    assert admin.books() == 0


def test_a_voided_payment_is_not_disputed(server):
    """The till refused what the server accepted online (its journal says so): the charge was
    reversed, so nothing is left to charge back."""
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "ines", balance=5_000)
    till, merchant = enrolled_till(server.http, admin)
    code = wallet.code()
    assert till.scan(code, amount=800, seq=1)["ok"]
    voided = till.journal([till.entry(code, seq=1, amount=800, verdict="BAD_SIGNATURE")])
    assert voided.status_code == 200, voided.text
    rows = _history(wallet)["items"]
    assert [row["kind"] for row in rows[:2]] == ["void", "payment"]
    assert not rows[1]["disputable"] and rows[1]["online"] is True
    _code(_dispute(wallet, rows[1]["id"]), 409, "not_disputable")
    assert admin.account(merchant)["balance"] == 0
