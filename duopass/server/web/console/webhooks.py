"""The console's webhook endpoints (`partners.endpoints`, as `/v1/admin/webhooks`): the list,
which admins and operators read, and for admins a new endpoint and a new secret for one. A
secret (`whsec_...`) is shown once, in the answer to the form that made it (no-store, never in
a URL, never logged: the logbook redacts `whsec_` too); the database keeps it sealed under the
server's wrap key. The form is checked field by field (`WebhookForm`), each refusal beside its
field in the page's language (422, what was typed kept). An endpoint's delivery log, its
retries, disabling and enabling: `webhook_log`."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from duopass.server.api.params import Digits
from duopass.server.limits import (
    ROW_ID_MAX,
    WEBHOOK_DESCRIPTION_CHARS_MAX,
    WEBHOOK_OVERLAP_S_DEFAULT,
    WEBHOOK_URL_CHARS_MAX,
)
from duopass.server.partners import endpoints
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.store.webhooks import WebhookMessage
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.forms import TypedForm, read_typed
from duopass.server.web.console.visit import Visit, admin, signed_in

__all__ = ["OVERLAPS", "EndpointId", "WebhookForm", "router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
EndpointId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
EVENTS: Final = tuple(kind.value for kind in WebhookEvent)
OVERLAPS: Final = (0, 3600, WEBHOOK_OVERLAP_S_DEFAULT, 7 * 86_400)
"""The overlaps a rotation offers: none, an hour, a day (the API's default), a week (its most)."""
URL_READ_MAX: Final = WEBHOOK_URL_CHARS_MAX + 1
"""What the server reads of a typed URL: one character more is `url_too_long` beside the field."""
DESCRIPTION_READ_MAX: Final = WEBHOOK_DESCRIPTION_CHARS_MAX + 1


class WebhookForm(TypedForm):
    """A new endpoint as typed (shown again) and each refused field's code."""

    def url(self) -> str:
        value = self.typed.get("url", "").strip()
        if not value:
            self.errors["url"] = "required"
            return value
        try:
            endpoints.check_url(value)
        except Problem as refused:
            self.errors["url"] = refused.code.value
        return value

    def event_types(self) -> list[WebhookEvent]:
        return [WebhookEvent(each) for each in self.picked("event_types", EVENTS, "choose_events")]

    def description(self) -> str:
        return self.text("description", WEBHOOK_DESCRIPTION_CHARS_MAX, required=False)


def _waiting(unit: Unit, endpoint_id: int) -> dict[str, int]:
    """The endpoint's messages pending and failed, counted on the queue index (a seek per
    endpoint and state: the delivered ones, most of the log, are never read)."""
    rows = unit.session.execute(
        select(WebhookMessage.state, func.count())
        .where(
            WebhookMessage.endpoint_id == endpoint_id,
            WebhookMessage.state.in_(("pending", "failed")),
        )
        .group_by(WebhookMessage.state)
    )
    return {"pending": 0, "failed": 0} | {str(state): int(count) for state, count in rows}


def _listing(unit: Unit) -> list[dict[str, Any]]:
    """Every endpoint with its pending and failed messages counted."""
    return [
        endpoints.describe(row, unit.now) | _waiting(unit, row.id)
        for row in endpoints.listing(unit.session)
    ]


def list_page(seen: Visit, *, status: int = 200, **values: Any) -> Response:
    shown = seen.ctx.run(_listing)
    values.setdefault("typed", {})
    values.setdefault("chosen", list(EVENTS))
    values.setdefault("errors", {})
    return seen.page(
        "console/webhooks.html",
        status=status,
        endpoints=shown,
        events=EVENTS,
        url_max=WEBHOOK_URL_CHARS_MAX,
        description_max=WEBHOOK_DESCRIPTION_CHARS_MAX,
        **values,
    )


@router.get("/webhooks")
def webhooks_page(seen: SignedIn) -> Response:
    """Every endpoint (never a secret); admins see the form for a new one."""
    return list_page(seen)


@router.post("/webhooks")
async def create(seen: Admin, request: Request) -> Response:
    """A new endpoint (admins): the answer is the page showing its secret, once."""
    limits = {"url": URL_READ_MAX, "description": DESCRIPTION_READ_MAX}
    typed, chosen = await read_typed(request, limits, "event_types", EVENTS)
    form = WebhookForm(typed, chosen)
    url, kinds, description = form.url(), form.event_types(), form.description()
    if form.errors:
        return list_page(seen, status=422, typed=typed, chosen=chosen, errors=form.errors)
    assert seen.staff is not None
    by = seen.staff.caller.id

    def made(unit: Unit) -> tuple[dict[str, Any], str]:
        row, secret = endpoints.create(
            unit, url=url, event_types=kinds, description=description, by=by
        )
        return endpoints.describe(row, unit.now), secret

    try:
        endpoint, secret = seen.ctx.run(made)
    except Problem as refused:
        if refused.code is not ProblemCode.TOO_MANY_WEBHOOKS:
            raise
        errors = {"url": refused.code.value}
        return list_page(
            seen, status=STATUS[refused.code], typed=typed, chosen=chosen, errors=errors
        )
    return seen.page("console/webhook_secret.html", endpoint=endpoint, secret=secret, made=True)
