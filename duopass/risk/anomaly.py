"""How far off one journal entry is from its holder's or its terminal's habits (`baselines`),
and the rules that flag it: an amount far above the habit, a venue and an hour both rare for the
holder, an hour the terminal is never used at, a day's entries far above the usual, a terminal's
recent amounts drifting up. No rule flags before its warm-up (too few entries, or days, seen).

Each part of the score, in plain units a reviewer can read:

- `amount_z`: (ln(1 + amount) - mean) / sd, one-sided (a smaller amount is no one's loss), the
  spread at least `sd_floor` (a holder who always pays the same is not flagged for a cent more);
- `hour_bits`, `venue_bits`: the surprise, -log2 of the probability the baseline gives the hour
  (the neighbouring hours count half: lunch at 13 is not strange for one who eats at 12) and the
  venue, each with a prior of half an entry so that nothing is impossible;
- `burst_z`: the day's entries so far against the entries per active day;
- `drift_z`: the recent level of amounts (`baselines.FAST_ALPHA`) against the habit, in units of
  the recent level's own spread. A burst flags once a day, when the day crosses its limit; a
  drift once an episode (`learn`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from duopass.risk.baselines import FAST_ALPHA, VENUES_KEPT, Baseline, Use, log_amount

__all__ = [
    "DEFAULT",
    "RULES",
    "Holds",
    "Rule",
    "Score",
    "Thresholds",
    "hour_surprise",
    "judge",
    "learn",
    "place_and_hour",
    "score",
    "venue_surprise",
]


class Rule(StrEnum):
    """What flagged an entry. Added, never renamed (they are in alerts' evidence)."""

    AMOUNT = "amount"
    PLACE_AND_HOUR = "place_and_hour"
    HOUR = "hour"
    BURST = "burst"
    DRIFT = "drift"
    VENUE = "venue"
    """A till far above its venue's other tills (`venue_peers`)."""
    CEILING = "ceiling"
    """A payment above its venue's price ceiling for the meal period (`venue_ceilings`)."""


class Holds(StrEnum):
    """Whose habits a baseline holds."""

    HOLDER = "holder"
    TERMINAL = "terminal"


RULES = {
    Holds.HOLDER: (Rule.AMOUNT, Rule.PLACE_AND_HOUR, Rule.HOUR, Rule.BURST),
    Holds.TERMINAL: (Rule.AMOUNT, Rule.HOUR, Rule.BURST, Rule.DRIFT),
}
"""The rules each kind of baseline applies: a till has one venue, a holder's amounts vary with
what they buy more than a till's level does."""

PRIOR = 0.5
"""The entries each hour and each venue is credited with before any is seen."""


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    warmup: int = 20
    """Entries (with an amount, for the amount rules) a baseline holds before it flags."""
    warmup_days: int = 5
    """Active days before a burst is flagged."""
    drift_warmup: int = 50
    amount_z: float = 3.5
    sd_floor: float = 0.3
    """The least spread of ln(1 + amount): e^(3.5 x 0.3) = 2.9 times the habit at the least."""
    rare_bits: float = 5.0
    """Both the venue and the hour at least this surprising (1 in 32)..."""
    place_and_hour_bits: float = 13.0
    """...and together at least this (1 in 8,000)."""
    hour_bits: float = 9.0
    """An hour this surprising alone (1 in 500). A holder's hours are judged with the
    terminal's as their prior (`score`'s context): an hour the holder was never seen at is
    this surprising only where the terminal is rarely used at it too."""
    burst_z: float = 4.0
    burst_floor: float = 1.0
    burst_share: float = 0.25
    """The least spread of entries per day: one entry, and a quarter of the mean."""
    drift_z: float = 5.0


DEFAULT = Thresholds()


@dataclass(slots=True)
class Score:
    amount_z: float | None
    hour_bits: float | None
    venue_bits: float | None
    burst_z: float | None
    drift_z: float | None
    flags: tuple[Rule, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def weight(self) -> float:
        """One number to rank flagged entries by: the largest part, each against its limit."""
        parts = [self.amount_z, self.burst_z, self.drift_z]
        parts += [None if b is None else b / 2.5 for b in (self.hour_bits, self.venue_bits)]
        return max((p for p in parts if p is not None), default=0.0)

    def explained(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "rules": [str(rule) for rule in self.flags],
            "amount_z": r(self.amount_z),
            "hour_bits": r(self.hour_bits),
            "venue_bits": r(self.venue_bits),
            "burst_z": r(self.burst_z),
            "drift_z": r(self.drift_z),
        }


def score(
    baseline: Baseline,
    use: Use,
    holds: Holds,
    limits: Thresholds | None = None,
    *,
    context: Baseline | None = None,
    full: bool = True,
) -> Score:
    """How far off `use` is from `baseline` (which does not hold it yet), and what flags it.
    `context` (the terminal's baseline, for a holder's) spreads the hours' prior as the
    terminal's entries do: a holder's first late snack at the night shop is less strange than
    a payment there at an hour it is never used. Not `full`: only the parts a rule may read
    (the others None), for the hot path; the flags are the same."""
    limits = limits or DEFAULT
    terminal = holds is Holds.TERMINAL
    flags: list[Rule] = []
    amount_z = drift_z = hour_bits = venue_bits = burst_z = None
    if use.amount is not None and baseline.amounts:
        x = log_amount(use.amount)
        sd = max(baseline.sd, limits.sd_floor)
        amount_z = max(0.0, (x - baseline.mean) / sd)
        if baseline.amounts >= limits.warmup and amount_z >= limits.amount_z:
            flags.append(Rule.AMOUNT)
        if terminal:
            drift_z = _drift(baseline, x, sd)
            on = Rule.DRIFT.value in baseline.episodes
            if baseline.amounts >= limits.drift_warmup and drift_z >= limits.drift_z and not on:
                flags.append(Rule.DRIFT)
    warm = baseline.n >= limits.warmup
    if baseline.n and (warm or full):
        hour_bits = hour_surprise(baseline, use.hour, context)
        if full or (not terminal and hour_bits >= limits.rare_bits):
            venue_bits = venue_surprise(baseline, use.venue)
        if warm and not terminal and place_and_hour(hour_bits, venue_bits, limits):
            flags.append(Rule.PLACE_AND_HOUR)
        if warm and hour_bits >= limits.hour_bits:
            flags.append(Rule.HOUR)
    if baseline.days and (full or baseline.days >= limits.warmup_days):
        today = (baseline.today if use.day == baseline.day else 0) + 1
        spread = max(baseline.day_sd, limits.burst_floor, limits.burst_share * baseline.day_mean)
        limit = baseline.day_mean + limits.burst_z * spread
        burst_z = (today - baseline.day_mean) / spread
        if baseline.days >= limits.warmup_days and today - 1 <= limit < today:
            flags.append(Rule.BURST)
    return Score(amount_z, hour_bits, venue_bits, burst_z, drift_z, tuple(flags))


def judge(
    baseline: Baseline,
    use: Use,
    holds: Holds,
    limits: Thresholds | None = None,
    *,
    context: Baseline | None = None,
) -> Score:
    """Score `use` against `baseline`, then `learn` it."""
    found = score(baseline, use, holds, limits, context=context)
    learn(baseline, use, found, limits)
    return found


def learn(baseline: Baseline, use: Use, found: Score, limits: Thresholds | None = None) -> None:
    """Fold `use` in, flagged or not (the next entry is judged against everything seen; a
    person decides what a flagged one was), and start or end the drift's episode: it ends once
    the recent level is back within half its limit."""
    limits = limits or DEFAULT
    drift = found.drift_z
    if drift is not None:
        on = Rule.DRIFT.value in baseline.episodes
        if not on and drift >= limits.drift_z:
            baseline.episodes = sorted({*baseline.episodes, Rule.DRIFT.value})
        elif on and drift < limits.drift_z / 2:
            baseline.episodes = [rule for rule in baseline.episodes if rule != Rule.DRIFT]
    baseline.observe(use)


def _drift(baseline: Baseline, x: float, sd: float) -> float:
    """The recent level's distance from the habit once `x` is in it, in units of the recent
    level's spread (an exponentially weighted mean of independent amounts has the spread
    sd * sqrt(alpha / (2 - alpha)))."""
    spread = sd * math.sqrt(FAST_ALPHA / (2 - FAST_ALPHA))
    return (baseline.fast + FAST_ALPHA * (x - baseline.fast) - baseline.mean) / spread


def _near(hours: list[int], hour: int) -> float:
    return hours[hour] + (hours[hour - 1] + hours[(hour + 1) % 24]) / 2


def hour_surprise(baseline: Baseline, hour: int, context: Baseline | None) -> float:
    """The surprise of `hour`; the prior's 12 entries spread evenly, or as `context`'s."""
    prior = 24 * PRIOR
    share = 1 / 24
    if context is not None and context.n:
        share = (_near(context.hours, hour) + PRIOR) / (2 * sum(context.hours) + prior)
    near = _near(baseline.hours, hour)
    return -math.log2((near + prior * share) / (2 * sum(baseline.hours) + prior))


def venue_surprise(baseline: Baseline, venue: str) -> float:
    venues = baseline.venues
    total = sum(venues.values()) + PRIOR * (VENUES_KEPT + 1)
    return -math.log2((venues.get(venue, 0) + PRIOR) / total)


def place_and_hour(hour_bits: float, venue_bits: float | None, limits: Thresholds) -> bool:
    if venue_bits is None:
        return False
    both = min(hour_bits, venue_bits) >= limits.rare_bits
    return both and hour_bits + venue_bits >= limits.place_and_hour_bits
