"""A partner's orders for campus holders (issue 17): with `tickets:issue` and an
Idempotency-Key it sells tickets of its own events to a holder named by number and e-mail; the
partner collected the price, so the books show it owing that (its account debited, the box
office credited), the day's settlement shows it per partner, and a cancel reverses it. Through
the real server, with real tokens."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from duopass.ledger.leaf import parse_leaf
from tests.server.harness import SQLITE_ONLY, Wallet
from tests.server.partners import make_client, token
from tests.server.ticketing import HOUR, OnSale, TicketWallet, event_on_sale

NUMBER, EMAIL = "2026001234", "Li.Wei@campus.example.edu"


def _bearer(http, client: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(http, client).json()['access_token']}"}


def _partner_event(http, admin, headers, *, quota: int = 3, price: int = 1_500) -> int:
    """A partner's event (doors in two days, at the arena) with one ticket type."""
    admin.post("/v1/admin/venues", {"id": "arena", "name": "Arena", "networks": []})
    doors = int(time.time()) + 48 * HOUR
    spec = {"id": "gig", "name": "Gig", "doors": doors, "ends": doors + 4 * HOUR}
    made = http.post("/v1/partner/events", json=spec | {"venues": ["arena"]}, headers=headers)
    assert made.status_code == 201, made.text
    kind = {"name": "Standing", "price": price, "quota": quota}
    typed = http.post("/v1/partner/events/gig/ticket-types", json=kind, headers=headers)
    assert typed.status_code == 201, typed.text
    return int(typed.json()["id"])


def _order(http, headers, key: str | None, type_id: int, quantity: int = 2, **holder: str):
    body = {
        "holder": {"number": NUMBER, "email": EMAIL} | holder,
        "ticket_type": type_id,
        "quantity": quantity,
    }
    extra = {} if key is None else {"Idempotency-Key": key}
    return http.post("/v1/partner/orders", json=body, headers=headers | extra)


def _leaves(server, kind: str) -> list[Any]:
    size = int(server.http.get("/v1/ledger/checkpoint").text.splitlines()[1])
    found = []
    for index in range(size):
        entry = server.http.get(f"/v1/ledger/entries/{index}").json()
        leaf = parse_leaf(base64.b64decode(entry["data"]))
        if leaf.type == kind:
            found.append(leaf)
    return found


def _day(server, when: int) -> str:
    zone = ZoneInfo(server.ctx.settings.timezone)
    return datetime.fromtimestamp(when, zone).date().isoformat()


def _fan(http, admin, login: str = "fan", **person: str) -> TicketWallet:
    """A holder the card office enrolled with this number and e-mail, signed in on a phone."""
    holder = admin.holder(login, **({"number": NUMBER, "email": EMAIL} | person))
    wallet = Wallet(http, login)
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    return TicketWallet(wallet)


def test_a_partner_sells_to_a_holder_and_owes_the_price_until_it_cancels(server):
    http, admin = server.http, server.admin()
    client = make_client(admin, ["tickets:issue", "tickets:read"])
    mine, other = _bearer(http, client), _bearer(http, make_client(admin, ["tickets:issue"]))
    type_id = _partner_event(http, admin, mine)
    fan = _fan(http, admin)
    wrong = _order(http, mine, "order-0001", type_id, email="someone@campus.example.edu")
    assert (wrong.status_code, wrong.json()["code"]) == (404, "holder_not_found")
    sold = _order(http, mine, "order-0001", type_id, email=EMAIL.upper())  # any case
    assert sold.status_code == 201, sold.text
    order = sold.json()
    assert (order["paid_by"], order["amount"], order["quantity"]) == ("partner", 3_000, 2)
    assert [t["state"] for t in order["ticket_states"]] == ["valid", "valid"]
    again = _order(http, mine, "order-0001", type_id, email=EMAIL.upper())
    assert again.status_code == 200 and again.json()["code"] == order["code"]
    changed = _order(http, mine, "order-0001", type_id, 1)
    assert (changed.status_code, changed.json()["code"]) == (409, "idempotency_mismatch")
    assert _order(http, mine, None, type_id).json()["code"] == "invalid_request"
    theirs = _order(http, other, "order-0002", type_id)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    over = _order(http, mine, "order-0003", type_id)
    assert (over.status_code, over.json()["code"]) == (409, "sold_out")  # 2 of 3 sold
    assert fan.sync().status_code == 200
    assert sorted(fan.tickets) == sorted(order["tickets"])

    day = _day(server, order["created_at"])
    report = http.get(f"/v1/admin/settlement/{day}", headers=admin.auth).json()
    owes = {"partner": client["client_id"], "currency": "CNY", "sold": 3_000, "cancelled": 0}
    assert report["partners"] == [owes | {"owed_total": 3_000, "net": 3_000}]
    office = [line for line in report["lines"] if line["merchant"] == "box-office:CNY"]
    assert office[0]["other"] == 3_000
    paid = _leaves(server, "order_paid")[-1].body
    assert (paid["paid_by"], paid["partner"]) == ("partner", client["client_id"])

    code = order["code"]
    refused = http.post(f"/v1/partner/orders/{code}/cancel", headers=other)
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    cancelled = http.post(f"/v1/partner/orders/{code}/cancel", headers=mine)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert [t["state"] for t in cancelled.json()["ticket_states"]] == ["cancelled"] * 2
    twice = http.post(f"/v1/partner/orders/{code}/cancel", headers=mine).json()
    assert twice["cancelled_at"] == cancelled.json()["cancelled_at"]
    report = http.get(f"/v1/admin/settlement/{day}", headers=admin.auth).json()
    assert report["partners"] == [owes | {"cancelled": 3_000, "owed_total": 0, "net": 0}]
    assert _leaves(server, "order_cancel")[-1].body["partner"] == client["client_id"]
    assert fan.wallet.account()["balance"] == 0  # no holder's money moved either way
    assert admin.books() == 0


@SQLITE_ONLY
def test_a_partner_sells_only_its_own_tickets_and_cancels_only_its_own_sales(server):
    http, admin = server.http, server.admin()
    mine = _bearer(http, make_client(admin, ["tickets:issue"]))
    reader = _bearer(http, make_client(admin, ["tickets:read"]))
    type_id = _partner_event(http, admin, mine, quota=10)
    house = event_on_sale(admin, "house-gig", venues=("hall-a",))
    fan = _fan(http, admin)
    refused = _order(http, reader, "k-1", type_id)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    office = _order(http, mine, "k-2", house.type_id)
    assert (office.status_code, office.json()["code"]) == (404, "not_found")
    unknown = _order(http, mine, "k-3", type_id, number="2026000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "holder_not_found")
    assert _order(http, mine, "k-4", type_id, 21).json()["code"] == "invalid_request"
    assert _order(http, mine, "k" * 46, type_id).json()["code"] == "invalid_request"
    # a holder's own purchase of the partner's event is the card office's to cancel
    assert admin.top_up(fan.wallet.handle, 10_000).status_code == 200
    bought = fan.buy(OnSale("gig", type_id, house.doors, house.ends, ("arena",)))
    assert bought.status_code == 201, bought.text
    theirs = http.post(f"/v1/partner/orders/{bought.json()['code']}/cancel", headers=mine)
    assert (theirs.status_code, theirs.json()["code"]) == (409, "conflict")
    # the same key for another holder is another request
    _fan(http, admin, "other", number="2026005678", email="other@campus.example.edu")
    first = _order(http, mine, "k-5", type_id, 1)
    assert first.status_code == 201, first.text
    second = _order(
        http, mine, "k-5", type_id, 1, number="2026005678", email="other@campus.example.edu"
    )
    assert (second.status_code, second.json()["code"]) == (409, "idempotency_mismatch")
    # the card office may cancel a partner's sale too: what the partner owes is taken back
    code = first.json()["code"]
    by_office = admin.post(f"/v1/admin/orders/{code}/cancel", {})
    assert by_office.status_code == 200, by_office.text
    assert by_office.json()["state"] == "cancelled"
    report = http.get(
        f"/v1/admin/settlement/{_day(server, first.json()['created_at'])}", headers=admin.auth
    )
    assert [line["owed_total"] for line in report.json()["partners"]] == [0]


def test_one_key_sent_twice_at_once_makes_one_order(server):
    http, admin = server.http, server.admin()
    client = make_client(admin, ["tickets:issue"])
    mine = _bearer(http, client)
    type_id = _partner_event(http, admin, mine, quota=50)
    _fan(http, admin)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _order(http, mine, "race-1", type_id, 1), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["code"] for a in answers}) == 1
    day = _day(server, answers[0].json()["created_at"])
    report = http.get(f"/v1/admin/settlement/{day}", headers=admin.auth).json()
    assert [line["sold"] for line in report["partners"]] == [1_500]
    assert admin.books() == 0
