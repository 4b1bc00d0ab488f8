"""Card-office endpoints: staff sign-in, holders, top-ups and refunds, merchants, terminals,
freezes at review. Operators and admins; creating terminals and merchants is for admins."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, field_validator

from duopass.server.api.deps import AdminCaller, Caller, Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.params import Digits, Handle
from duopass.server.context import AppContext
from duopass.server.limits import (
    AMOUNT_MAX,
    EMAIL_CHARS_MAX,
    ID_CHARS_MAX,
    LOGIN_CHARS_MAX,
    NAME_CHARS_MAX,
    NUMBER_CHARS_MAX,
    PASSWORD_CHARS_MAX,
    PASSWORD_CHARS_MIN,
    PHONE_CHARS_MAX,
    REASON_CHARS_MAX,
    ROW_ID_MAX,
)
from duopass.server.services import accounts, holders, risk_engine, terminals, topups
from duopass.server.services.people import Person

router = APIRouter(prefix="/v1/admin", tags=["card office"])


class HolderIn(BaseModel):
    """A new holder. Name, number, e-mail and phone are kept apart from the books and can be
    erased (`POST /v1/admin/holders/{handle}/erase`); the ledger sees only a keyed digest."""

    login: str = Field(min_length=1, max_length=LOGIN_CHARS_MAX, pattern=r"^[!-~]+$")
    name: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")
    number: str = Field(
        min_length=1,
        max_length=NUMBER_CHARS_MAX,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/-]*$",
        description="the student or staff number: one holder each",
    )
    email: str = Field(min_length=3, max_length=EMAIL_CHARS_MAX)
    phone: str | None = Field(
        default=None, min_length=3, max_length=PHONE_CHARS_MAX, pattern=r"^\+?[0-9][0-9 ()-]*$"
    )
    password: str = Field(min_length=PASSWORD_CHARS_MIN, max_length=PASSWORD_CHARS_MAX)
    overdraft: int = Field(default=0, ge=0, le=AMOUNT_MAX)

    @field_validator("name")
    @classmethod
    def _some_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a name has at least one letter, not only spaces")
        return value

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if EMAIL.fullmatch(value) is None:
            raise ValueError("not an e-mail address (local@domain.tld, 64 characters before @)")
        return value


EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]+")


class HolderOut(BaseModel):
    id: int
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


@router.post("/holders", response_model=HolderOut, responses=problems(409))
def create_holder(body: HolderIn, _caller: StaffCaller, ctx: Ctx) -> HolderOut:
    holder = ctx.run(
        lambda unit: holders.create_holder(
            unit,
            login=body.login,
            person=Person(name=body.name, number=body.number, email=body.email, phone=body.phone),
            password=body.password,
            overdraft=body.overdraft,
        )
    )
    return HolderOut(id=holder.id, handle=holder.handle, account_id=holder.account_id)


@router.post(
    "/holders/{handle}/topups",
    response_model=TransactionOut,
    responses=problems(403, 404, 409, 429),
)
def top_up(handle: str, body: MoneyIn, _caller: AdminCaller, ctx: Ctx) -> TransactionOut:
    """Credit a holder (admins: an operator moves no money); the same request id again returns
    the first answer and books nothing."""
    txn = ctx.run_refusable(
        risk_engine.kept(
            lambda unit: topups.top_up(
                unit,
                holders.by_handle(unit.session, handle),
                amount=body.amount,
                request_id=body.request_id,
            )
        )
    )
    return TransactionOut(transaction_id=txn.id, business_date=txn.business_date)


@router.post(
    "/holders/{handle}/refunds",
    response_model=TransactionOut,
    responses=problems(403, 404, 409, 429),
)
def refund(handle: str, body: RefundIn, _caller: AdminCaller, ctx: Ctx) -> TransactionOut:
    """Pay a merchant's refund into a holder's account (admins: an operator moves no money)."""
    txn = ctx.run_refusable(
        risk_engine.kept(
            lambda unit: topups.refund(
                unit,
                holders.by_handle(unit.session, handle),
                merchant_account_id=body.merchant_account_id,
                amount=body.amount,
                request_id=body.request_id,
            )
        )
    )
    return TransactionOut(transaction_id=txn.id, business_date=txn.business_date)


@router.post("/holders/{handle}/freeze", status_code=204, responses=problems(404))
def freeze(handle: Handle, body: FreezeIn, caller: StaffCaller, ctx: Ctx) -> None:
    """Freeze at review: refused online at once, and in the next trust bundle."""
    _set_frozen(handle, body, caller, ctx, frozen=True)


@router.post("/holders/{handle}/unfreeze", status_code=204, responses=problems(404))
def unfreeze(handle: Handle, body: FreezeIn, caller: StaffCaller, ctx: Ctx) -> None:
    _set_frozen(handle, body, caller, ctx, frozen=False)


def _set_frozen(
    handle: str, body: FreezeIn, caller: Caller, ctx: AppContext, *, frozen: bool
) -> None:
    ctx.run(
        lambda unit: holders.set_frozen(
            unit,
            holders.by_handle(unit.session, handle),
            frozen=frozen,
            reason=body.reason,
            by=caller.id,
        )
    )


@router.post("/holders/{handle}/loss-report", responses=problems(404))
def report_loss(handle: Handle, _caller: StaffCaller, ctx: Ctx) -> dict[str, int]:
    """A loss reported at the counter: every credential and device key of the holder is
    revoked and every session of theirs ends; the holder signs in again and enrols anew."""
    revoked = ctx.run(
        lambda unit: holders.report_loss(unit, holders.by_handle(unit.session, handle), keep=None)
    )
    return {"revoked": revoked}


@router.post("/merchants", response_model=dict[str, int], responses=problems(409))
def create_merchant(body: MerchantIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, int]:
    currency = ctx.settings.currency
    account_id = ctx.run(lambda unit: accounts.create_merchant(unit.session, body.name, currency))
    return {"account_id": account_id}


@router.post("/terminals", response_model=dict[str, str], responses=problems(404, 409))
def create_terminal(body: TerminalIn, _caller: AdminCaller, ctx: Ctx) -> dict[str, str]:
    """Create a till or gate; the answer's one-time code enrols it."""
    code = ctx.run(
        lambda unit: terminals.create(
            unit,
            terminal_id=body.terminal_id,
            mode=body.mode,
            venue=body.venue,
            merchant_account_id=body.merchant_account_id,
            currency=body.currency,
            event=body.event,
        )
    )
    return {"terminal_id": body.terminal_id, "enrol_code": code}


@router.post("/terminals/{terminal_id}/revoke", responses=problems(404))
def revoke_terminal(
    terminal_id: Annotated[
        str, Path(min_length=1, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9._-]+$")
    ],
    caller: AdminCaller,
    ctx: Ctx,
) -> dict[str, bool]:
    """Retire a till or gate: every request it signs is refused (401) from this answer on, by
    every process of this server (others on the same database within 5 s). Upload its journal
    first: a revoked terminal uploads nothing more."""
    revoked = ctx.run(lambda unit: terminals.revoke(unit, terminal_id, by=caller.id))
    ctx.terminals.changes.bump()
    return {"revoked": revoked}


@router.get("/accounts/{account_id}", responses=problems(404))
def account(
    account_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits], _caller: StaffCaller, ctx: Ctx
) -> dict[str, Any]:
    return ctx.run(lambda unit: accounts.describe(unit.session, account_id))


@router.get("/books")
def books(_caller: StaffCaller, ctx: Ctx) -> dict[str, int]:
    """The closed loop's check: every account's balance summed is zero."""
    return {"sum_of_balances": ctx.run(lambda unit: accounts.books(unit.session))}
