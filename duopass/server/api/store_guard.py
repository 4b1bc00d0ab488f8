"""ASGI middleware: while the database is behind the checkpoint kept outside it
(`services.rollback`), every route but the health answers 503 `store_rolled_back`. It looks
again at most every `RECHECK_S` seconds while held, so that a rollback accepted beside the
running server (`duopass ledger accept-rollback`) lets every process serve again."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from duopass.server.context import AppContext
from duopass.server.problems import ProblemCode, problem_response
from duopass.server.services import rollback

__all__ = ["OPEN_PATHS", "RECHECK_S", "StoreGuard"]

OPEN_PATHS = frozenset({"/healthz", "/v1/ping"})
RECHECK_S = 5.0


class StoreGuard:
    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app, self.ctx = app, ctx
        self.checked = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.ctx.store_held is None
            or scope.get("path") in OPEN_PATHS
            or await self._released()
        ):
            await self.app(scope, receive, send)
            return
        response: Any = problem_response(
            ProblemCode.STORE_ROLLED_BACK,
            f"{self.ctx.store_held}: the server serves nothing until an operator acts"
            " (duopass ledger accept-rollback)",
        )
        await response(scope, receive, send)

    async def _released(self) -> bool:
        if time.monotonic() - self.checked < RECHECK_S:
            return False
        self.checked = time.monotonic()
        return await anyio.to_thread.run_sync(rollback.watch, self.ctx)
