"""Alerts and their review, reissue requests at review, and the risk engine's view, over the
services the API's routes call: `alerts` and `review` (as `/v1/admin/alerts`),
`reissue_reviews` (as `/v1/admin/reviews`) and `risk_view` (as `GET /v1/admin/risk`).

An operator dismisses and freezes; moving a pending amount (`to_holder`, `to_loss`) and
releasing a request held for risk review are an admin's: the page offers them to admins only
and the server refuses them to anyone else (403 forbidden), as the API does."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import Response

from duopass.risk import AlertKind, ReviewAction
from duopass.server.api.params import Digits
from duopass.server.api.routes.review import ADMINS_ONLY
from duopass.server.limits import (
    CURSOR_CHARS_MAX,
    ID_CHARS_MAX,
    PAGE_ITEMS_DEFAULT,
    REASON_CHARS_MAX,
    RISK_WINDOW_S_DEFAULT,
    ROW_ID_MAX,
)
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import alerts, reissue_reviews, risk_view
from duopass.server.services import review as review_service
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Cursor = Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)]
AlertId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
KINDS: Final = tuple(kind.value for kind in AlertKind)
ACTIONS: Final = tuple(action.value for action in ReviewAction)
RISK_ROWS: Final = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@router.get("/alerts")
def alerts_page(
    seen: SignedIn,
    kind: Annotated[str, Query(max_length=32)] = "",
    cursor: Cursor = None,
) -> Response:
    """Open alerts oldest first, 50 a page, of one kind if asked."""
    if kind and kind not in KINDS:
        raise Problem(ProblemCode.INVALID_REQUEST, "no such alert kind")
    found = seen.ctx.run(
        lambda unit: alerts.listing(
            unit.session,
            state="open",
            limit=PAGE_ITEMS_DEFAULT,
            cursor=cursor,
            kind=kind or None,
        )
    )
    return seen.page("console/alerts.html", kind=kind, kinds=KINDS, **found)


def _applicable(alert: dict[str, Any]) -> list[str]:
    """The review actions that can settle this alert (`review.review` refuses the others):
    freezing needs a holder, moving money a pending amount (or a conflict's entry, booked
    then), a release a request the risk policy held for review."""
    found = ["dismiss"]
    if alert["holder_id"] is not None:
        found.append("freeze")
    if alert["pending"] or alert["kind"] == AlertKind.CONFLICT.value:
        found += ["to_holder"] if alert["holder_id"] is not None else []
        found.append("to_loss")
    evidence = alert["evidence"]
    if alert["kind"] == AlertKind.RISK_DECISION.value and evidence.get("action") == "review":
        found.append("release")
    return found


def _alert_page(seen: Visit, alert_id: int, *, status: int = 200, **values: Any) -> Response:
    shown = seen.ctx.run(lambda unit: alerts.one(unit.session, alert_id))
    assert seen.staff is not None
    offered = [
        a
        for a in _applicable(shown)
        if seen.staff.is_admin or a not in ADMINS_ONLY  # the server refuses them too
    ]
    return seen.page(
        "console/alert.html",
        status=status,
        alert=shown,
        actions=offered,
        reason_max=REASON_CHARS_MAX,
        **({"error": None, "done": None} | values),
    )


@router.get("/alerts/{alert_id}")
def alert_page(seen: SignedIn, alert_id: AlertId) -> Response:
    """One alert with its evidence and the actions this staff member may take."""
    return _alert_page(seen, alert_id)


@router.post("/alerts/{alert_id}/review")
def review(
    seen: SignedIn,
    alert_id: AlertId,
    action: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=REASON_CHARS_MAX)] = "",
) -> Response:
    """Resolve the alert, as `POST /v1/admin/alerts/{id}/review` does (money and release:
    admins only, 403 forbidden otherwise)."""
    assert seen.staff is not None
    if action not in ACTIONS:
        return _alert_page(seen, alert_id, status=422, error="bad_action")
    if action in ADMINS_ONLY and not seen.staff.is_admin:
        raise Problem(ProblemCode.FORBIDDEN, f"only an admin may {action} at review")
    if _CONTROL.search(note):
        return _alert_page(seen, alert_id, status=422, error="bad_reason")
    by = seen.staff.caller.id
    seen.ctx.run(
        lambda unit: review_service.review(
            unit, alert_id=alert_id, action=ReviewAction(action), note=note.strip(), by=by
        )
    )
    return seen.redirect(f"{PREFIX}/alerts/{alert_id}")


@router.get("/reviews")
def reviews_page(seen: SignedIn, cursor: Cursor = None) -> Response:
    """Reissue requests the policy sent to a person, with their inputs and rule."""
    return _reviews(seen, cursor=cursor)


def _reviews(
    seen: Visit, *, cursor: str | None = None, status: int = 200, error: str | None = None
) -> Response:
    found = seen.ctx.run(
        lambda unit: reissue_reviews.listing(unit, limit=PAGE_ITEMS_DEFAULT, cursor=cursor)
    )
    return seen.page(
        "console/reviews.html", status=status, reason_max=REASON_CHARS_MAX, error=error, **found
    )


RequestId = Annotated[str, Path(min_length=1, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/reviews/{request_id}")
def decide(
    seen: SignedIn,
    request_id: RequestId,
    action: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=REASON_CHARS_MAX)] = "",
) -> Response:
    """Approve or refuse, as `POST /v1/admin/reviews/{request_id}` does."""
    assert seen.staff is not None
    reason = reason.strip()
    if action not in ("approve", "refuse") or not reason or _CONTROL.search(reason):
        return _reviews(seen, status=422, error="bad_reason")
    staff_id = seen.staff.caller.id

    def work(unit: Unit) -> None:
        reissue_reviews.decide(
            unit, request_id, approve=action == "approve", reason=reason, staff_id=staff_id
        )

    seen.ctx.run(work)
    return seen.redirect(f"{PREFIX}/reviews")


@router.get("/risk")
def risk_page(seen: SignedIn, keys_cursor: Cursor = None, cursor: Cursor = None) -> Response:
    """The keys most at risk, the latest decisions with rule and features, the policy."""
    found = seen.ctx.run(
        lambda unit: risk_view.overview(
            unit,
            window_s=RISK_WINDOW_S_DEFAULT,
            keys=(RISK_ROWS, keys_cursor),
            listed=(RISK_ROWS, cursor),
            only=risk_view.Filter(),
        )
    )
    return seen.page("console/risk.html", **found)
