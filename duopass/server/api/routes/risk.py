"""The risk engine for the card office (`GET /v1/admin/risk`): the keys most at risk, the recent
decisions with their evidence, the policy in force. Staff read it; the decisions a person acts
on are in the review queue (`/v1/admin/alerts`, kind `risk_decision`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from duopass.server.api.deps import Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.limits import (
    PAGE_ITEMS_DEFAULT,
    RISK_KEY_CHARS_MAX,
    RISK_WINDOW_S_DEFAULT,
    RISK_WINDOW_S_MAX,
)
from duopass.server.services import risk_view

router = APIRouter(prefix="/v1/admin/risk", tags=["card office"])

ActionName = Literal["allow", "step_up", "review", "deny", "rate_limit", "suspend_offline"]
PointName = Literal[
    "sign_in",
    "device_enrolment",
    "wallet_sync",
    "reissue",
    "top_up",
    "refund",
    "journal",
    "partner_call",
]


class PolicyPin(BaseModel):
    version: str
    sha256: str
    activated_at: int


class KeyOut(BaseModel):
    key: str
    """`kind:value`: `account:holder:7`, `network:10.0.0.0/24`, `address:...`, `device:3`."""
    max_score: int
    total_score: int
    decisions: int
    last_at: int


class FeatureOut(BaseModel):
    feature: str
    key: str
    value: int | str | None


class DecisionOut(BaseModel):
    id: int
    at: int
    point: str
    guard: str | None
    """The guard that acted; null when none did (a score above 0, allowed)."""
    action: str
    score: int
    signals: list[str]
    features: list[FeatureOut]
    subject: list[str]
    policy_version: str
    policy_sha256: str
    released_by: int | None = None
    """A review a person released (`POST /v1/admin/alerts/{id}/review`, `release`): that
    alert's id; the request went through."""


class KeysPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None


class DecisionsPage(BaseModel):
    items: list[DecisionOut]
    next_cursor: str | None


class RiskOut(BaseModel):
    policy: PolicyPin | None
    """The policy the database decides with (null before one was loaded)."""
    window_s: int
    top_keys: KeysPage
    decisions: DecisionsPage


WindowS = Annotated[int, Query(ge=60, le=RISK_WINDOW_S_MAX), Digits]
KeyName = Annotated[
    str | None,
    Query(
        min_length=3,
        max_length=RISK_KEY_CHARS_MAX,
        pattern=r"^[a-z]+:[!-~]+$",
        description="only the decisions that read this key",
    ),
]


@router.get("", response_model=RiskOut, responses=problems(422))
def overview(
    *,
    _caller: StaffCaller,
    ctx: Ctx,
    window_s: WindowS = RISK_WINDOW_S_DEFAULT,
    keys_limit: Limit = PAGE_ITEMS_DEFAULT,
    keys_cursor: Cursor = None,
    limit: Limit = PAGE_ITEMS_DEFAULT,
    cursor: Cursor = None,
    action: ActionName | None = None,
    point: PointName | None = None,
    key: KeyName = None,
) -> RiskOut:
    """The keys of the decisions of the last `window_s` seconds by highest score (then summed
    score, then key), `keys_limit` at a time (`top_keys.next_cursor` as `keys_cursor`); the
    decisions newest first, `limit` at a time, of one `action`, `point` or `key` if asked, each
    with its guard, signals, the features it read with their values, and the policy's pin;
    and the active policy's version and SHA-256. Operators and admins."""
    only = risk_view.Filter(action=action, point=point, key=key)
    answer = ctx.run(
        lambda unit: risk_view.overview(
            unit,
            window_s=window_s,
            keys=(keys_limit, keys_cursor),
            listed=(limit, cursor),
            only=only,
        )
    )
    return RiskOut.model_validate(answer)
