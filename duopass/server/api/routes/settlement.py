"""Daily settlement per merchant and terminal (JSON or CSV), and closing an ended day by maker
and checker (prepare, approve), and the closed day's payouts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from duopass.server.api.deps import AdminCaller, Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import partner_settlement, settlement, settlement_close

router = APIRouter(prefix="/v1/admin/settlement", tags=["card office"])

Day = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


@router.get("/{day}", responses={200: {"content": {"text/csv": {}}}})
def day_report(
    day: Day,
    _caller: StaffCaller,
    ctx: Ctx,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Every merchant's takings on a booking day (in the issuer's time zone, which the report
    names), by terminal: payments, voids, pending, refunds. The JSON adds `partners`: what each
    partner sold that day (it collected the price), less cancels, and what it owes in all."""
    lines, partners = ctx.run(
        lambda unit: (
            settlement.report(unit.session, day),
            settlement.partner_lines(unit.session, day),
        )
    )
    zone = ctx.settings.timezone
    if format == "csv":
        return Response(settlement.to_csv(day, lines, zone=zone), media_type="text/csv")
    return {
        "day": day,
        "time_zone": zone,
        "lines": [asdict(line) | {"net": line.net} for line in lines],
        "net": sum(line.net for line in lines),
        "partners": [asdict(line) | {"net": line.net} for line in partners],
    }


@router.get("/{day}/partners.csv", responses={200: {"content": {"text/csv": {}}}})
def day_partners_csv(day: Day, _caller: StaffCaller, ctx: Ctx) -> Response:
    """The day's `partners` section as CSV, one row per partner and currency (the columns of
    `partner_settlement.PARTNER_COLUMNS`, amounts in minor units): apart from the merchants'
    report, whose CSV and closing digest are unchanged."""
    lines = ctx.run(lambda unit: partner_settlement.named_lines(unit.session, day))
    return Response(
        partner_settlement.to_csv(day, lines, zone=ctx.settings.timezone),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="partners-{day}.csv"'},
    )


@router.post("/{day}/close", responses=problems(409))
def close_day(day: Day, _caller: AdminCaller) -> dict[str, Any]:
    """Refused (409 `prepare_and_approve`): a day is closed by two admins, `POST …/prepare` by
    one and `POST …/approve` by another."""
    raise Problem(
        ProblemCode.PREPARE_AND_APPROVE,
        f"a day is closed by two admins: POST /v1/admin/settlement/{day}/prepare, "
        f"then another admin POST /v1/admin/settlement/{day}/approve",
    )


@router.get("/{day}/close")
def close_state(day: Day, _caller: StaffCaller, ctx: Ctx) -> dict[str, object]:
    """Where the day's closing stands: `open`, `prepared` (by whom, the report's SHA-256 in
    hex) or `closed` (approved by whom, its ledger index)."""
    return ctx.run(lambda unit: settlement_close.state(unit.session, day)).as_json()


@router.post("/{day}/prepare", responses=problems(409))
def prepare_day(day: Day, caller: AdminCaller, ctx: Ctx) -> dict[str, object]:
    """The maker's step (admin, once the day has ended): the report's SHA-256 as it is now."""
    done = ctx.run(lambda unit: settlement_close.prepare(unit, day=day, by=caller.id))
    return done.as_json()


@router.post("/{day}/approve", responses=problems(403, 409))
def approve_day(day: Day, caller: AdminCaller, ctx: Ctx) -> dict[str, object]:
    """The checker's step (another admin than the preparer, else 403 `same_person`): the day
    is closed, its report's SHA-256 and totals a ledger entry."""
    done = ctx.run(lambda unit: settlement_close.approve(unit, day=day, by=caller.id))
    return done.as_json()


@router.get("/{day}/payouts", responses={200: {"content": {"text/csv": {}}}, **problems(409)})
def day_payouts(day: Day, _caller: AdminCaller, ctx: Ctx) -> Response:
    """A closed day's payouts per merchant as CSV (admin; 409 `not_closed` before)."""
    sha, totals = ctx.run(lambda unit: settlement_close.payouts(unit, day))
    return Response(
        settlement_close.payouts_csv(day, sha, totals),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="payouts-{day}.csv"'},
    )
