"""`duopass audit --db`: the server's ledger tables, opened read-only (imported only when used,
so that `duopass` starts without the database stack)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from duopass.cli.audit import SourceError
from duopass.server.services import ledger
from duopass.server.store.tables import LedgerCheckpoint, LedgerLeaf, Meta


class LedgerDatabase:
    """The server's tables, opened read-only (SQLite `mode=ro`, PostgreSQL read-only sessions)."""

    def __init__(self, url: str) -> None:
        self.engine = _read_only_engine(url)
        self.where = make_url(url).render_as_string(hide_password=True)
        self.session = Session(self.engine)

    def checkpoint(self) -> bytes | None:
        """The latest checkpoint the server signed (it signs when asked, so it may lag the log)."""
        with self._reading():
            return self.session.scalars(
                select(LedgerCheckpoint.note).order_by(LedgerCheckpoint.size.desc()).limit(1)
            ).first()

    def log_size(self) -> int | None:
        """The number of leaves, signed or not (the `ledger_size` row)."""
        with self._reading():
            return self.session.scalars(select(Meta.value).where(Meta.name == ledger.SIZE)).first()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot read {self.where}: {exc}", usage=True) from exc

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        with self._reading():
            rows = self.session.execute(
                select(LedgerLeaf.index, LedgerLeaf.data)
                .where(LedgerLeaf.index >= start, LedgerLeaf.index < start + count)
                .order_by(LedgerLeaf.index)
            ).all()
        found = []
        for expected, (index, data) in enumerate(rows, start):
            if index != expected:  # a gap: the entries end here, the audit names the missing one
                break
            found.append(data)
        return found

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        try:
            with self._reading():
                return ledger.consistency(self.session, old, new)
        except KeyError as exc:
            raise SourceError(
                f"the database lacks a tree node the proof {old}..{new} needs"
            ) from exc

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


def _read_only_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SourceError(f"--db {url!r} is not a database URL", usage=True) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise SourceError("--db needs a SQLite file: sqlite:///path.db", usage=True)
        path = Path(parsed.database)
        if not path.is_file():
            raise SourceError(f"{path}: no such database file", usage=True)
        uri = path.resolve().as_uri() + "?mode=ro"
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    if backend == "postgresql":
        options = {"options": "-c default_transaction_read_only=on"}
        return create_engine(parsed, connect_args=options)
    raise SourceError(f"--db {url!r}: only sqlite:/// and postgresql:// are supported", usage=True)
