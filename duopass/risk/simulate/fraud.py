"""The fraud families' incidents, each made from its file's parameters: the steps of every
incident, the accounts it brings (a farm's, a tout's) and the victims it picks among the honest
holders. Each incident acts from its own network (127.66.k.x stuffing, 127.77.k.x farming,
127.88.k.x the tout) where it has one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from duopass.risk.simulate.draft import Draft, honest_config
from duopass.risk.simulate.model import Family, HolderSpec, Kind, Step

__all__ = ["MAKERS"]


def stuffing(family: Family, draft: Draft, k: int) -> None:
    attempts, spacing = family.whole("attempts"), family.whole("spacing_s")
    address = f"127.66.{k}.9"
    known = [holder.login for holder in draft.honest]
    count = min(len(known), round(attempts * family.params["known_share"]))
    logins = draft.rng.sample(known, count)
    hits = set(draft.rng.sample(logins, min(count, family.whole("hits"))))
    order = logins + [f"leaked-{k}-{n}" for n in range(attempts - count)]
    draft.rng.shuffle(order)
    number = draft.incident(family.name, 1, tuple(sorted(hits)))
    start = draft.start(attempts * spacing)
    for n, login in enumerate(order):
        right = login in hits
        step = Step(start + n * spacing, Kind.STUFF, login, address, login=login, right=right)
        draft.add(step, number, family.name, counts=right)


def stolen(family: Family, draft: Draft, k: int) -> None:
    payments, spacing = family.whole("payments"), family.whole("spacing_s")
    owner = draft.victim()
    number = draft.incident(family.name, payments, (owner.login,))
    start = draft.start(payments * spacing + family.whole("report_after_s"))
    for n in range(payments):
        till = draft.rng.choice(draft.tills)
        amount = draft.amount(family.params["amount_min"], family.params["amount_max"])
        step = Step(start + n * spacing, Kind.PAY_ONLINE, owner.login, "", till=till, amount=amount)
        draft.add(step, number, family.name)
    report = start + (payments - 1) * spacing + family.whole("report_after_s")
    draft.add(
        Step(report, Kind.LOST, owner.login, owner.address), number, family.name, counts=False
    )


def cloned(family: Family, draft: Draft, k: int) -> None:
    payments, spacing = family.whole("payments"), family.whole("spacing_s")
    owner = draft.victim()
    number = draft.incident(family.name, payments, (owner.login,))
    start = draft.start(payments * spacing + 120)
    draft.add(Step(start, Kind.COPY, owner.login, ""), number, family.name, counts=False)
    tills = draft.rng.sample(draft.tills, min(len(draft.tills), family.whole("tills")))
    low, high = family.params["amount_min"], family.params["amount_max"]
    for n in range(payments):
        amount = draft.amount(low, high)
        at = start + 60 + n * spacing
        till = tills[n % len(tills)]
        step = Step(at, Kind.PAY_OFFLINE, owner.login, "", till=till, clone=True)
        draft.add(_priced(step, amount), number, family.name)
    amount = draft.amount(low, high)
    at = start + family.whole("owner_pays_after_s")
    own = Step(at, Kind.PAY_OFFLINE, owner.login, "", till=draft.rng.choice(draft.tills))
    draft.add(_priced(own, amount), number, family.name, counts=False)


def _priced(step: Step, amount: int, reported: int | None = None) -> Step:
    return replace(step, amount=amount, reported=amount if reported is None else reported)


def farming(family: Family, draft: Draft, k: int) -> None:
    accounts, spacing = family.whole("accounts"), family.whole("spacing_s")
    address = f"127.77.{k}.9"
    logins = [f"farm-{k}-{n}" for n in range(accounts)]
    for login in logins:
        draft.accounts.append(HolderSpec(login, address, tickets=1, label=family.name))
    number = draft.incident(family.name, accounts, tuple(logins))
    start = draft.start(accounts * spacing, until=draft.doors_s)
    for n, login in enumerate(logins):
        draft.add(Step(start + n * spacing, Kind.REISSUE, login, address), number, family.name)


def tout(family: Family, draft: Draft, k: int) -> None:
    tickets, resales = family.whole("tickets"), family.whole("resales")
    spacing = family.whole("spacing_s")
    address, login = f"127.88.{k}.9", f"tout-{k}"
    draft.accounts.append(HolderSpec(login, address, tickets=tickets, label=family.name))
    number = draft.incident(family.name, tickets * resales, (login,))
    start = draft.start(tickets * resales * spacing, until=draft.doors_s)
    for n in range(tickets * resales):
        step = Step(start + n * spacing, Kind.REISSUE, login, address, ticket=n % tickets)
        draft.add(step, number, family.name)


def misreporting(family: Family, draft: Draft, k: int) -> None:
    """A till at the canteen charging the meal period's prices and journalling them inflated."""
    entries, spacing = family.whole("entries"), family.whole("spacing_s")
    till = f"rogue-{k}"
    draft.rogue_tills.append(till)
    number = draft.incident(family.name, entries, terminal=till)
    meals = list(honest_config()["meals"].values())
    low_s, high_s, _share, low, high = draft.rng.choice(meals)
    start = draft.rng.randint(int(low_s), max(int(low_s), int(high_s) - entries * spacing))
    for n in range(entries):
        payer = draft.rng.choice(draft.honest)
        amount = draft.amount(low, high)
        step = Step(start + n * spacing, Kind.PAY_OFFLINE, payer.login, "", till=till)
        inflated = round(amount * family.params["factor"] / 10) * 10
        reported = min(inflated, family.whole("txmax"))
        draft.add(_priced(step, amount, reported), number, family.name)


MAKERS: dict[str, Callable[[Family, Draft, int], None]] = {
    "credential_stuffing": stuffing,
    "stolen_phone": stolen,
    "cloned_keys": cloned,
    "reissue_farming": farming,
    "ticket_tout": tout,
    "misreporting_terminal": misreporting,
}
"""Each family's maker, by the `name` in its file."""
