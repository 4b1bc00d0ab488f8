"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import generate_latest
from sqlalchemy import text

from duopass.server.api.deps import Ctx, StaffCaller

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(ctx: Ctx) -> dict[str, str]:
    """Alive and able to reach the database; `store: rolled_back` while the server holds
    because its database is behind the checkpoint kept outside it (every other route then
    answers 503 `store_rolled_back`)."""
    ctx.run(lambda unit: unit.session.execute(text("SELECT 1")))
    answer = {"status": "ok", "issuer": ctx.settings.issuer}
    return answer if ctx.store_held is None else answer | {"store": "rolled_back"}


@router.get("/v1/ping")
async def ping() -> dict[str, bool]:
    """Alive, touching nothing: for load balancers, and the benchmark's empty endpoint."""
    return {"ok": True}


@router.get("/metrics", response_class=Response)
def metrics(_caller: StaffCaller, ctx: Ctx) -> Response:
    """Prometheus metrics, for card-office staff (scan counts by verdict are nobody else's
    business). A scraper reads the listener of `duopass serve --metrics-port` instead."""
    return Response(generate_latest(ctx.metrics.registry), media_type="text/plain; version=0.0.4")
