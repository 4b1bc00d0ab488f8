"""The review queue (§4.5, §5.4): alerts with their evidence, and what a person decides: freeze
the account, move a pending amount to the holder or to the loss account, or dismiss."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from duopass.risk import AlertKind, ReviewAction
from duopass.server.api.deps import Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.limits import PAGE_ITEMS_DEFAULT, REASON_CHARS_MAX, ROW_ID_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import alerts
from duopass.server.services import review as review_service
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/admin/alerts", tags=["card office"])

ADMINS_ONLY = frozenset(
    action.value for action in (ReviewAction.TO_HOLDER, ReviewAction.TO_LOSS, ReviewAction.RELEASE)
)
"""Review actions an operator may not take: two move money, and a release lets a held top-up
or refund through."""


class ReviewIn(BaseModel):
    action: Literal["dismiss", "freeze", "to_holder", "to_loss", "release"]
    """`release`: for a `risk_decision` alert of action review, the guard's next review of
    the same request (point and subject) within a day lets it through, once."""
    note: str = Field(default="", max_length=REASON_CHARS_MAX)


@router.get("", responses=problems(422))
def list_alerts(
    _caller: StaffCaller,
    ctx: Ctx,
    state: Literal["open", "resolved"] = "open",
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
    kind: AlertKind | None = None,
) -> dict[str, Any]:
    """The review queue oldest first, a page at a time (`{items, next_cursor}`, as every list),
    of one `kind` if asked; each alert names its holder (handle, login and name) for staff."""
    named = None if kind is None else kind.value
    return ctx.run(
        lambda unit: alerts.listing(
            unit.session, state=state, limit=limit, cursor=cursor, kind=named
        )
    )


@router.post("/{alert_id}/review", responses=problems(403, 404, 409))
def review(
    alert_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits],
    body: ReviewIn,
    caller: StaffCaller,
    ctx: Ctx,
) -> dict[str, Any]:
    """Resolve an open alert; the decision and who made it go into the ledger. An operator
    dismisses or freezes; what moves money (a pending amount to the holder or to the loss
    account) and releasing a request held for risk review are an admin's (403 forbidden)."""
    if body.action in ADMINS_ONLY and caller.role != "admin":
        raise Problem(ProblemCode.FORBIDDEN, f"only an admin may {body.action} at review")

    def reviewed(unit: Unit) -> dict[str, Any]:
        alert = review_service.review(
            unit, alert_id=alert_id, action=ReviewAction(body.action), note=body.note, by=caller.id
        )
        return alerts.shown(unit.session, [alert])[0]

    return ctx.run(reviewed)
