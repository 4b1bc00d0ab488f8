"""A lost phone and erasure at the holder page.

- A loss report (any staff member: it protects the holder and moves no money):
  `holders.report_loss`, as `POST /v1/admin/holders/{h}/loss-report`: every device key and
  credential of the holder revoked, every session of theirs ended; who took it is in the log.
- A replacement at the counter (admins only): the holder, there in person with a new phone
  enrolled, gets every ticket on it (`lost.at_counter`): the staff member's in-person check
  stands for the step-up the policy may ask, and their id is on the ledger with each ticket
  moved. Admins only because it vouches for the holder's identity in place of their second
  factor: an operator reports the loss, and the holder can still move the tickets from the new
  phone themselves (`POST /v1/me/lost`).
- Erasure (admins only), behind a confirmation page on which the holder's login is typed again:
  `people.erase`, as `POST /v1/admin/holders/{h}/erase` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from sqlalchemy import select

from duopass.server.api.params import Handle
from duopass.server.limits import LOGIN_CHARS_MAX
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.services import holders, lookup, lost, people
from duopass.server.store.tables import Device
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.holder_forms import HolderForm
from duopass.server.web.console.holder_view import holder_page
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]


def _by(seen: Visit) -> int:
    assert seen.staff is not None
    return seen.staff.caller.id


@router.post("/holders/{handle}/loss-report")
def report_loss(seen: SignedIn, handle: Handle) -> Response:
    """The holder's phone reported lost (any staff member)."""
    by = _by(seen)
    seen.ctx.run(
        lambda unit: holders.report_loss(
            unit, holders.by_handle(unit.session, handle), keep=None, by=by
        )
    )
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=loss_reported")


@router.post("/holders/{handle}/replacement")
def replace(
    seen: Admin, handle: Handle, device: Annotated[str, Form(max_length=32)] = ""
) -> Response:
    """Every ticket onto the holder's new device, at the counter (admins)."""
    form = HolderForm({"device": device})
    by = _by(seen)

    def work(unit: Unit) -> dict[str, Any] | None:
        holder = holders.by_handle(unit.session, handle)
        live = unit.session.scalars(
            select(Device.id).where(Device.holder_id == holder.id, Device.revoked_at.is_(None))
        )
        chosen = form.choice("device", set(live))
        if form.errors:
            return None
        row = unit.session.get(Device, chosen)
        assert row is not None
        return lost.at_counter(unit, holder, row, by=by)

    try:
        moved = seen.ctx.run(work)
    except Problem as exc:  # a ticket's request waits for review already; the policy changed
        if exc.code is ProblemCode.NOT_FOUND:
            raise
        errors = {"device": exc.code.value}
        return holder_page(seen, handle, status=STATUS[exc.code], typed=form.typed, errors=errors)
    if moved is None:
        return holder_page(seen, handle, status=422, typed=form.typed, errors=form.errors)
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=replaced")


def _erase_page(seen: Visit, handle: str, *, status: int = 200, **values: Any) -> Response:
    shown = seen.ctx.run(lambda unit: lookup.holder(unit.session, handle))
    if shown["erased"] is not None:
        raise Problem(ProblemCode.CONFLICT, "this holder's personal data was erased already")
    values = {"typed": {}, "errors": {}} | values
    return seen.page("console/erase.html", status=status, holder=shown, **values)


@router.get("/holders/{handle}/erase")
def erase_page(seen: Admin, handle: Handle) -> Response:
    """The confirmation step: what erasure does, and the holder's login to type again."""
    return _erase_page(seen, handle)


@router.post("/holders/{handle}/erase")
def erase(
    seen: Admin,
    handle: Handle,
    confirm: Annotated[str, Form(max_length=LOGIN_CHARS_MAX * 4)] = "",
    keep_money: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Erase the holder's personal data (admins), once their login is typed again."""
    form = HolderForm({"confirm": confirm, "keep_money": keep_money})
    by = _by(seen)

    def work(unit: Unit) -> bool:
        holder = holders.by_handle(unit.session, handle)
        form.same_as("confirm", holder.login)
        if form.errors:
            return False
        people.erase(unit, holder, by=by, keep_money=keep_money == "on")
        return True

    try:
        erased = seen.ctx.run(work)
    except Problem as exc:
        if exc.code is ProblemCode.NOT_FOUND:
            raise
        status = STATUS[exc.code]
        return _erase_page(
            seen, handle, status=status, typed=form.typed, errors={"erase": exc.code.value}
        )
    if not erased:
        return _erase_page(seen, handle, status=422, typed=form.typed, errors=form.errors)
    people.scrub(seen.ctx.db)
    return seen.redirect(f"{PREFIX}/holders/{handle}?done=erased")
