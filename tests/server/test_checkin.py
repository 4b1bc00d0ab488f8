"""Check-in (issue 13): lists per event, the pretix-style redeem route (201 ok, 400 refused,
404 an unknown code; `reason` a §3 code or pretix's), nonces and forced uploads, terminals on
their own event's lists, and one count of a ticket's entries across an online gate, the redeem
route and an offline gate's journal."""

from __future__ import annotations

import base64
import time
from typing import Any

from duopass.ledger.leaf import parse_leaf
from tests.server.harness import SQLITE_ONLY
from tests.server.ticketing import (
    HOUR,
    entrance,
    entry_gate,
    event_on_sale,
    redeem,
    terminal_redeem,
    ticket_wallet,
)


def _ledger_types(server) -> list[str]:
    """The event type of every leaf in the ledger."""
    leaves: list[str] = []
    start = 0
    while True:
        page = server.http.get("/v1/ledger/entries", params={"start": start}).json()["entries"]
        if not page:
            return leaves
        leaves += [parse_leaf(base64.b64decode(data)).type for data in page]
        start += len(page)


def _status(admin, list_id: int) -> dict[str, Any]:
    answer = admin.http.get(f"/v1/admin/checkin-lists/{list_id}/status", headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@SQLITE_ONLY
def test_a_pretix_like_session_at_the_door(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    first, second = fan.buy(sale, quantity=2).json()["tickets"]
    fan.sync()
    door = entrance(admin, sale.event)
    # ok: 201, the ticket with its entries
    ok = redeem(admin, fan.code(first), [door], source_type="barcode", questions_supported=False)
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert (body["status"], body["reason"], body["list"]["id"]) == ("ok", None, door)
    assert body["ticket"]["sub"] == first and body["ticket"]["entries_used"] == 1
    assert body["ticket"]["entries_allowed"] == 1 and body["ticket"]["order"]
    # in again without leaving: ALREADY_USED (§3 check 19), 400
    again = redeem(admin, fan.code(first), [door])
    assert again.status_code == 400
    assert (again.json()["status"], again.json()["reason"]) == ("error", "ALREADY_USED")
    # out, then in again: the Entrance does not allow re-entry
    out = redeem(admin, fan.code(first), [door], type="exit")
    assert out.status_code == 201, out.text
    back = redeem(admin, fan.code(first), [door])
    assert (back.status_code, back.json()["reason"]) == (400, "rules")
    # a lounge with re-entry: in, out, in, and one entry used
    made = admin.post(
        f"/v1/admin/events/{sale.event}/checkin-lists",
        {"name": "Lounge", "ticket_types": None, "allow_reentry": True},
    )
    assert made.status_code == 201, made.text
    lounge = made.json()["id"]
    for kind in ("entry", "exit", "entry"):
        step = redeem(admin, fan.code(second), [lounge], type=kind)
        assert step.status_code == 201, (kind, step.text)
    assert step.json()["ticket"]["entries_used"] == 1
    lounge_now = _status(admin, lounge)
    assert (lounge_now["entered"], lounge_now["inside"], lounge_now["allow_reentry"]) == (
        1,
        1,
        True,
    )
    assert (_status(admin, door)["entered"], _status(admin, door)["inside"]) == (1, 0)
    # an exit of a ticket not inside is refused by the rules
    assert redeem(admin, fan.code(first), [lounge], type="exit").json()["reason"] == "rules"
    assert _ledger_types(server).count("checkin") == 5


def test_a_nonce_answers_the_first_answer_and_checks_in_once(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    door = entrance(admin, sale.event)
    code = fan.code(sub)
    first = redeem(admin, code, [door], nonce="scan-7f3a")
    retry = redeem(admin, code, [door], nonce="scan-7f3a")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert first.json() == retry.json()
    # the same nonce with another code is still that one check-in
    assert redeem(admin, fan.code(sub), [door], nonce="scan-7f3a").json() == first.json()
    assert _status(admin, door)["entered"] == 1
    assert first.json()["ticket"]["entries_used"] == 1
    assert _ledger_types(server).count("checkin") == 1
    # a refusal is the first answer again too
    refused = redeem(admin, fan.code(sub), [door], nonce="scan-8b01")
    assert refused.status_code == 400
    assert redeem(admin, fan.code(sub), [door], nonce="scan-8b01").json() == refused.json()


def test_force_records_what_an_offline_device_did(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - HOUR)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    door = entrance(admin, sale.event)
    assert redeem(admin, fan.code(sub), [door]).status_code == 201
    scanned = int(time.time()) - 30
    code = fan.code(sub, now=scanned)
    when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(scanned))
    forced = redeem(admin, code, [door], force=True, datetime=when)
    assert forced.status_code == 201, forced.text
    body = forced.json()
    assert (body["forced"], body["overridden"]) == (True, "ALREADY_USED")
    assert body["ticket"]["entries_used"] == 2
    # force never makes a forgery or another event's code count
    assert redeem(admin, "DP1:NOTACODE", [door], force=True).status_code == 404
    assert redeem(admin, code, [door], datetime="2024-01-01T00:00:00").json()["code"] == (
        "invalid_request"
    )


@SQLITE_ONLY
def test_refusals_in_pretix_and_protocol_words(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60)
    fair = event_on_sale(admin, "fair", venues=("hall-b",), doors=int(time.time()) - 60)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    order = fan.buy(sale, quantity=2).json()
    kept, dropped = order["tickets"]
    fan.sync()
    door, fair_door = entrance(admin, sale.event), entrance(admin, fair.event)
    # another event's list: OUT_OF_SCOPE (§3 check 12)
    wrong = redeem(admin, fan.code(kept), [fair_door])
    assert (wrong.status_code, wrong.json()["reason"]) == (400, "OUT_OF_SCOPE")
    # a multi-event scan finds the list of the code's event
    assert redeem(admin, fan.code(kept), [fair_door, door]).json()["list"]["id"] == door
    # a list for other ticket types: product
    vip = admin.post(
        f"/v1/admin/events/{sale.event}/checkin-lists",
        {"name": "VIP", "ticket_types": [fair.type_id]},
    )
    assert vip.json()["code"] == "not_found"  # a type of another event
    vip_type = admin.post(
        f"/v1/admin/events/{sale.event}/ticket-types", {"name": "VIP", "price": 1, "quota": 5}
    ).json()["id"]
    vip = admin.post(
        f"/v1/admin/events/{sale.event}/checkin-lists",
        {"name": "VIP", "ticket_types": [vip_type]},
    ).json()["id"]
    assert redeem(admin, fan.code(dropped), [vip]).json()["reason"] == "product"
    # a cancelled order: canceled, rather than REVOKED
    code = fan.code(dropped)
    assert admin.post(f"/v1/admin/orders/{order['code']}/cancel", {}).status_code == 200
    cancelled = redeem(admin, code, [door])
    assert (cancelled.status_code, cancelled.json()["reason"]) == (400, "canceled")
    assert cancelled.json()["check"] == "REVOKED"
    # garbage: 404 invalid; too long for a code: a problem, or MALFORMED within the limit
    garbage = redeem(admin, "hello", [door])
    assert (garbage.status_code, garbage.json()["reason"]) == (404, "invalid")
    assert garbage.json()["check"] == "FORMAT"
    long = redeem(admin, "DP1:" + "A" * 1197, [door])
    assert (long.status_code, long.json()["check"]) == (404, "MALFORMED")
    too_long = redeem(admin, "DP1:" + "A" * 1300, [door])
    assert (too_long.status_code, too_long.json()["code"]) == (422, "invalid_request")
    # bad bodies are problems with stable codes
    for bad in (
        {"secret": "x", "lists": []},
        {"secret": "x", "lists": [door, door]},
        {"secret": "x", "lists": [door], "type": "sideways"},
        {"secret": "x", "lists": [door], "nonce": "\x07bell"},
    ):
        answer = admin.post("/v1/checkin/redeem", bad)
        assert answer.json()["code"] == "invalid_request", (bad, answer.text)
    assert redeem(admin, "x", [999_999]).json()["code"] == "not_found"


def test_entries_count_across_a_gate_the_redeem_route_and_a_journal(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60, entries=3)
    fair = event_on_sale(admin, "fair", venues=("hall-b",), doors=int(time.time()) - 60)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    door = entrance(admin, sale.event)
    online = entry_gate(server.http, admin, "gate-1", event=sale.event, venue="hall-a")
    offline = entry_gate(server.http, admin, "gate-2", event=sale.event, venue="hall-a")
    # a terminal redeems on its own event's lists only
    refused = terminal_redeem(online, fan.code(sub), [entrance(admin, fair.event)])
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert online.scan(fan.code(sub), mode="entry")["reason"] == "OK"  # 1
    assert terminal_redeem(online, fan.code(sub), [door]).status_code == 201  # 2
    entries = [
        offline.entry(fan.code(sub), seq=n, mode="entry", amount=None, venue="hall-a")
        for n in (1, 2)
    ]
    uploaded = offline.journal(entries)  # 3, and a 4th: the gate opened, so it counts
    assert uploaded.status_code == 200 and uploaded.json()["rejected"] == [], uploaded.text
    mine = server.http.get(f"/v1/me/tickets/{sub}", headers=fan.wallet.auth).json()
    assert mine["entries_used"] == 4
    alerts = admin.http.get("/v1/admin/alerts", headers=admin.auth).json()["items"]
    assert [a["kind"] for a in alerts] == ["entries_exceeded"]
    assert online.scan(fan.code(sub), mode="entry")["reason"] == "ALREADY_USED"
    assert redeem(admin, fan.code(sub), [door]).json()["reason"] == "ALREADY_USED"
    assert _status(admin, door)["entered"] == 1
    # a gate counts on the list it is given, of its own event only
    lounge = admin.post(
        f"/v1/admin/events/{sale.event}/checkin-lists", {"name": "Lounge", "entry_limit": 1}
    ).json()["id"]
    put = admin.http.put(
        "/v1/admin/terminals/gate-1/checkin-list", json={"list_id": lounge}, headers=admin.auth
    )
    assert put.status_code == 200, put.text
    other = admin.http.put(
        "/v1/admin/terminals/gate-1/checkin-list",
        json={"list_id": entrance(admin, fair.event)},
        headers=admin.auth,
    )
    assert other.json()["code"] == "conflict"
