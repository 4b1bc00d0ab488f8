"""An operator looks up, reviews and dismisses alerts, freezes and takes a loss report; no money
moves by their hand: top-ups, refunds, counter sales and their cancellation, review decisions
that book a pending amount (or release a held request), and moving a holder's tickets at the
counter (vouching in person for a step-up) are an admin's. Each route refuses an operator with 403
`forbidden` and books nothing; an admin still can."""

from __future__ import annotations

import uuid

from duopass.protocol.encoding import b64u_encode
from duopass.server.services import staff
from tests.server.harness import SQLITE_ONLY, Admin, Wallet, enrolled_till, ready_wallet
from tests.server.ticketing import event_on_sale, ticket_wallet


def _operator(server) -> Admin:
    login = {"login": "olga", "password": "operator-password"}
    server.ctx.run(lambda unit: staff.add(unit, role="operator", **login))
    token = server.http.post("/v1/admin/session", json=login).json()["token"]
    return Admin(server.http, {"Authorization": f"Bearer {token}"})


def _refused(answer) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "forbidden"


@SQLITE_ONLY
def test_an_operator_neither_tops_up_nor_refunds(server):
    admin, operator = server.admin(), _operator(server)
    wallet = ready_wallet(server.http, admin, "ada", balance=1_000)
    till, merchant = enrolled_till(server.http, admin)
    assert till.journal([till.entry(wallet.code(), seq=1, amount=700)]).status_code == 200
    _refused(operator.top_up(wallet.handle, 1_000))
    refund = {"amount": 500, "request_id": uuid.uuid4().hex, "merchant_account_id": merchant}
    _refused(operator.post(f"/v1/admin/holders/{wallet.handle}/refunds", refund))
    assert admin.account(wallet.account_id)["balance"] == 300  # nothing booked
    assert admin.top_up(wallet.handle, 1_000).status_code == 200
    refunded = admin.post(f"/v1/admin/holders/{wallet.handle}/refunds", refund)
    assert refunded.status_code == 200, refunded.text
    assert admin.account(wallet.account_id)["balance"] == 300 + 1_000 + 500
    assert admin.books() == 0


@SQLITE_ONLY
def test_an_operator_neither_sells_at_the_counter_nor_cancels_an_order(server):
    admin, operator = server.admin(), _operator(server)
    sale = event_on_sale(admin)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    order = fan.buy(sale).json()
    _refused(operator.post(f"/v1/admin/orders/{order['code']}/cancel", {}))
    counter = {"ticket_type": sale.type_id, "quantity": 1, "request_id": uuid.uuid4().hex}
    handle = fan.wallet.handle
    _refused(operator.post(f"/v1/admin/holders/{handle}/orders", counter))
    assert admin.post(f"/v1/admin/holders/{handle}/orders", counter).status_code == 201
    cancelled = admin.post(f"/v1/admin/orders/{order['code']}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert admin.books() == 0


@SQLITE_ONLY
def test_an_operator_dismisses_but_books_no_pending_amount_at_review(server):
    admin, operator = server.admin(), _operator(server)
    wallet = ready_wallet(server.http, admin, "rosa", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    code = wallet.code()
    assert till.journal([till.entry(code, seq=1, amount=700)]).status_code == 200
    assert till.journal([till.entry(code, seq=1, amount=2_500)], first=1).status_code == 200
    alerts = admin.http.get("/v1/admin/alerts", headers=admin.auth).json()["items"]
    alert = next(a for a in alerts if a["kind"] == "conflict")
    path = f"/v1/admin/alerts/{alert['id']}/review"
    for action in ("to_holder", "to_loss", "release"):
        _refused(operator.post(path, {"action": action}))
    assert admin.account(merchant)["balance"] == 700  # nothing booked
    assert admin.post(path, {"action": "to_loss"}).status_code == 200
    assert admin.account(merchant)["balance"] == 700 + 2_500
    assert admin.books() == 0


@SQLITE_ONLY
def test_an_operator_still_looks_up_and_freezes(server):
    admin, operator = server.admin(), _operator(server)
    holder = admin.holder("ben")
    found = operator.http.get("/v1/admin/holders", params={"q": "ben"}, headers=operator.auth)
    assert [item["login"] for item in found.json()["items"]] == ["ben"]
    frozen = operator.post(f"/v1/admin/holders/{holder['handle']}/freeze", {"reason": "lost"})
    assert frozen.status_code == 204, frozen.text


@SQLITE_ONLY
def test_an_operator_reports_a_loss_but_replaces_nothing_at_the_counter(server):
    admin, operator = server.admin(), _operator(server)
    sale = event_on_sale(admin)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    assert fan.buy(sale).status_code == 201
    handle = fan.wallet.handle
    reported = operator.post(f"/v1/admin/holders/{handle}/loss-report", {})
    assert reported.status_code == 200, reported.text
    phone = Wallet(server.http, "fan")
    phone.sign_in()
    phone.enrol()
    key = {"device_key": b64u_encode(phone.key.public)}
    _refused(operator.post(f"/v1/admin/holders/{handle}/lost", key))
    moved = admin.post(f"/v1/admin/holders/{handle}/lost", key)
    assert moved.status_code == 200, moved.text
    assert [t["state"] for t in moved.json()["tickets"]] == ["done"]
