"""The console's events pages over HTTP: forms checked field by field with messages in the
page's language, an admin creating a venue, an event and a ticket type, an operator who reads
but creates nothing, CSRF, and a check-in list's count fragment (what the page polls) moving
with a check-in."""

from __future__ import annotations

import time

from tests.server.partners import make_client, token
from tests.server.test_partner_orders import EMAIL, NUMBER, _partner_event
from tests.server.ticketing import entrance, event_on_sale, redeem, ticket_wallet
from tests.web.console import admin, operator

NAUGHTY = "<script>alert(1)</script>"


def _venue(visitor, venue_id: str = "hall-1", name: str = "Great Hall") -> None:
    visitor.get("/console/events")  # the page's form token
    made = visitor.post("/console/venues", {"venue_id": venue_id, "venue_name": name})
    assert made.status_code == 303, made.text


def test_an_admin_creates_a_venue_an_event_and_a_ticket_type(site):
    visitor = admin(site, language="en")
    assert "Add a venue first." in visitor.get("/console/events").text
    _venue(visitor)
    made = visitor.post(
        "/console/events",
        {
            "id": "gala-2026",
            "name": NAUGHTY,
            "doors": "2030-06-01T19:00",
            "ends": "2030-06-01T23:00",
            "venues": "hall-1",
        },
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/events/gala-2026"
    page = visitor.get("/console/events/gala-2026")
    assert page.status_code == 200 and "&lt;script&gt;" in page.text and NAUGHTY not in page.text
    assert "2030-06-01 19:00 CST" in page.text  # read and shown in the issuer's zone
    typed = {"type_name": "Standing", "price": "88.50", "entries": "1", "quota": "300"}
    assert visitor.post("/console/events/gala-2026/ticket-types", typed).status_code == 303
    page = visitor.get("/console/events/gala-2026")
    assert "¥88.50" in page.text and "Standing" in page.text
    assert (
        visitor.post("/console/events", {**_event_fields(), "id": "gala-2026"}).status_code == 409
    )


def _event_fields() -> dict[str, str]:
    return {
        "id": "fair",
        "name": "Fair",
        "doors": "2030-06-02T10:00",
        "ends": "2030-06-02T18:00",
        "venues": "hall-1",
    }


def test_each_field_is_refused_with_its_message_in_the_pages_language(site):
    for language, words in (
        ("en", ["Fill this in.", "The end comes after the doors open.", "Letters, digits"]),
        ("zh-CN", ["此项必填。", "结束时间须晚于入场时间。", "字母、数字"]),
    ):
        visitor = admin(site, language=language)
        visitor.get("/console/events")
        if language == "en":
            _venue(visitor)
        bad = {**_event_fields(), "id": "bad id!", "name": " ", "ends": "2030-06-02T09:00"}
        refused = visitor.post("/console/events", bad)
        assert refused.status_code == 422
        for word in words:
            assert word in refused.text, (language, word)
        assert 'aria-invalid="true" aria-describedby="id-error"' in refused.text
        assert 'value="bad id!"' in refused.text  # typed values are kept
        refused = visitor.post(
            "/console/events/x/ticket-types", {"type_name": "A", "price": "1.234", "quota": "0"}
        )
        assert refused.status_code == 404  # no such event
    visitor = admin(site, language="en")
    visitor.get("/console/events")
    assert visitor.post("/console/events", _event_fields()).status_code == 303
    refused = visitor.post(
        "/console/events/fair/ticket-types",
        {"type_name": "A", "price": "1.234", "entries": "1", "quota": "0"},
    )
    assert refused.status_code == 422
    assert "A price in yuan" in refused.text and "A whole number" in refused.text


def test_an_operator_reads_events_but_creates_nothing(site):
    _venue(admin(site))
    reader = operator(site, language="en")
    page = reader.get("/console/events")
    assert page.status_code == 200 and 'id="new-event"' not in page.text
    refused = reader.post("/console/events", _event_fields())
    assert refused.status_code == 403 and "Your role may not do this." in refused.text
    assert reader.post("/console/venues", {"venue_id": "v", "venue_name": "V"}).status_code == 403
    assert "fair" not in reader.get("/console/events").text


def test_event_forms_need_the_sessions_token(site):
    visitor = admin(site)
    visitor.get("/console/events")
    forged = visitor.http.post("/console/venues", data={"venue_id": "v", "venue_name": "V"})
    assert forged.status_code == 403


def test_a_lists_count_fragment_follows_the_check_ins(site):
    api = site.admin()
    sale = event_on_sale(api, doors=int(time.time()) - 60)
    fan = ticket_wallet(site.http, api, "fan", balance=10_000)
    (ticket,) = fan.buy(sale, quantity=1).json()["tickets"]
    fan.sync()
    door = entrance(api, sale.event)
    reader = operator(site)
    page = reader.get(f"/console/events/{sale.event}")
    fragment = f"/console/events/{sale.event}/lists/{door}/count"
    assert f'hx-get="{fragment}"' in page.text and 'hx-trigger="every 5s"' in page.text
    assert "cancelled" not in page.text and "钱包" in page.text  # the order, paid from the purse
    before = reader.get(fragment, headers={"HX-Request": "true"})
    assert before.status_code == 200 and '<span class="entered">0</span>' in before.text
    assert redeem(api, fan.code(ticket), [door]).status_code == 201
    after = reader.get(fragment, headers={"HX-Request": "true"}).text
    assert '<span class="entered">1</span>' in after and '<span class="inside">1</span>' in after
    assert reader.get(f"/console/events/other/lists/{door}/count").status_code == 404


def test_an_order_a_partner_sold_says_so_on_the_event_page(site):
    api = site.admin()
    client = make_client(api, ["tickets:issue"])
    bearer = {"Authorization": f"Bearer {token(site.http, client).json()['access_token']}"}
    type_id = _partner_event(site.http, api, bearer)
    holder = {"number": NUMBER, "email": EMAIL}
    api.holder("fan", **holder)
    body = {"holder": holder, "ticket_type": type_id, "quantity": 1}
    sold = site.http.post(
        "/v1/partner/orders", json=body, headers=bearer | {"Idempotency-Key": "web-1"}
    )
    assert sold.status_code == 201, sold.text
    page = operator(site).get("/console/events/gig")
    assert sold.json()["code"] in page.text and "合作方售出" in page.text
