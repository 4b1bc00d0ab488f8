"""The application factory: settings, database, keys, routers, error handling."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from duopass import __version__
from duopass.server import errors, openapi
from duopass.server.config import Settings
from duopass.server.context import Context
from duopass.server.keyring import Keyring
from duopass.server.limits import BODY_BYTES_MAX, JOURNAL_BODY_BYTES_MAX
from duopass.server.maintenance import Maintenance
from duopass.server.middleware import BodyLimit
from duopass.server.routes import (
    admin,
    ledger,
    review,
    session,
    settlement,
    system,
    terminal,
    wallet,
)
from duopass.server.services import signing
from duopass.server.store.db import Database


def create_app(
    settings: Settings,
    *,
    keyring: Keyring | None = None,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> FastAPI:
    """Build the server. The schema is migrated and today's signing keys exist before it answers."""
    db = Database(settings.db_url)
    if migrate:
        db.migrate()
    ctx = Context(
        settings=settings, db=db, keyring=keyring or Keyring.load(settings.data_dir), clock=clock
    )
    now = ctx.now()
    ctx.run(lambda s: signing.rotate(s, ctx.keyring, settings, now))
    maintenance = Maintenance(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        maintenance.start()
        try:
            yield
        finally:
            maintenance.stop()
            ctx.group.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="duopass issuer server",
        version=__version__,
        description="Online verification, credentials, trust bundles and the ledger (PROTOCOL.md).",
    )
    app.state.context = ctx
    errors.install(app)
    for module in (terminal, session, wallet, admin, review, settlement, ledger, system):
        openapi.document(module.router)
        app.include_router(module.router)
    openapi.install(app)
    app.add_middleware(
        BodyLimit,
        limit=BODY_BYTES_MAX,
        paths={"/v1/terminal/journal": JOURNAL_BODY_BYTES_MAX},
    )
    return app
