"""Daily settlement per merchant and terminal (JSON or CSV), and closing an ended day."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from duopass.protocol.encoding import b64u_encode
from duopass.server.api.deps import AdminCaller, Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.services import settlement

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
    names), by terminal: payments, voids, pending, refunds."""
    lines = ctx.run(lambda unit: settlement.report(unit.session, day))
    zone = ctx.settings.timezone
    if format == "csv":
        return Response(settlement.to_csv(day, lines, zone=zone), media_type="text/csv")
    return {
        "day": day,
        "time_zone": zone,
        "lines": [asdict(line) | {"net": line.net} for line in lines],
        "net": sum(line.net for line in lines),
    }


@router.post("/{day}/close", responses=problems(409))
def close_day(day: Day, caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Close an ended day: the report's SHA-256 and totals become a ledger entry."""
    closed = ctx.run(lambda unit: settlement.close(unit, day=day, by=caller.id))
    return {
        "day": closed.day,
        "closed_at": closed.closed_at,
        "report_sha256": b64u_encode(closed.report_sha256),
        "ledger_index": closed.ledger_index,
    }
