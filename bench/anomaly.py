"""Anomalies in offline journals: the per-holder and per-terminal baselines' rules
(`duopass.risk.anomaly`) against river's half-space trees, on a labelled stream.

The stream (seeded): holders with habits (one or two home canteens, breakfast, lunch and dinner
hours each with its own chance, a personal typical amount, weekends often away), honest variation
(a meal at another canteen, a late snack at the night shop, a larger payment now and then, one
holder in twenty moving to another canteen halfway), and after the first half injected incidents
of four families: `misreporting_till` (one till charges 1.8 times every amount from a day on),
`cloned_credential` (three payments at the night shop between 23:00 and 04:00 by a holder who never
goes there), `burst` (15 payments in a day by one holder at the usual canteen) and `big_payment`
(one payment eight times the holder's habit).

Printed for each detector: precision (flagged entries that are injected), recall per family
(incidents with at least one entry flagged), honest entries flagged, and microseconds per entry.
The rules run at their fixed thresholds. River's half-space trees (its defaults) flag above the
threshold with the best F1 on the labels of another seed's stream (calibrated, as a deployment
would be), once with the entry's raw features (amount, hour, venue, holder, the day's count) and
once with the baselines' deviations (the rules' own inputs, so its cost adds to theirs). Without
river installed (it is not a dependency of duopass), the rules run alone and the bench says so.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.timing import parser, table
from duopass.risk.anomaly import Holds, Score, judge
from duopass.risk.baselines import Baseline, Use

VENUES = ("north", "south", "east", "west", "lake", "hill")
NIGHT = "night-shop"
TILLS_PER_VENUE = 2
FAMILIES = ("misreporting_till", "cloned_credential", "burst", "big_payment")


@dataclass(frozen=True)
class Event:
    use: Use
    holder: int
    till: str
    family: str | None = None
    incident: int | None = None


@dataclass
class Habit:
    homes: list[str]
    meals: list[tuple[int, int, float]]
    """(first hour, last hour, chance) of each meal."""
    typical: int
    away_weekends: bool


def _habit(rng: random.Random) -> Habit:
    homes = rng.sample(VENUES, rng.choice((1, 2)))
    meals = [(7, 8, rng.uniform(0.1, 0.7)), (11, 12, rng.uniform(0.7, 1.0))]
    meals.append((17, 18, rng.uniform(0.3, 0.9)))
    return Habit(homes, meals, rng.randint(600, 2500), rng.random() < 0.5)


@dataclass
class Stream:
    seed: int
    holders: int
    days: int
    events: list[Event] = field(default_factory=list)
    incidents: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        habits = [_habit(rng) for _ in range(self.holders)]
        movers = set(rng.sample(range(self.holders), self.holders // 20))
        half = self.days // 2
        rogue, rogue_from = f"{VENUES[0]}-1", half + rng.randrange(half)
        self.incidents[0] = "misreporting_till"
        planned = self._plan(rng, half)
        for day in range(self.days):
            todays: list[Event] = []
            for holder, habit in enumerate(habits):
                if day == half and holder in movers:
                    habit.homes = [rng.choice([v for v in VENUES if v not in habit.homes])]
                todays += self._honest(rng, day, holder, habit)
            for (incident, family, holder), when in planned.items():
                if when == day:
                    todays += self._incident(
                        rng, day, holder, habit=habits[holder], family=family, incident=incident
                    )
            todays.sort(key=lambda e: e.use.at)
            bursts = {e.holder: e.incident for e in todays if e.family == "burst"}
            rogue_on = day >= rogue_from
            self.events += [_relabel(e, rogue if rogue_on else "", bursts) for e in todays]

    def _plan(self, rng: random.Random, half: int) -> dict[tuple[int, str, int], int]:
        planned = {}
        per_family = max(2, self.holders // 20)
        for family in FAMILIES[1:]:
            for holder in rng.sample(range(self.holders), per_family):
                incident = len(self.incidents)
                self.incidents[incident] = family
                planned[incident, family, holder] = rng.randrange(half, self.days)
        return planned

    def _honest(self, rng: random.Random, day: int, holder: int, habit: Habit) -> list[Event]:
        if day % 7 >= 5 and habit.away_weekends and rng.random() < 0.8:
            return []
        found = []
        for first, last, chance in habit.meals:
            if rng.random() < chance:
                venue = rng.choice(habit.homes) if rng.random() > 0.05 else rng.choice(VENUES)
                amount = habit.typical * rng.lognormvariate(0, 0.3) * (0.5 if first < 9 else 1)
                if rng.random() < 0.02:
                    amount *= 2.5
                found.append(
                    _event(rng, day, rng.randint(first, last), venue, amount=amount, holder=holder)
                )
        if rng.random() < 0.03:
            found.append(_event(rng, day, rng.randint(20, 22), NIGHT, amount=800, holder=holder))
        return found

    def _incident(
        self, rng: random.Random, day: int, holder: int, *, habit: Habit, family: str, incident: int
    ) -> list[Event]:
        found = []
        if family == "cloned_credential":
            for _ in range(3):
                hour = rng.choice((23, 0, 1, 2, 3))
                found.append(
                    _event(rng, day, hour, NIGHT, amount=habit.typical * 1.2, holder=holder)
                )
        elif family == "burst":
            for _ in range(15):
                hour = rng.randint(9, 20)
                found.append(
                    _event(rng, day, hour, habit.homes[0], amount=habit.typical, holder=holder)
                )
        else:
            hour = habit.meals[1][0]
            found.append(
                _event(rng, day, hour, habit.homes[0], amount=habit.typical * 8, holder=holder)
            )
        return [Event(e.use, e.holder, e.till, family, incident) for e in found]


def _event(
    rng: random.Random, day: int, hour: int, venue: str, *, amount: float, holder: int
) -> Event:
    at = day * 86400 + hour * 3600 + rng.randrange(3600)
    till = venue if venue == NIGHT else f"{venue}-{rng.randrange(TILLS_PER_VENUE)}"
    return Event(Use(at, day, hour, venue, max(1, round(amount))), holder, till)


def _relabel(event: Event, rogue: str, bursts: dict[int, int | None]) -> Event:
    """The misreporting till's entries (inflated) and the burst days' honest ones join their
    incident: the day's count is the anomaly, whichever entry crosses the limit."""
    use = event.use
    if event.till == rogue and use.amount is not None:
        inflated = Use(use.at, use.day, use.hour, use.venue, round(use.amount * 1.8))
        return Event(inflated, event.holder, event.till, "misreporting_till", 0)
    if event.family is None and event.holder in bursts:
        return Event(use, event.holder, event.till, "burst", bursts[event.holder])
    return event


class Rules:
    """The baselines of every holder and till, judged as the server does."""

    def __init__(self) -> None:
        self.holders: dict[int, Baseline] = {}
        self.tills: dict[str, Baseline] = {}

    def scores(self, event: Event) -> tuple[Score, Score]:
        holder = self.holders.setdefault(event.holder, Baseline())
        till = self.tills.setdefault(event.till, Baseline())
        found = judge(holder, event.use, Holds.HOLDER, context=till)
        return found, judge(till, event.use, Holds.TERMINAL)


def run_rules(stream: Stream) -> tuple[set[int], float]:
    rules, flagged = Rules(), set()
    started = time.perf_counter()
    for n, event in enumerate(stream.events):
        holder, till = rules.scores(event)
        if holder.flagged or till.flagged:
            flagged.add(n)
    return flagged, (time.perf_counter() - started) / len(stream.events)


def raw_features(stream: Stream) -> Iterator[dict[str, float]]:
    today: dict[tuple[int, int], int] = {}
    places = (*VENUES, NIGHT)
    for event in stream.events:
        use = event.use
        count = today[event.holder, use.day] = today.get((event.holder, use.day), 0) + 1
        yield {
            "amount": min(1.0, math.log1p(use.amount or 0) / 12),
            "hour": use.hour / 23,
            "venue": places.index(use.venue) / (len(places) - 1),
            "holder": event.holder / stream.holders,
            "today": min(1.0, count / 20),
        }


def deviation_features(stream: Stream) -> Iterator[dict[str, float]]:
    rules = Rules()
    for event in stream.events:
        holder, till = rules.scores(event)
        found = {}
        for name, score in (("holder", holder), ("till", till)):
            for part, scale in (("amount_z", 8), ("hour_bits", 12), ("venue_bits", 12)):
                found[f"{name}_{part}"] = min(1.0, (getattr(score, part) or 0.0) / scale)
            found[f"{name}_burst_z"] = min(1.0, max(0.0, (score.burst_z or 0.0) / 8))
            found[f"{name}_drift_z"] = min(1.0, max(0.0, (score.drift_z or 0.0) / 8))
        yield found


def river_scores(
    stream: Stream, features: Callable[[Stream], Iterator[dict[str, float]]]
) -> tuple[list[float], float]:
    """Half-space trees (river's defaults) over the stream: each entry scored, then learnt;
    the scores, and the seconds per entry the model took."""
    model = importlib.import_module("river.anomaly").HalfSpaceTrees(seed=stream.seed)
    rows = list(features(stream))
    scores = []
    started = time.perf_counter()
    for row in rows:
        scores.append(model.score_one(row))
        model.learn_one(row)
    return scores, (time.perf_counter() - started) / len(rows)


def best_threshold(stream: Stream, scores: list[float]) -> float:
    """The score above which flagging gives the best F1 on the stream's labels."""
    labels = [event.family is not None for event in stream.events]
    order = sorted(range(len(scores)), key=lambda n: -scores[n])
    positives, hits, best, threshold = sum(labels), 0, 0.0, 1.0
    for k, n in enumerate(order, 1):
        hits += labels[n]
        f1 = 2 * hits / (k + positives) if positives else 0.0
        if f1 > best:
            best, threshold = f1, scores[n]
    return threshold


def run_river(
    stream: Stream, calibration: Stream, features: Callable[[Stream], Iterator[dict[str, float]]]
) -> tuple[set[int], float, float]:
    """The entries river flags at the threshold best on another seed's labelled stream."""
    threshold = best_threshold(calibration, river_scores(calibration, features)[0])
    scores, spent = river_scores(stream, features)
    return {n for n, value in enumerate(scores) if value >= threshold}, spent, threshold


def report(stream: Stream, flagged: set[int]) -> dict[str, float]:
    events = stream.events
    injected = sum(1 for n in flagged if events[n].family is not None)
    honest = sum(1 for event in events if event.family is None)
    caught = {events[n].incident for n in flagged if events[n].incident is not None}
    found = {
        "precision": injected / len(flagged) if flagged else 0.0,
        "honest_flagged": (len(flagged) - injected) / honest,
    }
    for family in FAMILIES:
        ids = [i for i, f in stream.incidents.items() if f == family]
        found[family] = sum(1 for i in ids if i in caught) / len(ids)
    return found


def main() -> None:
    parse = parser(__doc__ or "")
    parse.add_argument("--seed", type=int, default=2026)
    parse.add_argument("--rules-only", action="store_true", help="river not run even if installed")
    args = parse.parse_args()
    holders, days = (40, 24) if args.quick else (400, 42)
    stream = Stream(args.seed, holders, days)
    results = {}
    flagged, spent = run_rules(stream)
    results["rules (baselines)"] = (report(stream, flagged), spent)
    try:
        if args.rules_only:
            raise ImportError("--rules-only")
        importlib.import_module("river.anomaly")
        version = importlib.metadata.version("river")
    except ImportError as why:
        print(f"river not run ({why}): the rules alone (pip install river to compare)")
    else:
        calibration = Stream(args.seed + 1, holders, days)
        for name, features in (("raw", raw_features), ("deviations", deviation_features)):
            picked, took, threshold = run_river(stream, calibration, features)
            label = f"river {version} half-space trees on the {name}, threshold {threshold:.3f}"
            results[label] = (report(stream, picked), took)
    injected = sum(1 for event in stream.events if event.family is not None)
    print(
        f"journal anomalies, seed {args.seed}: {holders} holders, {days} days, "
        f"{len(stream.events)} entries ({injected} injected, {len(stream.incidents)} incidents)"
    )
    for name, (figures, took) in results.items():
        print(f"{name}:")
        rows = [(key, f"{value:.3f}") for key, value in figures.items()]
        rows.append(("us per entry (the model alone)", f"{took * 1e6:.1f}"))
        table(rows)
    rules = results["rules (baselines)"][0]
    recall = min(rules[family] for family in FAMILIES)
    print(f"RATIO anomaly_rules_min_recall {recall:.3f}")
    print(f"RATIO anomaly_rules_precision {rules['precision']:.3f}")


if __name__ == "__main__":
    main()
