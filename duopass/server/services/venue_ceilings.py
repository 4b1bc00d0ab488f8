"""Venue price ceilings (DOMAIN: "amounts over a maximum"): the card office's highest plausible
single payment at a venue in each of its meal periods (`purse_limits`' periods, local time in
the issuer's zone) and one for outside any meal period (`other`). A canteen knows its menu's
dearest price per meal: a payment above it is no honest meal.

A payment above the ceiling of its venue and of the meal period of its scan time is flagged at
once, not refused: a `journal_anomaly` alert (rule `ceiling`) naming the terminal, the entry,
the amount and the ceiling. An offline acceptance is judged when its journal settles (at the
scan time the journal code corrected) and still books (PROTOCOL §5.3 item 4); an online payment
at the scan, after it booked. One alert a terminal while open: later payments above the ceiling
are counted on it (`repeats`, the latest entry). Where no ceiling is set nothing changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from duopass.risk import AlertKind
from duopass.risk.anomaly import Rule
from duopass.server.limits import AMOUNT_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import alerts, purse_limits
from duopass.server.store import sql
from duopass.server.store.risk import terminal_key
from duopass.server.store.tickets import Venue
from duopass.server.unit_of_work import Unit

__all__ = [
    "OTHER",
    "Above",
    "Ceilings",
    "ceiling_at",
    "ceilings_of",
    "flag",
    "judge_online",
    "set_ceilings",
]

OTHER = "other"
"""The ceiling outside every meal period."""
_CEILINGS = sql.statement("SELECT ceilings FROM venues WHERE id = :id")
_READ = "venue_ceilings"
"""`session.info` key: the `Ceilings` the transaction's online payments read."""


@dataclass(frozen=True)
class Above:
    """A payment above its venue's ceiling: where, when (its corrected scan time), how much."""

    terminal_id: str
    seq: int
    venue: str
    at: int
    amount: int
    period: str
    ceiling: int
    online: bool


def _venue(unit: Unit, venue_id: str) -> Venue:
    row = unit.session.get(Venue, venue_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no venue {venue_id!r}")
    return row


def _periods(unit: Unit) -> tuple[str, ...]:
    return (*(meal.name for meal in purse_limits.bounds(unit).meals), OTHER)


def ceilings_of(unit: Unit, venue_id: str) -> dict[str, Any]:
    """The venue's ceilings (minor units by meal period), and the office's periods."""
    row = _venue(unit, venue_id)
    meals = purse_limits.bounds(unit).meals
    return {
        "venue": row.id,
        "ceilings": json.loads(row.ceilings) if row.ceilings else {},
        "meals": purse_limits.meals_out(meals),
        "currency": unit.settings.currency,
    }


def set_ceilings(unit: Unit, venue_id: str, ceilings: dict[str, int]) -> dict[str, Any]:
    """Replace the venue's ceilings: each named by one of the office's meal periods or `other`,
    1 to AMOUNT_MAX minor units (an empty object removes them)."""
    row = _venue(unit, venue_id)
    periods = _periods(unit)
    for name, value in ceilings.items():
        if name not in periods:
            raise Problem(
                ProblemCode.INVALID_REQUEST,
                f"not a meal period of the office: {name[:40]!r} (one of {', '.join(periods)})",
            )
        if not 1 <= value <= AMOUNT_MAX:
            raise Problem(ProblemCode.INVALID_REQUEST, f"a ceiling is 1 to {AMOUNT_MAX}")
    ordered = {name: ceilings[name] for name in periods if name in ceilings}
    row.ceilings = json.dumps(ordered) if ordered else None
    return ceilings_of(unit, venue_id)


class Ceilings:
    """The ceilings of the venues one unit judges, read once a venue (None: none set)."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.venues: dict[str, dict[str, int] | None] = {}
        self.meals: tuple[purse_limits.Meal, ...] | None = None

    def at(self, venue_id: str, at: int) -> tuple[str, int] | None:
        """The ceiling of the venue at `at` and the period it is for, None when none is set."""
        if venue_id not in self.venues:
            # on the driver, not `session.get`: a scan reads it once a payment (hot path)
            row = sql.raw(self.unit.session).one(_CEILINGS, {"id": venue_id})
            text = row[0] if row is not None else None
            self.venues[venue_id] = json.loads(text) if text else None
        found = self.venues[venue_id]
        if not found:
            return None
        if self.meals is None:
            self.meals = purse_limits.bounds(self.unit).meals
        return ceiling_at(found, self.unit.settings.zone, at, self.meals)


def ceiling_at(
    ceilings: dict[str, int], zone: Any, at: int, meals: tuple[purse_limits.Meal, ...]
) -> tuple[str, int] | None:
    """The meal period of `at` (local time in `zone`, `purse_limits.day_of`), or `other`, and
    its ceiling; None when that period has none."""
    meal = purse_limits.day_of(zone, at, meals).meal
    period = meal.name if meal is not None else OTHER
    ceiling = ceilings.get(period)
    return None if ceiling is None else (period, int(ceiling))


def flag(unit: Unit, found: list[Above]) -> int:
    """Raise (or count on the open one) the terminal's ceiling alert for payments above their
    venue's ceiling, all of one terminal; the first names the entry. Returns alerts raised."""
    if not found:
        return 0
    first = found[0]
    key = "ceiling:" + hashlib.sha256(first.terminal_id.encode()).hexdigest()[:32]

    def repeat(held: dict[str, Any]) -> None:
        held["repeats"] = int(held.get("repeats", 0)) + len(found)
        held["latest"] = _entry(found[-1])

    raised = alerts.raise_once(
        unit,
        AlertKind.JOURNAL_ANOMALY,
        grouping=key,
        repeat=repeat,
        evidence=_evidence(first, len(found)),
        terminal_id=first.terminal_id,
        seq=first.seq,
    )
    return 0 if raised is None else 1


def judge_online(unit: Unit, terminal_id: str, venue: str, seq: int, amount: int) -> int:
    """An online payment just booked, at the server's time: flagged when above the ceiling.
    The ceilings are read once a transaction (a group commit's batch of scans)."""
    ceilings = unit.session.info.get(_READ)
    if not isinstance(ceilings, Ceilings):
        ceilings = unit.session.info[_READ] = Ceilings(unit)
    limit = ceilings.at(venue, unit.now)
    if limit is None or amount <= limit[1]:
        return 0
    return flag(unit, [Above(terminal_id, seq, venue, unit.now, amount, *limit, True)])


def _entry(above: Above) -> dict[str, Any]:
    return {
        "terminal": above.terminal_id,
        "seq": above.seq,
        "at": above.at,
        "venue": above.venue,
        "amount": above.amount,
        "online": above.online,
    }


def _evidence(above: Above, count: int) -> dict[str, Any]:
    score = {
        "rules": [str(Rule.CEILING)],
        "ceiling": {"period": above.period, "amount": above.ceiling},
        "above_ceiling": count,
    }
    return {"key": terminal_key(above.terminal_id), "score": score, "entry": _entry(above)}
