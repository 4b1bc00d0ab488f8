"""The figures of a run: the driver tells the tally what each step met (`Met`), the tally
decides each incident (caught: an action other than allow hit one of its steps before its goal
was reached) and counts honest friction and reissues decided without a person; `figures()` is
the JSON the command prints with `--json`, `table()` the text.

Precision per family: its caught incidents over those plus the honest holders flagged at the
same point (sign-in, scan, journal, reissue): a flag there on an honest holder is what
catching this family costs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duopass.risk.simulate.model import HONEST, Step, Stream

__all__ = ["GOALS", "Met", "Tally", "table"]

GOALS = {"recall": 0.95, "friction": 0.01, "without_person": 0.80}
"""Issue 15's goals: recall per family, honest friction per request, reissues decided by the
policy alone."""


@dataclass(frozen=True)
class Met:
    """What one step met at the server."""

    requests: int = 0
    friction: int = 0
    """Its requests answered with an action other than allow (step-up, review, deny, a rate
    limit or throttle, a refused scan, an alert raised on it)."""
    succeeded: bool = False
    """It did what it set out to do (a sign-in signed in, a payment was taken, ...)."""
    points: tuple[str, ...] = ()
    """Where its friction was met."""
    reissues: tuple[str, ...] = ()
    """The policy's outcome of each reissue request it made."""
    notes: tuple[str, ...] = ()
    """What the friction was (problem codes, scan reasons, alert kinds), for `--trace`."""


@dataclass
class _Incident:
    progress: int = 0
    caught: bool = False
    reached: bool = False


@dataclass
class Tally:
    stream: Stream
    incidents: list[_Incident] = field(default_factory=list)
    honest_requests: int = 0
    honest_friction: int = 0
    active: set[str] = field(default_factory=set)
    flagged: dict[str, set[str]] = field(default_factory=dict)
    """Honest holders met friction, by point."""
    reissues: list[tuple[str, str]] = field(default_factory=list)
    """(label, outcome) of every reissue request."""
    victims: set[str] = field(default_factory=set)
    """Holders an incident has touched (a stolen or cloned phone's owner): from then on their
    own steps meet the fraud's consequences (a suspension), not counted as honest friction."""

    def __post_init__(self) -> None:
        self.incidents = [_Incident() for _ in self.stream.incidents]
        self._honest = {h.login for h in self.stream.world.holders if h.label == HONEST}

    def decided(self, step: Step) -> bool:
        """The step's incident is caught or has reached its goal: the rest of it is not played."""
        if step.incident < 0:
            return False
        state = self.incidents[step.incident]
        return state.caught or state.reached

    def record(self, step: Step, met: Met) -> None:
        self.reissues += [(step.label, outcome) for outcome in met.reissues]
        if step.label == HONEST and step.actor in self.victims:
            return
        if step.label == HONEST:
            self.honest_requests += met.requests
            self.honest_friction += met.friction
            self.active.add(step.actor)
            for point in met.points:
                self.flagged.setdefault(point, set()).add(step.actor)
            return
        state = self.incidents[step.incident]
        if state.caught or state.reached:
            return
        touched = self.stream.incidents[step.incident].holders
        self.victims.update(login for login in touched if login in self._honest)
        if met.friction:
            state.caught = True
        elif step.counts and met.succeeded:
            state.progress += 1
            state.reached = state.progress >= self.stream.incidents[step.incident].goal

    def figures(self) -> dict[str, Any]:
        met = set().union(*self.flagged.values()) if self.flagged else set()
        honest = {
            "requests": self.honest_requests,
            "friction": self.honest_friction,
            "request_share": _share(self.honest_friction, self.honest_requests),
            "holders": len(self.active),
            "holders_met": len(met),
            "holder_share": _share(len(met), len(self.active)),
            "victims": len(self.victims),
        }
        return {
            "seed": self.stream.seed,
            "steps": len(self.stream.steps),
            "families": {family.name: self._family(family.name) for family in self.stream.families},
            "honest": honest,
            "reissues": self._reissues(),
            "goals": GOALS,
        }

    def _family(self, name: str) -> dict[str, Any]:
        family = next(f for f in self.stream.families if f.name == name)
        states = [
            s
            for s, i in zip(self.incidents, self.stream.incidents, strict=True)
            if i.family == name
        ]
        caught = sum(state.caught for state in states)
        false_flags = len(self.flagged.get(family.point, set()))
        return {
            "about": family.about,
            "point": family.point,
            "incidents": len(states),
            "caught": caught,
            "recall": _share(caught, len(states)),
            "unfinished": sum(not (s.caught or s.reached) for s in states),
            "false_flags": false_flags,
            "precision": _share(caught, caught + false_flags) if caught + false_flags else None,
            "catchable": family.catchable,
            "why": family.why,
        }

    def _reissues(self) -> dict[str, Any]:
        alone = [outcome != "review" for _, outcome in self.reissues]
        honest = [outcome != "review" for label, outcome in self.reissues if label == HONEST]
        return {
            "requests": len(alone),
            "without_person": sum(alone),
            "share": _share(sum(alone), len(alone)),
            "honest_requests": len(honest),
            "honest_without_person": sum(honest),
        }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def table(figures: dict[str, Any]) -> str:
    """The figures as the command prints them."""
    goals = figures["goals"]
    lines = [
        f"seed {figures['seed']}: {figures['steps']} steps",
        f"{'family':<23}{'caught':>10}{'recall':>8}{'precision':>11}  verdict",
    ]
    for name, family in figures["families"].items():
        caught = f"{family['caught']}/{family['incidents']}"
        precision = "-" if family["precision"] is None else f"{family['precision']:.2f}"
        if not family["catchable"]:
            verdict = f"uncatchable by construction: {family['why']}"
        elif family["recall"] >= goals["recall"]:
            verdict = "goal met"
        else:
            verdict = f"below the goal ({goals['recall']:.2f})"
        lines.append(f"{name:<23}{caught:>10}{family['recall']:>8.2f}{precision:>11}  {verdict}")
    honest, reissues = figures["honest"], figures["reissues"]
    lines += [
        f"honest requests with friction: {honest['friction']}/{honest['requests']}"
        f" = {honest['request_share']:.2%} (goal <= {goals['friction']:.0%})",
        f"honest holders who met friction: {honest['holders_met']}/{honest['holders']}"
        f" = {honest['holder_share']:.2%}",
        f"reissues decided without a person: {reissues['without_person']}/{reissues['requests']}"
        f" = {reissues['share']:.2%} (goal >= {goals['without_person']:.0%};"
        f" honest {reissues['honest_without_person']}/{reissues['honest_requests']})",
    ]
    return "\n".join(lines)
