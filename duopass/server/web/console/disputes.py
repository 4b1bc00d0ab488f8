"""Holders' disputes of their payments (PROTOCOL §5.3), over the service the API's routes call
(`services.disputes`, as `/v1/admin/disputes`): the list by state with the payment each names,
and the decision. Upholding charges the amount back to the merchant, so it is an admin's: the
page offers it to admins only and the server refuses it to anyone else (403 forbidden), as the
API does; rejecting moves nothing and is any staff member's."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from duopass.server.api.params import Digits
from duopass.server.limits import CURSOR_CHARS_MAX, PAGE_ITEMS_DEFAULT, REASON_CHARS_MAX, ROW_ID_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import disputes
from duopass.server.store.disputes import Dispute
from duopass.server.store.tables import Terminal
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Cursor = Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)]
DisputeId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
STATES: Final = ("open", "upheld", "rejected")
OUTCOMES: Final = ("uphold", "reject")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _listing(unit: Unit, state: str, cursor: str | None) -> dict[str, Any]:
    """`disputes.for_staff` with each payment's venue (its terminal's)."""
    found = dict(
        disputes.for_staff(unit.session, state=state, limit=PAGE_ITEMS_DEFAULT, cursor=cursor)
    )
    terminals = {item["terminal"] for item in found["items"] if item["terminal"]}
    rows = unit.session.execute(
        select(Terminal.id, Terminal.venue).where(Terminal.id.in_(terminals))
    )
    venues: dict[str, str | None] = {str(row[0]): row[1] for row in rows}
    found["items"] = [item | {"venue": venues.get(item["terminal"])} for item in found["items"]]
    return found


def _page(
    seen: Visit, state: str, cursor: str | None = None, *, status: int = 200, **values: Any
) -> Response:
    found = seen.ctx.run(lambda unit: _listing(unit, state, cursor))
    assert seen.staff is not None
    return seen.page(
        "console/disputes.html",
        status=status,
        state=state,
        states=STATES,
        outcomes=[o for o in OUTCOMES if seen.staff.is_admin or o != "uphold"],
        reason_max=REASON_CHARS_MAX,
        zone=seen.ctx.settings.timezone,
        **({"error": None, "done": None} | values),
        **found,
    )


def _decided(unit: Unit, dispute_id: int) -> dict[str, Any] | None:
    """A decided dispute as the page reports it after the redirect (None if not decided)."""
    row = unit.session.get(Dispute, dispute_id)
    if row is None or row.state == "open":
        return None
    return disputes.describe(unit.session, row, staff=True)


@router.get("/disputes")
def disputes_page(
    seen: SignedIn,
    state: Annotated[str, Query(max_length=16)] = "open",
    cursor: Cursor = None,
    decided: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX), Digits] = None,
) -> Response:
    """Disputes in one state (open by default) oldest first, 50 a page; `decided`: the
    dispute just decided, whose outcome the page reports (after the decision's redirect)."""
    if state not in STATES:
        raise Problem(ProblemCode.INVALID_REQUEST, "no such dispute state")
    done = None if decided is None else seen.ctx.run(lambda unit: _decided(unit, decided))
    return _page(seen, state, cursor, done=done)


@router.post("/disputes/{dispute_id}/decide")
def decide(
    seen: SignedIn,
    dispute_id: DisputeId,
    outcome: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=REASON_CHARS_MAX)] = "",
) -> Response:
    """Uphold or reject, as `POST /v1/admin/disputes/{id}/decide` does (uphold: admins only,
    403 forbidden otherwise); then a redirect (303) to the open list reporting the decision,
    or a repeat's 409."""
    assert seen.staff is not None
    if outcome not in OUTCOMES:
        return _page(seen, "open", status=422, error="bad_outcome")
    if outcome == "uphold" and not seen.staff.is_admin:
        raise Problem(ProblemCode.FORBIDDEN, "only an admin upholds a dispute: it moves money")
    if _CONTROL.search(note):
        return _page(seen, "open", status=422, error="bad_reason")
    by = seen.staff.caller.id
    chosen: disputes.Outcome = "uphold" if outcome == "uphold" else "reject"

    def work(unit: Unit) -> None:
        disputes.decide(unit, dispute_id=dispute_id, outcome=chosen, note=note.strip(), by=by)

    try:
        seen.ctx.run(work)
    except Problem as refused:
        if refused.code is not ProblemCode.CONFLICT:
            raise
        return _page(seen, "open", status=409, error="conflict")
    return seen.redirect(f"{PREFIX}/disputes?decided={dispute_id}")
