"""The holder's history and disputes (PROTOCOL §5.3), and staff deciding disputes: upheld, the
amount is charged back to the merchant (an admin's: it moves money); rejected, nothing moves
(an operator's or an admin's)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from duopass.protocol.encoding import EncodingError, b64u_decode
from duopass.server.api.deps import Ctx, HolderCaller, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.limits import PAGE_ITEMS_DEFAULT, REASON_CHARS_MAX, ROW_ID_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import disputes, history
from duopass.server.store.tables import Account, Holder
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1")

RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]


class DisputeIn(BaseModel):
    entry: int = Field(ge=1, le=ROW_ID_MAX, description="the payment's `id` in the history")
    reason: str = Field(min_length=1, max_length=REASON_CHARS_MAX)


class DecideIn(BaseModel):
    outcome: Literal["uphold", "reject"]
    note: str = Field(default="", max_length=REASON_CHARS_MAX)


@router.get("/wallet/history", tags=["holder"], responses=problems(422))
def my_history(
    caller: HolderCaller, ctx: Ctx, limit: Limit = PAGE_ITEMS_DEFAULT, cursor: Cursor = None
) -> dict[str, Any]:
    """The holder's movements newest first, a page at a time (`{currency, items,
    next_cursor}`): payments (online and offline: till, venue, merchant, scan time, booking
    time), top-ups, refunds, chargebacks; each payment says whether it may still be disputed."""

    def read(unit: Unit) -> dict[str, Any]:
        holder = caller.holder(unit.session)
        account = unit.session.get(Account, holder.account_id)
        assert account is not None
        found = history.history(
            unit.session,
            holder_id=holder.id,
            holder_account=account.id,
            now=unit.now,
            limit=limit,
            cursor=cursor,
        )
        return {"currency": account.currency, **found}

    return ctx.run(read)


@router.get("/wallet/seen", tags=["holder"], responses=problems(404, 422))
def seen(
    caller: HolderCaller,
    ctx: Ctx,
    cti: Annotated[str, Query(min_length=11, max_length=22, pattern=r"^[A-Za-z0-9_-]+$")],
) -> dict[str, Any]:
    """The counters of one of the holder's credentials (`cti`, unpadded base64url) the server
    has seen used: the wallet's codes shown and not among them may be offline payments not yet
    uploaded."""
    try:
        raw = b64u_decode(cti)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, "cti: not unpadded base64url") from exc
    found = ctx.run(lambda unit: history.seen_counters(unit.session, holder_id=caller.id, cti=raw))
    return {"cti": cti, "seen": found}


@router.post(
    "/wallet/disputes", status_code=201, tags=["holder"], responses=problems(404, 409, 422)
)
def open_dispute(body: DisputeIn, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Dispute a payment within 30 days of its booking (`dispute_too_late` after), once
    (`already_disputed`); only payments (`not_disputable`), only your own (`not_found`)."""

    def opened(unit: Unit) -> dict[str, Any]:
        holder: Holder = caller.holder(unit.session)
        found = disputes.open_dispute(unit, holder, entry=body.entry, reason=body.reason)
        return disputes.describe(unit.session, found)

    return ctx.run(opened)


@router.get("/wallet/disputes", tags=["holder"], responses=problems(422))
def my_disputes(
    caller: HolderCaller, ctx: Ctx, limit: Limit = PAGE_ITEMS_DEFAULT, cursor: Cursor = None
) -> dict[str, Any]:
    """The holder's disputes, newest first, a page at a time."""
    return ctx.run(
        lambda unit: disputes.for_holder(unit.session, caller.id, limit=limit, cursor=cursor)
    )


@router.get("/admin/disputes", tags=["card office"], responses=problems(422))
def list_disputes(
    _caller: StaffCaller,
    ctx: Ctx,
    state: Literal["open", "upheld", "rejected"] = "open",
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Disputes oldest first, a page at a time, each naming its holder."""
    return ctx.run(
        lambda unit: disputes.for_staff(unit.session, state=state, limit=limit, cursor=cursor)
    )


@router.post(
    "/admin/disputes/{dispute_id}/decide",
    tags=["card office"],
    responses=problems(403, 404, 409),
)
def decide(dispute_id: RowId, body: DecideIn, caller: StaffCaller, ctx: Ctx) -> dict[str, Any]:
    """Decide an open dispute once (409 `conflict` after): `uphold` charges the amount back to
    the merchant on today's booking day (an admin's, 403 for an operator); `reject` moves
    nothing. The decision and who made it go into the ledger."""
    if body.outcome == "uphold" and caller.role != "admin":
        raise Problem(ProblemCode.FORBIDDEN, "only an admin upholds a dispute: it moves money")

    def decided(unit: Unit) -> dict[str, Any]:
        found = disputes.decide(
            unit, dispute_id=dispute_id, outcome=body.outcome, note=body.note, by=caller.id
        )
        return disputes.describe(unit.session, found, staff=True)

    return ctx.run(decided)
