"""The terminal fleet for the card office: each terminal's last contact, the trust bundle it
was last sent and its age, its journal backlog, online or offline. Staff only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from duopass.server.api.deps import Ctx, StaffCaller
from duopass.server.api.openapi import problems
from duopass.server.api.routes.holders import Cursor, Limit
from duopass.server.limits import PAGE_ITEMS_DEFAULT
from duopass.server.services import fleet

router = APIRouter(prefix="/v1/admin/terminals", tags=["card office"])


@router.get("", responses=problems(422))
def terminals(
    _caller: StaffCaller, ctx: Ctx, limit: Limit = PAGE_ITEMS_DEFAULT, cursor: Cursor = None
) -> dict[str, Any]:
    """Terminals by id, `{items, next_cursor}`. `online`: seen (an online scan, a journal batch
    or a bundle fetch) in the last 11 minutes; `journal_backlog`: entries the server has heard
    of (online scans, batches with gaps) beyond `acked_seq`, so at least this many wait."""
    return ctx.run(
        lambda unit: fleet.listing(unit.session, now=unit.now, limit=limit, cursor=cursor)
    )
