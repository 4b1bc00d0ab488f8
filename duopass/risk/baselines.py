"""The habits of one holder or one terminal over its offline journal entries, kept in bounded
space: the amounts (count, mean and variance of ln(1 + amount), Welford's update, and a fast
moving mean of the recent level), the hour of day (24 bins), the venues (the most frequent, a
Misra-Gries summary), the entries per active day (mean and variance of the daily counts) and the
rules whose episode is on.

Bounded and forgetting slowly: past `WEIGHT_CAP` amounts (or `DAYS_CAP` days) each new one weighs
1/cap, an exponentially weighted mean and variance; the hour bins are halved whenever they hold
more than `HOURS_CAP`. Mergeable: `merge` combines two baselines of disjoint entries (Chan's
parallel variance, bin sums, the Misra-Gries merge); below the caps, for parts of which one ends
on a day before the other starts, it equals folding every entry into one. Deterministic: the
same entries in the same order give the same state.

How far off a new entry is, and which rules flag it, is `anomaly`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "DAYS_CAP",
    "FADE_EVERY",
    "FAST_ALPHA",
    "HOURS_CAP",
    "VENUES_KEPT",
    "WEIGHT_CAP",
    "Baseline",
    "Use",
]

WEIGHT_CAP = 200
"""Amounts past this many weigh 1/200 each: the baseline follows a habit that changes over a few
months of meals, not a year."""
DAYS_CAP = 60
"""Active days past this many weigh 1/60 each."""
HOURS_CAP = 512
"""The hour bins (and the venue counters) are halved, rounded down, when they hold more entries
than this (looked at every `FADE_EVERY` entries): what a key did long ago fades."""
FADE_EVERY = 16
VENUES_KEPT = 8
"""Venues a Misra-Gries summary keeps: any venue of more than 1/9 of the entries is among them."""
FAST_ALPHA = 0.05
"""The weight of a new amount in the recent level (about the last twenty entries)."""


class Use(NamedTuple):
    """One accepted journal entry as a baseline sees it."""

    at: int
    """The scan time at the server (Unix seconds)."""
    day: int
    """The local day number: days since 1970-01-01 in the campus's time zone."""
    hour: int
    """The local hour, 0-23."""
    venue: str
    amount: int | None
    """Minor units of a payment; None for an entry that moves no money (a gate)."""


def log_amount(amount: int) -> float:
    return math.log1p(max(amount, 0))


@dataclass(slots=True)
class Baseline:
    """One key's habits. `observe` folds an entry in; the fields are the stored state."""

    n: int = 0
    """Entries observed."""
    amounts: int = 0
    """Entries with an amount."""
    mean: float = 0.0
    var: float = 0.0
    """Mean and population variance of ln(1 + amount)."""
    fast: float = 0.0
    """The recent level of ln(1 + amount) (weight `FAST_ALPHA`)."""
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    venues: dict[str, int] = field(default_factory=dict)
    """Misra-Gries counters: at most `VENUES_KEPT`, each at most n/(VENUES_KEPT+1) low."""
    day: int = -1
    """The local day of the latest entry; -1 before the first."""
    today: int = 0
    """Entries on `day`."""
    days: int = 0
    """Earlier active days folded into `day_mean` and `day_var`."""
    day_mean: float = 0.0
    day_var: float = 0.0
    episodes: list[str] = field(default_factory=list)
    """The rules whose episode is on (`anomaly`: a drift flags when it starts, not again until
    it has ended)."""

    def observe(self, use: Use) -> None:
        """Fold one entry in (after it was scored against the baseline as it was)."""
        self.n += 1
        if use.amount is not None:
            x = log_amount(use.amount)
            self.amounts += 1
            self.mean, self.var = _welford(self.mean, self.var, x, min(self.amounts, WEIGHT_CAP))
            self.fast = x if self.amounts == 1 else self.fast + FAST_ALPHA * (x - self.fast)
        self.hours[use.hour] += 1
        _count_venue(self.venues, use.venue)
        if self.n % FADE_EVERY == 0:
            self._fade()
        if use.day != self.day:
            self.close_day(use.day)
        self.today += 1

    def fold(self, uses: list[Use]) -> None:
        """`observe` each of `uses` in order (the same state), in one loop."""
        n, amounts, mean, var, fast = self.n, self.amounts, self.mean, self.var, self.fast
        hours, venues = self.hours, self.venues
        for use in uses:
            n += 1
            amount = use.amount
            if amount is not None:
                x = math.log1p(amount if amount > 0 else 0)
                amounts += 1
                w = amounts if amounts < WEIGHT_CAP else WEIGHT_CAP
                d = x - mean
                mean += d / w
                var += (d * (x - mean) - var) / w
                fast = x if amounts == 1 else fast + FAST_ALPHA * (x - fast)
            hours[use.hour] += 1
            venue = use.venue
            if venue in venues:
                venues[venue] += 1
            else:
                _count_venue(venues, venue)
            if n % FADE_EVERY == 0:
                self.hours, self.venues = hours, venues
                self._fade()
                hours, venues = self.hours, self.venues
            if use.day != self.day:
                self.close_day(use.day)
            self.today += 1
        self.n, self.amounts, self.mean, self.var, self.fast = n, amounts, mean, var, fast

    def _fade(self) -> None:
        if sum(self.hours) > HOURS_CAP:
            self.hours = [count // 2 for count in self.hours]
        if sum(self.venues.values()) > HOURS_CAP:
            self.venues = {v: c // 2 for v, c in self.venues.items() if c > 1}

    def close_day(self, day: int) -> None:
        """Fold the day held so far into the daily counts, and start `day` (later or not: a
        terminal's entries come in seq order, their scan times not quite)."""
        if self.today:
            self.days += 1
            w = min(self.days, DAYS_CAP)
            self.day_mean, self.day_var = _welford(self.day_mean, self.day_var, self.today, w)
        self.day, self.today = day, 0

    @property
    def sd(self) -> float:
        return math.sqrt(self.var)

    @property
    def day_sd(self) -> float:
        return math.sqrt(self.day_var)

    def merge(self, other: Baseline) -> Baseline:
        """The baseline of both baselines' entries (disjoint sets of them); the day in
        progress is the later one's, the other's folded into the daily counts."""
        merged = Baseline(n=self.n + other.n, amounts=self.amounts + other.amounts)
        merged.mean, merged.var = _chan(
            (self.amounts, self.mean, self.var), (other.amounts, other.mean, other.var)
        )
        if merged.amounts:
            share = other.amounts / merged.amounts
            merged.fast = self.fast + share * (other.fast - self.fast)
        merged.hours = [a + b for a, b in zip(self.hours, other.hours, strict=True)]
        merged.venues = _merge_venues(self.venues, other.venues)
        early, late = sorted((self, other), key=lambda b: b.day)
        merged.days = early.days + late.days
        merged.day_mean, merged.day_var = _chan(
            (early.days, early.day_mean, early.day_var), (late.days, late.day_mean, late.day_var)
        )
        merged.day, merged.today = late.day, late.today
        merged.episodes = sorted(set(self.episodes) | set(other.episodes))
        merged._fade()
        if early.day == late.day:
            merged.today += early.today
        elif early.today:  # the earlier one's day in progress is over
            merged.days += 1
            merged.day_mean, merged.day_var = _chan(
                (merged.days - 1, merged.day_mean, merged.day_var), (1, float(early.today), 0.0)
            )
        return merged

    def state(self) -> dict[str, Any]:
        """The stored form (JSON-able; `restore` reads it back)."""
        return {
            "n": self.n,
            "amounts": self.amounts,
            "mean": self.mean,
            "var": self.var,
            "fast": self.fast,
            "hours": self.hours,
            "venues": self.venues,
            "day": self.day,
            "today": self.today,
            "days": self.days,
            "day_mean": self.day_mean,
            "day_var": self.day_var,
            "episodes": self.episodes,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Baseline:
        hours = [int(count) for count in state["hours"]]
        if len(hours) != 24:
            raise ValueError("a baseline has 24 hour bins")
        venues = {str(venue): int(count) for venue, count in state["venues"].items()}
        return cls(
            n=int(state["n"]),
            amounts=int(state["amounts"]),
            mean=float(state["mean"]),
            var=float(state["var"]),
            fast=float(state["fast"]),
            hours=hours,
            venues=dict(list(venues.items())[:VENUES_KEPT]),
            day=int(state["day"]),
            today=int(state["today"]),
            days=int(state["days"]),
            day_mean=float(state["day_mean"]),
            day_var=float(state["day_var"]),
            episodes=[str(rule) for rule in state.get("episodes", [])],
        )

    def summary(self) -> dict[str, Any]:
        """What a reviewer reads of it: the typical amount and its spread, the busiest hours
        and venues, the entries per active day."""
        busiest = sorted(range(24), key=lambda h: (-self.hours[h], h))[:3]
        return {
            "entries": self.n,
            "amount_typical": round(math.expm1(self.mean)) if self.amounts else None,
            "amount_recent": round(math.expm1(self.fast)) if self.amounts else None,
            "log_amount_mean": round(self.mean, 3),
            "log_amount_sd": round(self.sd, 3),
            "hours": {str(h): self.hours[h] for h in busiest if self.hours[h]},
            "venues": dict(sorted(self.venues.items(), key=lambda kv: (-kv[1], kv[0]))),
            "days": self.days,
            "per_day_mean": round(self.day_mean, 2),
            "per_day_sd": round(self.day_sd, 2),
            "today": self.today,
        }


def _welford(mean: float, var: float, x: float, weight: int) -> tuple[float, float]:
    """Welford's step on a population variance; `weight` is the count so far including `x`
    (exact), or a cap (an exponentially weighted mean and variance)."""
    d = x - mean
    mean += d / weight
    var += (d * (x - mean) - var) / weight
    return mean, var


def _chan(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[float, float]:
    """Mean and population variance of two disjoint samples (count, mean, variance)."""
    na, ma, va = a
    nb, mb, vb = b
    n = na + nb
    if n == 0:
        return 0.0, 0.0
    delta = mb - ma
    mean = ma + delta * nb / n
    return mean, (na * va + nb * vb + delta * delta * na * nb / n) / n


def _count_venue(venues: dict[str, int], venue: str) -> None:
    """Misra-Gries: count a kept venue; keep a new one while there is room; else every counter
    goes down by one and those at zero leave."""
    if venue in venues:
        venues[venue] += 1
    elif len(venues) < VENUES_KEPT:
        venues[venue] = 1
    else:
        for kept in list(venues):
            venues[kept] -= 1
            if not venues[kept]:
                del venues[kept]


def _merge_venues(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """The Misra-Gries merge: counters added, then the (k+1)-th largest taken off each and
    those left at zero or below dropped (ties broken by name, so the result is deterministic)."""
    summed = dict(a)
    for venue, count in b.items():
        summed[venue] = summed.get(venue, 0) + count
    ranked = sorted(summed.items(), key=lambda kv: (-kv[1], kv[0]))
    cut = ranked[VENUES_KEPT][1] if len(ranked) > VENUES_KEPT else 0
    return {venue: count - cut for venue, count in ranked[:VENUES_KEPT] if count > cut}
