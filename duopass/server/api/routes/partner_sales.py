"""Partner routes that sell and move tickets for holders (docs/partners.md, issue 17): orders of
the partner's own events for campus holders, paid to the partner (`tickets:issue`, with an
`Idempotency-Key`), their cancellation, and a reissue asked on a holder's behalf and decided by
the same policy as the holder's own (`tickets:reissue`). `partners.sales` has the rules."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response
from pydantic import BaseModel, Field, field_validator

from duopass.server.api.deps import Ctx, Partner, partner_for
from duopass.server.api.openapi import problems
from duopass.server.api.params import device_key
from duopass.server.api.routes.reissue import RequestId
from duopass.server.api.routes.tickets import Sub
from duopass.server.limits import (
    EMAIL_CHARS_MAX,
    IDEMPOTENCY_KEY_CHARS_MAX,
    NUMBER_CHARS_MAX,
    ROW_ID_MAX,
    TICKETS_PER_ORDER_MAX,
)
from duopass.server.partners import catalogue, sales
from duopass.server.partners.clients import Scope
from duopass.server.services import reissue
from duopass.server.store.decisions import PolicyVersion, ReissueRequest
from duopass.server.store.tickets import Ticket
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/partner", tags=["partner"])

Issuer = Annotated[Partner, Depends(partner_for(Scope.TICKETS_ISSUE))]
Reissuer = Annotated[Partner, Depends(partner_for(Scope.TICKETS_REISSUE))]
OrderCode = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Z2-7]+$")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_CHARS_MAX,
        pattern=r"^[!-~]+$",
        description="the partner's key for this order (a UUID will do): the same key with the "
        "same body returns the first order; with another body, 409 `idempotency_mismatch`",
    ),
]
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]+")


class HolderRef(BaseModel):
    """A campus holder as the buyer names themself: both must match the card office's record."""

    number: str = Field(
        min_length=1,
        max_length=NUMBER_CHARS_MAX,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/-]*$",
        description="the student or staff number",
    )
    email: str = Field(min_length=3, max_length=EMAIL_CHARS_MAX, description="in any case")

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if EMAIL.fullmatch(value) is None:
            raise ValueError("not an e-mail address (local@domain.tld, 64 characters before @)")
        return value


class PartnerOrderIn(BaseModel):
    holder: HolderRef
    ticket_type: int = Field(ge=1, le=ROW_ID_MAX, description="one of the partner's own")
    quantity: int = Field(default=1, ge=1, le=TICKETS_PER_ORDER_MAX)


class PartnerReissueIn(BaseModel):
    device_key: str | None = Field(
        default=None,
        min_length=43,
        max_length=43,
        description="a device key the holder enrolled (unpadded base64url); none: their newest",
    )


_SUB = "tk-mfrgg2lte4ytimrrga3q"
_ORDER: dict[str, Any] = {
    "code": "K7Q2M9XW",
    "ticket_type": 7,
    "quantity": 2,
    "amount": 3000,
    "currency": "CNY",
    "state": "paid",
    "paid_by": "partner",
    "purchase_proof": "9f2c...e1",
    "ledger_index": 1234,
    "created_at": 1_796_000_000,
    "cancelled_at": None,
    "tickets": [_SUB, "tk-nbswy3dpeb3w64tmmq"],
    "ticket_states": [
        {"sub": _SUB, "state": "valid", "gen": 0, "event": "city-jazz-2026"},
        {"sub": "tk-nbswy3dpeb3w64tmmq", "state": "valid", "gen": 0, "event": "city-jazz-2026"},
    ],
}
_REQUEST: dict[str, Any] = {
    "request_id": "rq-5f1c2a9e0b7d4c3a",
    "sub": _SUB,
    "action": "reissue",
    "state": "step_up",
    "outcome": "step_up",
    "rule": "step_up_partner",
    "factors": ["totp", "email_otp", "passkey"],
    "factor_done": None,
    "policy": {"sha256": "4be1...07", "version": "2026-12-06.4"},
    "created_at": 1_796_000_000,
    "expires_at": 1_796_000_900,
    "finished_at": None,
    "old_cti": "8d0c...41",
    "new_cti": "e57a...9b",
    "gen": 0,
}


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


@router.post(
    "/orders",
    status_code=201,
    responses={**problems(403, 404, 409), 201: _json(_ORDER)},
)
def create_order(
    body: PartnerOrderIn, key: IdempotencyKey, partner: Issuer, ctx: Ctx, response: Response
) -> dict[str, Any]:
    """Tickets of one of the partner's ticket types for a campus holder (named by number and
    e-mail address, 404 `holder_not_found` unless both match), paid to the partner: it
    collected the price, so the books show it owing that to the card office. The holder's
    wallet receives the tickets at its next sync. Retried with the same `Idempotency-Key` and
    body: the first order again (200), nothing booked twice."""

    def work(unit: Unit) -> tuple[dict[str, Any], bool]:
        sold = sales.sell(
            unit,
            partner.id,
            number=body.holder.number,
            email=body.holder.email,
            type_id=body.ticket_type,
            quantity=body.quantity,
            key=key,
        )
        return catalogue.order(unit.session, partner.id, sold.order.code), sold.created

    answer, created = ctx.run(work)
    if not created:
        response.status_code = 200
    return answer


@router.post(
    "/orders/{code}/cancel",
    responses={**problems(404, 409), 200: _json(_ORDER | {"state": "cancelled"})},
)
def cancel_order(code: OrderCode, partner: Issuer, ctx: Ctx) -> dict[str, Any]:
    """Cancel an order the partner sold: its tickets are revoked (online at once, offline with
    the next bundle) and never minted again, and what the partner owes for it is taken back.
    The whole order: only before the event's doors open and while none of its tickets was
    checked in, reissued or moved (else 409 `order_not_cancellable`). Cancelling a cancelled
    order changes nothing."""

    def work(unit: Unit) -> dict[str, Any]:
        order = sales.cancel(unit, partner.id, code)
        return catalogue.order(unit.session, partner.id, order.code)

    return ctx.run(work)


def _described(unit: Unit, row: ReissueRequest) -> dict[str, Any]:
    answer = reissue.describe(row)
    ticket = unit.session.get(Ticket, row.ticket_id)
    assert ticket is not None
    version = unit.session.get(PolicyVersion, row.policy_sha256)
    answer["policy"]["version"] = None if version is None else version.version
    return answer | {"sub": ticket.sub, "gen": ticket.gen}


@router.post(
    "/tickets/{sub}/reissue",
    status_code=201,
    responses={**problems(404, 409), 201: _json(_REQUEST)},
)
def ask_reissue(sub: Sub, body: PartnerReissueIn, partner: Reissuer, ctx: Ctx) -> dict[str, Any]:
    """Ask, for the holder of one of the partner's tickets, that it move to their device (the
    key given, else the one they enrolled last). The reissue policy decides as for the holder's
    own request, with `auth.method` `partner`: by default the holder steps up in their wallet
    (`step_up`), then confirms there; `allow` moves it at once (`state` `done`); `review` waits
    for the card office; `deny` is final. On the ledger as every decision, naming the partner."""
    key = None if body.device_key is None else device_key(body.device_key)
    return ctx.run(lambda unit: _described(unit, sales.ask_reissue(unit, partner.id, sub, key)))


@router.get("/reissues/{request_id}", responses={**problems(404), 200: _json(_REQUEST)})
def show_reissue(request_id: RequestId, partner: Reissuer, ctx: Ctx) -> dict[str, Any]:
    """Where a reissue the partner asked for stands (`step_up`, `review`, `ready`, `done`,
    `denied` or `expired`), with the ticket's generation."""
    return ctx.run(
        lambda unit: _described(unit, sales.reissue_request(unit, partner.id, request_id))
    )
