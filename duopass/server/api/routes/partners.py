"""Partner clients, for admins: create one (its secret shown once), list them, revoke one,
rotate its secret with an overlap. How a partner gets a token and calls: docs/partners.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from duopass.server.api.deps import AdminCaller, Ctx
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.limits import (
    PARTNER_CALLS_PER_MINUTE_DEFAULT,
    PARTNER_CALLS_PER_MINUTE_MAX,
    PARTNER_NAME_CHARS_MAX,
    PARTNER_SECRET_OVERLAP_S_DEFAULT,
    PARTNER_SECRET_OVERLAP_S_MAX,
    ROW_ID_MAX,
)
from duopass.server.partners import clients
from duopass.server.partners.clients import Scope
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1/admin/partners", tags=["partners"])

ClientRowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
_SECRET_EXAMPLE = "dpsec_5QkW0m8Zr2y3h9f8Kx1VbN4tLc7JpA6sD0eR3uYiGo"  # noqa: S105 (an example)
_CLIENT_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "client_id": "dpc_q3Zt7wN2kF8xR1mB5vC9yA",
    "name": "City Tickets",
    "scopes": ["checkin:redeem", "tickets:read"],
    "calls_per_minute": 600,
    "state": "active",
    "created_at": 1_796_000_000,
    "revoked_at": None,
    "previous_secret_until": None,
}


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


class ClientIn(BaseModel):
    """A partner platform: its name and the scopes it is granted."""

    model_config = {
        "json_schema_extra": {
            "examples": [{"name": "City Tickets", "scopes": ["checkin:redeem", "tickets:read"]}]
        }
    }
    name: str = Field(
        min_length=1, max_length=PARTNER_NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    calls_per_minute: int = Field(
        default=PARTNER_CALLS_PER_MINUTE_DEFAULT, ge=1, le=PARTNER_CALLS_PER_MINUTE_MAX
    )


class RotateIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"overlap_s": 86_400}]}}
    overlap_s: int = Field(
        default=PARTNER_SECRET_OVERLAP_S_DEFAULT,
        ge=0,
        le=PARTNER_SECRET_OVERLAP_S_MAX,
        description="how long the replaced secret still authenticates",
    )


@router.post(
    "",
    status_code=201,
    responses={**problems(409), 201: _json(_CLIENT_EXAMPLE | {"client_secret": _SECRET_EXAMPLE})},
)
def create(body: ClientIn, caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """A new client, active. The answer's `client_secret` is shown this once (it is stored as a
    keyed digest): the partner gets tokens with it at `/v1/oauth/token`."""

    def made(unit: Unit) -> dict[str, Any]:
        row, secret = clients.create(
            unit,
            name=body.name,
            scopes=body.scopes,
            calls_per_minute=body.calls_per_minute,
            by=caller.id,
        )
        return clients.describe(row, unit.now) | {"client_secret": secret}

    return ctx.run(made)


@router.get("", responses={200: _json({"items": [_CLIENT_EXAMPLE]})})
def listing(_caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """Every client, oldest first (never a secret)."""
    return ctx.run(
        lambda unit: {
            "items": [clients.describe(row, unit.now) for row in clients.listing(unit.session)]
        }
    )


@router.get("/{client_row}", responses={**problems(404), 200: _json(_CLIENT_EXAMPLE)})
def one(client_row: ClientRowId, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    return ctx.run(lambda unit: clients.describe(clients.one(unit.session, client_row), unit.now))


@router.post("/{client_row}/revoke", responses=problems(404, 409))
def revoke(client_row: ClientRowId, _caller: AdminCaller, ctx: Ctx) -> dict[str, Any]:
    """For good: no new token, and the tokens it holds are refused from the next call."""
    return ctx.run(lambda unit: clients.describe(clients.revoke(unit, client_row), unit.now))


@router.post(
    "/{client_row}/rotate",
    responses={
        **problems(404, 409),
        200: _json(
            _CLIENT_EXAMPLE
            | {"previous_secret_until": 1_796_086_400, "client_secret": _SECRET_EXAMPLE}
        ),
    },
)
def rotate(
    client_row: ClientRowId, body: RotateIn, _caller: AdminCaller, ctx: Ctx
) -> dict[str, Any]:
    """A new secret, shown this once; the old one still gets tokens until
    `previous_secret_until`, so the partner can switch without a gap."""

    def rotated(unit: Unit) -> dict[str, Any]:
        row, secret = clients.rotate(unit, client_row, overlap_s=body.overlap_s)
        return clients.describe(row, unit.now) | {"client_secret": secret}

    return ctx.run(rotated)
