"""The application factory: settings, database, keys, routers, error handling."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from duopass import __version__
from duopass.server import hsm, problems
from duopass.server.anchoring import Anchoring
from duopass.server.api import openapi
from duopass.server.api.access_log import AccessLog
from duopass.server.api.forwarded import ForwardedFor
from duopass.server.api.middleware import BodyLimit, DateHeader
from duopass.server.api.routes import (
    admin,
    checkin,
    disputes,
    events,
    fleet,
    holders,
    ledger,
    oauth,
    partner,
    partner_sales,
    partners,
    passkeys,
    policy,
    purse,
    reissue,
    review,
    risk,
    session,
    session_oidc,
    settlement,
    system,
    terminal,
    tickets,
    wallet,
    webhooks,
)
from duopass.server.api.routes import (
    signing_keys as signing_key_routes,
)
from duopass.server.api.routes import testing as testing_routes
from duopass.server.api.store_guard import StoreGuard
from duopass.server.clock import Clock, MovableClock, MovableClockRefused
from duopass.server.context import AppContext
from duopass.server.keyring import Keyring
from duopass.server.limits import BODY_BYTES_MAX, JOURNAL_BODY_BYTES_MAX
from duopass.server.maintenance import Maintenance
from duopass.server.partners.delivery import Delivery
from duopass.server.services import policy_store, rollback, signing_keys
from duopass.server.settings import Settings, TestOnlySettingRefused
from duopass.server.store.db import Database
from duopass.server.web import console, home
from duopass.server.web import wallet as wallet_web
from duopass.server.workers import Worker

DOCS_ASSETS_PATH = "/static/docs"
"""Where the scripts and styles of /docs and /redoc are served from: this server, never a CDN
(a campus LAN may have no way out). They come from the `fastapi-offline` package."""


def _lifespan(
    ctx: AppContext, worker: Worker
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Maintenance (in the first worker only), webhook delivery (in every worker: they share
    the work, `partners.delivery`) and the group-commit writer, for the app's life."""
    maintenance = Maintenance(ctx) if worker.index == 0 else None
    delivery = Delivery(ctx) if ctx.settings.webhook_delivery else None
    anchors = ctx.settings.anchor_tsa_url or ctx.settings.anchor_witnesses
    anchoring = Anchoring(ctx) if worker.index == 0 and anchors else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for started in (maintenance, delivery, anchoring):
            if started is not None:
                started.start()
        try:
            yield
        finally:
            for stopped in (maintenance, delivery, anchoring):
                if stopped is not None:
                    stopped.stop()
            ctx.group.stop()

    return lifespan


def create_app(
    settings: Settings,
    *,
    keyring: Keyring | None = None,
    clock: Clock = time.time,
    migrate: bool = True,
    testing: bool = False,
    worker: Worker | None = None,
) -> FastAPI:
    """Build the server. The schema is migrated, today's signing keys exist and its policy is
    the active one before it answers; a malformed policy file raises `PolicyFileError` first,
    and a Redis risk store older than 6.2 `risk_redis.RedisTooOld`.

    `clock` is the one clock the server reads; with `settings.test_clock`, which only a server
    started for tests (`testing`) accepts, it becomes a `MovableClock` over it that tests move
    forward over HTTP (`/v1/test/clock`) or in process (`app.state.context.clock`)."""
    clock = _test_settings(settings, clock, testing=testing)
    loaded = policy_store.read(settings.policy_file)  # a malformed one stops here, first
    worker = worker or Worker()
    db = Database(settings.db_url, connections=worker.connections(settings.db_connections))
    if migrate:
        db.migrate()
    ctx = AppContext(
        settings=settings,
        db=db,
        keyring=keyring or Keyring.load(settings.data_dir, hsm.config(settings)),
        clock=clock,
        changes=worker.changes,
    )
    if rollback.watch(ctx):  # a store behind the outside checkpoint: held, logged, nothing made
        ctx.run(signing_keys.rotate)
    ctx.pinned_policy = policy_store.pin(ctx, settings.policy_file, loaded)
    if settings.risk_store == "redis":
        from duopass.server.services import risk_redis  # noqa: PLC0415 (the client: 0.25 s)

        risk_redis.check(settings)  # one too old for the scripts stops here
    app = FastAPIOffline(
        static_url=DOCS_ASSETS_PATH,
        # Swagger UI would otherwise fetch a badge from validator.swagger.io: nothing leaves
        # the campus LAN, and the spec's URL is nobody else's business
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=_lifespan(ctx, worker),
        title="duopass issuer server",
        version=__version__,
        description="Online verification, credentials, trust bundles and the ledger (PROTOCOL.md).",
        # FastAPI's OpenTelemetry hooks off: the server exports none (its metrics are
        # Prometheus', its log JSON lines), and asking OpenTelemetry whether a provider is set
        # cost every request some microseconds
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = ctx
    problems.install(app)
    _routes(app, clock)
    openapi.install(app)
    console.mount(app, ctx)
    wallet_web.mount(app)
    _middleware(app, ctx, clock)
    return app


def _routes(app: FastAPI, clock: Clock) -> None:
    """The routers' routes, flat, in the order FastAPI tries them, at some microseconds each
    (no two routers' paths overlap): the routes terminals and load balancers call most come
    first, and FastAPI's own (the OpenAPI document, its pages and their assets: in no schema)
    after the terminals' and check-ins': five fewer paths tried for every scan and redeem."""
    routers = [terminal, checkin, system, session, wallet, admin, holders, fleet, review]
    routers += [settlement, ledger, events, tickets, reissue, policy, purse, risk, disputes]
    routers += [webhooks, partners, oauth, partner, partner_sales, passkeys, session_oidc, home]
    routers.append(signing_key_routes)
    if isinstance(clock, MovableClock):
        routers.append(testing_routes)
    own = list(app.router.routes)
    del app.router.routes[:]
    for module in routers:
        openapi.document(module.router)
        app.router.routes.extend(module.router.routes)
        if module is checkin:
            app.router.routes.extend(own)


def _middleware(app: FastAPI, ctx: AppContext, clock: Clock) -> None:
    """From the innermost out: the rollback guard, the Date header, the body limit, the access
    log, and the forwarded client."""
    app.add_middleware(StoreGuard, ctx=ctx)  # its 503 is dated, logged, and seen forwarded
    app.add_middleware(DateHeader, clock=clock)
    app.add_middleware(
        BodyLimit,
        limit=BODY_BYTES_MAX,
        paths={"/v1/terminal/journal": JOURNAL_BODY_BYTES_MAX},
    )
    app.add_middleware(AccessLog)  # it sees every answer, refusals of size too
    if ctx.settings.trusted_proxies:  # outermost: every step sees the forwarded client
        app.add_middleware(ForwardedFor, trusted=ctx.settings.trusted_proxies)


def _test_settings(settings: Settings, clock: Clock, *, testing: bool) -> Clock:
    """The clock the server reads; the settings only a server started for tests takes are
    refused by any other."""
    if settings.test_axe and not testing:
        raise TestOnlySettingRefused(
            "test_axe serves a test tool in every page: only a server started for tests accepts it"
        )
    if settings.test_cheap_password_hashing and not testing:
        raise TestOnlySettingRefused(
            "test_cheap_password_hashing makes passwords cheap to guess: only a server started "
            "for tests accepts it"
        )
    if not settings.test_clock:
        return clock
    if not testing:
        raise MovableClockRefused(
            "test_clock moves the server's time: only a server started for tests "
            "(duopass serve --testing) accepts it"
        )
    return MovableClock(clock)
