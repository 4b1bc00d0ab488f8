"""Webhooks from the transactional outbox, to a real receiver on 127.0.0.1 that verifies every
request with standardwebhooks' own `Webhook.verify`: every lifecycle event arrives signed and in
order, to the endpoints subscribed to it; a receiver down for an hour (on the server's clock)
then back gets everything, once per `webhook-id`, in order; a rolled-back change sends nothing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from duopass.protocol.encoding import b64u_encode
from duopass.risk import AlertKind
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import alerts
from duopass.server.store.webhooks import WebhookMessage
from tests.server.harness import SQLITE_ONLY, Wallet
from tests.server.test_settlement_close import close_by_two
from tests.server.ticketing import (
    entrance,
    entry_gate,
    event_on_sale,
    redeem,
    terminal_redeem,
    ticket_wallet,
)
from tests.server.webhooks import (
    alert,
    client_fixture,
    deliver,
    hook,
    log,
    receiver_fixture,
)

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

BOTH = pytest.mark.parametrize("clocked_server", ["sqlite", "postgres"], indirect=True)
DAY = 86_400


def _reissue(server, fan, sub: str) -> None:
    """The holder moves the ticket to a new phone (allowed two days before the doors)."""
    phone = Wallet(server.http, fan.wallet.login)
    phone.sign_in()
    phone.enrol()
    asked = server.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.auth,
        json={"device_key": b64u_encode(phone.key.public)},
    )
    assert asked.status_code == 201 and asked.json()["state"] == "ready", asked.text
    done = server.http.post(
        f"/v1/me/reissues/{asked.json()['request_id']}/confirm", headers=phone.auth
    )
    assert done.status_code == 200, done.text


def _messages(server) -> int:
    return int(
        server.ctx.run(
            lambda unit: unit.session.scalar(select(func.count()).select_from(WebhookMessage))
        )
    )


@BOTH
def test_every_lifecycle_event_arrives_signed_in_order(clocked_server, clock, receiver, client):
    server, admin = clocked_server, clocked_server.admin()
    everything = hook(admin, receiver)
    alerts_only = hook(admin, receiver, ["alert.raised"])
    now = int(clock.now)
    tonight = event_on_sale(admin, "tonight", doors=now - 60, entries=3)
    later = event_on_sale(admin, "later", venues=("hall-b",), doors=now + 2 * DAY)
    fan = ticket_wallet(server.http, admin, "fan", balance=20_000)
    order = fan.buy(tonight, 2).json()
    first, second = order["tickets"]
    kept = fan.buy(later).json()["tickets"][0]
    assert fan.sync().status_code == 200
    gate = entry_gate(server.http, admin, "gate-1", event="tonight", venue="hall-a")
    assert gate.scan(fan.code(first), mode="entry")["reason"] == "OK"
    assert redeem(admin, fan.code(second), [entrance(admin, "tonight")]).status_code == 201
    _reissue(server, fan, kept)
    assert admin.post(f"/v1/admin/orders/{order['code']}/cancel", {}).status_code == 200
    alert(server)
    assert deliver(server, client) == 10  # 9 messages to the first endpoint, 1 to the second
    closed_day = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))  # Asia/Shanghai
    clock.advance(2 * DAY)  # the day has ended: two admins close it
    close_by_two(server, closed_day)
    assert deliver(server, client) == 1
    admin = server.admin()  # the first session has expired

    mine = [got for got in receiver.got if got.verified_by == (0,)]
    assert [got.body["type"] for got in mine] == [
        "ticket.issued",
        "ticket.issued",
        "ticket.issued",
        "ticket.checked_in",
        "ticket.checked_in",
        "ticket.reissued",
        "ticket.revoked",
        "ticket.revoked",
        "alert.raised",
        "settlement.day_settled",
    ]
    data = [got.body["data"] for got in mine]
    assert [d["ticket"] for d in data[:6]] == [first, second, kept, first, second, kept]
    assert {data[6]["ticket"], data[7]["ticket"]} == {first, second}
    assert data[0] == {
        "ticket": first,
        "event": "tonight",
        "ticket_type": tonight.type_id,
        "order": order["code"],
    }
    assert data[3]["terminal"] == "gate-1" and data[3]["type"] == "entry"
    assert "terminal" not in data[4] and data[5]["gen"] == 1
    assert data[6]["reason"] == "order_cancelled" and data[9]["day"] == closed_day
    assert all(got.body["timestamp"].endswith("Z") for got in mine)
    assert [got.body["type"] for got in receiver.got if got.verified_by == (1,)] == ["alert.raised"]
    assert len(set(receiver.ids())) == len(receiver.got) - 1  # the alert: one id, two endpoints
    assert receiver.refused == 0
    shown = log(server, admin, everything["id"])
    assert [item["state"] for item in shown] == ["delivered"] * 10
    assert shown[0]["log"] == [{"at": int(clock.now), "ok": True, "status": 204, "error": None}]
    assert log(server, admin, alerts_only["id"])[0]["type"] == "alert.raised"


@BOTH
def test_a_receiver_down_for_an_hour_gets_everything_once_in_order(
    clocked_server, clock, receiver, client
):
    server, admin = clocked_server, clocked_server.admin()
    endpoint = hook(admin, receiver)["id"]
    receiver.down()
    sale = event_on_sale(admin, doors=int(clock.now) + 3600)
    fan = ticket_wallet(server.http, admin, "fan", balance=20_000)
    subs = fan.buy(sale, 3).json()["tickets"]
    for minute in range(60):  # an hour down: the first message is tried, the others wait
        deliver(server, client)
        if minute == 30:
            subs += fan.buy(sale).json()["tickets"]  # events go on meanwhile
        clock.advance(60)
    assert receiver.got == [] and receiver.tried == 0
    waiting = log(server, admin, endpoint)
    assert [item["state"] for item in waiting] == ["pending"] * 4
    head = waiting[-1]
    assert head["attempts"] >= 5 and [item["attempts"] for item in waiting[:-1]] == [0, 0, 0]
    assert {entry["error"] for entry in head["log"]} == {"ConnectError"}
    receiver.up()
    for _ in range(120):  # back: everything arrives by the next retry, an hour at most
        deliver(server, client)
        if len(receiver.got) == 4:
            break
        clock.advance(60)
    assert [got.body["data"]["ticket"] for got in receiver.got] == subs
    assert len(set(receiver.ids())) == 4 and receiver.refused == 0
    clock.advance(DAY)
    assert deliver(server, client) == 0  # nothing is sent twice
    done = log(server, server.admin(), endpoint)
    assert [item["state"] for item in done] == ["delivered"] * 4
    assert done[-1]["log"][0]["status"] == 204 and done[-1]["last_error"] is None
    assert [item["attempts"] for item in done[:-1]] == [1, 1, 1]


@BOTH
def test_a_rolled_back_change_sends_nothing(clocked_server, receiver, client):
    server, admin = clocked_server, clocked_server.admin()
    hook(admin, receiver)

    def raised_then_refused(unit) -> None:
        alerts.raise_alert(unit, AlertKind.GAP, evidence={}, terminal_id="t", seq=1)
        emit(unit, WebhookEvent.DAY_SETTLED, {"day": "2026-01-01"})
        raise Problem(ProblemCode.CONFLICT, "the unit fails after its events")

    with pytest.raises(Problem):
        server.ctx.run(raised_then_refused)
    poor = ticket_wallet(server.http, admin, "poor", balance=0)
    refused = poor.buy(event_on_sale(admin, doors=int(time.time()) + 3600))
    assert refused.json()["code"] == "no_funds"
    assert _messages(server) == 0
    assert deliver(server, client) == 0 and receiver.tried == 0
    alert(server)  # committed, it goes
    assert deliver(server, client) == 1 and receiver.types() == ["alert.raised"]


@SQLITE_ONLY
def test_offline_entries_in_a_journal_are_checked_in_too(server, receiver, client):
    admin = server.admin()
    hook(admin, receiver, ["ticket.checked_in"])
    sale = event_on_sale(admin, doors=int(time.time()) - 60, entries=3)
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    fan.sync()
    gate = entry_gate(server.http, admin, "gate-2", event=sale.event, venue="hall-a")
    entries = [
        gate.entry(fan.code(sub), seq=n, mode="entry", amount=None, venue="hall-a") for n in (1, 2)
    ]
    assert gate.journal(entries).json()["rejected"] == []
    assert terminal_redeem(gate, fan.code(sub), [entrance(admin, sale.event)]).status_code == 201
    assert deliver(server, client) == 3
    data = [got.body["data"] for got in receiver.got]
    assert [(d["ticket"], d["event"], d["terminal"]) for d in data] == [
        (sub, sale.event, "gate-2")
    ] * 3
    assert receiver.types() == ["ticket.checked_in"] * 3
