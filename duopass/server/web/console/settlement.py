"""The console's settlement pages: a booking day's report per merchant and terminal
(`services.settlement`), a chart of it (uPlot, per merchant), its CSV; what each partner sold,
cancelled and owes (`services.partner_settlement`) and its own CSV; closing the day by maker
and checker (`services.settlement_close`: one admin prepares, another approves), and the closed
day's payouts as CSV. Operators read; only admins prepare, approve and export payouts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from duopass.server.problems import STATUS, Problem
from duopass.server.services import accounts, partner_settlement, settlement, settlement_close
from duopass.server.services.settlement_close import DayState
from duopass.server.store.access import Staff
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
DAY_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
Day = Annotated[str, Path(pattern=DAY_PATTERN)]
_DAY = re.compile(DAY_PATTERN)


def _yesterday(seen: Visit) -> str:
    return accounts.business_date(seen.ctx.now() - 86_400, seen.ctx.settings.zone)


def _login(unit: Unit, staff_id: int | None) -> str | None:
    row = None if staff_id is None else unit.session.get(Staff, staff_id)
    return None if row is None else row.login


def _read(unit: Unit, day: str) -> dict[str, Any]:
    lines = settlement.report(unit.session, day)
    now = settlement_close.state(unit.session, day)
    prepared, closed = now.prepared, now.closed
    totals = settlement.merchant_totals(lines)
    return {
        "partners": partner_settlement.named_lines(unit.session, day),
        "lines": lines,
        "net": sum(line.net for line in lines),
        "totals": totals,
        "close": now,
        "prepared_by": _login(unit, prepared.prepared_by if prepared else None),
        "approved_by": _login(unit, closed.closed_by if closed else None),
        "chart": {"merchants": list(totals), "net": [n / 100 for n in totals.values()]},
    }


def _refused(seen: Visit, exc: Problem, **values: Any) -> Response:
    return seen.page(
        "console/settlement_refused.html",
        status=STATUS[exc.code],
        error=exc.code.value,
        **values,
    )


@router.get("/settlement")
def day_page(seen: SignedIn, day: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """A day's report (yesterday's unless `day`), its chart and where its closing stands."""
    day = day or _yesterday(seen)
    if not _DAY.match(day):
        return seen.page("console/settlement_refused.html", status=422, error="bad_day", day=day)
    try:
        shown = seen.ctx.run(lambda unit: _read(unit, day))
    except Problem as exc:
        return _refused(seen, exc, day=day)
    own = seen.staff.caller.id if seen.staff else None
    close: DayState = shown["close"]
    mine = close.prepared is not None and close.prepared.prepared_by == own
    return seen.page(
        "console/settlement.html", day=day, zone=seen.ctx.settings.timezone, mine=mine, **shown
    )


@router.get("/settlement/{day}/report.csv")
def report_csv(seen: SignedIn, day: Day) -> Response:
    """The day's report as the API's `?format=csv` gives it."""
    lines = seen.ctx.run(lambda unit: settlement.report(unit.session, day))
    text = settlement.to_csv(day, lines, zone=seen.ctx.settings.timezone)
    return _download(seen, text, f"settlement-{day}.csv")


@router.get("/settlement/{day}/partners.csv")
def partners_csv(seen: SignedIn, day: Day) -> Response:
    """The day's partners section as the API's `…/partners.csv` gives it."""
    lines = seen.ctx.run(lambda unit: partner_settlement.named_lines(unit.session, day))
    text = partner_settlement.to_csv(day, lines, zone=seen.ctx.settings.timezone)
    return _download(seen, text, f"partners-{day}.csv")


@router.get("/settlement/{day}/payouts.csv")
def payouts_csv(seen: Admin, day: Day) -> Response:
    """A closed day's payouts (admins; `not_closed` before the approval)."""
    try:
        sha, totals = seen.ctx.run(lambda unit: settlement_close.payouts(unit, day))
    except Problem as exc:
        return _refused(seen, exc, day=day)
    return _download(seen, settlement_close.payouts_csv(day, sha, totals), f"payouts-{day}.csv")


def _download(seen: Visit, text: str, name: str) -> Response:
    answer = Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return seen.finish(answer)


def _step(seen: Visit, day: str, work: Callable[..., DayState]) -> Response:
    assert seen.staff is not None
    by = seen.staff.caller.id
    try:
        seen.ctx.run(lambda unit: work(unit, day=day, by=by))
    except Problem as exc:
        return _refused(seen, exc, day=day)
    return seen.redirect(f"{PREFIX}/settlement?day={day}")


@router.post("/settlement/{day}/prepare")
def prepare(seen: Admin, day: Day) -> Response:
    """The maker's step (an admin): the day's report as it is now, awaiting another admin."""
    return _step(seen, day, settlement_close.prepare)


@router.post("/settlement/{day}/approve")
def approve(seen: Admin, day: Day) -> Response:
    """The checker's step (another admin than the preparer, else 403 `same_person`)."""
    return _step(seen, day, settlement_close.approve)
