"""PostgreSQL backups (`store.backup`'s file, a `pg_dump` archive in its custom format inside)
and restores (`pg_restore` into a new, empty database).

The manifest's facts and the dump read the same snapshot: a REPEATABLE READ transaction exports
it (`pg_export_snapshot`), reads the facts, and stays open while `pg_dump --snapshot` copies it.
The programs are found on PATH or in Debian's /usr/lib/postgresql/*/bin (the newest); the
password travels in their environment (PGPASSWORD), never on their command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from duopass.server.logbook import redact
from duopass.server.store.backup import (
    BackupError,
    Manifest,
    check_restored,
    extract,
    facts_of,
    scratch_folder,
    write_backup,
)

__all__ = ["backup_postgres", "program", "restore_postgres"]

DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
STDERR_CHARS_MAX = 600


def program(name: str) -> str:
    """`pg_dump` or `pg_restore`: on PATH, else Debian's newest."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        (folder for folder in DEBIAN_BINDIRS.glob("*/bin") if folder.parent.name.isdigit()),
        key=lambda folder: int(folder.parent.name),
        reverse=True,
    )
    for folder in versions:
        if os.access(folder / name, os.X_OK):
            return str(folder / name)
    raise BackupError(
        f"{name} not found on PATH or in {DEBIAN_BINDIRS}/*/bin: install PostgreSQL's client"
        " programs (Debian: postgresql-client)"
    )


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq connection string of `url`, without its password, and the environment that
    carries the password."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # `set(password=None)` would keep it (None means "unchanged"): the password reached argv
    plain = url._replace(drivername="postgresql", password=None)
    hosts = plain.query.get("host")
    if hosts is None:
        return plain.render_as_string(hide_password=False), env
    # several hosts (a failover pair): SQLAlchemy's `?host=a:p&host=b:q` is libpq's `a:p,b:q`
    listed = ",".join((hosts,) if isinstance(hosts, str) else hosts)
    rest = plain.difference_update_query(["host"])._replace(host=None, port=None)
    rendered = rest.render_as_string(hide_password=False)  # postgresql://[user@]/db?...
    head, at, tail = rendered.partition("@/")
    if not at:  # no user name: the authority is empty
        head, _, tail = rendered.partition("//")
        return f"{head}//{listed}{tail}", env
    return f"{head}@{listed}/{tail}", env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 (our arguments, no shell)
            argv, env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise BackupError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        said = redact(done.stderr.strip())[-STDERR_CHARS_MAX:]
        raise BackupError(f"{what} failed (exit status {done.returncode}): {said}")


def _query(connection: Connection) -> Any:
    def query(statement: str) -> Sequence[Sequence[Any]]:
        return [tuple(row) for row in connection.execute(text(statement)).all()]

    return query


def backup_postgres(db_url: str, out: Path, now: int) -> Manifest:
    """Dump the database of `db_url` into the backup file `out` (never replaced)."""
    url = make_url(db_url)
    dump = program("pg_dump")
    engine = create_engine(url, hide_parameters=True)
    try:
        with scratch_folder(out.parent) as scratch, engine.connect() as opened:
            connection = opened.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                connection.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
                facts = facts_of(_query(connection))
                archive = scratch / "dump"
                conninfo, env = _libpq(url)
                argv = [dump, "--format=custom", "--no-owner", "--no-privileges"]
                argv += [f"--snapshot={snapshot}", f"--file={archive}", f"--dbname={conninfo}"]
                _run(argv, env, "pg_dump")
            return write_backup(out, "postgresql", facts, archive, now)
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot read the database: {type(exc).__name__}") from exc
    finally:
        engine.dispose()


def restore_postgres(backup: Path, db_url: str, scratch_near: Path) -> Manifest:
    """Restore a PostgreSQL backup into the database of `db_url`, which must be empty; the
    backup is checked whole first (`scratch_near`: where its archive is unpacked)."""
    url = make_url(db_url)
    restore = program("pg_restore")
    engine = create_engine(url, hide_parameters=True)
    try:
        with scratch_folder(scratch_near) as scratch:
            archive = scratch / "dump"
            manifest = extract(backup, archive, kind="postgresql")
            with engine.connect() as connection:
                tables = connection.scalar(
                    text(
                        "SELECT count(*) FROM information_schema.tables"
                        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                    )
                )
            if tables:
                raise BackupError(
                    "the target database is not empty: restore into a new, empty database"
                    " (CREATE DATABASE), and keep the old one until the restored one is checked"
                )
            conninfo, env = _libpq(url)
            argv = [restore, "--exit-on-error", "--single-transaction", "--no-owner"]
            argv += ["--no-privileges", f"--dbname={conninfo}", str(archive)]
            _run(argv, env, "pg_restore")
        with engine.connect() as connection, connection.begin():
            check_restored(manifest, facts_of(_query(connection)))
        return manifest
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot reach the target database: {type(exc).__name__}") from exc
    finally:
        engine.dispose()
