"""The fleet rules over plain values: which alerts hold at each threshold, and the backlog's
trend across sweeps."""

from __future__ import annotations

import pytest

from duopass.risk import AlertKind
from duopass.risk.fleet import (
    BACKLOG_ENTRIES_MAX,
    BACKLOG_RISES,
    BACKLOG_RISING_MIN,
    BUNDLE_LAG_CRITICAL_S,
    BUNDLE_LAG_WARNING_S,
    CLOCK_DRIFT_MAX_S,
    HEARTBEAT_MISSED_S,
    Reading,
    Thresholds,
    conditions,
    rises,
)

NOW = 1_800_000_000


def held(
    *,
    last_seen_at: int | None = NOW,
    bundle_at: int | None = NOW,
    clock_offset_s: int | None = 0,
    backlog: int = 0,
    backlog_rises: int = 0,
) -> set[AlertKind]:
    """The alerts holding for a terminal heard just now but for what the test changes."""
    reading = Reading(
        now=NOW,
        last_seen_at=last_seen_at,
        bundle_at=bundle_at,
        clock_offset_s=clock_offset_s,
        backlog=backlog,
        backlog_rises=backlog_rises,
    )
    return set(conditions(reading))


def test_thresholds_are_kingstars_and_the_agents() -> None:
    assert (BUNDLE_LAG_WARNING_S, BUNDLE_LAG_CRITICAL_S) == (120 * 60, 240 * 60)
    assert HEARTBEAT_MISSED_S == 660  # two 300 s heartbeats and a minute
    assert CLOCK_DRIFT_MAX_S == 60  # the default freshness_s


def test_a_terminal_heard_now_holds_nothing() -> None:
    assert held() == set()
    assert held(last_seen_at=None, bundle_at=None, clock_offset_s=None) == set()


def test_heartbeat_missed_past_the_bound() -> None:
    assert held(last_seen_at=NOW - HEARTBEAT_MISSED_S) == set()
    assert held(last_seen_at=NOW - HEARTBEAT_MISSED_S - 1) == {AlertKind.HEARTBEAT_MISSED}


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (BUNDLE_LAG_WARNING_S - 1, set()),
        (BUNDLE_LAG_WARNING_S, {AlertKind.BUNDLE_LAG}),
        (BUNDLE_LAG_CRITICAL_S - 1, {AlertKind.BUNDLE_LAG}),
        (BUNDLE_LAG_CRITICAL_S, {AlertKind.BUNDLE_LAG, AlertKind.BUNDLE_LAG_CRITICAL}),
    ],
)
def test_bundle_lag_warning_then_critical(age: int, expected: set[AlertKind]) -> None:
    assert held(bundle_at=NOW - age) == expected


@pytest.mark.parametrize("offset", [CLOCK_DRIFT_MAX_S + 1, -CLOCK_DRIFT_MAX_S - 1])
def test_clock_drift_either_way(offset: int) -> None:
    assert held(clock_offset_s=offset) == {AlertKind.CLOCK_DRIFT}
    assert held(clock_offset_s=offset - (1 if offset > 0 else -1)) == set()


def test_clock_drift_bound_is_the_policys() -> None:
    reading = Reading(now=NOW, last_seen_at=NOW, bundle_at=NOW, clock_offset_s=100)
    assert conditions(reading, Thresholds(clock_drift_max_s=120)) == frozenset()
    assert conditions(reading) == {AlertKind.CLOCK_DRIFT}


def test_backlog_above_the_bound_or_rising() -> None:
    assert held(backlog=BACKLOG_ENTRIES_MAX - 1) == set()
    assert held(backlog=BACKLOG_ENTRIES_MAX) == {AlertKind.JOURNAL_BACKLOG}
    rising = {"backlog": BACKLOG_RISING_MIN, "backlog_rises": BACKLOG_RISES}
    assert held(**rising) == {AlertKind.JOURNAL_BACKLOG}
    assert held(**{**rising, "backlog_rises": BACKLOG_RISES - 1}) == set()
    assert held(**{**rising, "backlog": BACKLOG_RISING_MIN - 1}) == set()  # a few: a busy till


def test_rises_counts_sweeps_in_a_row_level_ones_kept() -> None:
    count, seen = 0, 0
    counts = []
    for backlog in (5, 9, 9, 12, 3, 4):
        count, seen = rises(seen, backlog, count), backlog
        counts.append(count)
    assert counts == [1, 2, 2, 3, 0, 1]
