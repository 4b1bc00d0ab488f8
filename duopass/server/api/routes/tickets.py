"""A holder's orders and tickets, and the wallet's ticket sync: a ticket's kind-3 credential is
minted for the device it is bound to when the event is near enough (PROTOCOL §2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from duopass.protocol.encoding import b64u_encode
from duopass.protocol.trust import dump_policy
from duopass.server.api.deps import Ctx, HolderCaller
from duopass.server.api.openapi import problems
from duopass.server.limits import ID_CHARS_MAX, ROW_ID_MAX, TICKETS_PER_ORDER_MAX
from duopass.server.services import orders, tickets
from duopass.server.store.tickets import Order
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["tickets"])

TICKETS_PER_SYNC_MAX = 200
Sub = Annotated[str, Path(min_length=1, max_length=ID_CHARS_MAX, pattern=r"^[a-z0-9-]+$")]


class OrderIn(BaseModel):
    ticket_type: int = Field(ge=1, le=ROW_ID_MAX)
    quantity: int = Field(default=1, ge=1, le=TICKETS_PER_ORDER_MAX)
    request_id: str = Field(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")


class TicketSyncIn(BaseModel):
    device_id: int = Field(ge=1, le=ROW_ID_MAX)
    exhausted: list[Annotated[str, Field(max_length=ID_CHARS_MAX)]] = Field(
        default=[],
        max_length=TICKETS_PER_SYNC_MAX,
        description="tickets whose codes ran out on this device: each gets a new credential",
    )


@router.post("/me/orders", status_code=201, responses=problems(404, 409))
def buy(body: OrderIn, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Buy tickets from the account's free funds; the same request id again returns the
    first order and charges nothing."""

    def work(unit: Unit) -> dict[str, Any]:
        order = orders.buy(
            unit,
            caller.holder(unit.session),
            type_id=body.ticket_type,
            quantity=body.quantity,
            request_id=body.request_id,
        )
        return orders.describe(unit.session, order)

    return ctx.run(work)


@router.get("/me/orders")
def my_orders(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    def work(unit: Unit) -> dict[str, Any]:
        rows = unit.session.scalars(
            select(Order).where(Order.holder_id == caller.id).order_by(Order.id.desc()).limit(200)
        )
        return {"items": [orders.describe(unit.session, o) for o in rows]}

    return ctx.run(work)


@router.get("/me/tickets")
def my_tickets(caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """Every ticket of the holder: event, state, generation, entries used, its device."""

    def work(unit: Unit) -> dict[str, Any]:
        session = unit.session
        return {
            "items": [
                tickets.describe(session, t, tickets.live_credential(session, t))
                for t in tickets.of_holder(session, caller.id)
            ]
        }

    return ctx.run(work)


@router.get("/me/tickets/{sub}", responses=problems(404))
def my_ticket(sub: Sub, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    def work(unit: Unit) -> dict[str, Any]:
        ticket = tickets.by_sub(unit.session, sub, holder_id=caller.id)
        return tickets.describe(unit.session, ticket, tickets.live_credential(unit.session, ticket))

    return ctx.run(work)


@router.post("/wallet/tickets", responses=problems(403, 404))
def sync_tickets(body: TicketSyncIn, caller: HolderCaller, ctx: Ctx) -> dict[str, Any]:
    """The holder's tickets for this device, each with its credential (the L1, unpadded
    base64url) or the reason it has none now (`ended`, `too_early`, `cancelled`,
    `other_device`)."""

    def work(unit: Unit) -> dict[str, Any]:
        minted = tickets.sync(
            unit,
            caller.holder(unit.session),
            device_id=body.device_id,
            exhausted=frozenset(body.exhausted),
        )
        items = []
        for m in minted:
            item = tickets.describe(unit.session, m.ticket, m.credential)
            item["credential"] = None if m.credential is None else b64u_encode(m.credential.l1)
            item["refusal"] = m.refusal
            items.append(item)
        return {
            "tickets": items,
            "server_time": unit.now,
            "policy": dump_policy(ctx.settings.policy),
        }

    return ctx.run(work)
