"""When a partner may cancel what it sold, and its keys: a partner cancels a whole order only
before the event's doors open and while none of its tickets was checked in, reissued or moved
(409 `order_not_cancellable`; the card office still may, a refund it decides); two cancels at
once refund once (the order row is locked); and two partners' equal Idempotency-Keys for one
holder are two orders."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import String, func, select, text, update

from duopass.server.limits import IDEMPOTENCY_KEY_CHARS_MAX
from duopass.server.partners.sales import stored_request_id
from duopass.server.services import orders
from duopass.server.store.tables import Holder, Transaction
from duopass.server.store.tickets import Checkin, CheckinList, Event, Order, Ticket
from tests.server.harness import SQLITE_ONLY
from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _day, _fan, _order, _partner_event
from tests.server.ticketing import HOUR


def _cancel(http, headers, code: str) -> tuple[int, str | None]:
    answer = http.post(f"/v1/partner/orders/{code}/cancel", headers=headers)
    return answer.status_code, answer.json().get("code") if answer.status_code != 200 else None


def _sold(http, headers, key: str, type_id: int) -> dict[str, Any]:
    sold = _order(http, headers, key, type_id, 1)
    assert sold.status_code == 201, sold.text
    return dict(sold.json())


def test_a_partner_cannot_cancel_once_the_doors_open_but_the_card_office_can(server):
    http, admin = server.http, server.admin()
    client = make_client(admin, ["tickets:issue"])
    mine = _bearer(http, client)
    type_id = _partner_event(http, admin, mine, quota=5)
    _fan(http, admin)
    first, second = _sold(http, mine, "k-1", type_id), _sold(http, mine, "k-2", type_id)
    now = int(time.time())

    def times(doors: int, ends: int) -> None:
        server.ctx.run(
            lambda unit: unit.session.execute(
                update(Event).where(Event.id == "gig").values(doors=doors, ends=ends)
            )
        )

    times(now - HOUR, now + HOUR)  # under way
    assert _cancel(http, mine, first["code"]) == (409, "order_not_cancellable")
    times(now - 4 * HOUR, now - HOUR)  # over
    assert _cancel(http, mine, second["code"]) == (409, "order_not_cancellable")
    report = http.get(f"/v1/admin/settlement/{_day(server, now)}", headers=admin.auth).json()
    assert [line["owed_total"] for line in report["partners"]] == [3_000]
    # the card office may still refund after the event; then the partner's cancel is a no-op
    by_office = admin.post(f"/v1/admin/orders/{second['code']}/cancel", {})
    assert (by_office.status_code, by_office.json()["state"]) == (200, "cancelled")
    assert _cancel(http, mine, second["code"]) == (200, None)
    report = http.get(f"/v1/admin/settlement/{_day(server, now)}", headers=admin.auth).json()
    assert [line["owed_total"] for line in report["partners"]] == [1_500]
    assert admin.books() == 0


@SQLITE_ONLY
def test_a_partner_cannot_cancel_a_ticket_checked_in_reissued_or_moved(server):
    http, admin = server.http, server.admin()
    mine = _bearer(http, make_client(admin, ["tickets:issue"]))
    type_id = _partner_event(http, admin, mine, quota=10)
    _fan(http, admin)
    codes = [_sold(http, mine, f"k-{n}", type_id)["code"] for n in range(4)]
    other = admin.holder("other", number="2026005678", email="other@campus.example.edu")

    def ticket(unit, code: str) -> Ticket:
        order = orders.by_code(unit.session, code)
        row: Ticket = unit.session.scalars(select(Ticket).where(Ticket.order_id == order.id)).one()
        return row

    def entered(unit) -> None:
        listed = CheckinList(event_id="gig", name="Doors", created_at=unit.now)
        unit.session.add(listed)
        unit.session.flush()
        entry = Checkin(list_id=listed.id, ticket_id=ticket(unit, codes[0]).id, type="entry")
        entry.successful, entry.counted, entry.source = True, True, "scan"
        entry.at = entry.received_at = unit.now
        unit.session.add(entry)

    def reissued(unit) -> None:
        ticket(unit, codes[1]).gen = 1

    def moved(unit) -> None:
        found = select(Holder.id).where(Holder.handle == other["handle"])
        ticket(unit, codes[2]).holder_id = unit.session.scalar(found)

    for change in (entered, reissued, moved):
        server.ctx.run(change)
    for code in codes[:3]:
        assert _cancel(http, mine, code) == (409, "order_not_cancellable")
    assert _cancel(http, mine, codes[3]) == (200, None)  # untouched, before the doors
    assert admin.books() == 0


@SQLITE_ONLY
def test_two_partners_may_send_one_key_for_one_holder(server):
    http, admin = server.http, server.admin()
    one = _bearer(http, make_client(admin, ["tickets:issue"]))
    type_id = _partner_event(http, admin, one, quota=5)
    _fan(http, admin)
    two = _bearer(http, make_client(admin, ["tickets:issue"]))
    doors = int(time.time()) + 48 * HOUR
    spec = {"id": "gig-2", "name": "Gig 2", "doors": doors, "ends": doors + HOUR}
    spec |= {"venues": ["arena"]}
    assert http.post("/v1/partner/events", json=spec, headers=two).status_code == 201
    kind = {"name": "Seated", "price": 900, "quota": 5}
    typed = http.post("/v1/partner/events/gig-2/ticket-types", json=kind, headers=two)
    key = "k" * IDEMPOTENCY_KEY_CHARS_MAX
    first, second = _sold(http, one, key, type_id), _sold(http, two, key, int(typed.json()["id"]))
    assert first["code"] != second["code"]
    again = _order(http, two, key, int(typed.json()["id"]), 1)
    assert (again.status_code, again.json()["code"]) == (200, second["code"])
    long = _order(http, one, key + "k", type_id, 1)
    assert (long.status_code, long.json()["code"]) == (422, "invalid_request")


def test_the_stored_request_id_fits_its_column():
    longest = stored_request_id(2**31 - 1, "k" * IDEMPOTENCY_KEY_CHARS_MAX)
    column = Order.__table__.c.request_id.type
    assert isinstance(column, String) and column.length == 64
    assert len(longest) <= column.length


def _waiting_on_a_lock(server) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(server.ctx.run(lambda unit: unit.session.scalar(query)))


def test_a_partner_and_the_card_office_cancelling_at_once_refund_once(postgres_server):
    server = postgres_server
    http, admin = server.http, server.admin()
    client = make_client(admin, ["tickets:issue"])
    mine = _bearer(http, client)
    type_id = _partner_event(http, admin, mine, quota=5)
    _fan(http, admin)
    code = _sold(http, mine, "k-1", type_id)["code"]
    _sold(http, mine, "k-2", type_id)  # keeps the quota's count above zero either way
    cancelled, loaded, release = threading.Event(), threading.Event(), threading.Event()

    def by_partner(unit) -> None:  # cancels, then holds its transaction open
        orders.cancel(unit, orders.by_code(unit.session, code), partner=client["client_id"])
        cancelled.set()
        assert release.wait(60)

    def by_office(unit) -> None:  # reads the order before the partner's cancel commits
        order = orders.by_code(unit.session, code)
        loaded.set()
        orders.cancel(unit, order, staff_id=1)

    partner = threading.Thread(target=server.ctx.run, args=(by_partner,))
    partner.start()
    assert cancelled.wait(60)
    office = threading.Thread(target=server.ctx.run, args=(by_office,))
    office.start()
    assert loaded.wait(60)
    for _ in range(1200):  # until the office's cancel waits on the partner's row locks
        if _waiting_on_a_lock(server):
            break
        time.sleep(0.05)
    release.set()
    partner.join(60)
    office.join(60)
    refunds = server.ctx.run(
        lambda unit: unit.session.scalar(
            select(func.count(Transaction.id)).where(Transaction.kind == "partner_refund")
        )
    )
    assert refunds == 1
    report = http.get(f"/v1/admin/settlement/{_day(server, int(time.time()))}", headers=admin.auth)
    assert [line["owed_total"] for line in report.json()["partners"]] == [1_500]
    assert admin.books() == 0
