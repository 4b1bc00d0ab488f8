"""A stream while it is made: the seeded generator, the holders and tills so far, the steps and
incidents added; and the files it is made from (`honest.toml`, `families/*.toml`)."""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from duopass.risk.simulate.model import HONEST, Family, HolderSpec, Incident, Step

__all__ = ["Draft", "families", "honest_config"]


def honest_config() -> dict[str, Any]:
    """The honest day's parameters (`honest.toml`)."""
    return tomllib.loads(resources.files(__package__).joinpath("honest.toml").read_text())


def families() -> list[Family]:
    """Every fraud family, one file each (`families/*.toml`), in name order."""
    folder = resources.files(__package__).joinpath("families")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text())
        found.append(
            Family(
                name=data["name"],
                about=data["about"],
                incidents=int(data["incidents"]),
                point=data["point"],
                catchable=bool(data["catchable"]),
                why=data.get("why", ""),
                params={key: float(value) for key, value in data["params"].items()},
            )
        )
    return found


@dataclass
class Draft:
    rng: random.Random
    day_s: int
    doors_s: int
    honest: list[HolderSpec] = field(default_factory=list)
    accounts: list[HolderSpec] = field(default_factory=list)
    tills: list[str] = field(default_factory=list)
    rogue_tills: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    victims: set[str] = field(default_factory=set)

    def incident(self, family: str, goal: int, holders: tuple[str, ...] = (), **more: str) -> int:
        self.incidents.append(Incident(family, goal, holders, **more))
        return len(self.incidents) - 1

    def start(self, duration_s: int, *, until: int | None = None) -> int:
        """A start time at which something lasting `duration_s` ends by `until` (the day's
        end by default)."""
        latest = max(0, (self.day_s if until is None else until) - duration_s)
        return self.rng.randint(0, latest)

    def victim(self) -> HolderSpec:
        """An honest holder not yet a victim of another incident."""
        free = [holder for holder in self.honest if holder.login not in self.victims]
        chosen = self.rng.choice(free or self.honest)
        self.victims.add(chosen.login)
        return chosen

    def add(self, step: Step, incident: int, family: str, *, counts: bool = True) -> None:
        self.steps.append(replace(step, label=family, incident=incident, counts=counts))

    def add_honest(self, step: Step) -> None:
        self.steps.append(replace(step, label=HONEST))

    def amount(self, low: float, high: float) -> int:
        """A price in tens of minor units."""
        return self.rng.randint(int(low) // 10, int(high) // 10) * 10
