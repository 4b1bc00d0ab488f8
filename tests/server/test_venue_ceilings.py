"""Venue price ceilings through a real server: set by an administrator within bounds, read by
staff; an offline acceptance above its venue's ceiling for the meal period of its scan time
raised as a `journal_anomaly` (rule `ceiling`) and still booked, one at the ceiling not; one
alert a till while open; an online payment above it flagged at the scan, not refused; the meal
period found in local time (`venue_ceilings.ceiling_at`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duopass.server.limits import AMOUNT_MAX
from duopass.server.services import staff
from duopass.server.services.purse_limits import DEFAULT_MEALS
from duopass.server.services.venue_ceilings import ceiling_at
from tests.server.harness import SQLITE_ONLY, Admin, Running, enrolled_till, ready_wallet

CEILINGS = {"breakfast": 900, "lunch": 2500, "dinner": 2500, "other": 3000}
FLAT = {"breakfast": 1000, "lunch": 1000, "dinner": 1000, "other": 1000}
"""The same ceiling in every period: whatever the hour the test runs, 1000 applies."""


def _venue(admin: Admin, venue: str = "canteen") -> None:
    made = admin.post("/v1/admin/venues", {"id": venue, "name": venue.title()})
    assert made.status_code == 201, made.text


def _put(admin: Admin, ceilings: dict[str, Any], venue: str = "canteen") -> Any:
    path = f"/v1/admin/venues/{venue}/ceilings"
    return admin.http.put(path, json={"ceilings": ceilings}, headers=admin.auth)


def _code(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


def _ceiling_alerts(admin: Admin) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params={"state": "open"}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [
        item
        for item in answer.json()["items"]
        if item["kind"] == "journal_anomaly" and item["evidence"]["score"]["rules"] == ["ceiling"]
    ]


@SQLITE_ONLY
def test_ceilings_are_set_by_an_administrator_within_bounds_and_read_by_staff(server: Running):
    admin = server.admin()
    _venue(admin)
    put = _put(admin, CEILINGS)
    assert put.status_code == 200, put.text
    assert put.json()["ceilings"] == CEILINGS and put.json()["currency"] == "CNY"
    assert [meal["name"] for meal in put.json()["meals"]] == ["breakfast", "lunch", "dinner"]
    _code(_put(admin, {"lunch": 0}), 422, "invalid_request")
    _code(_put(admin, {"lunch": AMOUNT_MAX + 1}), 422, "invalid_request")
    _code(_put(admin, {"supper": 900}), 422, "invalid_request")
    _code(_put(admin, {f"m{n}": 1 for n in range(10)}), 422, "invalid_request")
    _code(_put(admin, CEILINGS, venue="nowhere"), 404, "not_found")
    login = {"login": "otto", "password": "operator-password"}
    server.ctx.run(lambda unit: staff.add(unit, role="operator", **login))
    token = server.http.post("/v1/admin/session", json=login).json()["token"]
    operator = Admin(server.http, {"Authorization": f"Bearer {token}"})
    _code(_put(operator, {"lunch": 1}), 403, "forbidden")
    read = operator.http.get("/v1/admin/venues/canteen/ceilings", headers=operator.auth)
    assert read.status_code == 200 and read.json()["ceilings"] == CEILINGS  # unchanged
    assert _put(admin, {}).json()["ceilings"] == {}  # removed


def test_an_offline_entry_above_the_ceiling_is_raised_and_still_booked(server: Running):
    admin = server.admin()
    _venue(admin)
    wallet = ready_wallet(server.http, admin, "pia", balance=50_000)
    till, merchant = enrolled_till(server.http, admin)
    at_ceiling = [till.entry(wallet.code(), seq=1, amount=1_000)]
    assert till.journal(at_ceiling).json()["rejected"] == []
    assert _ceiling_alerts(admin) == []  # no ceiling set yet: nothing changes
    assert _put(admin, FLAT).status_code == 200
    booked = till.journal([till.entry(wallet.code(), seq=2, amount=1_000)])
    assert booked.json()["rejected"] == [] and _ceiling_alerts(admin) == []  # at it: a meal
    above = [till.entry(wallet.code(), seq=n, amount=1_010) for n in (3, 4)]
    assert till.journal(above).json()["rejected"] == []  # flagged, not held
    [alert] = _ceiling_alerts(admin)
    assert (alert["terminal_id"], alert["seq"], alert["holder_handle"]) == ("till-1", 3, None)
    evidence = alert["evidence"]
    assert evidence["key"] == "terminal:till-1"
    assert evidence["entry"]["amount"] == 1_010 and evidence["entry"]["venue"] == "canteen"
    assert evidence["score"]["ceiling"]["amount"] == 1_000
    assert evidence["score"]["above_ceiling"] == 2
    assert admin.account(merchant)["balance"] == 1_000 + 1_000 + 2 * 1_010  # all booked
    assert till.journal([till.entry(wallet.code(), seq=5, amount=2_000)]).status_code == 200
    [alert] = _ceiling_alerts(admin)  # one alert a till while open: counted on it
    assert alert["evidence"]["repeats"] == 1 and alert["evidence"]["latest"]["seq"] == 5


@SQLITE_ONLY
def test_an_online_payment_above_the_ceiling_is_flagged_not_refused(server: Running):
    admin = server.admin()
    _venue(admin)
    assert _put(admin, FLAT).status_code == 200
    wallet = ready_wallet(server.http, admin, "quinn", balance=50_000)
    till, _ = enrolled_till(server.http, admin)
    assert till.scan(wallet.code(), amount=1_000)["ok"]
    assert _ceiling_alerts(admin) == []
    assert till.scan(wallet.code(), amount=1_200)["ok"]
    [alert] = _ceiling_alerts(admin)
    assert alert["evidence"]["entry"]["online"] is True
    assert alert["evidence"]["entry"]["amount"] == 1_200


SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def _at(zone: ZoneInfo, when: tuple[int, int, int, int, int]) -> int:
    """A local time (year, month, day, hour, minute) in `zone`, as Unix seconds."""
    year, month, day, hour, minute = when
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp())


@pytest.mark.parametrize(
    ("when", "period", "ceiling"),
    [
        ((2026, 3, 2, 5, 59), "other", 3000),
        ((2026, 3, 2, 6, 0), "breakfast", 900),  # a period's start is in it...
        ((2026, 3, 2, 9, 59), "breakfast", 900),
        ((2026, 3, 2, 10, 0), "other", 3000),  # ...its end is not
        ((2026, 3, 2, 10, 30), "lunch", 2500),
        ((2026, 3, 2, 19, 59), "dinner", 2500),
        ((2026, 3, 2, 20, 0), "other", 3000),
    ],
)
def test_the_meal_period_is_the_local_time_s(
    when: tuple[int, int, int, int, int], period: str, ceiling: int
) -> None:
    assert ceiling_at(CEILINGS, SHANGHAI, _at(SHANGHAI, when), DEFAULT_MEALS) == (period, ceiling)


def test_the_meal_period_follows_a_clock_change_and_a_period_without_a_ceiling_has_none():
    # Berlin goes to summer time on 29 March 2026 at 02:00: 06:00 local is 04:00 UTC after it
    after = _at(BERLIN, (2026, 3, 29, 6, 0))
    assert datetime.fromtimestamp(after, ZoneInfo("UTC")).hour == 4
    assert ceiling_at(CEILINGS, BERLIN, after, DEFAULT_MEALS) == ("breakfast", 900)
    assert ceiling_at(CEILINGS, BERLIN, after - 60, DEFAULT_MEALS) == ("other", 3000)
    assert ceiling_at({"lunch": 2500}, BERLIN, after, DEFAULT_MEALS) is None
