"""A partner's own webhooks (`webhooks:manage`) and what it may read of holders (`accounts:read`),
through the real HTTP server with real access tokens: a partner's endpoint takes the ticket
events of its own events only (never another's, the card office's, an alert or a settled day),
while the card office's endpoints take everything; a partner manages, rotates and retries its
own endpoints only (another's is 404); a holder is readable only while holding the partner's
tickets, and then only those tickets and the account's state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from duopass.server.partners.delivery import _Job, send
from duopass.server.store.tables import Holder
from tests.server.conftest import _sqlite_database
from tests.server.harness import Admin, Running, running_server
from tests.server.partners import console_page, make_client, token
from tests.server.ticketing import HOUR, OnSale, TicketWallet, event_on_sale, ticket_wallet
from tests.server.webhook_receiver import Receiver
from tests.server.webhooks import alert, client_fixture, deliver, hook, receiver_fixture

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

CLOCKED_SQLITE = pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)
HOOKS = ["tickets:issue", "webhooks:manage"]
TICKET_EVENTS = ["ticket.checked_in", "ticket.issued", "ticket.reissued", "ticket.revoked"]


@pytest.fixture(name="trusting")
def trusting_fixture(request, tmp_path, clock) -> Iterator[Running]:
    """A server that lets partners' endpoints be on 127.0.0.1 (the receivers' address)."""
    url = _sqlite_database(request, tmp_path)
    settings = {"partner_webhooks_private": True}
    with running_server(url, tmp_path / "data", clock=clock, **settings) as running:
        yield running


def _bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def _partner(server: Running, admin: Admin, scopes: list[str]) -> tuple[int, dict[str, str]]:
    client = make_client(admin, scopes)
    return client["id"], _access(server, client)


def _access(server: Running, client: dict[str, Any]) -> dict[str, str]:
    access = token(server.http, client)
    assert access.status_code == 200, access.text
    return _bearer(access.json()["access_token"])


def _own_event(http: httpx.Client, auth: dict[str, str], event_id: str) -> OnSale:
    """An event of the partner's at the arena, on sale (one ticket type)."""
    doors = int(time.time()) + HOUR
    spec = {"id": event_id, "name": event_id.title(), "doors": doors, "ends": doors + 4 * HOUR}
    made = http.post("/v1/partner/events", json=spec | {"venues": ["arena"]}, headers=auth)
    assert made.status_code == 201, made.text
    kind = {"name": "Standing", "price": 1_500, "quota": 100}
    typed = http.post(f"/v1/partner/events/{event_id}/ticket-types", json=kind, headers=auth)
    assert typed.status_code == 201, typed.text
    return OnSale(event_id, typed.json()["id"], doors, doors + 4 * HOUR, ("arena",))


def _endpoint(
    http: httpx.Client, auth: dict[str, str], receiver: Receiver, types: list[str]
) -> dict[str, Any]:
    made = http.post(
        "/v1/partner/webhooks", json={"url": receiver.url, "event_types": types}, headers=auth
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    return dict(made.json())


def _bought(fan: TicketWallet, sale: OnSale) -> str:
    answer = fan.buy(sale)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["tickets"][0])


def test_a_partners_endpoint_takes_its_own_events_tickets_only(trusting, client):
    server, admin = trusting, trusting.admin()
    http = server.http
    assert admin.post("/v1/admin/venues", {"id": "arena", "name": "Arena"}).status_code == 201
    mine_id, mine = _partner(server, admin, HOOKS)
    _, theirs = _partner(server, admin, HOOKS)
    ours, office, other = Receiver(), Receiver(), Receiver()
    for receiver in (ours, office, other):
        receiver.up()
    try:
        hook(admin, office)  # the card office's: every type
        made = _endpoint(http, mine, ours, ["ticket.issued", "ticket.revoked"])
        assert made["partner"] == mine_id and made["secret"].startswith("whsec_")
        _endpoint(http, theirs, other, TICKET_EVENTS)
        gig, rival = _own_event(http, mine, "gig"), _own_event(http, theirs, "rival")
        concert = event_on_sale(admin)
        fan = ticket_wallet(http, admin, "fan", balance=100_000)
        sold = [_bought(fan, sale) for sale in (gig, rival, concert, gig)]
        alert(server)
        deliver(server, client)
        assert [(g.body["type"], g.body["data"]["ticket"]) for g in ours.got] == [
            ("ticket.issued", sold[0]),
            ("ticket.issued", sold[3]),
        ]
        assert [g.body["data"]["ticket"] for g in other.got] == [sold[1]]
        assert sorted(office.types()) == ["alert.raised"] + ["ticket.issued"] * 4
        assert ours.refused == other.refused == 0
        listed = http.get("/v1/partner/webhooks", headers=mine).json()["items"]
        assert [item["id"] for item in listed] == [made["id"]]  # never another's
        assert "secret" not in listed[0]
        everyone = http.get("/v1/admin/webhooks", headers=admin.auth).json()["items"]
        assert len(everyone) == 3  # the card office sees every endpoint
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            page = console_page(browser, "/console/webhooks")
        assert f"合作方自己的（客户端 {mine_id}）" in page  # the console speaks Chinese first
        revoked = admin.post(f"/v1/admin/partners/{mine_id}/revoke", {})
        assert revoked.status_code == 200, revoked.text
        _bought(fan, gig)
        deliver(server, client)
        assert len(ours.got) == 2  # a revoked partner's endpoints get nothing new
    finally:
        for receiver in (ours, office, other):
            receiver.down()


def test_a_partner_manages_rotates_and_retries_its_own_endpoints_only(
    trusting, clock, receiver, client
):
    server, admin = trusting, trusting.admin()
    http = server.http
    assert admin.post("/v1/admin/venues", {"id": "arena", "name": "Arena"}).status_code == 201
    partner = make_client(admin, HOOKS)
    mine = _access(server, partner)
    _, theirs = _partner(server, admin, HOOKS)
    _, reader = _partner(server, admin, ["tickets:read"])
    refused = http.get("/v1/partner/webhooks", headers=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    for types in (["alert.raised"], ["ticket.issued", "settlement.day_settled"]):
        body = {"url": receiver.url, "event_types": types}
        wrong = http.post("/v1/partner/webhooks", json=body, headers=mine)
        assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_request")
    endpoint = _endpoint(http, mine, receiver, ["ticket.issued"])["id"]
    base = f"/v1/partner/webhooks/{endpoint}"
    for method, path in [
        ("GET", ""),
        ("POST", "/disable"),
        ("POST", "/rotate"),
        ("GET", "/deliveries"),
        ("POST", "/deliveries/1/retry"),
    ]:
        answer = http.request(
            method, base + path, headers=theirs, json={} if method == "POST" else None
        )
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), path
    gig = _own_event(http, mine, "gig")
    fan = ticket_wallet(http, admin, "fan", balance=100_000)
    rotated = http.post(f"{base}/rotate", json={"overlap_s": HOUR}, headers=mine)
    assert rotated.status_code == 200 and rotated.json()["previous_secret_until"] is not None
    receiver.secrets.append(rotated.json()["secret"])
    first = _bought(fan, gig)
    deliver(server, client)
    assert [(g.body["data"]["ticket"], g.verified_by) for g in receiver.got] == [
        (first, (0, 1))  # both secrets sign during the overlap
    ]
    assert http.post(f"{base}/disable", headers=mine).json()["state"] == "disabled"
    _bought(fan, gig)
    deliver(server, client)
    assert len(receiver.got) == 1  # nothing queued while disabled
    assert http.post(f"{base}/enable", headers=mine).json()["state"] == "enabled"
    receiver.status = 503
    third = _bought(fan, gig)
    deliver(server, client)
    log = http.get(f"{base}/deliveries", headers=mine).json()["items"]
    assert [(item["state"], item["attempts"], item["last_status"]) for item in log] == [
        ("pending", 1, 503),
        ("delivered", 1, 204),
    ]
    clock.advance(86_400)
    deliver(server, client)  # a day on: failed
    mine = _access(server, partner)  # the token of a day ago has expired
    failed = http.get(f"{base}/deliveries", headers=mine, params={"state": "failed"}).json()
    message = failed["items"][0]["id"]
    receiver.status = 204
    retried = http.post(f"{base}/deliveries/{message}/retry", headers=mine)
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    deliver(server, client)
    assert [g.body["data"]["ticket"] for g in receiver.got] == [first, third]
    again = http.post(f"{base}/deliveries/{message}/retry", headers=mine)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    for _ in range(4):
        _endpoint(http, mine, receiver, ["ticket.issued"])
    sixth = http.post(
        "/v1/partner/webhooks",
        json={"url": receiver.url, "event_types": ["ticket.issued"]},
        headers=mine,
    )
    assert (sixth.status_code, sixth.json()["code"]) == (409, "too_many_webhooks")
    assert receiver.refused == 0


@CLOCKED_SQLITE
def test_a_partner_reads_only_its_own_ticket_holders_and_no_personal_data(clocked_server):
    server, admin = clocked_server, clocked_server.admin()
    http = server.http
    assert admin.post("/v1/admin/venues", {"id": "arena", "name": "Arena"}).status_code == 201
    _, mine = _partner(server, admin, ["accounts:read", "tickets:issue", "tickets:read"])
    _, theirs = _partner(server, admin, ["accounts:read"])
    _, reader = _partner(server, admin, ["tickets:read"])
    gig = _own_event(http, mine, "gig")
    concert = event_on_sale(admin)
    fan = ticket_wallet(http, admin, "fan", balance=100_000)
    other_fan = ticket_wallet(http, admin, "other", balance=100_000)
    sub = _bought(fan, gig)
    _bought(fan, concert)  # the card office's: never shown to a partner
    _bought(other_fan, concert)
    ids = server.ctx.run(
        lambda unit: dict(unit.session.execute(select(Holder.login, Holder.id)).all())
    )
    path = f"/v1/partner/holders/{ids['fan']}"
    read = http.get(path, headers=mine)
    assert read.status_code == 200, read.text
    assert read.json() == {
        "id": ids["fan"],
        "frozen": False,
        "offline_suspended": False,
        "lost_reported_at": None,
        "tickets": [
            {
                "sub": sub,
                "event": "gig",
                "ticket_type": "Standing",
                "order": read.json()["tickets"][0]["order"],
                "state": "valid",
                "gen": 0,
            }
        ],
    }
    order = http.get(f"/v1/partner/orders/{read.json()['tickets'][0]['order']}", headers=mine)
    assert order.json()["ticket_states"][0]["holder"] == ids["fan"]  # how a partner learns it
    for auth, holder in [(theirs, ids["fan"]), (mine, ids["other"]), (mine, 999_999)]:
        hidden = http.get(f"/v1/partner/holders/{holder}", headers=auth)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    refused = http.get(path, headers=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    handle = fan.wallet.handle
    frozen = admin.post(f"/v1/admin/holders/{handle}/freeze", {"reason": "card office check"})
    assert frozen.status_code == 204, frozen.text
    assert http.get(path, headers=mine).json()["frozen"] is True


@CLOCKED_SQLITE
def test_a_partner_cannot_have_the_server_post_into_the_campus_network(clocked_server, receiver):
    server, admin = clocked_server, clocked_server.admin()
    _, mine = _partner(server, admin, HOOKS)
    for url in [
        receiver.url,  # http://127.0.0.1:...
        "https://127.0.0.1/hooks",
        "https://10.20.0.5/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest",
        "https://localhost/hooks",
        "http://tickets.example.com/hooks",
    ]:
        body = {"url": url, "event_types": ["ticket.issued"]}
        refused = server.http.post("/v1/partner/webhooks", json=body, headers=mine)
        assert (refused.status_code, refused.json()["code"]) == (422, "url_not_public"), url
    body = {"url": receiver.url, "event_types": ["ticket.issued"]}
    assert server.http.post("/v1/admin/webhooks", json=body, headers=admin.auth).status_code == 201
    job = _Job(1, "msg_x", "{}", receiver.url.replace("http:", "https:"), (b"k" * 32,), True)
    with httpx.Client(timeout=5, trust_env=False) as client:
        sent = send(client, job, stamp=time.time)  # a name may resolve anywhere by then
    assert (sent.status, sent.error) == (None, "127.0.0.1 is not a public address")
    assert receiver.tried == 0
