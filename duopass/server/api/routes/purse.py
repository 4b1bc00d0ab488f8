"""Purse limits: the holder's own limits and payment PIN (`/v1/wallet/limits`, `/v1/wallet/pin`),
the payments waiting for the holder's confirmation (`/v1/wallet/confirmations`) and the card
office's bounds (`/v1/admin/purse-limits`); enforced on online payments
(`services.purse_limits.check`, `services.confirmations`)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, field_validator

from duopass.protocol.purse import (
    CLOCK,
    MEAL_COUNT_MAX,
    MEAL_NAME_CHARS_MAX,
    MEAL_PERIODS_MAX,
    PIN_DIGITS,
    PIN_PATTERN,
)
from duopass.server.api.deps import AdminCaller, Ctx, HolderCaller, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.limits import AMOUNT_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, confirmations, purse_limits, sessions
from duopass.server.services.purse_limits import Bounds, Limits, Meal
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["purse limits"])

__all__ = ["PIN_PATTERN", "router"]

Amount = Field(default=None, ge=1, le=AMOUNT_MAX)
Count = Field(default=None, ge=1, le=MEAL_COUNT_MAX)


class LimitsIn(BaseModel):
    """A holder's own limits; null (or absent): the office's default."""

    daily: int | None = Amount
    meal: int | None = Count
    confirm_above: int | None = Amount


class PinIn(BaseModel):
    pin: str | None = Field(
        pattern=PIN_PATTERN, description=f"{PIN_DIGITS} digits; null removes the PIN"
    )


class ConfirmIn(BaseModel):
    """Approve with the PIN, or decline."""

    pin: str | None = Field(default=None, pattern=PIN_PATTERN, description=f"{PIN_DIGITS} digits")
    decline: bool = False


ConfirmationId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="its id")
]


class MealIn(BaseModel):
    name: str = Field(min_length=1, max_length=MEAL_NAME_CHARS_MAX, pattern=r"^[a-z][a-z0-9_-]*$")
    start: str = Field(description="local time HH:MM, included", min_length=5, max_length=5)
    end: str = Field(description="local time HH:MM, not included", min_length=5, max_length=5)

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError("a local time HH:MM")
        return value


class BoundsIn(BaseModel):
    """The office's bounds (null: none) and defaults (null: no limit), and its meal periods."""

    daily_max: int | None = Amount
    daily_default: int | None = Amount
    meal_max: int | None = Count
    meal_default: int | None = Count
    confirm_max: int | None = Amount
    confirm_default: int | None = Amount
    meals: list[MealIn] | None = Field(default=None, max_length=MEAL_PERIODS_MAX)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _bounds_out(office: Bounds) -> dict[str, Any]:
    bounds = {name: getattr(office, name) for name in purse_limits.BOUND_NAMES}
    return {**bounds, "meals": purse_limits.meals_out(office.meals)}


def _meals(given: list[MealIn] | None) -> tuple[Meal, ...]:
    if given is None:
        return purse_limits.DEFAULT_MEALS
    meals = tuple(Meal(m.name, _minutes(m.start), _minutes(m.end)) for m in given)
    if any(m.start >= m.end for m in meals):
        raise Problem(ProblemCode.INVALID_REQUEST, "a meal period ends after it starts")
    ordered = sorted(meals, key=lambda m: m.start)
    if any(a.end > b.start for a, b in itertools.pairwise(ordered)):
        raise Problem(ProblemCode.INVALID_REQUEST, "meal periods do not overlap")
    return meals


@router.get("/wallet/limits")
def my_limits(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """The holder's own limits, those that apply, the office's bounds and meal periods, and
    whether a PIN is set."""
    return ctx.run(lambda unit: purse_limits.limits_of(unit, caller.id))


@router.put("/wallet/limits", responses=problems(401, 422))
def set_my_limits(body: LimitsIn, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Set the holder's own limits, each at most the office's bound (422 limit_above_bound);
    raising or removing one asks for a recent password sign-in (401 step_up_required), so a
    session on a lost phone can lower them but not lift the PIN or the daily total."""
    own = Limits(body.daily, body.meal, body.confirm_above)

    def work(unit: Unit) -> dict[str, Any]:
        if purse_limits.loosens(unit, caller.id, own):
            sessions.require_recent(caller, ctx.settings, unit.now)
        return purse_limits.set_limits(unit, caller.id, own)

    return ctx.run(work)


@router.put("/wallet/pin", responses=problems(401))
def set_my_pin(body: PinIn, caller: HolderCaller, ctx: Ctx) -> dict[str, bool]:
    """Set (or remove) the payment PIN, hashed as passwords are; asks for a recent password
    sign-in, so a session on a lost phone cannot change it."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    hashed = None if body.pin is None else auth.hash_password(ctx.settings, body.pin)
    ctx.run(lambda unit: purse_limits.set_pin_hash(unit, caller.id, hashed))
    return {"pin_set": hashed is not None}


@router.get("/wallet/confirmations")
def my_confirmations(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """The payments above the holder's PIN amount waiting for them to confirm, oldest first:
    each its id, amount, currency, terminal, venue, seq, and when it expires."""
    found = ctx.run(lambda unit: confirmations.pending_of(unit, caller.id))
    return {"confirmations": found}


@router.post("/wallet/confirmations/{confirmation}", responses=problems(403, 404, 409, 429))
def confirm(
    confirmation: ConfirmationId, body: ConfirmIn, caller: HolderCaller, ctx: Ctx
) -> dict[str, Any]:
    """Approve a waiting payment with the PIN (403 pin_wrong, counted with the till's wrong
    PINs: 429 throttled while blocked), or decline it (`{"decline": true}`); the till's retry
    of the same seq then passes once, or is 403 pin_declined. Another holder's is 404; one
    decided already 409; one past its time 403 confirmation_expired."""
    if body.decline == (body.pin is not None):
        raise Problem(ProblemCode.INVALID_REQUEST, "give either the PIN or decline: true")
    if body.decline:
        return confirmations.decline(ctx, caller.id, confirmation)
    assert body.pin is not None
    return confirmations.approve(ctx, caller.id, confirmation, body.pin)


@router.delete("/wallet/confirmations/{confirmation}", responses=problems(403, 404, 409))
def decline(confirmation: ConfirmationId, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Decline a waiting payment: the till's retry of its seq is 403 pin_declined."""
    return confirmations.decline(ctx, caller.id, confirmation)


@router.get("/admin/purse-limits")
def office_bounds(caller: StaffCaller, ctx: Ctx) -> dict[str, Any]:
    """The office's bounds, defaults and meal periods."""
    return _bounds_out(ctx.run(purse_limits.bounds))


@router.put("/admin/purse-limits", responses=problems(422))
def set_office_bounds(body: BoundsIn, caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Replace the office's bounds (admin); a lowered bound lowers every holder's limit."""
    office = purse_limits.bounds_of(body, _meals(body.meals))
    return _bounds_out(ctx.run(lambda unit: purse_limits.set_bounds(unit, office)))
