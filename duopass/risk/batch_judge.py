"""One key's judge for one journal batch: its entries judged against the baseline as the batch
found it, the limits worked out once (the least amount that flags, each hour's surprise, the
day's count that is a burst), so that an entry costs a few comparisons; the entries are folded
in after the batch, grouped by key (`finish`).

Within a batch only the day's count and a terminal's recent level move with each entry (a
burst and a drift build up inside one upload); the rest is the batch's starting point. A batch
of one entry is judged exactly as `anomaly.score` judges it.
"""

from __future__ import annotations

import math

from duopass.risk.anomaly import (
    DEFAULT,
    Holds,
    Rule,
    Score,
    Thresholds,
    hour_surprise,
    place_and_hour,
    score,
    venue_surprise,
)
from duopass.risk.baselines import FAST_ALPHA, Baseline, Use

__all__ = ["BatchJudge"]


class BatchJudge:
    """`flags(use)` for each entry of the key in seq order, then `finish()` once."""

    def __init__(
        self,
        baseline: Baseline,
        holds: Holds,
        limits: Thresholds | None = None,
        *,
        context: Baseline | None = None,
    ) -> None:
        self.baseline, self.holds, self.context = baseline, holds, context
        self.limits = limits = limits or DEFAULT
        self.terminal = holds is Holds.TERMINAL
        self.uses: list[Use] = []
        b = baseline
        self.sd = max(b.sd, limits.sd_floor)
        self.amount_z = limits.amount_z if b.amounts >= limits.warmup else math.inf
        self.spread = self.sd * math.sqrt(FAST_ALPHA / (2 - FAST_ALPHA))
        self.fast, self.drifting = b.fast, Rule.DRIFT.value in b.episodes
        self.drift_armed = self.terminal and b.amounts >= limits.drift_warmup
        self.warm = b.n >= limits.warmup
        self.hours: dict[int, float] = {}
        """Each hour's surprise, worked out when an entry first comes at it."""
        self.venues: dict[str, float] = {}
        self.day, self.today = b.day, b.today
        self.burst_at = math.inf
        if b.days >= limits.warmup_days:
            spread = max(b.day_sd, limits.burst_floor, limits.burst_share * b.day_mean)
            self.burst_at = b.day_mean + limits.burst_z * spread
        self.drift_z: float | None = None

    def flags(self, use: Use) -> tuple[Rule, ...]:
        """The rules the entry's amount, hour, venue and the day's count so far break."""
        self.uses.append(use)
        found: list[Rule] = []
        if use.amount is not None:
            x = math.log1p(max(use.amount, 0))
            if (x - self.baseline.mean) / self.sd >= self.amount_z:
                found.append(Rule.AMOUNT)
            if self.terminal:
                self._drift(x, found)
        if self.warm:
            bits = self.hours.get(use.hour)
            if bits is None:
                bits = self.hours[use.hour] = hour_surprise(self.baseline, use.hour, self.context)
            if not self.terminal and bits >= self.limits.rare_bits:
                venue = self.venues.get(use.venue)
                if venue is None:
                    venue = self.venues[use.venue] = venue_surprise(self.baseline, use.venue)
                if place_and_hour(bits, venue, self.limits):
                    found.append(Rule.PLACE_AND_HOUR)
            if bits >= self.limits.hour_bits:
                found.append(Rule.HOUR)
        if use.day != self.day:
            self.day, self.today = use.day, 0
        self.today += 1
        if self.today - 1 <= self.burst_at < self.today:
            found.append(Rule.BURST)
        return tuple(found)

    def _drift(self, x: float, found: list[Rule]) -> None:
        b = self.baseline
        if not b.amounts:  # no habit to drift from yet
            return
        self.fast += FAST_ALPHA * (x - self.fast)
        drift = self.drift_z = (self.fast - b.mean) / self.spread
        if not self.drifting and drift >= self.limits.drift_z:
            self.drifting = True
            if self.drift_armed:
                found.append(Rule.DRIFT)
        elif self.drifting and drift < self.limits.drift_z / 2:
            self.drifting = False

    def explained(self, use: Use, flags: tuple[Rule, ...]) -> Score:
        """Every part of the score of an entry just flagged, for its evidence: against the
        baseline as the batch found it, with the day's count and the recent level as they
        were at the entry."""
        full = score(self.baseline, use, self.holds, self.limits, context=self.context)
        b = self.baseline
        if b.days:
            spread = max(b.day_sd, self.limits.burst_floor, self.limits.burst_share * b.day_mean)
            full.burst_z = (self.today - b.day_mean) / spread
        if self.terminal and full.drift_z is not None:
            full.drift_z = self.drift_z
        full.flags = flags
        return full

    def finish(self) -> None:
        """Fold the batch's entries in, and keep whether a drift's episode is on."""
        b = self.baseline
        b.fold(self.uses)
        if self.terminal and b.amounts:
            on = Rule.DRIFT.value in b.episodes
            if self.drifting and not on:
                b.episodes = sorted({*b.episodes, Rule.DRIFT.value})
            elif on and not self.drifting:
                b.episodes = [rule for rule in b.episodes if rule != Rule.DRIFT]
        self.uses = []
