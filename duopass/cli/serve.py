"""`duopass serve`: the issuer server on uvicorn, with an embedded SQLite file by default. It
logs JSON lines on standard output (`server.logbook`) and keeps its files to its owner
(`server.files`); only a refusal to start goes to standard error, as one line."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from duopass.cli.numbers import whole
from duopass.cli.people import count
from duopass.server.keyring import Keyring, KeyringError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from duopass.server.context import AppContext
    from duopass.server.settings import Settings
    from duopass.server.unit_of_work import Unit

WORKERS_MAX = 64
_SmtpHost = Annotated[
    str | None,
    typer.Option(help="mail server for step-up codes (default: none, no codes by e-mail)"),
]
_AccessLog = Annotated[
    bool, typer.Option(help="log every request (combined log form) with the events")
]
_TrustedProxy = Annotated[
    list[str] | None,
    typer.Option(
        metavar="CIDR",
        help="a reverse proxy's network (repeatable): its requests are the X-Forwarded-For "
        "client's (default: none, every request is its TCP peer's)",
    ),
]
_ExemptNetwork = Annotated[
    list[str] | None,
    typer.Option(
        metavar="CIDR",
        help="a network not throttled as one, such as a campus behind one NAT (repeatable)",
    ),
]
_RedisUrl = Annotated[
    str | None,
    typer.Option(
        metavar="redis://HOST:PORT/DB",
        help="keep the risk features' counts in this Redis, not in the database (not in its "
        "transaction; password from DUOPASS_REDIS_PASSWORD, keys under DUOPASS_REDIS_PREFIX)",
    ),
]
_AnchorTsa = Annotated[
    str | None,
    typer.Option(metavar="URL", help="timestamp each new checkpoint at this RFC 3161 TSA"),
]
_AnchorWitness = Annotated[
    list[str] | None,
    typer.Option(
        metavar="'URL VKEY'",
        help="have each new checkpoint cosigned by this C2SP witness (repeatable)",
    ),
]


_Db = Annotated[str | None, typer.Option(help="database URL (default: SQLite in the data dir)")]
_DataDir = Annotated[Path, typer.Option(help="keys and the default database")]
_Demo = Annotated[bool, typer.Option(help="create keys and load demo data into an empty database")]
_Init = Annotated[bool, typer.Option(help="create missing keys, then serve")]
_MetricsPort = Annotated[
    int | None, whole(1, 65535, help="also serve Prometheus metrics here, without authentication")
]
_MetricsHost = Annotated[str, typer.Option(help="address of the --metrics-port listener")]
_Testing = Annotated[
    bool, typer.Option(help="a server for tests: accepts DUOPASS_TEST_CLOCK (a clock tests move)")
]
_SmtpPort = Annotated[int | None, whole(1, 65535, help="its port (default 25)")]
_SmtpFrom = Annotated[str | None, typer.Option(help="the From of the codes' mail")]
_Policy = Annotated[
    Path | None, typer.Option(help="the decision policy (default: the packaged one)")
]
_Workers = Annotated[
    int, whole(1, WORKERS_MAX, help="server processes on the port (PostgreSQL only)")
]


def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, whole(0, 65535, help="TCP port")] = 8000,
    db: _Db = None,
    data_dir: _DataDir = Path("duopass-data"),
    demo: _Demo = False,
    init: _Init = False,
    issuer: Annotated[str, typer.Option(help="issuer id (iss)")] = "demo-univ",
    metrics_port: _MetricsPort = None,
    metrics_host: _MetricsHost = "127.0.0.1",
    testing: _Testing = False,
    access_log: _AccessLog = True,
    trusted_proxy: _TrustedProxy = None,
    throttle_exempt_network: _ExemptNetwork = None,
    redis_url: _RedisUrl = None,
    smtp_host: _SmtpHost = None,
    smtp_port: _SmtpPort = None,
    smtp_from: _SmtpFrom = None,
    policy: _Policy = None,
    workers: _Workers = 1,
    anchor_tsa_url: _AnchorTsa = None,
    anchor_witness: _AnchorWitness = None,
) -> None:
    """Run the issuer server."""
    from duopass.server import logbook
    from duopass.server.runner import CannotStart, hold_store, listen

    given: dict[str, Any] = {"smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_from": smtp_from}
    given |= {"trusted_proxies": trusted_proxy, "throttle_exempt_networks": throttle_exempt_network}
    given |= {"redis_url": redis_url, "risk_store": "redis" if redis_url else None}
    given |= {"anchor_tsa_url": anchor_tsa_url, "anchor_witnesses": anchor_witness}
    settings = _settings(db, data_dir, issuer, policy_file=policy, **given)
    _refuse_workers(workers, settings, metrics=metrics_port is not None)  # before the log
    logbook.configure(access_log=access_log)
    try:
        listener = listen(host, port)  # first: a port in use is said before anything else
        _make_private(data_dir, settings.db_url)
        keyring = _keyring(settings, create=demo or init)
        store_lock = hold_store(settings.db_url)  # a second server on this SQLite file stops here
    except CannotStart as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        app = _app(settings, keyring, demo=demo, testing=testing)
        if metrics_port is not None:
            _metrics_listener(app.state.context.metrics.registry, metrics_host, metrics_port)
        port = _announce(host, listener.getsockname()[1], issuer)
        if workers == 1:
            _run(app, listener)
        else:  # the parent's app has migrated and loaded; each worker builds its own
            app.state.context.db.dispose()
            _supervise(workers, settings, keyring, listener, testing=testing)
    finally:
        if store_lock is not None:
            os.close(store_lock)


def _run(app: FastAPI, listener: socket.socket) -> None:
    """uvicorn on the listening socket until stopped; its own access log is off
    (`api.access_log` writes the combined one)."""
    import uvicorn

    from duopass.server.runner import uvicorn_config

    host, port = listener.getsockname()[:2]
    config = uvicorn_config(app, host=host, port=port, log_config=None, access_log=False)
    uvicorn.Server(config).run(sockets=[listener])


def _refuse_workers(workers: int, settings: Settings, *, metrics: bool) -> None:
    """Flags that cannot go together with `--workers`: one line, exit 2, before the log is set
    up or anything is done."""
    from duopass.server.runner import CannotStart

    try:
        _check_workers(workers, settings, metrics=metrics)
    except CannotStart as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(2) from exc


def _check_workers(workers: int, settings: Settings, *, metrics: bool) -> None:
    from duopass.server.runner import CannotStart

    if workers == 1:
        return
    if settings.db_url.startswith("sqlite"):
        raise CannotStart(
            f"--workers {workers} needs PostgreSQL (--db postgresql+psycopg://...): a SQLite"
            " store has one writer process"
        )
    if metrics:
        raise CannotStart("--metrics-port shows one process's metrics: not with --workers")
    if settings.test_clock:
        raise CannotStart("the test clock moves one process's time: not with --workers")


def _supervise(
    workers: int, settings: Settings, keyring: Keyring, listener: socket.socket, *, testing: bool
) -> None:
    """Fork the workers and keep them running (`server.workers`); exit 1 if they fail."""
    from duopass.server.app import create_app
    from duopass.server.workers import CANNOT_START, Supervisor, Worker, WorkersFailed

    def serve_one(worker: Worker) -> None:
        try:
            app = create_app(
                settings, keyring=keyring, migrate=False, testing=testing, worker=worker
            )
        except Exception as exc:
            typer.echo(f"duopass: worker {worker.index} cannot start: {exc}", err=True)
            raise SystemExit(CANNOT_START) from exc
        _run(app, listener)

    try:
        Supervisor(workers, serve_one).run()
    except WorkersFailed as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(1) from exc


def _announce(host: str, port: int, issuer: str) -> int:
    """Log where the server listens (`port`: the one the system chose, for --port 0)."""
    from duopass.server import logbook
    from duopass.server.logbook import Event

    where = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    logbook.emit(
        Event.SERVING,
        f"duopass issuer server for {issuer} on http://{where}:{port} "
        "(this page: /, OpenAPI at /docs)",
        issuer=issuer,
        url=f"http://{where}:{port}",
    )
    return port


def _settings(db: str | None, data_dir: Path, issuer: str, **given: Any) -> Settings:
    """The settings the flags name; a flag not given is left to the environment
    (`DUOPASS_SMTP_*`, `DUOPASS_POLICY_FILE`, `DUOPASS_TRUSTED_PROXIES='["10.0.0.0/8"]'`,
    `DUOPASS_REDIS_*`) or the default (the packaged policy). A value refused is said in one line
    (exit 2), without the value (a URL may hold a password)."""
    from pydantic import ValidationError

    from duopass.server.settings import Settings

    try:
        return Settings(
            db_url=db or f"sqlite:///{data_dir / 'duopass.db'}",
            data_dir=data_dir,
            issuer=issuer,
            **{name: value for name, value in given.items() if value not in (None, [])},
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = "".join(f"{part}: " for part in error["loc"][:1])  # none: several settings
        message = str(error["msg"]).removeprefix("Value error, ")
        typer.echo(f"duopass: {where}{message}", err=True)
        raise typer.Exit(2) from exc


def _app(settings: Settings, keyring: Keyring, *, demo: bool, testing: bool) -> FastAPI:
    """The app, and the first steps its operator needs, printed: never a password."""
    from duopass.demo.seed import seed
    from duopass.server.app import create_app
    from duopass.server.clock import MovableClockRefused
    from duopass.server.logbook import Event, emit
    from duopass.server.services.policy_store import PolicyFileError
    from duopass.server.settings import TestOnlySettingRefused

    refused: tuple[type[Exception], ...] = (MovableClockRefused, TestOnlySettingRefused)
    if settings.risk_store == "redis":  # the client is imported only then (0.25 s)
        from duopass.server.services.risk_redis import RedisTooOld

        refused += (RedisTooOld,)
    try:
        app = create_app(settings, keyring=keyring, testing=testing)
    except refused as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PolicyFileError as exc:
        typer.echo(f"duopass: policy refused: {exc}", err=True)
        raise typer.Exit(2) from exc
    ctx: AppContext = app.state.context
    demo_json = settings.data_dir / "demo.json"
    if demo and seed(ctx, demo_json) is not None:
        emit(Event.DEMO_LOADED, "demo data loaded", path=str(demo_json))
    if demo and demo_json.is_file():  # the passwords stay in the file (0600), out of the log
        emit(
            Event.DEMO_LOGINS,
            f"demo logins, passwords and enrolment codes: {demo_json} (readable by you only)",
            path=str(demo_json),
        )
    if not ctx.run(_staff_count):
        command = f".venv/bin/duopass staff add LOGIN --role admin --data-dir {settings.data_dir}"
        if not ctx.db.is_sqlite:
            command += " --db URL"  # the URL may hold a password: never in a log
        emit(Event.NO_STAFF, f"no staff account yet: create the first admin with `{command}`")
    return app


def _staff_count(unit: Unit) -> int:
    from sqlalchemy import func, select

    from duopass.server.store.access import Staff

    return int(unit.session.scalar(select(func.count()).select_from(Staff)) or 0)


def _make_private(data_dir: Path, db_url: str) -> None:
    """From now on, files made are the owner's only (keys, database, demo.json); what an
    older version or a copy left open to other users is closed, and the log says so."""
    from duopass.server import files
    from duopass.server.logbook import Event, emit

    os.umask(files.PRIVATE_UMASK)
    opened = files.make_private(data_dir, files.sqlite_files(db_url))
    if opened:
        emit(
            Event.FILES_MADE_PRIVATE,
            f"{count(len(opened), 'file')} {'was' if len(opened) == 1 else 'were'} open to"
            " other users: now the owner's only",
            files=len(opened),
            first=str(opened[0]),
        )


def _keyring(settings: Settings, *, create: bool) -> Keyring:
    """The server's keys, from its data dir and the HSM the settings name (made first with
    `create`); a refusal is one line on standard error, exit 2, never with the HSM's PIN."""
    from duopass.server import hsm

    data_dir = settings.data_dir
    try:
        config = hsm.config(settings)
        if create:
            return Keyring.create(data_dir, origin=f"{settings.issuer}/ledger", hsm=config)
        return Keyring.load(data_dir, config)
    except (KeyringError, hsm.HsmError) as exc:
        typer.echo(f"duopass: {exc}", err=True)
        raise typer.Exit(2) from exc


def _metrics_listener(registry: CollectorRegistry, host: str, port: int) -> None:
    """The registry for Prometheus scrapers, unauthenticated, in a thread the process ends."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        typer.echo(f"duopass: cannot serve metrics on {host}:{port}: {exc}", err=True)
        raise typer.Exit(2) from exc
    from duopass.server.logbook import Event, emit

    emit(Event.SERVING, f"Prometheus metrics on http://{host}:{port}/metrics", metrics=port)
