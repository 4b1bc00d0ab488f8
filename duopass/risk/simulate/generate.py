"""The labelled stream of a seed: the honest campus day (`honest.toml`) and every fraud
family's incidents (`families/*.toml`), from one `random.Random(seed)`: the same seed and sizes
give the same stream, step for step. Where honest holders come from (the campus NAT, a home or
mobile network) and a second typo are drawn from a generator of their own, so the rest of the
stream does not move with them."""

from __future__ import annotations

import random
from typing import Any

from duopass.risk.simulate.draft import Draft, families, honest_config
from duopass.risk.simulate.fraud import MAKERS
from duopass.risk.simulate.model import CAMPUS_NAT, HolderSpec, Kind, Step, Stream, World

__all__ = ["generate"]


def generate(seed: int, *, holders: int | None = None, incidents: int | None = None) -> Stream:
    """The stream of `seed`; `holders` (honest) and `incidents` (per family) override the
    files' sizes (a small stream for tests)."""
    config = honest_config()
    rng = random.Random(seed)  # noqa: S311 (a reproducible stream, not a secret)
    places = random.Random(f"places/{seed}")  # noqa: S311
    draft = Draft(rng, int(config["day_s"]), int(config["doors_s"]))
    draft.tills = [f"till-{n}" for n in range(int(config["tills"]))]
    gates = [f"gate-{n}" for n in range(int(config["gates"]))]
    count = int(config["holders"]) if holders is None else holders
    per_network, homes = int(config["home_per_network"]), 0
    for n in range(count):
        tickets = 1 if draft.rng.random() < config["ticket_share"] else 0
        address = CAMPUS_NAT
        if places.random() >= config["campus_share"]:
            address = f"127.30.{homes // per_network}.{homes % per_network + 10}"
            homes += 1
        balance = int(config["balance"])
        draft.honest.append(HolderSpec(f"student-{n}", address, tickets, balance))
    for holder in draft.honest:
        _day(draft, config, holder, gates, places)
    chosen = families()
    for family in chosen:
        for k in range(family.incidents if incidents is None else incidents):
            MAKERS[family.name](family, draft, k)
    world = World(
        holders=tuple(draft.honest + draft.accounts),
        tills=tuple(draft.tills),
        gates=tuple(gates),
        rogue_tills=tuple(draft.rogue_tills),
        day_s=draft.day_s,
        doors_s=draft.doors_s,
        ends_s=int(config["ends_s"]),
    )
    steps = tuple(sorted(draft.steps, key=lambda step: step.at))  # stable: ties keep their order
    return Stream(seed, world, steps, tuple(draft.incidents), tuple(chosen))


def _day(
    draft: Draft,
    config: dict[str, Any],
    holder: HolderSpec,
    gates: list[str],
    places: random.Random,
) -> None:
    """One honest holder's day."""
    rng, login, address = draft.rng, holder.login, holder.address
    typos = int(rng.random() < config["typo_share"])
    if typos and places.random() < config["second_typo_share"]:
        typos = 2
    draft.add_honest(Step(rng.randint(0, 3600), Kind.SIGN_IN, login, address, typos=typos))
    for low, high, share, cheapest, dearest in config["meals"].values():
        if rng.random() >= share:
            continue
        kind = Kind.PAY_OFFLINE if rng.random() < config["offline_share"] else Kind.PAY_ONLINE
        amount = draft.amount(cheapest, dearest)
        till = rng.choice(draft.tills)
        at = rng.randint(int(low), int(high))
        draft.add_honest(Step(at, kind, login, "", till=till, amount=amount, reported=amount))
    doors = draft.doors_s
    if holder.tickets:
        gate = rng.choice(gates)
        draft.add_honest(Step(doors + rng.randint(0, 3600), Kind.ENTER, login, "", till=gate))
    if rng.random() < config["lost_share"]:
        draft.add_honest(Step(rng.randint(3600, doors - 3600), Kind.LOST, login, address))
    elif holder.tickets and rng.random() < config["new_phone_share"]:
        draft.add_honest(Step(rng.randint(3600, doors - 7200), Kind.REISSUE, login, address))
