"""Meal periods on a day the clocks change (issue 15, review mends): a meal period is local
time on that date, so on a 23- or 25-hour day its bounds are not midnight plus a fixed number of
hours; and in a zone with no change (the default, Asia/Shanghai) nothing moves."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from duopass.server.services.purse_limits import DEFAULT_MEALS, day_of
from tests.server.harness import ManualClock, enrolled_till, ready_wallet, running_server
from tests.server.test_purse_limits import _paid, _pay, _refused, _set_bounds

BERLIN = ZoneInfo("Europe/Berlin")


def _at(zone: ZoneInfo, text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=zone).timestamp())


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", "2026-03-29", 23),  # 02:00 CET -> 03:00 CEST
        ("Europe/Berlin", "2026-10-25", 25),  # 03:00 CEST -> 02:00 CET
        ("Europe/Berlin", "2026-06-01", 24),
        ("Asia/Shanghai", "2026-03-29", 24),
        ("Asia/Shanghai", "2026-10-25", 24),
    ],
)
def test_each_bound_is_local_time_on_that_date(zone: str, day: str, hours: int) -> None:
    tz = ZoneInfo(zone)
    found = day_of(tz, _at(tz, f"{day}T12:15"), DEFAULT_MEALS)
    assert found.meal is not None and found.meal.name == "lunch"
    assert (found.start, found.end - found.start) == (_at(tz, f"{day}T00:00"), hours * 3600)
    assert (found.meal_start, found.meal_end) == (_at(tz, f"{day}T10:30"), _at(tz, f"{day}T14:00"))
    breakfast = day_of(tz, _at(tz, f"{day}T06:00"), DEFAULT_MEALS)
    assert (breakfast.meal_start, breakfast.meal_end) == (
        _at(tz, f"{day}T06:00"),
        _at(tz, f"{day}T10:00"),
    )
    assert day_of(tz, _at(tz, f"{day}T05:59"), DEFAULT_MEALS).meal is None


@pytest.mark.parametrize("when", ["2026-03-29T06:30", "2026-10-25T09:30"])
def test_a_breakfast_on_a_day_the_clocks_change_counts_its_payments(tmp_path, when: str) -> None:
    """One payment a meal, in Berlin: the second breakfast payment is refused on either day."""
    clock = ManualClock(_at(BERLIN, when))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", clock=clock, timezone="Europe/Berlin") as server:
        admin = server.admin()
        _set_bounds(admin, meal_max=3, meal_default=1)
        wallet = ready_wallet(server.http, admin, "ute", balance=20_000)
        till, _merchant = enrolled_till(server.http, admin, "till-ute")
        now = int(clock.now)
        _paid(_pay(till, clock, wallet.code(now), 300))
        clock.advance(60)
        _refused(_pay(till, clock, wallet.code(int(clock.now)), 300), "limit_meal_count")
