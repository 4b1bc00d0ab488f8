"""Webhook endpoints, for admins: create one (its secret shown once), list them, disable and
enable one, rotate its secret with an overlap, read its delivery log and retry a message that
failed. What is sent, and how a receiver verifies it: docs/partners.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from duopass.server.api.deps import AdminCaller, Ctx
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.limits import (
    PAGE_ITEMS_DEFAULT,
    ROW_ID_MAX,
    WEBHOOK_DESCRIPTION_CHARS_MAX,
    WEBHOOK_OVERLAP_S_DEFAULT,
    WEBHOOK_OVERLAP_S_MAX,
    WEBHOOK_URL_CHARS_MAX,
)
from duopass.server.partners import deliveries, endpoints
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/admin/webhooks", tags=["webhooks"])

EndpointId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
MessageId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
_SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (an example)
_ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "url": "https://tickets.example.com/hooks/duopass",
    "description": "box office",
    "event_types": ["ticket.checked_in", "ticket.issued"],
    "state": "enabled",
    "created_at": 1_796_000_000,
    "previous_secret_until": None,
}
_DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "webhook_id": "msg_2kq4xq7zv5k3q6y7m2n4p5r6s7",
    "type": "ticket.checked_in",
    "state": "pending",
    "created_at": 1_796_000_100,
    "attempts": 2,
    "next_attempt_at": 1_796_000_115,
    "give_up_at": 1_796_086_500,
    "delivered_at": None,
    "last_status": 503,
    "last_error": "answered 503",
    "log": [
        {"at": 1_796_000_105, "ok": False, "status": 503, "error": "answered 503"},
        {"at": 1_796_000_100, "ok": False, "status": None, "error": "ConnectError"},
    ],
}


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


class EndpointIn(BaseModel):
    """A receiver: where to send, and which events."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "url": "https://tickets.example.com/hooks/duopass",
                    "event_types": ["ticket.issued", "ticket.checked_in"],
                    "description": "box office",
                }
            ]
        }
    }
    url: str = Field(
        min_length=1,
        description="http:// or https://, no user, password or fragment; refused with "
        "`url_not_http`, `url_too_long` or `url_malformed`",
        json_schema_extra={"maxLength": WEBHOOK_URL_CHARS_MAX},
    )
    event_types: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))
    description: str = Field(
        default="", max_length=WEBHOOK_DESCRIPTION_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]*$"
    )


class RotateIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"overlap_s": 86_400}]}}
    overlap_s: int = Field(
        default=WEBHOOK_OVERLAP_S_DEFAULT,
        ge=0,
        le=WEBHOOK_OVERLAP_S_MAX,
        description="how long the replaced secret still signs (both signatures are sent)",
    )


@router.post(
    "",
    status_code=201,
    responses={**problems(409, 422), 201: _json(_ENDPOINT_EXAMPLE | {"secret": _SECRET_EXAMPLE})},
)
def create(body: EndpointIn, caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """A new endpoint, enabled. The answer's `secret` (`whsec_...`) is shown this once: the
    receiver verifies every message with it (docs/partners.md)."""

    def made(unit: Unit) -> dict[str, Any]:
        row, secret = endpoints.create(
            unit,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            by=caller.id,
        )
        return endpoints.describe(row, unit.now) | {"secret": secret}

    return ctx.run(made)


@router.get("", responses={200: _json({"items": [_ENDPOINT_EXAMPLE]})})
def listing(_caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Every endpoint, oldest first (never a secret)."""
    return ctx.run(
        lambda unit: {
            "items": [endpoints.describe(row, unit.now) for row in endpoints.listing(unit.session)]
        }
    )


@router.get("/{endpoint_id}", responses={**problems(404), 200: _json(_ENDPOINT_EXAMPLE)})
def one(endpoint_id: EndpointId, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    return ctx.run(
        lambda unit: endpoints.describe(endpoints.one(unit.session, endpoint_id), unit.now)
    )


@router.post("/{endpoint_id}/disable", responses=problems(404))
def disable(endpoint_id: EndpointId, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Nothing more is queued for it; what is queued waits (sent if it is enabled again)."""
    return ctx.run(
        lambda unit: endpoints.describe(
            endpoints.set_state(unit, endpoint_id, "disabled"), unit.now
        )
    )


@router.post("/{endpoint_id}/enable", responses=problems(404, 409))
def enable(endpoint_id: EndpointId, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Deliveries resume, in order, where they stopped."""
    return ctx.run(
        lambda unit: endpoints.describe(endpoints.set_state(unit, endpoint_id, "enabled"), unit.now)
    )


@router.post(
    "/{endpoint_id}/rotate",
    responses={
        **problems(404),
        200: _json(
            _ENDPOINT_EXAMPLE | {"previous_secret_until": 1_796_086_400, "secret": _SECRET_EXAMPLE}
        ),
    },
)
def rotate(
    endpoint_id: EndpointId, body: RotateIn, _caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """A new secret, shown this once. Until `previous_secret_until` every message carries two
    signatures in `webhook-signature` (space-separated), the new secret's and the old one's,
    so the receiver may switch at any time in between."""

    def rotated(unit: Unit) -> dict[str, Any]:
        row, secret = endpoints.rotate(unit, endpoint_id, overlap_s=body.overlap_s)
        return endpoints.describe(row, unit.now) | {"secret": secret}

    return ctx.run(rotated)


@router.get(
    "/{endpoint_id}/deliveries",
    responses={
        **problems(404, 422),
        200: _json({"items": [_DELIVERY_EXAMPLE], "next_cursor": None}),
    },
)
def delivery_log(
    endpoint_id: EndpointId,
    _caller: AdminCaller,
    ctx: Ctx,
    state: Literal["pending", "delivered", "failed"] | None = None,
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The endpoint's messages newest first, a page at a time: where each stands and its
    attempts (time, the answer's status or the error), newest first."""
    return ctx.run(
        lambda unit: deliveries.listing(
            unit.session, endpoint_id, state=state, limit=limit, cursor=cursor
        )
    )


@router.post(
    "/{endpoint_id}/deliveries/{message_id}/retry",
    responses={**problems(404, 409), 200: _json(_DELIVERY_EXAMPLE)},
)
def retry(
    endpoint_id: EndpointId, message_id: MessageId, _caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """Send a failed message again, for another day; it heads the endpoint's queue again.
    A delivered one is 409 `conflict`."""
    return ctx.run(lambda unit: deliveries.retry(unit, endpoint_id, message_id))
