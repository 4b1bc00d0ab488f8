"""The holder says no to a reissue a partner asked for on their behalf (issue 17):
`POST /v1/me/reissues/{rq}/decline` ends it `denied`, the ticket stays put, and the refusal is
a decision on the ledger (action decline, rule holder). Through the real server."""

from __future__ import annotations

from tests.server.harness import Wallet
from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _fan, _leaves, _order, _partner_event
from tests.server.ticketing import TicketWallet


def test_the_holder_declines_a_partners_request_and_the_ticket_stays(server):
    http, admin = server.http, server.admin()
    mine = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
    type_id = _partner_event(http, admin, mine)
    fan = _fan(http, admin)
    (sub,) = _order(http, mine, "order-0001", type_id, 1).json()["tickets"]
    assert fan.sync().status_code == 200
    phone = TicketWallet(Wallet(http, fan.wallet.login))
    phone.wallet.sign_in()
    phone.wallet.enrol()
    asked = http.post(f"/v1/partner/tickets/{sub}/reissue", json={}, headers=mine)
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request_id"]
    first = len(_leaves(server, "decision"))

    listed = http.get("/v1/me/reissues", headers=fan.wallet.auth).json()["items"]
    assert [(r["request_id"], r["partner"], r["sub"]) for r in listed] == [
        (request_id, "City Tickets", sub)
    ]
    assert listed[0]["event"]["name"] and listed[0]["factors"]
    path = f"/v1/me/reissues/{request_id}/decline"
    assert http.post("/v1/me/reissues/rq-00/decline", headers=fan.wallet.auth).status_code == 404
    declined = http.post(path, headers=fan.wallet.auth)
    assert declined.status_code == 200, declined.text
    assert (declined.json()["state"], declined.json()["request_id"]) == ("denied", request_id)
    again = http.post(path, headers=fan.wallet.auth)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    decided = _leaves(server, "decision")
    leaf = decided[-1]
    assert (leaf.body["action"], leaf.body["rule"], leaf.body["outcome"]) == (
        "decline",
        "holder",
        "deny",
    )
    assert leaf.body["request"] == request_id and len(decided) == first + 1
    assert http.get("/v1/me/reissues", headers=fan.wallet.auth).json()["items"] == []
    shown = http.get(f"/v1/partner/reissues/{request_id}", headers=mine).json()
    assert (shown["state"], shown["gen"]) == ("denied", 0)
    step = f"/v1/me/reissues/{request_id}/step-up"
    late = http.post(step, headers=fan.wallet.auth, json={"factor": "totp"})
    assert (late.status_code, late.json()["code"]) == (409, "conflict")
    assert fan.sync().status_code == 200 and sub in fan.tickets
