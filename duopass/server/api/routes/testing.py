"""For servers started for tests only (`duopass serve --testing` with the test clock): move the
server's clock forward, so tests can let hours and days pass (retries, outages, late windows)
without sleeping. Mounted only then; card-office administrators only even then."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from duopass.server.api.deps import AdminCaller, Ctx
from duopass.server.clock import MovableClock
from duopass.server.limits import TIME_MAX
from duopass.server.problems import Problem, ProblemCode

router = APIRouter(prefix="/v1/test", tags=["testing"])


class ClockIn(BaseModel):
    advance_s: int | None = Field(default=None, ge=0, le=10 * 365 * 86_400)
    to: int | None = Field(default=None, ge=0, le=TIME_MAX, description="Unix seconds")


class ClockOut(BaseModel):
    now: int
    offset_s: int = Field(description="how far the clock is ahead of the wall clock")


def _clock(ctx: Ctx) -> MovableClock:
    clock = ctx.clock
    assert isinstance(clock, MovableClock), "mounted only on a movable clock"
    return clock


@router.get("/clock", response_model=ClockOut)
def read_clock(_caller: AdminCaller, ctx: Ctx) -> ClockOut:
    clock = _clock(ctx)
    return ClockOut(now=ctx.now(), offset_s=int(clock.offset_s))


@router.post("/clock", response_model=ClockOut)
def move_clock(body: ClockIn, _caller: AdminCaller, ctx: Ctx) -> ClockOut:
    """Move the server's clock forward by `advance_s`, or to `to` (never back)."""
    clock = _clock(ctx)
    if (body.advance_s is None) == (body.to is None):
        raise Problem(ProblemCode.INVALID_REQUEST, "give advance_s or to, one of them")
    try:
        if body.advance_s is not None:
            clock.advance(body.advance_s)
        else:
            assert body.to is not None
            clock.move_to(body.to)
    except ValueError as exc:
        raise Problem(ProblemCode.CONFLICT, str(exc)) from exc
    return ClockOut(now=ctx.now(), offset_s=int(clock.offset_s))
