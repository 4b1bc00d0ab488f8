"""The fleet watched: from plain values per terminal (when it was last heard, when it was last
sent a bundle, the clock offset its last signed request showed, its journal backlog and how that
moved across sweeps), which fleet alerts hold now. The server keeps the values and raises an
alert once per episode (`server/services/fleet_watch.py`); these rules only say what holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from duopass.protocol.limits import FRESHNESS_DEFAULT_S
from duopass.risk.kinds import AlertKind

__all__ = [
    "BACKLOG_ENTRIES_MAX",
    "BACKLOG_RISES",
    "BACKLOG_RISING_MIN",
    "BUNDLE_LAG_CRITICAL_S",
    "BUNDLE_LAG_WARNING_S",
    "CLOCK_DRIFT_MAX_S",
    "FLEET_KINDS",
    "HEARTBEAT_MISSED_S",
    "HEARTBEAT_S",
    "Reading",
    "Thresholds",
    "conditions",
    "rises",
]

HEARTBEAT_S = 300
"""How often an idle terminal agent sends its heartbeat (and asks for a bundle)."""
HEARTBEAT_MISSED_S = 2 * HEARTBEAT_S + 60
"""Nothing heard for two heartbeats and a minute's grace: the terminal is not reaching the
server (the fleet listing's `online` uses the same bound)."""
BUNDLE_LAG_WARNING_S = 120 * 60
BUNDLE_LAG_CRITICAL_S = 240 * 60
"""No trust bundle sent for this long: Kingstar's blacklist-lag defaults (warning after 120,
critical after 240 minutes). A loss report or a revocation made since has not reached it."""
CLOCK_DRIFT_MAX_S = FRESHNESS_DEFAULT_S
"""The terminal's clock (as its signed requests show it) this far from the server's: offline,
check 15 compares a code's `ts` with that clock within `freshness_s`, so beyond it the terminal
refuses fresh codes as STALE or accepts codes that old. The server refuses its requests
altogether beyond `REQUEST_WINDOW_S` (300 s); the server passes its policy's `freshness_s`."""
BACKLOG_ENTRIES_MAX = 1000
"""Journal entries heard of but not held: at a tap every 3 s, most of an hour of a till's work."""
BACKLOG_RISES = 5
BACKLOG_RISING_MIN = 20
"""A backlog of at least `BACKLOG_RISING_MIN` entries that rose at `BACKLOG_RISES` sweeps in a row
(a sweep where it stayed level does not count, one where it fell starts again): uploads are not
keeping up. A working uploader (every 5 s) drains it to a few entries."""

FLEET_KINDS = (
    AlertKind.HEARTBEAT_MISSED,
    AlertKind.BUNDLE_LAG,
    AlertKind.BUNDLE_LAG_CRITICAL,
    AlertKind.CLOCK_DRIFT,
    AlertKind.JOURNAL_BACKLOG,
)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    heartbeat_missed_s: int = HEARTBEAT_MISSED_S
    bundle_lag_warning_s: int = BUNDLE_LAG_WARNING_S
    bundle_lag_critical_s: int = BUNDLE_LAG_CRITICAL_S
    clock_drift_max_s: int = CLOCK_DRIFT_MAX_S
    backlog_entries_max: int = BACKLOG_ENTRIES_MAX
    backlog_rises: int = BACKLOG_RISES
    backlog_rising_min: int = BACKLOG_RISING_MIN


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One terminal at one sweep; None where the server has not heard it yet."""

    now: int
    last_seen_at: int | None
    """Its last signed request the server keeps a time of (scan, batch, bundle, heartbeat)."""
    bundle_at: int | None
    """When it was last sent a trust bundle."""
    clock_offset_s: int | None
    """Its clock minus the server's, from its last heartbeat or bundle request."""
    backlog: int = 0
    """Journal entries heard of (by the server or from the terminal) but not held."""
    backlog_rises: int = 0
    """Sweeps in a row at which the backlog rose (`rises`)."""


def rises(previous: int, backlog: int, count: int) -> int:
    """The count of sweeps in a row at which the backlog rose, after one more sweep."""
    if backlog > previous:
        return count + 1
    return 0 if backlog < previous else count


def conditions(reading: Reading, limits: Thresholds | None = None) -> frozenset[AlertKind]:
    """The fleet alerts that hold for this terminal now."""
    limits = limits or Thresholds()
    now, held = reading.now, set[AlertKind]()
    if reading.last_seen_at is not None and now - reading.last_seen_at > limits.heartbeat_missed_s:
        held.add(AlertKind.HEARTBEAT_MISSED)
    if reading.bundle_at is not None:
        age = now - reading.bundle_at
        if age >= limits.bundle_lag_warning_s:
            held.add(AlertKind.BUNDLE_LAG)
        if age >= limits.bundle_lag_critical_s:
            held.add(AlertKind.BUNDLE_LAG_CRITICAL)
    offset = reading.clock_offset_s
    if offset is not None and abs(offset) > limits.clock_drift_max_s:
        held.add(AlertKind.CLOCK_DRIFT)
    backlog = reading.backlog
    rising = reading.backlog_rises >= limits.backlog_rises and backlog >= limits.backlog_rising_min
    if backlog >= limits.backlog_entries_max or rising:
        held.add(AlertKind.JOURNAL_BACKLOG)
    return frozenset(held)
