"""Check-in: lists per event and the gate each counts on (admins), their counts (staff), and
the pretix-style redeem for scanning apps, staff phones and terminals (docs/checkin.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from duopass.protocol.limits import CODE_CHARS_MAX
from duopass.server.api.deps import AdminCaller, Ctx, StaffCaller, StaffOrTerminalCaller
from duopass.server.api.lean import LeanRoute
from duopass.server.api.openapi import MEDIA_TYPE, problems
from duopass.server.limits import (
    CHECKIN_LISTS_PER_REDEEM_MAX,
    ENTRIES_MAX,
    ID_CHARS_MAX,
    NAME_CHARS_MAX,
    NONCE_CHARS_MAX,
    ROW_ID_MAX,
    TICKET_TYPES_PER_LIST_MAX,
    TIME_MAX,
)
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import checkins, events, redeem
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["check-in"], route_class=LeanRoute)
"""Lean: the redeem route skips FastAPI's per-request dependency resolution (api/lean.py)."""

RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]


class ListIn(BaseModel):
    name: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    ticket_types: list[RowId] | None = Field(
        default=None, max_length=TICKET_TYPES_PER_LIST_MAX, description="null: all of them"
    )
    allow_reentry: bool = False
    entry_limit: int | None = Field(default=None, ge=1, le=ENTRIES_MAX)


class GateListIn(BaseModel):
    list_id: RowId


class RedeemIn(BaseModel):
    """pretix's request fields; its others (`source_type`, `questions_supported`, `answers`,
    ...) are accepted and ignored."""

    secret: str = Field(
        min_length=1,
        max_length=CODE_CHARS_MAX + 2,
        description="the scanned code text (one trailing line ending allowed)",
    )
    lists: list[RowId] = Field(min_length=1, max_length=CHECKIN_LISTS_PER_REDEEM_MAX)
    type: Literal["entry", "exit"] = "entry"
    nonce: str | None = Field(
        default=None, min_length=1, max_length=NONCE_CHARS_MAX, pattern=r"^[ -~]+$"
    )
    datetime: dt.datetime | None = Field(default=None, description="ISO 8601 with a time zone")
    force: bool = False


class RedeemTicket(BaseModel):
    sub: str
    event: str
    ticket_type: int
    gen: int
    entries_used: int
    entries_allowed: int | None
    order: str
    state: str


class RedeemList(BaseModel):
    id: int
    name: str
    event: str


class RedeemOut(BaseModel):
    status: Literal["ok", "error"]
    reason: str | None = Field(description="a §3 code, or pretix's: canceled, product, rules")
    reason_explanation: str | None
    check: str = Field(description="the §3 verdict on the code itself")
    forced: bool
    overridden: str | None = Field(description="what a forced check-in overrode")
    require_attention: bool
    ticket: RedeemTicket | None
    list: RedeemList
    checkin_id: int
    type: str


def _answer(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RedeemOut"}},
            MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
    }


@router.post("/admin/events/{event_id}/checkin-lists", status_code=201, responses=problems(404))
def create_list(
    event_id: Annotated[str, Path(max_length=ID_CHARS_MAX)],
    body: ListIn,
    _caller: AdminCaller,
    ctx: Ctx,
) -> dict[str, Any]:
    """A check-in list: the ticket types it admits (null: all), entry after an exit or not,
    and the entries a ticket may use on it (null: its ticket type's)."""

    def work(unit: Unit) -> dict[str, Any]:
        row = checkins.add_list(
            unit,
            event_id,
            name=body.name,
            ticket_types=body.ticket_types,
            allow_reentry=body.allow_reentry,
            entry_limit=body.entry_limit,
        )
        return checkins.describe(unit.session, row)

    return ctx.run(work)


@router.get("/admin/events/{event_id}/checkin-lists", responses=problems(404))
def event_lists(
    event_id: Annotated[str, Path(max_length=ID_CHARS_MAX)], _caller: StaffCaller, ctx: Ctx
) -> dict[str, Any]:
    """The event's lists, each with how many tickets entered and how many are inside now."""

    def work(unit: Unit) -> dict[str, Any]:
        event = events.event(unit.session, event_id)
        rows = checkins.of_event(unit.session, event.id)
        return {"items": [checkins.describe(unit.session, row) for row in rows]}

    return ctx.run(work)


@router.get("/admin/checkin-lists/{list_id}/status", responses=problems(404))
def list_status(
    list_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], _caller: StaffCaller, ctx: Ctx
) -> dict[str, Any]:
    return ctx.run(
        lambda unit: checkins.describe(unit.session, checkins.checkin_list(unit.session, list_id))
    )


@router.put("/admin/terminals/{terminal_id}/checkin-list", responses=problems(404, 409))
def gate_list(
    terminal_id: Annotated[str, Path(max_length=ID_CHARS_MAX)],
    body: GateListIn,
    _caller: AdminCaller,
    ctx: Ctx,
) -> dict[str, Any]:
    """The list an entry gate counts on (by default its event's first)."""
    return ctx.run(
        lambda unit: checkins.describe(
            unit.session, checkins.assign_gate(unit, terminal_id, body.list_id)
        )
    )


@router.post(
    "/checkin/redeem",
    status_code=201,
    response_model=RedeemOut,
    responses={
        400: _answer("Refused: `status` error and its `reason`; or a problem document"),
        403: problems(403)[403],
        404: _answer(
            "An unknown or undecodable secret (`reason` invalid), or a problem "
            "document (an unknown list)"
        ),
    },
)
async def redeem_route(body: RedeemIn, caller: StaffOrTerminalCaller, ctx: Ctx) -> Any:
    """Check a scanned code in or out on the list of its event among `lists` (pretix's
    `checkinrpc/redeem`): 201 ok, 400 refused, 404 an unknown code (docs/checkin.md)."""
    # (async: the unit runs on the group-commit writer; only the parsing runs here)
    at = None
    if body.datetime is not None:
        if body.datetime.tzinfo is None:
            raise Problem(ProblemCode.INVALID_REQUEST, "datetime: give its time zone")
        at = int(body.datetime.timestamp())
        if not 0 < at <= TIME_MAX:
            raise Problem(ProblemCode.INVALID_REQUEST, "datetime: out of range")
        if at > ctx.now() + ctx.settings.policy.clock_skew_s:
            raise Problem(ProblemCode.INVALID_REQUEST, "datetime: in the future")
    request = redeem.RedeemRequest(
        secret=body.secret,
        lists=tuple(body.lists),
        type=body.type,
        nonce=body.nonce,
        at=at,
        force=body.force,
    )
    terminal = caller.terminal
    by = redeem.Redeemer(
        staff_id=None if caller.staff is None else caller.staff.id,
        terminal_id=None if terminal is None else terminal.id,
        terminal_event=None if terminal is None else terminal.event,
        partner_id=None if caller.partner is None else caller.partner.id,
    )

    def work(unit: Unit) -> dict[str, Any]:
        return redeem.redeem(unit, request, by)

    # committed with concurrent scans and check-ins (`AppContext.group`), like a scan; the
    # same nonce racing in clashes on (list, nonce), and its retry finds the first answer
    answer = await ctx.group.run(work)
    return JSONResponse(answer, status_code=redeem.status_of(answer))
