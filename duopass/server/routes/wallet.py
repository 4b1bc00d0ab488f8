"""Holder endpoints: devices, the wallet's sync (credential issue and refresh), loss
reports and the holder's own account. A holder sees only their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from duopass.protocol.encoding import EncodingError, b64u_decode, b64u_encode
from duopass.protocol.trust import dump_policy
from duopass.server.deps import Ctx, HolderCaller
from duopass.server.errors import Code, Problem
from duopass.server.limits import ID_CHARS_MAX, ROW_ID_MAX
from duopass.server.openapi import problems
from duopass.server.params import Digits
from duopass.server.services import accounts, auth, credentials, people
from duopass.server.store.tables import Account, Posting, Transaction

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
        raise Problem(Code.INVALID_REQUEST, "not unpadded base64url") from exc


@router.post("/me/devices", response_model=DeviceOut, responses=problems(403, 409))
def enrol_device(body: DeviceIn, caller: HolderCaller, ctx: Ctx) -> DeviceOut:
    """Enrol a device key; the proof is its signature of the enrolment message."""
    now = ctx.now()
    device = ctx.run(
        lambda s: people.enrol_device(
            s,
            ctx.settings,
            ctx.keyring,
            caller.holder(s),
            public_key=_raw(body.public_key),
            proof=_raw(body.proof),
            now=now,
        )
    )
    return DeviceOut(device_id=device.id)


@router.delete("/me/devices/{device_id}", status_code=204, responses=problems(404))
def revoke_device(
    device_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits], caller: HolderCaller, ctx: Ctx
) -> None:
    now = ctx.now()
    ctx.run(lambda s: people.revoke_device(s, ctx.settings, caller.holder(s), device_id, now))


@router.post("/me/loss-report")
def report_loss(caller: HolderCaller, ctx: Ctx) -> dict[str, int]:
    """The phone is lost: every credential dies (online now, offline with the next bundle),
    every device key is revoked and every other session ends. Asks for a recent password
    sign-in, so a session left on the lost phone cannot report its owner's new phone lost."""
    now = ctx.now()
    auth.require_recent(caller, ctx.settings, now)
    revoked = ctx.run(
        lambda s: people.report_loss(s, ctx.settings, caller.holder(s), now, keep=caller.token)
    )
    return {"revoked": revoked}


@router.post("/wallet/sync", response_model=SyncOut, responses=problems(403, 404, 409, 429))
def sync(body: SyncIn, caller: HolderCaller, ctx: Ctx) -> SyncOut:
    """Issue or refresh the purse credential; a retry with the same request id changes nothing."""
    now = ctx.now()

    def work(session: Any) -> SyncOut:
        issued = credentials.sync(
            session,
            ctx.keyring,
            ctx.settings,
            holder=caller.holder(session),
            device_id=body.device_id,
            request_id=body.request_id,
            mark=body.mark,
            now=now,
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

    return ctx.run(work)


@router.get("/me/account", response_model=AccountOut)
def my_account(caller: HolderCaller, ctx: Ctx) -> AccountOut:
    """Balance, holds, free funds and the latest movements, dated when they happened."""

    def work(session: Any) -> AccountOut:
        holder = caller.holder(session)
        account = session.get(Account, holder.account_id)
        rows = session.execute(
            select(
                Transaction.kind, Transaction.occurred_at, Transaction.business_date, Posting.amount
            )
            .join(Posting, Posting.transaction_id == Transaction.id)
            .where(Posting.account_id == account.id)
            .order_by(Transaction.id.desc())
            .limit(50)
        )
        recent = [
            {"kind": k, "occurred_at": t, "business_date": d, "amount": a} for k, t, d, a in rows
        ]
        return AccountOut(
            currency=account.currency,
            balance=account.balance,
            overdraft=account.overdraft,
            held=account.held,
            free_funds=accounts.free_funds(account),
            recent=recent,
        )

    return ctx.run(work)
