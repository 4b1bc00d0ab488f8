"""`duopass audit --db`: the server's ledger tables, opened read-only (imported only when used,
so that `duopass` starts without the database stack)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from duopass.cli.audit_source import SourceError
from duopass.server.services import ledger_key, tlog
from duopass.server.store.db import read_only_engine


class LedgerDatabase:
    """The server's tables, opened read-only (SQLite `mode=ro`, PostgreSQL read-only sessions)."""

    def __init__(self, url: str) -> None:
        self.engine = _read_only_engine(url)
        self.where = make_url(url).render_as_string(hide_password=True)
        self.session = Session(self.engine)

    def checkpoint(self) -> bytes | None:
        """The latest checkpoint the server signed (it signs when asked, so it may lag the log)."""
        with self._reading():
            return tlog.latest_note(self.session)

    def log_size(self) -> int | None:
        """The number of leaves, signed or not (the `ledger_size` row)."""
        with self._reading():
            return tlog.size(self.session)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot read {self.where}: {exc}", usage=True) from exc

    def entries(self, start: int, count: int, /) -> Sequence[bytes]:
        with self._reading():  # a gap ends the entries: the audit names the missing one
            return tlog.read_entries(self.session, start, count)

    def consistency(self, old: int, new: int, /) -> Sequence[bytes]:
        try:
            with self._reading():
                return tlog.consistency(self.session, old, new)
        except KeyError as exc:
            raise SourceError(
                f"the database lacks a tree node the proof {old}..{new} needs"
            ) from exc

    def rotations(self) -> Sequence[int]:
        """Where the ledger key rotated (the `ledger_keys` table: a hint the audit checks)."""
        with self._reading():
            return [row.leaf for row in ledger_key.chain(self.session)]

    def checkpoint_at(self, size: int, /) -> bytes | None:
        with self._reading():
            return tlog.note_at(self.session, size)

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


def _read_only_engine(url: str) -> Engine:
    try:
        return read_only_engine(url)
    except ValueError as exc:
        raise SourceError(f"--db: {exc}", usage=True) from exc
