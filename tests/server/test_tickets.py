"""Events, orders and tickets (issue 13): an order paid from the account or at the counter is
double-entry money and an `order_paid` leaf whose hash is the purchase proof; a ticket's kind-3
credential is minted at the wallet's sync for its device, with the event's doors, end, venues
and entries; a cancelled order's ticket is revoked everywhere and never minted again; a freeze
covers tickets."""

from __future__ import annotations

import base64
import time

from duopass.ledger import hash_leaf
from duopass.ledger.leaf import parse_leaf
from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.cbor import loads
from duopass.protocol.claims import Kind
from duopass.protocol.code import decode_credential
from duopass.protocol.encoding import b64u_decode
from tests.server.harness import SQLITE_ONLY
from tests.server.ticketing import HOUR, entry_gate, event_on_sale, ticket_wallet

DAY = 86_400


def _claims(l1_text: str):
    l1 = b64u_decode(l1_text)
    return decode_credential(loads(l1), l1).claims


def test_an_order_from_the_account_is_double_entry_with_a_purchase_proof(server):
    admin = server.admin()
    sale = event_on_sale(admin, price=2_500, quota=3)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    bought = fan.buy(sale, quantity=2)
    assert bought.status_code == 201, bought.text
    order = bought.json()
    assert (order["amount"], order["state"], order["paid_by"]) == (5_000, "paid", "account")
    assert len(order["tickets"]) == 2
    assert fan.wallet.account()["balance"] == 5_000
    assert admin.books() == 0
    entry = server.http.get(f"/v1/ledger/entries/{order['ledger_index']}").json()
    data = base64.b64decode(entry["data"])
    assert hash_leaf(data).hex() == order["purchase_proof"]
    leaf = parse_leaf(data)
    assert leaf.type == "order_paid" and leaf.body["order"] == order["code"]
    seen = fan.http.get("/v1/wallet/history", headers=fan.wallet.auth).json()["items"]
    latest = seen[0]
    assert (latest["kind"], latest["merchant"], latest["amount"]) == ("order", "box-office", -5_000)
    # quota: one left of three
    assert fan.buy(sale, quantity=2).json()["code"] == "sold_out"
    # not more than the free funds
    poor = ticket_wallet(server.http, admin, "poor", balance=100)
    assert poor.buy(sale).json()["code"] == "no_funds"


def test_the_same_order_request_twice_buys_once(server):
    admin = server.admin()
    sale = event_on_sale(admin)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    body = {"ticket_type": sale.type_id, "quantity": 1, "request_id": "order-request-1"}
    first = server.http.post("/v1/me/orders", headers=fan.wallet.auth, json=body)
    again = server.http.post("/v1/me/orders", headers=fan.wallet.auth, json=body)
    assert first.json()["code"] == again.json()["code"]
    assert fan.wallet.account()["balance"] == 8_000
    other = server.http.post("/v1/me/orders", headers=fan.wallet.auth, json={**body, "quantity": 2})
    assert other.json()["code"] == "idempotency_mismatch"


@SQLITE_ONLY
def test_sync_mints_a_ticket_bound_to_the_device_for_the_event(server):
    admin = server.admin()
    sale = event_on_sale(admin, venues=("hall-a", "hall-b"), entries=2)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    synced = fan.sync()
    assert synced.status_code == 200, synced.text
    item = fan.tickets[sub]
    claims = _claims(item["credential"])
    assert claims.kind is Kind.TICKET and claims.sub == sub and claims.ev == sale.event
    assert (claims.nbf, claims.exp, claims.scope, claims.ent, claims.gen) == (
        sale.doors,
        sale.ends,
        ("hall-a", "hall-b"),
        2,
        0,
    )
    assert claims.device_key == fan.wallet.key.public and claims.uses
    # a second sync returns the same credential; one whose codes ran out gets a new one
    assert fan.sync().json()["tickets"][0]["credential"] == item["credential"]
    renewed = fan.sync(exhausted=(sub,)).json()["tickets"][0]
    assert renewed["credential"] != item["credential"] and renewed["gen"] == 0
    listed = server.http.get(f"/v1/me/tickets/{sub}", headers=fan.wallet.auth).json()
    assert listed["cti"] == renewed["cti"] and listed["order"]
    # another holder cannot see it
    other = ticket_wallet(server.http, admin, "other", balance=0)
    assert server.http.get(f"/v1/me/tickets/{sub}", headers=other.wallet.auth).status_code == 404


@SQLITE_ONLY
def test_a_ticket_far_ahead_is_an_entitlement_without_a_credential(server):
    admin = server.admin()
    doors = int(time.time()) + 40 * DAY  # beyond the 30-day ticket lifetime
    sale = event_on_sale(admin, doors=doors)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    item = fan.sync().json()["tickets"][0]
    assert (item["sub"], item["credential"], item["refusal"]) == (sub, None, "too_early")


@SQLITE_ONLY
def test_an_entry_gate_admits_the_ticket_online(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "OK"
    elsewhere = entry_gate(server.http, admin, "gate-x", event="other", venue="hall-a")
    assert elsewhere.scan(fan.code(sub), mode="entry")["reason"] == "OUT_OF_SCOPE"


def test_a_cancelled_order_is_revoked_everywhere_and_never_minted_again(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60, entries=3)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    order = fan.buy(sale).json()
    sub = order["tickets"][0]
    fan.sync()
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "OK"
    cancelled = admin.post(f"/v1/admin/orders/{order['code']}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert fan.wallet.account()["balance"] == 10_000 and admin.books() == 0
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "REVOKED"
    bundle = apply_bundle(None, open_bundle(gate.bundle(), gate.root_key))
    assert ("demo-univ", _claims(fan.tickets[sub]["credential"]).cti) in bundle.revoked
    again = fan.sync().json()["tickets"][0]
    assert (again["credential"], again["refusal"], again["state"]) == (
        None,
        "cancelled",
        "cancelled",
    )
    assert fan.sync(exhausted=(sub,)).json()["tickets"][0]["credential"] is None


def test_counter_orders_are_paid_at_the_counter_and_refunded_there(server):
    admin = server.admin()
    sale = event_on_sale(admin, price=1_500)
    fan = ticket_wallet(server.http, admin, "fan", balance=0)
    body = {"ticket_type": sale.type_id, "quantity": 1, "request_id": "counter-sale-1"}
    sold = admin.post(f"/v1/admin/holders/{fan.wallet.handle}/orders", body)
    assert sold.status_code == 201, sold.text
    assert sold.json()["paid_by"] == "staff" and fan.wallet.account()["balance"] == 0
    assert len(fan.sync().json()["tickets"]) == 1
    assert admin.post(f"/v1/admin/orders/{sold.json()['code']}/cancel", {}).status_code == 200
    assert admin.books() == 0 and fan.wallet.account()["balance"] == 0


@SQLITE_ONLY
def test_a_freeze_covers_the_holders_tickets_online_and_offline(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - HOUR)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    gate = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    frozen = admin.post(f"/v1/admin/holders/{fan.wallet.handle}/freeze", {"reason": "review"})
    assert frozen.status_code == 204, frozen.text
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "FROZEN"
    bundle = apply_bundle(None, open_bundle(gate.bundle(), gate.root_key))
    assert {("demo-univ", sub), ("demo-univ", fan.wallet.handle)} <= bundle.frozen
    assert fan.buy(sale).json()["code"] == "frozen"


def test_catalogue_inputs_have_limits_and_stable_reasons(server):
    admin = server.admin()
    event_on_sale(admin)
    bad = [
        ("/v1/admin/venues", {"id": "x y", "name": "X"}),
        ("/v1/admin/venues", {"id": "v1", "name": "V", "networks": ["not-a-net"]}),
        ("/v1/admin/venues", {"id": "v2", "name": "V", "lat_e6": 1}),
        (
            "/v1/admin/events",
            {"id": "e", "name": "E", "doors": 10, "ends": 5, "venues": ["hall-a"]},
        ),
        (
            "/v1/admin/events",
            {"id": "e", "name": "E", "doors": 1, "ends": 5, "venues": ["nowhere"]},
        ),
        ("/v1/admin/events/concert/ticket-types", {"name": "T", "price": -1, "quota": 1}),
        ("/v1/admin/events/concert/ticket-types", {"name": "T", "price": 1, "quota": 0}),
    ]
    for path, body in bad:
        answer = admin.post(path, body)
        assert answer.status_code in (404, 422), (path, body, answer.text)
        assert answer.json()["code"] in ("invalid_request", "not_found"), answer.text
    assert admin.post("/v1/admin/venues", {"id": "hall-a", "name": "Again"}).json()["code"] == (
        "conflict"
    )


def test_a_free_ticket_moves_no_money_and_cancels_cleanly(server):
    admin = server.admin()
    sale = event_on_sale(admin, price=0)
    fan = ticket_wallet(server.http, admin, "fan", balance=0)
    order = fan.buy(sale)
    assert order.status_code == 201, order.text
    assert order.json()["amount"] == 0 and len(fan.sync().json()["tickets"]) == 1
    cancelled = admin.post(f"/v1/admin/orders/{order.json()['code']}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert admin.books() == 0
