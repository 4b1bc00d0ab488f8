"""The live page: scans per second online and offline, the online share and refusals by reason
(`services.live_scans`), drawn with uPlot by `static/live.js`, which polls `/console/live/data`
every few seconds.

Polling rather than server-sent events: each poll is an ordinary request through the console's
session check (an ended session answers 401 and the page says so), it holds no connection or
worker open between reads, it passes any proxy unchanged, and the numbers come from one bounded
query each time either way. A poll does not move the session's idle clock: a chart left open is
not someone at the desk."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from duopass.server.api.params import Digits
from duopass.server.services import live_scans
from duopass.server.web.console.visit import SECURITY_HEADERS, Visit, signed_in, visit

__all__ = ["POLL_S", "router"]

router = APIRouter()
SignedIn = Annotated[Visit, Depends(signed_in)]
POLL_S: Final = 5
"""How often the page asks for new numbers."""
Window = Annotated[int, Query(ge=live_scans.BIN_S * 6, le=live_scans.WINDOW_S_MAX), Digits]


@router.get("/live")
def live_page(seen: SignedIn) -> Response:
    return seen.page(
        "console/live.html",
        poll_s=POLL_S,
        window_s=live_scans.WINDOW_S_DEFAULT,
        bin_s=live_scans.BIN_S,
        zone=seen.ctx.settings.timezone,
    )


@router.get("/live/data")
async def live_data(request: Request, window_s: Window = live_scans.WINDOW_S_DEFAULT) -> Response:
    """The window's numbers as JSON; 401 `{"error": "signed_out"}` without a live session."""
    seen = await run_in_threadpool(visit, request)
    if seen.staff is None:
        return JSONResponse({"error": "signed_out"}, status_code=401, headers=SECURITY_HEADERS)
    answer = await run_in_threadpool(
        seen.ctx.run,
        lambda unit: live_scans.counts(unit.session, now=unit.now, window_s=window_s),
    )
    return JSONResponse(answer, headers=SECURITY_HEADERS)
