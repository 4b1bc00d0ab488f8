"""Card-office endpoints: staff sign-in, holders, top-ups and refunds, merchants, terminals,
freezes at review. Operators and admins; creating terminals and merchants is for admins."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from duopass.server.context import Context
from duopass.server.deps import AdminCaller, Caller, Ctx, StaffCaller
from duopass.server.errors import Code, Problem
from duopass.server.limits import (
    AMOUNT_MAX,
    ID_CHARS_MAX,
    LOGIN_CHARS_MAX,
    PASSWORD_CHARS_MAX,
    REASON_CHARS_MAX,
    ROW_ID_MAX,
)
from duopass.server.openapi import problems
from duopass.server.params import Digits
from duopass.server.services import accounts, people, terminals, topups
from duopass.server.store.tables import Account, Holder

router = APIRouter(prefix="/v1/admin", tags=["card office"])


class HolderIn(BaseModel):
    login: str = Field(min_length=1, max_length=LOGIN_CHARS_MAX)
    person_id: str = Field(
        min_length=1, max_length=64, description="e.g. the student number; stored only as a digest"
    )
    password: str = Field(min_length=8, max_length=PASSWORD_CHARS_MAX)
    overdraft: int = Field(default=0, ge=0, le=AMOUNT_MAX)


class HolderOut(BaseModel):
    handle: str
    account_id: int


class MoneyIn(BaseModel):
    amount: int = Field(ge=1, le=AMOUNT_MAX)
    request_id: str = Field(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")


class RefundIn(MoneyIn):
    merchant_account_id: int = Field(ge=1, le=ROW_ID_MAX)


class TransactionOut(BaseModel):
    transaction_id: int
    business_date: str


class MerchantIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class TerminalIn(BaseModel):
    terminal_id: str = Field(min_length=1, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9._-]+$")
    mode: Literal["pay", "identity", "entry"]
    venue: str | None = Field(default=None, min_length=1, max_length=64)
    merchant_account_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    event: str | None = Field(default=None, min_length=1, max_length=64)


class FreezeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_CHARS_MAX)


def _holder(session: Any, handle: str) -> Holder:
    holder: Holder | None = session.scalars(
        select(Holder).where(Holder.handle == handle)
    ).one_or_none()
    if holder is None:
        raise Problem(Code.NOT_FOUND, "no such holder")
    return holder


@router.post("/holders", response_model=HolderOut, responses=problems(409))
def create_holder(body: HolderIn, _caller: StaffCaller, ctx: Ctx) -> HolderOut:
    now = ctx.now()
    holder = ctx.run(
        lambda s: people.create_holder(
            s,
            ctx.keyring,
            ctx.settings,
            login=body.login,
            person_id=body.person_id,
            password=body.password,
            overdraft=body.overdraft,
            now=now,
        )
    )
    return HolderOut(handle=holder.handle, account_id=holder.account_id)


@router.post(
    "/holders/{handle}/topups", response_model=TransactionOut, responses=problems(404, 409)
)
def top_up(handle: str, body: MoneyIn, _caller: StaffCaller, ctx: Ctx) -> TransactionOut:
    """Credit a holder; the same request id again returns the first answer and books nothing."""
    now = ctx.now()
    txn = ctx.run(
        lambda s: topups.top_up(
            s,
            ctx.settings,
            ctx.keyring,
            _holder(s, handle),
            amount=body.amount,
            request_id=body.request_id,
            now=now,
        )
    )
    return TransactionOut(transaction_id=txn.id, business_date=txn.business_date)


@router.post(
    "/holders/{handle}/refunds", response_model=TransactionOut, responses=problems(404, 409)
)
def refund(handle: str, body: RefundIn, _caller: StaffCaller, ctx: Ctx) -> TransactionOut:
    now = ctx.now()
    txn = ctx.run(
        lambda s: topups.refund(
            s,
            ctx.settings,
            ctx.keyring,
            _holder(s, handle),
            merchant_account_id=body.merchant_account_id,
            amount=body.amount,
            request_id=body.request_id,
            now=now,
        )
    )
    return TransactionOut(transaction_id=txn.id, business_date=txn.business_date)


@router.post("/holders/{handle}/freeze", status_code=204, responses=problems(404))
def freeze(handle: str, body: FreezeIn, caller: StaffCaller, ctx: Ctx) -> None:
    """Freeze at review: refused online at once, and in the next trust bundle."""
    _set_frozen(handle, body, caller, ctx, frozen=True)


@router.post("/holders/{handle}/unfreeze", status_code=204, responses=problems(404))
def unfreeze(handle: str, body: FreezeIn, caller: StaffCaller, ctx: Ctx) -> None:
    _set_frozen(handle, body, caller, ctx, frozen=False)


def _set_frozen(handle: str, body: FreezeIn, caller: Caller, ctx: Context, *, frozen: bool) -> None:
    now = ctx.now()
    ctx.run(
        lambda s: people.set_frozen(
            s,
            ctx.settings,
            ctx.keyring,
            _holder(s, handle),
            frozen=frozen,
            reason=body.reason,
            by=caller.id,
            now=now,
        )
    )


@router.post("/holders/{handle}/loss-report", responses=problems(404))
def report_loss(handle: str, _caller: StaffCaller, ctx: Ctx) -> dict[str, int]:
    """A loss reported at the counter: every credential and device key of the holder is
    revoked and every session of theirs ends; the holder signs in again and enrols anew."""
    now = ctx.now()
    revoked = ctx.run(
        lambda s: people.report_loss(s, ctx.settings, _holder(s, handle), now, keep=None)
    )
    return {"revoked": revoked}


@router.post("/merchants", response_model=dict[str, int], responses=problems(409))
def create_merchant(body: MerchantIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, int]:
    def work(session: Any) -> int:
        return accounts.create_merchant(session, body.name, ctx.settings.currency)

    return {"account_id": ctx.run(work)}


@router.post("/terminals", response_model=dict[str, str], responses=problems(404, 409))
def create_terminal(body: TerminalIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, str]:
    """Create a till or gate; the answer's one-time code enrols it."""
    now = ctx.now()
    code = ctx.run(
        lambda s: terminals.create(
            s,
            ctx.settings,
            ctx.keyring,
            terminal_id=body.terminal_id,
            mode=body.mode,
            venue=body.venue,
            merchant_account_id=body.merchant_account_id,
            currency=body.currency,
            event=body.event,
            now=now,
        )
    )
    return {"terminal_id": body.terminal_id, "enrol_code": code}


@router.get("/accounts/{account_id}", responses=problems(404))
def account(
    account_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits], _caller: StaffCaller, ctx: Ctx
) -> dict[str, Any]:
    def work(session: Any) -> dict[str, Any]:
        row = session.get(Account, account_id)
        if row is None:
            raise Problem(Code.NOT_FOUND, "no such account")
        return {
            "id": row.id,
            "kind": row.kind,
            "name": row.name,
            "currency": row.currency,
            "balance": row.balance,
            "overdraft": row.overdraft,
            "held": row.held,
            "free_funds": accounts.free_funds(row),
        }

    return ctx.run(work)


@router.get("/books")
def books(_caller: StaffCaller, ctx: Ctx) -> dict[str, int]:
    """The closed loop's check: every account's balance summed is zero."""
    total = ctx.run(lambda s: s.scalar(select(func.coalesce(func.sum(Account.balance), 0))))
    return {"sum_of_balances": int(total or 0)}
