"""The server's data directory and database, opened by the card-office commands that work on
them directly (`duopass staff`, `duopass holder erase`), beside a running server or without
one: its keys from the data dir, its schema brought to the newest revision as `serve` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from duopass.server.context import AppContext
    from duopass.server.unit_of_work import Unit

T = TypeVar("T")
DEFAULT_DIR = Path("duopass-data")

DataDir = Annotated[Path, typer.Option(help="the server's data dir (keys, default database)")]
DbUrl = Annotated[str | None, typer.Option(help="database URL (default: SQLite in the data dir)")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"duopass: {message}", err=True)
    return typer.Exit(2)


def open_server(data_dir: Path, db: str | None) -> AppContext:
    """The server's context on its data dir and database; exit 2 with a message if either is
    missing (`duopass serve --init` makes both)."""
    from sqlalchemy.exc import SQLAlchemyError

    from duopass.server import hsm
    from duopass.server.context import AppContext
    from duopass.server.keyring import Keyring, KeyringError
    from duopass.server.services import tlog
    from duopass.server.settings import Settings
    from duopass.server.store.db import Database

    url = db or f"sqlite:///{data_dir / 'duopass.db'}"
    settings = Settings(db_url=url, data_dir=data_dir)  # and the HSM, from the environment
    try:
        keyring = Keyring.load(data_dir, hsm.config(settings))
    except (KeyringError, hsm.HsmError) as exc:
        raise fail(str(exc)) from exc
    if db is None and not (data_dir / "duopass.db").is_file():
        raise fail(f"no database at {data_dir / 'duopass.db'}: run `duopass serve --init` once")
    try:
        database = Database(url)
        database.migrate()
    except SQLAlchemyError as exc:
        raise fail(f"cannot open the database: {type(exc).__name__}") from exc
    ctx = AppContext(settings=settings, db=database, keyring=keyring)
    issuer = ctx.run(lambda unit: tlog.issuer(unit.session))
    if issuer is not None:  # what the server appends as, whatever `serve --issuer` said
        ctx.settings = ctx.settings.model_copy(update={"issuer": issuer})
    return ctx


def run_on_server(data_dir: Path, db: str | None, work: Callable[[Unit], T]) -> T:
    """Run one unit of work on the server's database; a refusal exits 2 with its message."""
    from duopass.server.problems import Problem

    ctx = open_server(data_dir, db)
    try:
        return ctx.run(work)
    except Problem as exc:
        raise fail(exc.detail) from exc
    finally:
        ctx.db.dispose()
