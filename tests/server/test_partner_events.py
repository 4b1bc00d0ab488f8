"""A partner's own events (issue 17): with `tickets:issue` it creates events at the card
office's venues and their ticket types; with `tickets:read` it reads them and the state of
their orders and tickets; with `checkin:redeem` it checks a real ticket in at its own event.
Another partner sees none of it (404), and a token without the scope is refused (403)."""

from __future__ import annotations

import time

from sqlalchemy import select

from duopass.server.store.tables import Holder
from tests.server.harness import SQLITE_ONLY
from tests.server.partners import make_client, token
from tests.server.ticketing import HOUR, OnSale, ticket_wallet

ALL = ["tickets:issue", "tickets:read", "checkin:redeem"]


def _bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


@SQLITE_ONLY
def test_a_partner_sells_reads_and_checks_in_on_its_own_event_only(server):
    http, admin = server.http, server.admin()
    venue = {"id": "arena", "name": "Arena", "networks": []}
    assert admin.post("/v1/admin/venues", venue).status_code == 201
    mine = _bearer(token(http, make_client(admin, ALL)).json()["access_token"])
    other = _bearer(token(http, make_client(admin, ALL)).json()["access_token"])
    reader = _bearer(token(http, make_client(admin, ["tickets:read"])).json()["access_token"])
    doors = int(time.time()) - 60
    spec = {"id": "gig", "name": "Gig", "doors": doors, "ends": doors + 4 * HOUR}
    made = http.post("/v1/partner/events", json=spec | {"venues": ["arena"]}, headers=mine)
    assert made.status_code == 201, made.text
    entrance = made.json()["checkin_lists"][0]["id"]
    refused = http.post(
        "/v1/partner/events", json=spec | {"id": "x", "venues": ["arena"]}, headers=reader
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    kind = {"name": "Standing", "price": 1_500, "quota": 100}
    theirs = http.post("/v1/partner/events/gig/ticket-types", json=kind, headers=other)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    typed = http.post("/v1/partner/events/gig/ticket-types", json=kind, headers=mine)
    assert typed.status_code == 201, typed.text
    sale = OnSale("gig", typed.json()["id"], doors, doors + 4 * HOUR, ("arena",))
    fan = ticket_wallet(http, admin, "fan", balance=10_000)
    bought = fan.buy(sale)
    assert bought.status_code == 201, bought.text
    code, (sub,) = bought.json()["code"], bought.json()["tickets"]
    fan.sync()
    read = http.get(f"/v1/partner/orders/{code}", headers=mine)
    assert read.status_code == 200, read.text
    fan_id = server.ctx.run(
        lambda unit: unit.session.scalars(select(Holder.id).where(Holder.login == "fan")).one()
    )
    assert read.json()["ticket_states"] == [
        {"sub": sub, "state": "valid", "gen": 0, "event": "gig", "holder": fan_id}
    ]
    assert http.get(f"/v1/partner/orders/{code}", headers=other).json()["code"] == "not_found"
    listed = http.get("/v1/partner/events", headers=mine).json()["items"]
    assert [e["id"] for e in listed] == ["gig"]
    assert http.get("/v1/partner/events", headers=other).json()["items"] == []
    one = http.get("/v1/partner/events/gig", headers=reader)
    assert one.json()["code"] == "not_found"  # the reader is a partner of its own
    event = http.get("/v1/partner/events/gig", headers=mine).json()
    assert [o["code"] for o in event["orders"]] == [code]
    body = {"secret": fan.code(sub), "lists": [entrance]}
    assert http.post("/v1/checkin/redeem", json=body, headers=other).json()["code"] == "forbidden"
    checked = http.post("/v1/checkin/redeem", json=body, headers=mine)
    assert checked.status_code == 201, checked.text
    assert checked.json()["status"] == "ok" and checked.json()["ticket"]["sub"] == sub
