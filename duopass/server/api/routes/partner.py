"""Routes partners call with an OAuth access token (docs/partners.md): their own events and
ticket types (`tickets:issue`), the state of those events' orders and tickets (`tickets:read`),
the holders of their tickets, narrowly (`accounts:read`), and their own webhook endpoints
(`webhooks:manage`: the admins' webhook routes, `routes.webhooks.build`, on their own). Check-in
is `/v1/checkin/redeem` with `checkin:redeem` (routes/checkin.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from duopass.server.api.deps import Ctx, Partner, partner_for
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes import webhooks
from duopass.server.api.routes.events import EventIn, TicketTypeIn
from duopass.server.limits import ID_CHARS_MAX, ROW_ID_MAX
from duopass.server.partners import accounts, catalogue
from duopass.server.partners.clients import Scope
from duopass.server.services import events
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/partner", tags=["partner"])

Issuer = Annotated[Partner, Depends(partner_for(Scope.TICKETS_ISSUE))]
Reader = Annotated[Partner, Depends(partner_for(Scope.TICKETS_READ))]
AccountReader = Annotated[Partner, Depends(partner_for(Scope.ACCOUNTS_READ))]
HolderId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
EventId = Annotated[str, Path(max_length=ID_CHARS_MAX)]
_TYPE: dict[str, Any] = {
    "id": 7,
    "event": "city-jazz-2026",
    "name": "Standing",
    "price": 1500,
    "currency": "CNY",
    "entries": 1,
    "quota": 400,
    "available": 399,
    "static_allowed": False,
}
_ORDER: dict[str, Any] = {
    "code": "K7Q2M9XW",
    "ticket_type": 7,
    "quantity": 1,
    "amount": 1500,
    "currency": "CNY",
    "state": "paid",
    "paid_by": "account",
    "purchase_proof": "9f2c...e1",
    "ledger_index": 1234,
    "created_at": 1_796_000_000,
    "cancelled_at": None,
    "tickets": ["tk-mfrgg2lte4ytimrrga3q"],
}
_EVENT: dict[str, Any] = {
    "id": "city-jazz-2026",
    "name": "City Jazz",
    "doors": 1_796_040_000,
    "ends": 1_796_054_400,
    "venues": [
        {"id": "hall-a", "name": "Hall A", "lat_e6": 31200000, "lon_e6": 121400000, "networks": []}
    ],
    "ticket_types": [_TYPE],
    "checkin_lists": [
        {
            "id": 3,
            "event": "city-jazz-2026",
            "name": "Entrance",
            "ticket_types": None,
            "allow_reentry": False,
            "entry_limit": None,
        }
    ],
}


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


@router.post(
    "/events",
    status_code=201,
    responses={**problems(404, 409), 201: _json(_EVENT | {"orders": []})},
)
def create_event(body: EventIn, partner: Issuer, ctx: Ctx) -> dict[str, Any]:
    """An event of the partner's own at the card office's venues; it gets a first check-in
    list for all its ticket types, where the partner's gates redeem."""
    spec = events.EventIn(body.id, body.name, body.doors, body.ends, tuple(body.venues))

    def work(unit: Unit) -> dict[str, Any]:
        row = catalogue.add_event(unit, partner.id, spec)
        return catalogue.describe_event(unit.session, row)

    return ctx.run(work)


@router.post(
    "/events/{event_id}/ticket-types",
    status_code=201,
    responses={**problems(404), 201: _json(_TYPE)},
)
def create_ticket_type(
    event_id: EventId, body: TicketTypeIn, partner: Issuer, ctx: Ctx
) -> dict[str, Any]:
    """A ticket type of one of the partner's events (another's is `not_found`)."""

    def work(unit: Unit) -> dict[str, Any]:
        row = catalogue.add_ticket_type(
            unit,
            partner.id,
            event_id,
            name=body.name,
            price=body.price,
            entries=body.entries,
            quota=body.quota,
            static_allowed=body.static_allowed,
        )
        return events.describe_type(row)

    return ctx.run(work)


@router.get("/events", responses={200: _json({"items": [_EVENT]})})
def list_events(partner: Reader, ctx: Ctx) -> dict[str, Any]:
    """The partner's events by doors, with their ticket types and check-in lists."""
    return ctx.run(
        lambda unit: {
            "items": [
                events.describe_event(unit.session, row)
                for row in catalogue.listing(unit.session, partner.id)
            ]
        }
    )


@router.get(
    "/events/{event_id}", responses={**problems(404), 200: _json(_EVENT | {"orders": [_ORDER]})}
)
def get_event(event_id: EventId, partner: Reader, ctx: Ctx) -> dict[str, Any]:
    """One of the partner's events with its latest orders."""
    return ctx.run(
        lambda unit: catalogue.describe_event(
            unit.session, catalogue.event(unit.session, partner.id, event_id)
        )
    )


@router.get(
    "/orders/{code}",
    responses={
        **problems(404),
        200: _json(
            _ORDER
            | {
                "ticket_states": [
                    {
                        "sub": "tk-mfrgg2lte4ytimrrga3q",
                        "state": "valid",
                        "gen": 0,
                        "event": "city-jazz-2026",
                        "holder": 4182,
                    }
                ]
            }
        ),
    },
)
def get_order(
    code: Annotated[str, Path(max_length=16)], partner: Reader, ctx: Ctx
) -> dict[str, Any]:
    """An order of one of the partner's events: paid or cancelled, and each ticket's state."""
    return ctx.run(lambda unit: catalogue.order(unit.session, partner.id, code))


@router.get(
    "/holders/{holder_id}",
    responses={
        **problems(404),
        200: _json(
            {
                "id": 4182,
                "frozen": False,
                "offline_suspended": False,
                "lost_reported_at": None,
                "tickets": [
                    {
                        "sub": "tk-mfrgg2lte4ytimrrga3q",
                        "event": "city-jazz-2026",
                        "ticket_type": "Standing",
                        "order": "K7Q2M9XW",
                        "state": "valid",
                        "gen": 0,
                    }
                ],
            }
        ),
    },
)
def get_holder(holder_id: HolderId, partner: AccountReader, ctx: Ctx) -> dict[str, Any]:
    """A holder of the partner's tickets (the `holder` of its orders' `ticket_states`): those
    tickets, and whether the account is frozen, suspended offline or has reported a phone lost.
    Nothing else of the holder; one who holds none of the partner's tickets is `not_found`."""
    return ctx.run(lambda unit: accounts.holder(unit.session, partner.id, holder_id))


# the admins' webhook routes, for a partner's own endpoints (the app takes this router's routes
# as they are, as it takes every router's: `include_router` would defer them past the OpenAPI
# problems `openapi.document` adds)
router.routes.extend(
    webhooks.build(
        "/v1/partner/webhooks",
        ["partner"],
        partner_for(Scope.WEBHOOKS_MANAGE),
        partner_example=2,
    ).routes
)
