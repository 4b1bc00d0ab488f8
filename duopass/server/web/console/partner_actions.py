"""One partner client in the console: its details and, for admins, revoking it (a checkbox
confirms; `clients.revoke`, then a redirect, 303, to the list) and rotating its secret with an
overlap (`clients.rotate`, the new secret shown once in the answer, never in a URL or a log)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import Response

from duopass.server.api.params import Digits
from duopass.server.limits import PARTNER_SECRET_OVERLAP_S_DEFAULT, ROW_ID_MAX
from duopass.server.partners import clients
from duopass.server.problems import Problem, ProblemCode
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import PREFIX, Visit, admin, signed_in

__all__ = ["OVERLAPS", "router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
ClientRow = Annotated[int, Path(ge=1, le=ROW_ID_MAX), Digits]
OVERLAPS: Final = (0, 3600, PARTNER_SECRET_OVERLAP_S_DEFAULT, 7 * 86_400)
"""The overlaps a rotation offers: none, an hour, a day (the API's default), a week (its most)."""


def partner_page(seen: Visit, row_id: int, *, status: int = 200, **values: Any) -> Response:
    partner = seen.ctx.run(
        lambda unit: clients.describe(clients.one(unit.session, row_id), unit.now)
    )
    values.setdefault("errors", {})
    return seen.page(
        "console/partner.html",
        status=status,
        partner=partner,
        overlaps=OVERLAPS,
        overlap_default=PARTNER_SECRET_OVERLAP_S_DEFAULT,
        **values,
    )


@router.get("/partners/{row_id}")
def one_page(seen: SignedIn, row_id: ClientRow) -> Response:
    """The client (never its secret); admins see the revoke and rotate forms while active."""
    return partner_page(seen, row_id)


def _refused_if_revoked(seen: Visit, row_id: int, action: Any) -> Response | None:
    """`action` run in a unit; a revoked client's 409 said on its page instead."""
    try:
        seen.ctx.run(action)
    except Problem as refused:
        if refused.code is not ProblemCode.CONFLICT:
            raise
        return partner_page(seen, row_id, status=409, errors={"state": "revoked_already"})
    return None


@router.post("/partners/{row_id}/revoke")
def revoke(
    seen: Admin, row_id: ClientRow, confirm: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    """For good: no new token, and the tokens it holds are refused from the next call."""
    if confirm != "yes":
        return partner_page(seen, row_id, status=422, errors={"confirm": "confirm"})
    refused = _refused_if_revoked(seen, row_id, lambda unit: clients.revoke(unit, row_id))
    return refused or seen.redirect(f"{PREFIX}/partners?done=revoked")


@router.post("/partners/{row_id}/rotate")
def rotate(
    seen: Admin, row_id: ClientRow, overlap_s: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    """A new secret, shown once in the answer; the old one authenticates for the overlap."""
    if not overlap_s.isascii() or not overlap_s.isdigit() or int(overlap_s) not in OVERLAPS:
        return partner_page(seen, row_id, status=422, errors={"overlap_s": "choose"})
    overlap = int(overlap_s)
    shown: dict[str, Any] = {}

    def rotated(unit: Unit) -> None:
        row, secret = clients.rotate(unit, row_id, overlap_s=overlap)
        shown.update(partner=clients.describe(row, unit.now), secret=secret)

    refused = _refused_if_revoked(seen, row_id, rotated)
    return refused or seen.page("console/partner_secret.html", made=False, **shown)
