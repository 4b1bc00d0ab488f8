"""Demo data for `duopass serve --demo`: an issuer with a few hundred holders with balances,
merchants, venues, terminals ready to enrol, and a concert on sale with its entry gate. Written
once, into an empty database."""

from __future__ import annotations

import json
import random
import secrets
from functools import partial
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import func, select

from duopass.server.context import AppContext
from duopass.server.services import accounts, events, holders, terminals, topups
from duopass.server.services.people import Person
from duopass.server.store.access import Staff
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

HOLDERS = 300
HOLDER_PASSWORD = "demo-holder-pass"
MERCHANTS = ("canteen-north", "canteen-south", "campus-shop")
TERMINALS = (
    ("till-north-1", "pay", "canteen-north", "canteen-north"),
    ("till-north-2", "pay", "canteen-north", "canteen-north"),
    ("till-south-1", "pay", "canteen-south", "canteen-south"),
    ("till-shop-1", "pay", "campus-shop", "campus-shop"),
    ("gate-library", "identity", "library", None),
    ("gate-gym", "identity", "gym", None),
)
CONCERT = "welcome-concert"
CONCERT_VENUE = "main-hall"
CONCERT_GATE = "gate-concert"
CONCERT_DOORS_IN_S = 3 * 86_400
"""Doors three days after the demo starts: near enough for tickets' codes (30 days), far
enough that the default policy allows a reissue without a step-up."""


FAMILY_NAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou")
GIVEN_NAMES = ("Fang", "Wei", "Min", "Jing", "Lei", "Yan", "Hao", "Xin", "Tao", "Lan", "Jun", "Yu")
EMAIL_DOMAIN = "students.demo-univ.edu"


def _person(n: int) -> Person:
    """A plausible student: a name, the number `2026` and six digits, a campus address, and
    a phone for half of them. Drawn apart from the money, which stays what it always was."""
    rng = random.Random(202_700_000 + n)
    family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
    phone = f"+86 13{rng.randrange(10)} {rng.randrange(10**4):04d} {n:04d}" if n % 2 else None
    return Person(
        name=f"{family} {given}",
        number=f"2026{n:06d}",
        email=f"{given.lower()}.{family.lower()}.{n:04d}@{EMAIL_DOMAIN}",
        phone=phone,
    )


def seed(ctx: AppContext, out: Path) -> dict[str, Any] | None:
    """Fill an empty database and write what people need to use it to `out` (JSON, mode 0600).
    Returns that document, or None when the database already holds data."""
    if ctx.run(lambda unit: unit.session.scalar(select(func.count()).select_from(Holder))):
        return None
    rng = random.Random(2026)
    admin_password = secrets.token_urlsafe(12)
    merchants: dict[str, int] = {}

    def staff_and_merchants(unit: Unit) -> None:
        session = unit.session
        session.add(
            Staff(login="admin", password_hash=PasswordHasher().hash(admin_password), role="admin")
        )
        for name in MERCHANTS:
            merchants[name] = accounts.create_merchant(session, name, ctx.settings.currency)

    ctx.run(staff_and_merchants)
    password_hash = PasswordHasher().hash(HOLDER_PASSWORD)  # one for all: fast to seed

    def holder(unit: Unit, n: int) -> str:
        created = holders.create_holder(
            unit,
            login=f"student{n:04d}",
            person=_person(n),
            password=HOLDER_PASSWORD,
            overdraft=rng.choice((0, 0, 2000)),
            password_hash=password_hash,
        )
        topups.top_up(
            unit,
            created,
            amount=rng.randrange(2_000, 50_000, 100),
            request_id=f"demo-topup-{n:04d}",
        )
        return created.handle

    handles = [ctx.run(partial(holder, n=n)) for n in range(HOLDERS)]

    def terminal(unit: Unit, terminal_id: str, mode: str, venue: str, merchant: str | None) -> str:
        return terminals.create(
            unit,
            terminal_id=terminal_id,
            mode=mode,
            venue=venue,
            merchant_account_id=merchants[merchant] if merchant else None,
            currency=ctx.settings.currency if mode == "pay" else None,
            event=None,
        )

    codes = {
        t[0]: ctx.run(partial(terminal, terminal_id=t[0], mode=t[1], venue=t[2], merchant=t[3]))
        for t in TERMINALS
    } | {CONCERT_GATE: (concert := ctx.run(_concert)).pop("gate_code")}
    document = {
        "admin": {"login": "admin", "password": admin_password},
        "holders": {
            "logins": f"student0000 .. student{HOLDERS - 1:04d}",
            "password": HOLDER_PASSWORD,
            "first_handles": handles[:10],
        },
        "merchants": merchants,
        "terminals": codes,
        "events": {CONCERT: concert},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    out.chmod(0o600)
    return document


def _concert(unit: Unit) -> dict[str, Any]:
    """A concert on sale in the main hall (campus network 127.0.0.0/8 counts as the hall's, so
    a reissue asked from this machine is "at the venue"), and its entry gate."""
    doors = unit.now + CONCERT_DOORS_IN_S
    venue = events.VenueIn(CONCERT_VENUE, "Main Hall", 31_230_000, 121_470_000, ("127.0.0.0/8",))
    events.add_venue(unit, venue)
    spec = events.EventIn(CONCERT, "Welcome Concert", doors, doors + 4 * 3600, (CONCERT_VENUE,))
    events.add_event(unit, spec)
    kind = events.add_ticket_type(
        unit, CONCERT, name="Standing", price=3_000, entries=1, quota=500, static_allowed=False
    )
    gate_code = terminals.create(
        unit,
        terminal_id=CONCERT_GATE,
        mode="entry",
        venue=CONCERT_VENUE,
        merchant_account_id=None,
        currency=None,
        event=CONCERT,
    )
    return {"doors": doors, "ticket_type": kind.id, "gate_code": gate_code}
