"""`duopass backup`, `duopass restore` and `duopass ledger accept-rollback`: the server's
database copied to one file while it runs (`server.store.backup`), restored into a new
database, and a restore older than the checkpoint kept outside the database accepted by an
operator (`server.services.rollback`). Every refusal is one line and exit status 2."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from duopass.cli.people import count
from duopass.cli.server_store import DEFAULT_DIR, DataDir, DbUrl, fail, open_server

if TYPE_CHECKING:
    from duopass.server.context import AppContext
    from duopass.server.services.rollback import Acceptance, Ahead
    from duopass.server.store.backup import Manifest

ledger_app = typer.Typer(
    help="The ledger's guard against a restored database older than its last checkpoint.",
    no_args_is_help=True,
)


def _url(data_dir: Path, db: str | None) -> tuple[str, str]:
    """The database URL (default: SQLite in the data dir) and its kind."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = db or f"sqlite:///{data_dir / 'duopass.db'}"
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise fail("--db is not a database URL") from exc  # never echoed: it may hold a password
    if backend == "sqlite":
        return url, "sqlite"
    if backend == "postgresql":
        return url, "postgresql"
    raise fail("--db: only sqlite:/// and postgresql:// databases are backed up")


def _sqlite_path(url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        raise fail("a SQLite file is needed: sqlite:///path.db")
    return Path(database)


def _describe(manifest: Manifest) -> str:
    facts = manifest.facts
    signed = "none" if facts.checkpoint_size is None else f"{facts.checkpoint_size} entries"
    return (
        f"{manifest.kind}, schema {facts.schema_revision}, ledger {facts.ledger_size} entries,"
        f" latest checkpoint {signed}, bundle {facts.bundle_seq}, {manifest.payload_bytes} bytes"
    )


def backup(
    out: Annotated[Path, typer.Argument(help="the backup file to create (never replaced)")],
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
) -> None:
    """Back the server's database up into one file, while the server runs."""
    from duopass.server.store.backup import BackupError, backup_sqlite
    from duopass.server.store.backup_pg import backup_postgres

    url, kind = _url(data_dir, db)
    now = int(time.time())
    try:
        if kind == "sqlite":
            manifest = backup_sqlite(_sqlite_path(url), out, now)
        else:
            manifest = backup_postgres(url, out, now)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"backup {out}: {_describe(manifest)}")


def restore(
    backup_file: Annotated[Path, typer.Argument(help="a file `duopass backup` made")],
    data_dir: DataDir = DEFAULT_DIR,
    db: DbUrl = None,
    accept_rollback: Annotated[
        bool,
        typer.Option(help="accept a backup older than the last checkpoint signed, at once"),
    ] = False,
) -> None:
    """Restore a backup into a new database (a SQLite file that does not exist yet, or an empty
    PostgreSQL database); then compare it with the checkpoint kept in the data dir."""
    from duopass.server.store.backup import BackupError, read_manifest, restore_sqlite
    from duopass.server.store.backup_pg import restore_postgres

    url, kind = _url(data_dir, db)
    try:
        _known_revision(read_manifest(backup_file).facts.schema_revision)
        if kind == "sqlite":
            manifest = restore_sqlite(backup_file, _sqlite_path(url))
        else:
            near = data_dir if data_dir.is_dir() else Path(tempfile.gettempdir())
            manifest = restore_postgres(backup_file, url, near)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"restored {backup_file}: {_describe(manifest)}")
    if not (data_dir / "ledger.key").is_file() and not _ledger_key_in_hsm(data_dir):
        typer.echo(
            f"no server keys in {data_dir}: the store is compared with the last checkpoint"
            " signed when the server starts with its data dir"
        )
        return
    ctx = open_server(data_dir, db)
    try:
        _compare(ctx, accept=accept_rollback)
    finally:
        ctx.db.dispose()


def _ledger_key_in_hsm(data_dir: Path) -> bool:
    """Whether the environment names the ledger key in an HSM (`DUOPASS_HSM_LEDGER_KEY`)."""
    from duopass.server.settings import Settings

    return Settings(data_dir=data_dir).hsm_ledger_key is not None


def _known_revision(revision: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from duopass.server.store.backup import BackupError
    from duopass.server.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        known = ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"the backup's schema revision {revision[:32]!r} is not one this duopass knows"
            " (a newer version made it: restore with that version)"
        )


def _compare(ctx: AppContext, *, accept: bool) -> None:
    """Say whether the restored store holds the last checkpoint signed; accept if asked."""
    from duopass.server import outside
    from duopass.server.services import rollback, tlog

    reason = ctx.run(tlog.outside_lag)
    if reason is None:
        typer.echo("the store holds the last checkpoint signed: the server may serve it")
        return
    typer.echo(f"ROLLED BACK  {reason}")
    if accept:
        _accepted(rollback.accept(ctx))
        return
    try:
        record = outside.read(ctx.settings.data_dir)
    except outside.OutsideError:
        record = None
    listed = [] if record is None else ctx.run(lambda unit: rollback.ahead(unit, record))
    _show(listed)
    typer.echo(
        "the server will refuse to sign or serve (503 store_rolled_back) until an operator"
        f" runs `duopass ledger accept-rollback --data-dir {ctx.settings.data_dir}`"
    )


def _show(listed: list[Ahead]) -> None:
    typer.echo(f"{count(len(listed), 'terminal')} ahead of the restored store")
    for item in listed:
        if not item.enrolled:
            typer.echo(f"  {item.terminal_id}: not enrolled in the restored store")
            continue
        typer.echo(
            f"  {item.terminal_id}: journal acknowledged to {item.acked_seq_told},"
            f" restored {item.acked_seq}; bundle {item.bundle_seq_told} sent,"
            f" restored {item.bundle_seq}"
        )


def _accepted(done: Acceptance | None) -> None:
    if done is None:
        typer.echo("nothing to accept: the store holds the last checkpoint signed")
        return
    lost = "unreadable" if done.lost is None else f"{done.lost.size} entries"
    typer.echo(
        f"rollback accepted: the store's ledger ({done.store_size} entries) replaces the"
        f" checkpoint of {lost}"
    )
    _show(done.terminals)
    if done.terminals:
        typer.echo("each has an open store_rolled_back alert: none was acknowledged again")
    if done.bundle_seq_told > done.bundle_seq:
        typer.echo(f"bundle version raised from {done.bundle_seq} to {done.bundle_seq_told}")
    if done.kept is not None:
        typer.echo(f"the checkpoint given up is kept in {done.kept}")


@ledger_app.command("accept-rollback")
def accept_rollback(data_dir: DataDir = DEFAULT_DIR, db: DbUrl = None) -> None:
    """Accept the database as it is although it is behind the last checkpoint signed: the
    terminals ahead of it are listed and flagged, the decision recorded, the server serves."""
    from duopass.server.services import rollback

    ctx = open_server(data_dir, db)
    try:
        _accepted(rollback.accept(ctx))
    finally:
        ctx.db.dispose()
