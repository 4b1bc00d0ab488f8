"""A day of partner sales for the console tests: a partner named like a script sells three
tickets (two orders) and cancels the first; another partner sells one. The figures the pages
and the CSV must show, in minor units, are the books' own (`owed_from_books`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from duopass.server.services import accounts
from duopass.server.store.tables import Account
from tests.server.harness import Running
from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _fan, _order, _partner_event
from tests.server.ticketing import HOUR

NAUGHTY = "<script>alert('owed')</script>"


@dataclass(frozen=True)
class SoldDay:
    day: str
    client_id: str
    row_id: int
    other_id: str
    other_row: int


def _sell(http: Any, headers: dict[str, str], key: str, type_id: int, quantity: int) -> str:
    sold = _order(http, headers, key, type_id, quantity)
    assert sold.status_code == 201, sold.text
    return str(sold.json()["code"])


def _their_event(http: Any, headers: dict[str, str]) -> int:
    """The second partner's own event at the arena, tickets at ¥15.00."""
    doors = int(time.time()) + 48 * HOUR
    spec = {"id": "fair", "name": "Fair", "doors": doors, "ends": doors + 4 * HOUR}
    made = http.post("/v1/partner/events", json=spec | {"venues": ["arena"]}, headers=headers)
    assert made.status_code == 201, made.text
    kind = {"name": "Entry", "price": 1_500, "quota": 5}
    typed = http.post("/v1/partner/events/fair/ticket-types", json=kind, headers=headers)
    assert typed.status_code == 201, typed.text
    return int(typed.json()["id"])


def partner_day(site: Running) -> SoldDay:
    """Partner one sells 2 + 1 tickets at ¥15.00 and cancels the 2; partner two sells 1."""
    http, admin = site.http, site.admin()
    naughty = make_client(admin, ["tickets:issue"], name=NAUGHTY)
    other = make_client(admin, ["tickets:issue"], name="City Tickets")
    mine = _bearer(http, naughty)
    type_id = _partner_event(http, admin, mine, quota=10)
    _fan(http, admin)
    first = _sell(http, mine, "s-1", type_id, 2)
    _sell(http, mine, "s-2", type_id, 1)
    cancelled = http.post(f"/v1/partner/orders/{first}/cancel", headers=mine)
    assert cancelled.status_code == 200, cancelled.text
    theirs = _bearer(http, other)
    _sell(http, theirs, "o-1", _their_event(http, theirs), 1)
    assert admin.books() == 0
    day = site.ctx.run(lambda unit: accounts.business_date(int(time.time()), unit.settings.zone))
    return SoldDay(day, naughty["client_id"], naughty["id"], other["client_id"], other["id"])


def owed_from_books(site: Running, client_id: str) -> int:
    """What the partner owes in yuan cents: its ledger account's balance, negated."""
    name = f"partner:{client_id}:CNY"
    balance = site.ctx.run(
        lambda unit: unit.session.scalars(select(Account.balance).where(Account.name == name)).one()
    )
    return -int(balance)
