"""Purse limits (DOMAIN): a daily total and a count per meal period per holder, set by the holder
within the card office's bounds, and a PIN asked above a single-payment amount, enforced on the
online pay path (`check`, from `scans`); what the office and the holder set (`bounds`,
`set_bounds`, `limits_of`, `set_limits`, `set_pin`).

Each value a holder may set is theirs if they set one, else the office's default, else the
office's bound; never above the bound (a bound lowered later lowers every holder's at once). A
day is the issuer's time zone's calendar day (`Settings.timezone`); a meal period is a window of
local time the office names. Spending is read from the postings of the holder's account, so
offline payments count once their journal has been settled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import update

from duopass.server.problems import Problem, ProblemCode
from duopass.server.services.server_view import Payer
from duopass.server.store import sql
from duopass.server.store.purse import BOUNDS_ID, PurseBounds
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "BOUND_NAMES",
    "DEFAULT_MEALS",
    "Bounds",
    "Day",
    "Limits",
    "Meal",
    "PinCheck",
    "bounds",
    "bounds_of",
    "check",
    "day_of",
    "effective",
    "limits_of",
    "loosens",
    "meal_at",
    "meals_out",
    "offline_txmax",
    "own_of",
    "set_bounds",
    "set_limits",
    "set_pin_hash",
]


@dataclass(frozen=True)
class Meal:
    """A meal period: local minutes after midnight, `start` included, `end` not."""

    name: str
    start: int
    end: int


DEFAULT_MEALS: tuple[Meal, ...] = (
    Meal("breakfast", 6 * 60, 10 * 60),
    Meal("lunch", 10 * 60 + 30, 14 * 60),
    Meal("dinner", 16 * 60 + 30, 20 * 60),
)
"""The periods until the office names its own: 06:00-10:00, 10:30-14:00, 16:30-20:00."""


@dataclass(frozen=True)
class Bounds:
    """The office's bounds (None: no bound) and defaults (None: no limit), and its meals."""

    daily_max: int | None = None
    daily_default: int | None = None
    meal_max: int | None = None
    meal_default: int | None = None
    confirm_max: int | None = None
    confirm_default: int | None = None
    meals: tuple[Meal, ...] = DEFAULT_MEALS


@dataclass(frozen=True)
class Limits:
    """A holder's limits: daily total (minor units), payments per meal period, and the amount
    above which an online payment needs the PIN; None: no limit."""

    daily: int | None = None
    meal: int | None = None
    confirm_above: int | None = None


def _within(own: int | None, default: int | None, bound: int | None) -> int | None:
    value = own if own is not None else default if default is not None else bound
    return value if value is None or bound is None else min(value, bound)


def effective(own: Limits, office: Bounds) -> Limits:
    """What applies: the holder's own value, else the default, else the bound; at most the
    bound."""
    return Limits(
        daily=_within(own.daily, office.daily_default, office.daily_max),
        meal=_within(own.meal, office.meal_default, office.meal_max),
        confirm_above=_within(own.confirm_above, office.confirm_default, office.confirm_max),
    )


def _meals(text: str | None) -> tuple[Meal, ...]:
    if text is None:
        return DEFAULT_MEALS
    return tuple(Meal(m["name"], int(m["start"]), int(m["end"])) for m in json.loads(text))


class _Own(Protocol):
    """A row with a holder's own limits: the holder, or the pay path's `Payer`."""

    @property
    def limit_daily(self) -> int | None: ...
    @property
    def limit_meal(self) -> int | None: ...
    @property
    def confirm_above(self) -> int | None: ...


def own_of(row: _Own) -> Limits:
    """A holder's own limits, from any row that has them (`Holder`, `Payer`)."""
    return Limits(row.limit_daily, row.limit_meal, row.confirm_above)


BOUND_NAMES = tuple(field.name for field in fields(Bounds) if field.name != "meals")
"""The office's bounds and defaults, as named in `Bounds`, its table, the pay path's `Payer`
and the API's body alike (`bounds_of` reads them from any of these)."""


def bounds_of(row: object, meals: tuple[Meal, ...]) -> Bounds:
    """The office's bounds from any row or body that has them by `Bounds`'s names."""
    return Bounds(**{name: getattr(row, name) for name in BOUND_NAMES}, meals=meals)


@dataclass(frozen=True)
class Day:
    """The local day of a time, and the meal period it falls in, in Unix seconds."""

    start: int
    end: int
    meal: Meal | None
    meal_start: int = 0
    meal_end: int = 0


def day_of(zone: ZoneInfo, at: int, meals: tuple[Meal, ...]) -> Day:
    """The local day of `at` in `zone` and its meal period, if any: each bound is the local
    time on that date (a day with a clock change is 23 or 25 hours long, and a meal after the
    change starts an hour nearer or further from midnight)."""
    local = datetime.fromtimestamp(at, zone)
    date = local.date()

    def moment(minute: int) -> int:  # local minutes after that midnight (1440: the next one)
        day, minute = divmod(minute, 24 * 60)
        wall = datetime.combine(date + timedelta(days=day), time(minute // 60, minute % 60))
        return int(wall.replace(tzinfo=zone).timestamp())

    meal = meal_at(meals, local.hour * 60 + local.minute)
    if meal is None:
        return Day(moment(0), moment(24 * 60), None)
    return Day(moment(0), moment(24 * 60), meal, moment(meal.start), moment(meal.end))


def clock_of(minutes: int) -> str:
    """Local minutes after midnight as `HH:MM`."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def meals_out(meals: tuple[Meal, ...]) -> list[dict[str, str]]:
    """The meal periods as the API shows them: `{"name", "start": "HH:MM", "end"}`."""
    return [{"name": m.name, "start": clock_of(m.start), "end": clock_of(m.end)} for m in meals]


def meal_at(meals: tuple[Meal, ...], minute: int) -> Meal | None:
    """The meal period a local minute falls in, if any."""
    return next((m for m in meals if m.start <= minute < m.end), None)


_SPENT = sql.statement(
    "SELECT COALESCE(SUM(-p.amount), 0), COALESCE(SUM(CASE WHEN t.created_at >= :meal_start "
    "AND t.created_at < :meal_end THEN 1 ELSE 0 END), 0) "
    "FROM postings p JOIN transactions t ON t.id = p.transaction_id "
    "WHERE p.account_id = :account AND p.transaction_id >= "
    "(SELECT MIN(id + 0) FROM transactions WHERE created_at >= :start) "
    "AND p.amount < 0 AND t.kind = 'payment' "
    "AND t.created_at >= :start AND t.created_at < :end"
)
"""The day's payments from an account: their total, and how many fell in the meal period.
By when the server booked them (`created_at`, its own clock), not when the till says it
scanned (`occurred_at`, the till's clock, which a wrong or dishonest till could put on another
day to escape the limits); an offline payment counts on the day its journal settles. Only the
account's postings from the day's first transaction on are read (every transaction booked
since the day began has an id at least that one's; `postings_account_transaction`), found
with the booking times' index (`transactions_created_at`; `id + 0`: not by walking the primary
key from the first transaction ever), not the account's whole history."""


@dataclass
class PinCheck:
    """The PIN a till sent with a payment, checked against the holder's hash before the scan:
    `ok` whether it was right; `used` set by `check` when the payment needed it and it let the
    payment through (what forgets the holder's wrong PINs)."""

    ok: bool
    used: bool = False


def check(unit: Unit, payer: Payer, amount: int, *, pin: PinCheck | None) -> None:
    """Refuse (a `Problem`, before anything is written) a payment of `amount` now over the
    holder's daily total or meal count, or above their confirmation amount without the right
    PIN (`pin`: None when none was given; `pin_required` is raised last, after every other
    check passed). The payer's account is locked (`sql.PAYER`)."""
    if _no_limits(payer):
        return  # nobody set anything: the hot path reads nothing more
    limits = effective(own_of(payer), bounds_of(payer, _meals(payer.meals)))
    if limits.daily is not None or limits.meal is not None:
        _check_day(unit, payer, amount, limits)
    if limits.confirm_above is None or amount <= limits.confirm_above:
        return
    if not payer.pin_set:
        raise Problem(
            ProblemCode.PIN_NOT_SET,
            f"payments above {limits.confirm_above} need the holder's PIN, and none is set",
        )
    if pin is None:
        raise Problem(
            ProblemCode.PIN_REQUIRED, f"payments above {limits.confirm_above} need the PIN"
        )
    if not pin.ok:
        raise Problem(ProblemCode.PIN_WRONG, "wrong PIN")
    pin.used = True


def _no_limits(payer: Payer) -> bool:
    return own_of(payer) == _NO_LIMITS and all(getattr(payer, name) is None for name in BOUND_NAMES)


_NO_LIMITS = Limits()


def _check_day(unit: Unit, payer: Payer, amount: int, limits: Limits) -> None:
    meals_of = _meals(payer.meals) if limits.meal is not None else ()
    day = day_of(unit.settings.zone, unit.now, meals_of)
    meal = day.meal
    params = {"account": payer.account_id, "start": day.start, "end": day.end}
    spent, meals = sql.raw(unit.session).one(
        _SPENT, {**params, "meal_start": day.meal_start, "meal_end": day.meal_end}
    )
    if limits.daily is not None and int(spent) + amount > limits.daily:
        raise Problem(
            ProblemCode.LIMIT_DAILY_TOTAL,
            f"over the daily total of {limits.daily}: {int(spent)} spent today",
        )
    if meal is not None and limits.meal is not None and int(meals) + 1 > limits.meal:
        raise Problem(
            ProblemCode.LIMIT_MEAL_COUNT,
            f"{int(meals)} payments this {meal.name} already: the limit is {limits.meal}",
        )


# -- what the office and the holder set ------------------------------------------------------


def bounds(unit: Unit) -> Bounds:
    row = unit.session.get(PurseBounds, BOUNDS_ID)
    if row is None:
        return Bounds()
    return bounds_of(row, _meals(row.meals))


def set_bounds(unit: Unit, office: Bounds) -> Bounds:
    """Replace the office's bounds (a default above its bound is refused)."""
    for name, default, bound in (
        ("daily", office.daily_default, office.daily_max),
        ("meal", office.meal_default, office.meal_max),
        ("confirm", office.confirm_default, office.confirm_max),
    ):
        if default is not None and bound is not None and default > bound:
            raise Problem(ProblemCode.LIMIT_ABOVE_BOUND, f"the {name} default is above its bound")
    values = asdict(office)
    values["meals"] = json.dumps([asdict(m) for m in office.meals])
    row = unit.session.get(PurseBounds, BOUNDS_ID)
    if row is None:
        unit.session.add(PurseBounds(id=BOUNDS_ID, updated_at=unit.now, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = unit.now
    return office


def _holder(unit: Unit, holder_id: int) -> Holder:
    row = unit.session.get(Holder, holder_id)
    assert row is not None, "a signed-in holder exists"
    return row


def limits_of(unit: Unit, holder_id: int) -> dict[str, Any]:
    """The holder's own values, what applies, the office's bounds, and whether a PIN is set."""
    row = _holder(unit, holder_id)
    own = own_of(row)
    office = bounds(unit)
    return {
        "own": asdict(own),
        "effective": asdict(effective(own, office)),
        "bounds": {
            "daily_max": office.daily_max,
            "meal_max": office.meal_max,
            "confirm_max": office.confirm_max,
        },
        "meals": meals_out(office.meals),
        "pin_set": row.pin_hash is not None,
    }


def loosens(unit: Unit, holder_id: int, own: Limits) -> bool:
    """Whether setting `own` would let the holder spend more than the limits that apply now
    (one raised, or removed so a looser default applies): what a session on a lost phone must
    not do without the password (the route asks for a recent sign-in); lowering is free."""
    holder = unit.session.get(Holder, holder_id)
    if holder is None:
        return False
    office = bounds(unit)
    now = effective(own_of(holder), office)
    new = effective(own, office)
    return any(
        old is not None and (value is None or value > old)
        for old, value in (
            (now.daily, new.daily),
            (now.meal, new.meal),
            (now.confirm_above, new.confirm_above),
        )
    )


def set_limits(unit: Unit, holder_id: int, own: Limits) -> dict[str, Any]:
    """Set the holder's own limits (None: the office's default); above a bound is refused."""
    office = bounds(unit)
    for name, value, bound in (
        ("daily total", own.daily, office.daily_max),
        ("meal count", own.meal, office.meal_max),
        ("confirmation amount", own.confirm_above, office.confirm_max),
    ):
        if value is not None and bound is not None and value > bound:
            raise Problem(
                ProblemCode.LIMIT_ABOVE_BOUND, f"the {name} {value} is above the office's {bound}"
            )
    unit.session.execute(
        update(Holder)
        .where(Holder.id == holder_id)
        .values(limit_daily=own.daily, limit_meal=own.meal, confirm_above=own.confirm_above)
    )
    return limits_of(unit, holder_id)


def offline_txmax(unit: Unit, holder: Holder, txmax_max: int) -> int:
    """A new credential's largest `txmax` under the holder's limits (§3 offline has no PIN and
    no day): at most the daily total. Not the PIN amount: online a payment of `a` is allowed
    only up to its counter's hold plus the free funds (§5), so a `txmax` held down to the PIN
    amount would refuse, online and with the right PIN, any payment much above it once the
    holds take the funds. Offline the office's `offline_txmax` stays the largest payment taken
    without a PIN. Its `uses` stay: online, each payment is checked against the day; offline,
    the day is counted once journals settle."""
    own = own_of(holder)
    limits = effective(own, bounds(unit))
    return min(c for c in (txmax_max, limits.daily) if c is not None)


def set_pin_hash(unit: Unit, holder_id: int, pin_hash: str | None) -> None:
    unit.session.execute(update(Holder).where(Holder.id == holder_id).values(pin_hash=pin_hash))


def pin_hash_of(unit: Unit, handle: str) -> str | None:
    """The PIN hash of the holder whose `sub` (handle) this is, if any."""
    found = unit.session.query(Holder.pin_hash).filter(Holder.handle == handle).first()
    return None if found is None else found[0]
