"""One holder's page as the console draws it: the holder whole (`lookup.holder`, as
`GET /v1/admin/holders/{handle}`), their tickets (event, type, state, entries used, an open
reissue request), their online scans and journal entries a page each (`lookup.scans_of` and
`journal_of`, as `…/scans` and `…/journal`), and what the forms offer (merchants for a refund,
devices for a replacement). Every form of the page renders through `holder_page`, refused
fields and typed values included."""

from __future__ import annotations

import uuid
from typing import Any, Final

from fastapi.responses import Response
from sqlalchemy import select

from duopass.server.limits import REASON_CHARS_MAX
from duopass.server.services import holders, lookup, oidc_binding, tickets
from duopass.server.store.decisions import ReissueRequest
from duopass.server.store.tables import Account
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.holder_forms import AMOUNT_TYPED_MAX
from duopass.server.web.console.visit import Visit

__all__ = ["DONE", "HISTORY_SHOWN", "holder_page", "merchant_ids", "merchants", "read"]

HISTORY_SHOWN: Final = 10
"""Scans, and journal entries, a page."""
TICKETS_SHOWN: Final = 100
MERCHANTS_SHOWN: Final = 200
DONE: Final = frozenset(
    {
        "frozen",
        "unfrozen",
        "topped_up",
        "refunded",
        "loss_reported",
        "replaced",
        "erased",
        "unbound",
    }
)
"""What a redirect after a holder form may say was done (`?done=`); anything else is ignored."""


def _tickets(unit: Unit, holder_id: int) -> list[dict[str, Any]]:
    session = unit.session
    rows = list(tickets.of_holder(session, holder_id))[-TICKETS_SHOWN:]
    waiting = dict(
        session.execute(
            select(ReissueRequest.ticket_id, ReissueRequest.state).where(
                ReissueRequest.holder_id == holder_id,
                ReissueRequest.state.in_(("step_up", "review")),
                ReissueRequest.expires_at > unit.now,
            )
        ).all()
    )
    return [tickets.describe(session, row, None) | {"waiting": waiting.get(row.id)} for row in rows]


def merchants(unit: Unit, currency: str) -> list[dict[str, Any]]:
    rows = unit.session.execute(
        select(Account.id, Account.name)
        .where(Account.kind == "merchant", Account.currency == currency)
        .order_by(Account.name)
        .limit(MERCHANTS_SHOWN)
    )
    return [{"id": row[0], "name": row[1].removeprefix("merchant:")} for row in rows]


def merchant_ids(unit: Unit, handle: str) -> set[int]:
    """The merchants a refund to this holder may come from (those the page offers)."""
    holder = holders.by_handle(unit.session, handle)
    account = unit.session.get(Account, holder.account_id)
    assert account is not None
    return {item["id"] for item in merchants(unit, account.currency)}


def read(
    unit: Unit, handle: str, *, scans: str | None = None, journal: str | None = None
) -> dict[str, Any]:
    """Everything the holder page shows; `scans` and `journal`: those lists' cursors."""
    session = unit.session
    shown = lookup.holder(session, handle)
    return {
        "holder": shown,
        "tickets": _tickets(unit, shown["id"]),
        "scans": lookup.scans_of(session, handle, limit=HISTORY_SHOWN, cursor=scans),
        "journal": lookup.journal_of(session, handle, limit=HISTORY_SHOWN, cursor=journal),
        "merchants": merchants(unit, shown["account"]["currency"]),
        "cursors": {"scans": scans, "journal": journal},
        "oidc": oidc_binding.binding(session, staff=False, principal_id=shown["id"]),
    }


def holder_page(
    seen: Visit,
    handle: str,
    *,
    status: int = 200,
    scans: str | None = None,
    journal: str | None = None,
    **values: Any,
) -> Response:
    """The holder page; `values` may carry `typed`, `errors` (field → code) and `done`."""
    shown = seen.ctx.run(lambda unit: read(unit, handle, scans=scans, journal=journal))
    holder = shown["holder"]
    return seen.page(
        "console/holder.html",
        status=status,
        debt=max(0, -holder["account"]["balance"]),
        live_devices=[d for d in holder["devices"] if d["revoked_at"] is None],
        request_id=uuid.uuid4().hex,
        reason_max=REASON_CHARS_MAX,
        amount_max=AMOUNT_TYPED_MAX,
        **({"typed": {}, "errors": {}, "done": None} | shown | values),
    )
