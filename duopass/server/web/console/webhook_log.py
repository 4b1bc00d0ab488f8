"""One webhook endpoint in the console: its delivery log newest first (`partners.deliveries`,
as `GET /v1/admin/webhooks/{id}/deliveries`: each message's state, attempts, the last answer's
status or error, the next attempt), 50 a page, of one state if asked; and, for admins, a failed
message retried (`deliveries.retry`), the endpoint disabled or enabled (`endpoints.set_state`)
and its secret rotated with an overlap (`endpoints.rotate`, the new secret shown once). Every
action but the rotation answers a redirect (303) to the endpoint's page naming what was done."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import Response

from duopass.server.api.params import Digits
from duopass.server.limits import CURSOR_CHARS_MAX, PAGE_ITEMS_DEFAULT, ROW_ID_MAX
from duopass.server.partners import deliveries, endpoints
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in
from duopass.server.web.console.webhooks import OVERLAPS, EndpointId

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
MessageId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
STATES: Final = ("pending", "delivered", "failed")
DONE: Final = ("disabled", "enabled", "retried")
"""What the page reports after an action's redirect (anything else is ignored)."""


def _read(unit: Unit, endpoint_id: int, state: str | None, cursor: str | None) -> dict[str, Any]:
    row = endpoints.one(unit.session, endpoint_id)
    log = deliveries.listing(
        unit.session, endpoint_id, state=state, limit=PAGE_ITEMS_DEFAULT, cursor=cursor
    )
    return {"endpoint": endpoints.describe(row, unit.now), **log}


def endpoint_page(
    seen: Visit,
    endpoint_id: int,
    *,
    state: str | None = None,
    cursor: str | None = None,
    status: int = 200,
    **values: Any,
) -> Response:
    shown = seen.ctx.run(lambda unit: _read(unit, endpoint_id, state, cursor))
    values.setdefault("done", None)
    values.setdefault("errors", {})
    return seen.page(
        "console/webhook.html",
        status=status,
        state=state,
        states=STATES,
        overlaps=OVERLAPS,
        overlap_default=OVERLAPS[2],
        **shown | values,
    )


@router.get("/webhooks/{endpoint_id}")
def webhook_page(
    seen: SignedIn,
    endpoint_id: EndpointId,
    state: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The endpoint and its delivery log (all states, or `state`'s), newest first."""
    state = state or None  # the filter's "all"
    if state is not None and state not in STATES:
        raise Problem(ProblemCode.INVALID_REQUEST, "no such delivery state")
    shown_done = done if done in DONE else None
    return endpoint_page(seen, endpoint_id, state=state, cursor=cursor, done=shown_done)


def _set_state(seen: Visit, endpoint_id: int, state: str) -> Response:
    try:
        seen.ctx.run(lambda unit: endpoints.set_state(unit, endpoint_id, state))
    except Problem as refused:
        if refused.code is not ProblemCode.TOO_MANY_WEBHOOKS:
            raise
        errors = {"state": refused.code.value}
        return endpoint_page(seen, endpoint_id, status=STATUS[refused.code], errors=errors)
    return seen.redirect(f"{PREFIX}/webhooks/{endpoint_id}?done={state}")


@router.post("/webhooks/{endpoint_id}/disable")
def disable(seen: Admin, endpoint_id: EndpointId) -> Response:
    """Nothing more is queued for it; what is queued waits."""
    return _set_state(seen, endpoint_id, "disabled")


@router.post("/webhooks/{endpoint_id}/enable")
def enable(seen: Admin, endpoint_id: EndpointId) -> Response:
    """Deliveries resume, in order, where they stopped (409 beside it when too many are on)."""
    return _set_state(seen, endpoint_id, "enabled")


@router.post("/webhooks/{endpoint_id}/deliveries/{message_id}/retry")
def retry(seen: Admin, endpoint_id: EndpointId, message_id: MessageId) -> Response:
    """Send a failed message again, for another day; a delivered one is 409 beside the log."""
    try:
        seen.ctx.run(lambda unit: deliveries.retry(unit, endpoint_id, message_id))
    except Problem as refused:
        if refused.code is not ProblemCode.CONFLICT:
            raise
        errors = {f"message-{message_id}": "delivered_already"}
        return endpoint_page(seen, endpoint_id, status=409, errors=errors)
    return seen.redirect(f"{PREFIX}/webhooks/{endpoint_id}?done=retried")


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate(
    seen: Admin, endpoint_id: EndpointId, overlap_s: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    """A new secret, shown once in the answer; the old one signs beside it for the overlap."""
    if not overlap_s.isdigit() or int(overlap_s) not in OVERLAPS:
        errors = {"overlap_s": "choose"}
        return endpoint_page(seen, endpoint_id, status=422, errors=errors)
    overlap = int(overlap_s)

    def rotated(unit: Unit) -> tuple[dict[str, Any], str]:
        row, secret = endpoints.rotate(unit, endpoint_id, overlap_s=overlap)
        return endpoints.describe(row, unit.now), secret

    endpoint, secret = seen.ctx.run(rotated)
    return seen.page("console/webhook_secret.html", endpoint=endpoint, secret=secret, made=False)
