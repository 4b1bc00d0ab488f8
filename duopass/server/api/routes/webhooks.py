"""Webhook endpoints: create one (its secret shown once), list them, disable and enable one,
rotate its secret with an overlap, read its delivery log and retry a message that failed. One
set of routes (`build`) serves two owners: the card office's admins at /v1/admin/webhooks
(every endpoint), and a partner client with `webhooks:manage` at /v1/partner/webhooks
(routes/partner.py: its own endpoints only, ticket events of its own events only:
`partners.endpoints`). What is sent, and
how a receiver verifies it: docs/partners.md.

Not `from __future__ import annotations`: the routes are made in `build`, and FastAPI reads
their parameters' annotations as objects (a string naming `build`'s dependency would not
resolve)."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from duopass.server.api.deps import Ctx, Partner, admin_caller
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

__all__ = ["build", "router"]

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
    "partner": None,
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
    event_types: list[WebhookEvent] = Field(
        min_length=1,
        max_length=len(WebhookEvent),
        description="a partner's endpoint: the ticket.* types only (of its own events)",
    )
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


def build(
    prefix: str, tags: list[str], who: Callable[..., Any], *, partner_example: int | None = None
) -> APIRouter:
    """The webhook routes under `prefix` for the callers `who` admits: an admin (every
    endpoint) or a partner client (`Partner`: its own; `partner_example` its id in the
    OpenAPI examples)."""
    router = APIRouter(prefix=prefix, tags=list(tags))
    example = _ENDPOINT_EXAMPLE | {"partner": partner_example}
    _endpoints(router, who, example)
    _states(router, who, example)
    _log(router, who)
    return router


def owner(caller: Any) -> int | None:
    """Whose endpoints the caller manages: None for an admin (every one), else the partner's."""
    return caller.id if isinstance(caller, Partner) else None


def _endpoints(router: APIRouter, who: Callable[..., Any], example: dict[str, Any]) -> None:
    @router.post(
        "",
        status_code=201,
        responses={
            **problems(409, 422),
            201: _json(example | {"secret": _SECRET_EXAMPLE}),
        },
    )
    def create(body: EndpointIn, caller: Annotated[Any, Depends(who)], ctx: Ctx) -> dict[str, Any]:
        """A new endpoint, enabled. The answer's `secret` (`whsec_...`) is shown this once: the
        receiver verifies every message with it (docs/partners.md). A partner's endpoint takes
        the ticket events of its own events only, on a public `https://` URL (`url_not_public`),
        five enabled at most."""

        def made(unit: Unit) -> dict[str, Any]:
            row, secret = endpoints.create(
                unit,
                url=body.url,
                event_types=body.event_types,
                description=body.description,
                by=caller.id,
                partner=owner(caller),
            )
            return endpoints.describe(row, unit.now) | {"secret": secret}

        return ctx.run(made)

    @router.get("", responses={200: _json({"items": [example]})})
    def listing(caller: Annotated[Any, Depends(who)], ctx: Ctx) -> dict[str, Any]:
        """Every endpoint, oldest first (never a secret)."""
        return ctx.run(
            lambda unit: {
                "items": [
                    endpoints.describe(row, unit.now)
                    for row in endpoints.listing(unit.session, partner=owner(caller))
                ]
            }
        )

    @router.get("/{endpoint_id}", responses={**problems(404), 200: _json(example)})
    def one(
        endpoint_id: EndpointId, caller: Annotated[Any, Depends(who)], ctx: Ctx
    ) -> dict[str, Any]:
        return ctx.run(
            lambda unit: endpoints.describe(
                endpoints.one(unit.session, endpoint_id, partner=owner(caller)), unit.now
            )
        )


def _states(router: APIRouter, who: Callable[..., Any], example: dict[str, Any]) -> None:
    @router.post("/{endpoint_id}/disable", responses=problems(404))
    def disable(
        endpoint_id: EndpointId, caller: Annotated[Any, Depends(who)], ctx: Ctx
    ) -> dict[str, Any]:
        """Nothing more is queued for it; what is queued waits (sent if it is enabled again)."""
        return ctx.run(
            lambda unit: endpoints.describe(
                endpoints.set_state(unit, endpoint_id, "disabled", partner=owner(caller)), unit.now
            )
        )

    @router.post("/{endpoint_id}/enable", responses=problems(404, 409))
    def enable(
        endpoint_id: EndpointId, caller: Annotated[Any, Depends(who)], ctx: Ctx
    ) -> dict[str, Any]:
        """Deliveries resume, in order, where they stopped."""
        return ctx.run(
            lambda unit: endpoints.describe(
                endpoints.set_state(unit, endpoint_id, "enabled", partner=owner(caller)), unit.now
            )
        )

    @router.post(
        "/{endpoint_id}/rotate",
        responses={
            **problems(404),
            200: _json(
                example | {"previous_secret_until": 1_796_086_400, "secret": _SECRET_EXAMPLE}
            ),
        },
    )
    def rotate(
        endpoint_id: EndpointId, body: RotateIn, caller: Annotated[Any, Depends(who)], ctx: Ctx
    ) -> dict[str, Any]:
        """A new secret, shown this once. Until `previous_secret_until` every message carries two
        signatures in `webhook-signature` (space-separated), the new secret's and the old one's,
        so the receiver may switch at any time in between."""

        def rotated(unit: Unit) -> dict[str, Any]:
            row, secret = endpoints.rotate(
                unit, endpoint_id, overlap_s=body.overlap_s, partner=owner(caller)
            )
            return endpoints.describe(row, unit.now) | {"secret": secret}

        return ctx.run(rotated)


def _log(router: APIRouter, who: Callable[..., Any]) -> None:
    @router.get(
        "/{endpoint_id}/deliveries",
        responses={
            **problems(404, 422),
            200: _json({"items": [_DELIVERY_EXAMPLE], "next_cursor": None}),
        },
    )
    def delivery_log(
        endpoint_id: EndpointId,
        caller: Annotated[Any, Depends(who)],
        ctx: Ctx,
        *,
        state: Literal["pending", "delivered", "failed"] | None = None,
        limit: Limit = PAGE_ITEMS_DEFAULT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """The endpoint's messages newest first, a page at a time: where each stands and its
        attempts (time, the answer's status or the error), newest first."""
        return ctx.run(
            lambda unit: deliveries.listing(
                unit.session,
                endpoint_id,
                state=state,
                limit=limit,
                cursor=cursor,
                partner=owner(caller),
            )
        )

    @router.post(
        "/{endpoint_id}/deliveries/{message_id}/retry",
        responses={**problems(404, 409), 200: _json(_DELIVERY_EXAMPLE)},
    )
    def retry(
        endpoint_id: EndpointId,
        message_id: MessageId,
        caller: Annotated[Any, Depends(who)],
        ctx: Ctx,
    ) -> dict[str, Any]:
        """Send a failed message again, for another day; it heads the endpoint's queue again.
        A delivered one is 409 `conflict`."""
        return ctx.run(
            lambda unit: deliveries.retry(unit, endpoint_id, message_id, partner=owner(caller))
        )


router = build("/v1/admin/webhooks", ["webhooks"], admin_caller)
