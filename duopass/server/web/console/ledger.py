"""The console's ledger page: the current signed checkpoint (`services.tlog`, as
`GET /v1/ledger/checkpoint`), the ledger's verifier key, and one entry with its receipt (as
`GET /v1/ledger/entries/{index}`), which the page verifies in the browser
(`static/console/ledger.js`: the RFC 9162 leaf hash and inclusion path with WebCrypto SHA-256,
the checkpoint's Ed25519 signature with WebCrypto), not on the server's word. Staff read it."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from duopass.ledger import LedgerError
from duopass.ledger.checkpoint import parse_checkpoint
from duopass.ledger.note import parse_note
from duopass.server.limits import SEQ_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import ledger_key, tlog
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import Visit, signed_in

__all__ = ["router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]


def _read(unit: Unit, index: int | None) -> dict[str, Any]:
    note = tlog.checkpoint(unit)
    shown: dict[str, Any] = {
        "note": note.decode(),
        "checkpoint": parse_checkpoint(parse_note(note).text),
        "entry": None,
    }
    if index is None:
        return shown
    try:
        found = tlog.receipt(unit, index)
    except LedgerError as exc:  # the stored tree disagrees with itself: say so
        raise Problem(ProblemCode.INTERNAL, f"ledger inconsistent at {index}: {exc}") from exc
    if found is not None:
        data, receipt = found
        shown["entry"] = {"data": base64.b64encode(data).decode(), "receipt": receipt.decode()}
    return shown


@router.get("/ledger")
def ledger_page(
    seen: SignedIn, index: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None
) -> Response:
    """The checkpoint; with `index`, that entry and its receipt, to verify in the page."""
    shown = seen.ctx.run(lambda unit: _read(unit, index))
    status = 404 if index is not None and shown["entry"] is None else 200
    return seen.page(
        "console/ledger.html",
        status=status,
        index=index,
        vkey=seen.ctx.run(ledger_key.verifier).vkey(),
        **shown,
    )
