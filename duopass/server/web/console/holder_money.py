"""Money at the holder page, for admins only (an operator moves no money: 403 forbidden, the
console's refusal page): a top-up (`topups.top_up`, as `POST /v1/admin/holders/{h}/topups`) and
a refund from a merchant (`topups.refund`, as `…/refunds`), each idempotent by the form's
request id, its amount typed in yuan and checked field by field (`holder_forms`). A refusal
the service gives (no funds at the merchant, the risk policy) comes back beside the form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from duopass.server.api.params import Handle
from duopass.server.limits import ID_CHARS_MAX
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.services import holders, risk_engine, topups
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.holder_forms import AMOUNT_TYPED_MAX, HolderForm
from duopass.server.web.console.holder_view import holder_page, merchant_ids
from duopass.server.web.console.visit import PREFIX, Visit, admin

__all__ = ["router"]

router = APIRouter()
Admin = Annotated[Visit, Depends(admin)]
RequestId = Annotated[str, Form(min_length=8, max_length=ID_CHARS_MAX, pattern=r"^[A-Za-z0-9_-]+$")]
Amount = Annotated[str, Form(max_length=AMOUNT_TYPED_MAX)]


def _refused(seen: Visit, handle: str, exc: Problem, form: HolderForm, where: str) -> Response:
    """A service's refusal (a risk decision's, a merchant's takings too small) by its form; a
    holder not found is the refusal page."""
    if exc.code is ProblemCode.NOT_FOUND:
        raise exc
    errors = {where: exc.code.value}
    return holder_page(seen, handle, status=STATUS[exc.code], typed=form.typed, errors=errors)


@router.post("/holders/{handle}/topups")
def top_up(seen: Admin, handle: Handle, request_id: RequestId, amount: Amount = "") -> Response:
    """Credit the holder (admins), as `POST /v1/admin/holders/{handle}/topups` does."""
    form = HolderForm({"amount": amount})
    minor = form.amount("amount")
    if form.errors:
        return holder_page(seen, handle, status=422, typed=form.typed, errors=form.errors)

    def work(unit: Unit) -> object:
        return topups.top_up(
            unit, holders.by_handle(unit.session, handle), amount=minor, request_id=request_id
        )

    try:
        seen.ctx.run_refusable(risk_engine.kept(work))
    except Problem as exc:
        return _refused(seen, handle, exc, form, "amount")
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=topped_up")


@router.post("/holders/{handle}/refunds")
def refund(
    seen: Admin,
    handle: Handle,
    refund_request_id: RequestId,
    refund_amount: Amount = "",
    merchant: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Pay a merchant's refund into the holder's account (admins), as
    `POST /v1/admin/holders/{handle}/refunds` does: at most what the merchant took in."""
    form = HolderForm({"refund_amount": refund_amount, "merchant": merchant})
    minor = form.amount("refund_amount")
    offered = seen.ctx.run(lambda unit: merchant_ids(unit, handle))
    merchant_id = form.choice("merchant", offered)
    if form.errors:
        return holder_page(seen, handle, status=422, typed=form.typed, errors=form.errors)

    def work(unit: Unit) -> object:
        return topups.refund(
            unit,
            holders.by_handle(unit.session, handle),
            merchant_account_id=merchant_id,
            amount=minor,
            request_id=refund_request_id,
        )

    try:
        seen.ctx.run_refusable(risk_engine.kept(work))
    except Problem as exc:
        return _refused(seen, handle, exc, form, "refund_amount")
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=refunded")
