"""The console's partner clients (`partners.clients`, as `/v1/admin/partners`): the list, which
admins and operators read, with what each owes the card office now and a link to its sales of
the day (`partner_settlement`), and for admins a new client. Its client id and secret (`dpsec_...`)
are shown once, in the answer to the form that made it (no-store, never in a URL, never logged:
the logbook redacts `dpsec_` too); the database keeps only the secret's keyed digest. The form
is checked field by field (`PartnerForm`), each refusal beside its field in the page's language
(422, what was typed kept). One client's page, revoking and rotating: `partner_actions`."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from duopass.server.limits import (
    PARTNER_CALLS_PER_MINUTE_DEFAULT,
    PARTNER_CALLS_PER_MINUTE_MAX,
    PARTNER_NAME_CHARS_MAX,
)
from duopass.server.partners import clients
from duopass.server.partners.clients import Scope
from duopass.server.problems import STATUS, Problem, ProblemCode
from duopass.server.services import accounts, partner_settlement
from duopass.server.services.partner_settlement import Owed
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.forms import TypedForm, read_typed
from duopass.server.web.console.visit import Visit, admin, signed_in

__all__ = ["SCOPES", "PartnerForm", "router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
Admin = Annotated[Visit, Depends(admin)]
SCOPES: Final = tuple(scope.value for scope in Scope)
NAME_READ_MAX: Final = PARTNER_NAME_CHARS_MAX + 1
"""What the server reads of a typed name: one character more is `too_long` beside the field."""
RATE_READ_MAX: Final = 16
DONE: Final = ("revoked",)
"""What the list reports after an action's redirect (anything else is ignored)."""


class PartnerForm(TypedForm):
    """A new client as typed (shown again) and each refused field's code."""

    def name(self) -> str:
        return self.text("name", PARTNER_NAME_CHARS_MAX)

    def scopes(self) -> list[Scope]:
        return [Scope(each) for each in self.picked("scopes", SCOPES, "choose_scopes")]

    def calls_per_minute(self) -> int:
        value = self.typed.get("calls_per_minute", "").strip()
        if not value.isascii() or not value.isdigit() or len(value) > 6:
            self.errors["calls_per_minute"] = "rate"
            return 0
        rate = int(value)
        if not 1 <= rate <= PARTNER_CALLS_PER_MINUTE_MAX:
            self.errors["calls_per_minute"] = "rate"
        return rate


def _listing(unit: Unit) -> tuple[list[dict[str, Any]], dict[str, list[Owed]], str]:
    """Every client, what each owes now (`partner_settlement.owed_now`) and today's date."""
    shown = [clients.describe(row, unit.now) for row in clients.listing(unit.session)]
    today = accounts.business_date(unit.now, unit.settings.zone)
    return shown, partner_settlement.owed_now(unit.session), today


def list_page(seen: Visit, *, status: int = 200, **values: Any) -> Response:
    shown, owed, today = seen.ctx.run(_listing)
    values.setdefault("typed", {"calls_per_minute": str(PARTNER_CALLS_PER_MINUTE_DEFAULT)})
    values.setdefault("chosen", [])
    values.setdefault("errors", {})
    values.setdefault("done", None)
    return seen.page(
        "console/partners.html",
        status=status,
        partners=shown,
        owed=owed,
        today=today,
        scopes=SCOPES,
        name_max=PARTNER_NAME_CHARS_MAX,
        rate_max=PARTNER_CALLS_PER_MINUTE_MAX,
        **values,
    )


@router.get("/partners")
def partners_page(
    seen: SignedIn, done: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    """Every partner client (never a secret); admins see the form for a new one."""
    return list_page(seen, done=done if done in DONE else None)


@router.post("/partners")
async def create(seen: Admin, request: Request) -> Response:
    """A new client (admins): the answer is the page showing its id and secret, once."""
    limits = {"name": NAME_READ_MAX, "calls_per_minute": RATE_READ_MAX}
    typed, chosen = await read_typed(request, limits, "scopes", SCOPES)
    form = PartnerForm(typed, chosen)
    name, scopes, rate = form.name(), form.scopes(), form.calls_per_minute()
    if form.errors:
        return list_page(seen, status=422, typed=typed, chosen=chosen, errors=form.errors)
    assert seen.staff is not None
    by = seen.staff.caller.id

    def made(unit: Unit) -> tuple[dict[str, Any], str]:
        row, secret = clients.create(unit, name=name, scopes=scopes, calls_per_minute=rate, by=by)
        return clients.describe(row, unit.now), secret

    try:
        partner, secret = seen.ctx.run(made)
    except Problem as refused:
        if refused.code is not ProblemCode.CONFLICT:
            raise
        errors = {"name": "too_many_partners"}
        return list_page(
            seen, status=STATUS[refused.code], typed=typed, chosen=chosen, errors=errors
        )
    return seen.page("console/partner_secret.html", partner=partner, secret=secret, made=True)
