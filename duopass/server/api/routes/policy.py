"""The decision policy, in the open: the one this server decides with (anyone may re-check a
decision), every version ever used by its hash (auditors replay with it), and a reload for
admins after the file changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from duopass.server.api.deps import AdminCaller, Ctx
from duopass.server.api.openapi import problems
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import policy_store

router = APIRouter(tags=["policy"])

Sha256 = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{64}$", description="a policy's SHA-256, 64 lower-case hex digits"),
]


class RuleOut(BaseModel):
    name: str
    when: str
    outcome: str
    factors: list[str]


class SignalOut(BaseModel):
    name: str
    when: str
    weight: int


class GuardOut(BaseModel):
    name: str
    points: list[str]
    when: str
    action: str
    factors: list[str]
    retry_after_s: int


class PolicyOut(BaseModel):
    version: str
    sha256: str
    rules: list[RuleOut]
    inputs_schema: int
    signals: list[SignalOut] = []
    """The risk half: weighted signals (docs/policy.md)."""
    guards: list[GuardOut] = []
    """The risk half: guards per point, first match acts."""


class ReloadOut(BaseModel):
    version: str
    sha256: str
    activated: bool
    """False when this policy was the active one already."""


@router.get("/v1/policy", response_model=PolicyOut, responses=problems(503))
def policy(ctx: Ctx) -> PolicyOut:
    """The policy this server decides with: its version, the SHA-256 of its text, its rules in
    order (first match wins) and the version of the input document they read. Public."""
    if ctx.pinned_policy is None:
        raise Problem(ProblemCode.POLICY_CHANGED, "this server decides with no policy")
    return PolicyOut.model_validate(ctx.pinned_policy.policy.describe())


@router.get(
    "/v1/policy/versions/{sha256}",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **problems(404)},
)
def version(sha256: Sha256, ctx: Ctx) -> PlainTextResponse:
    """The text of a policy version this server has used, byte for byte as loaded (its
    SHA-256 is the one in the path): what `duopass policy replay` runs again. Public."""
    stored = ctx.run(lambda unit: policy_store.version_text(unit, bytes.fromhex(sha256)))
    if stored is None:
        raise Problem(ProblemCode.NOT_FOUND, "no policy version with this SHA-256")
    return PlainTextResponse(stored.text, media_type="text/plain; charset=utf-8")


@router.post("/v1/admin/policy/reload", response_model=ReloadOut, responses=problems(422))
def reload(_caller: AdminCaller, ctx: Ctx) -> ReloadOut:
    """Read this server's policy file again and make it the active one (other server processes
    then refuse decisions until they reload too). A malformed file is refused (422 bad_policy,
    with its line and column) and the policy in use stays."""
    return ReloadOut.model_validate(policy_store.reload(ctx))
