"""Holder endpoints: devices, the wallet's sync (credential issue and refresh), loss
reports and the holder's own account. A holder sees only their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.trust import dump_policy
from duopass.server.api.deps import Client, Ctx, HolderCaller, Installation
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits
from duopass.server.limits import ID_CHARS_MAX, ROW_ID_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    accounts,
    credentials,
    devices,
    holders,
    risk_engine,
    sessions,
)
from duopass.server.store.tables import Device
from duopass.server.unit_of_work import Unit

router = APIRouter(prefix="/v1", tags=["holder"])


class DeviceIn(BaseModel):
    public_key: str = Field(min_length=43, max_length=43)
    proof: str = Field(min_length=86, max_length=86)


class DeviceOut(BaseModel):
    device_id: int


class SyncIn(BaseModel):
    device_id: int = Field(ge=1, le=ROW_ID_MAX)
    request_id: str = Field(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")
    mark: int | None = Field(
        default=None, ge=-1, le=1000, description="highest counter displayed + reserve"
    )


class SyncOut(BaseModel):
    credential: str = Field(description="the L1, unpadded base64url of its CBOR")
    cti: str
    uses: int
    txmax: int
    exp: int
    offline: bool
    server_time: int
    policy: dict[str, Any] = Field(
        description="the issuer's §3 policy (and late window) as the trust store file writes it:"
        " a wallet hides a code freshness_s after showing it (§6)"
    )


class AccountOut(BaseModel):
    currency: str
    balance: int
    overdraft: int
    held: int
    free_funds: int
    recent: list[dict[str, Any]]


def _raw(text: str) -> bytes:
    try:
        return b64u_decode(text)
    except EncodingError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, "not unpadded base64url") from exc


@router.post("/me/devices", response_model=DeviceOut, responses=problems(403, 409, 429))
def enrol_device(
    body: DeviceIn,
    caller: HolderCaller,
    ctx: Ctx,
    client: Client,
    installation: Installation = None,
) -> DeviceOut:
    """Enrol a device key; the proof is its signature of the enrolment message."""
    key, proof = _raw(body.public_key), _raw(body.proof)

    def enrol(unit: Unit) -> Device:
        holder = caller.holder(unit.session)
        return devices.enrol_device(
            unit, holder, public_key=key, proof=proof, client=client, installation=installation
        )

    device = ctx.run_refusable(risk_engine.kept(enrol))
    return DeviceOut(device_id=device.id)


@router.delete("/me/devices/{device_id}", status_code=204, responses=problems(404))
def revoke_device(
    device_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits], caller: HolderCaller, ctx: Ctx
) -> None:
    ctx.run(lambda unit: devices.revoke_device(unit, caller.holder(unit.session), device_id))


@router.post("/me/loss-report")
def report_loss(caller: HolderCaller, ctx: Ctx) -> dict[str, int]:
    """The phone is lost: every credential dies (online now, offline with the next bundle),
    every device key is revoked and every other session ends. Asks for a recent password
    sign-in, so a session left on the lost phone cannot report its owner's new phone lost."""
    sessions.require_recent(caller, ctx.settings, ctx.now())
    revoked = ctx.run(
        lambda unit: holders.report_loss(unit, caller.holder(unit.session), keep=caller.token)
    )
    return {"revoked": revoked}


@router.post("/wallet/sync", response_model=SyncOut, responses=problems(403, 404, 409, 429))
def sync(body: SyncIn, caller: HolderCaller, ctx: Ctx, client: Client) -> SyncOut:
    """Issue or refresh the purse credential; a retry with the same request id changes nothing."""

    def work(unit: Unit) -> SyncOut:
        issued = credentials.sync(
            unit,
            holder=caller.holder(unit.session),
            device_id=body.device_id,
            request_id=body.request_id,
            mark=body.mark,
            client=client,
        )
        c = issued.credential
        return SyncOut(
            credential=b64u_encode(c.l1),
            cti=b64u_encode(c.cti),
            uses=c.uses,
            txmax=c.txmax,
            exp=c.exp,
            offline=c.offline,
            server_time=issued.server_time,
            policy=dump_policy(ctx.settings.policy),
        )

    return ctx.run_refusable(risk_engine.kept(work))


@router.get("/me/account", response_model=AccountOut)
def my_account(caller: HolderCaller, ctx: Ctx) -> AccountOut:
    """Balance, holds, free funds and the latest movements, dated when they happened."""
    return AccountOut(**ctx.run(lambda unit: accounts.statement(unit.session, caller.id)))
