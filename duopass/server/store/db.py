"""The database: one engine per process, durable commits, write units that serialise, and work
to do once a unit has committed (`after_commit`: the log lines of what it did).

SQLite runs in WAL mode with `synchronous=FULL` (every commit reaches the disk) and takes its
write lock at `BEGIN IMMEDIATE`, so two writers never deadlock on a lock upgrade. PostgreSQL
runs at READ COMMITTED with its default durable commit; services lock the rows they change
(`SELECT ... FOR UPDATE`), which serialises every operation on an account.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from duopass.server.store import sql
from duopass.server.store.reach import lost_server

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_WAIT_MS = 2_000
CONNECT_TIMEOUT_S = 2
"""PostgreSQL: the longest a new connection waits on one host (libpq's `connect_timeout`,
whole seconds), so that a primary that vanished without a reset does not hold requests."""
PING_IDLE_S = 1.0
"""PostgreSQL: a pooled connection is pinged when taken only if it sat unused this long: one
returned a moment ago saw the server alive, and if the server went away since, its first
statement fails like one in use at that moment (503 `store_unavailable`, every older pooled
connection dropped: `store.reach`). Under load the pool's connections never wait that long, so
the hot path (a group-commit batch a few milliseconds) pays no round trip for a ping."""
POOL_CONNECTIONS_DEFAULT = 40
"""A process's PostgreSQL pool: one a thread that can hold one at a time (the group-commit
writer, maintenance, and up to 40 requests on the thread pool, most never waiting on it)."""
_AFTER_COMMIT = "after_commit"
"""`session.info` key: what to run once this unit has committed, a tuple (never changed in place,
so a group commit's savepoint that rolls back restores it with the rest of `session.info`)."""

log = logging.getLogger("duopass.server.store")


def after_commit(session: Session, work: Callable[[], None]) -> None:
    """Run `work` once the unit `session` belongs to has committed, after its write lock is
    released; never when it rolls back."""
    session.info[_AFTER_COMMIT] = (*session.info.get(_AFTER_COMMIT, ()), work)


def discard_after(session: Session, kept: int) -> None:
    """Forget what was queued after the first `kept` (a nested transaction rolled back)."""
    session.info[_AFTER_COMMIT] = session.info.get(_AFTER_COMMIT, ())[:kept]


def queued_after(session: Session) -> int:
    return len(session.info.get(_AFTER_COMMIT, ()))


class Database:
    """An engine, a session factory and `unit()`: one transaction, committed or rolled back."""

    def __init__(self, url: str, *, connections: int = POOL_CONNECTIONS_DEFAULT) -> None:
        """`connections`: PostgreSQL's pool size, the most this process holds (SQLite: unused)."""
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _sqlite_engine(url) if self.is_sqlite else _postgres_engine(url, connections)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer: AbstractContextManager[object] = (
            threading.Lock() if self.is_sqlite else nullcontext()
        )

    @contextmanager
    def unit(self, *, journal_in_memory: bool = False) -> Iterator[Session]:
        """A unit of work: everything inside commits together or not at all.

        SQLite has one writer at a time; threads of this process queue on a lock instead of
        on SQLite's busy handler, whose sleeps grow to 100 ms under contention. What
        `after_commit` queued runs once the unit has committed and the lock is released.
        `journal_in_memory`: SQLite keeps the unit's savepoint journal in memory, for a unit
        that changes many pages under a savepoint (a large journal batch: `_in_memory`);
        PostgreSQL ignores it."""
        if not (journal_in_memory and self.is_sqlite):
            with self._writer, self._sessions() as session, session.begin():
                yield session
        else:
            with (
                self._writer,
                _in_memory(self.engine) as connection,
                self._sessions(bind=connection) as session,
                session.begin(),
            ):
                yield session
        _after(session.info.pop(_AFTER_COMMIT, ()))

    def kept(self) -> KeptUnits:
        """Units on a connection and session one thread keeps (`KeptUnits`)."""
        return KeptUnits(self)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def checkpoint(self) -> bool:
        """SQLite: copy the write-ahead log into the database file and truncate it; False when
        a reader still needs part of it. PostgreSQL: nothing to do (True)."""
        if not self.is_sqlite:
            return True
        connection = self.engine.raw_connection()  # autocommit: no BEGIN IMMEDIATE around it
        cursor = connection.cursor()
        try:  # waits for writers and readers at most CHECKPOINT_WAIT_MS, not the usual 30 s
            cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            busy, _log, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()
            connection.close()
        return bool(busy == 0)

    def dispose(self) -> None:
        self.engine.dispose()


class KeptUnits:
    """`Database.unit` for one thread that runs many units, the group-commit writer: on SQLite
    (one writer anyway) the same connection and session serve every transaction, so a unit
    pays no pool checkout and return (with its reset), no new session and no new cursors; a
    transaction that fails gives them up, the next gets new ones. Between transactions the
    session forgets its objects and its `info`, as a new session would.
    PostgreSQL takes a pooled connection each time as `unit` does (its ping and a lost
    server's connections dropped, `store.reach`). Not for two threads at once."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._session: Session | None = None

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """As `Database.unit`: everything inside commits together or not at all."""
        if not self.db.is_sqlite:
            with self.db.unit() as session:
                yield session
            return
        with self.db._writer:
            session = self._session or self._open()
            try:
                with session.begin():
                    yield session
            except BaseException:
                self.close()
                raise
            after = session.info.pop(_AFTER_COMMIT, ())
            session.expunge_all()
            session.info.clear()  # its `Raw` too: a cursor whose read was not read to the end
            # keeps the snapshot it read, and the next BEGIN IMMEDIATE would fail as busy
        _after(after)

    def close(self) -> None:
        """Give the connection back (the next unit opens another); the pool's check-in sets
        its temporary store back (`_reset_temp_store`)."""
        session, self._session = self._session, None
        if session is not None:
            bind = session.bind
            session.close()
            if isinstance(bind, Connection):
                bind.close()

    def _open(self) -> Session:
        # a unit's savepoint keeps each page it changes as it was: bounded by a batch (64
        # units' pages), freed at its commit (`_in_memory`)
        self._session = self.db._sessions(bind=_memory_journal(self.db.engine))
        return self._session


@contextmanager
def _in_memory(engine: Engine) -> Iterator[Connection]:
    """A pooled SQLite connection whose transactions keep their savepoint journal in memory,
    set back as it goes back to the pool (`_reset_temp_store`)."""
    with _memory_journal(engine) as connection:
        yield connection


def _memory_journal(engine: Engine) -> Connection:
    """A pooled SQLite connection set to keep its statement journal in memory.

    A savepoint keeps each page its transaction changes as it was (SQLite's statement
    journal); past 64 KiB SQLite's default puts them in a temporary file, a write() a page, and
    in memory they are a copy. SQLite reads the setting at a write transaction's BEGIN, so it is
    set before. Only the connections of units that need it: elsewhere a large sort still spills
    to a file."""
    connection = engine.connect()
    try:
        driver: Any = connection.connection.driver_connection
        driver.execute("PRAGMA temp_store=MEMORY")
        connection.info[_IN_MEMORY] = True  # for `_reset_temp_store`, as it comes back
    except BaseException:
        connection.close()
        raise
    return connection


_IN_MEMORY = "duopass_temp_store_memory"
"""A pooled connection's `info` key: set while its temporary store is in memory."""


def _reset_temp_store(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Pool check-in (however the connection comes back: closed, or its holder collected):
    one keeping its journal in memory is set back to SQLite's default, so a large sort
    elsewhere still spills to a file; one that cannot be set back is dropped, not pooled."""
    if not record.info.pop(_IN_MEMORY, False) or dbapi_connection is None:
        return
    try:
        dbapi_connection.execute("PRAGMA temp_store=DEFAULT")
    except sqlite3.Error:
        record.invalidate()


def _after(works: tuple[Callable[[], None], ...]) -> None:
    for work in works:
        try:
            work()
        except Exception:  # the unit has committed: its answer stands
            log.exception("after-commit work failed")


def _sqlite_engine(url: str) -> Engine:
    # isolation_level=None hands transaction control to us: BEGIN IMMEDIATE below.
    engine = create_engine(
        url,
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30},
        hide_parameters=True,  # an error's message never carries a row's values into a log
    )

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    event.listen(engine, "checkin", _reset_temp_store)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # on the driver: SQLAlchemy's execution (a result, its events) cost a unit more than
        # SQLite's BEGIN; its errors raised as SQLAlchemy's, as that would have
        try:
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = DBAPIError.instance(
                "BEGIN IMMEDIATE", (), exc, sqlite3.Error, dialect=connection.dialect
            )
            raise error from exc

    return engine


def _postgres_engine(url: str, connections: int) -> Engine:
    """A pool of `connections`, none beyond (no overflow): a thread that finds them all in use
    waits for one (30 s, then an error), so a server never holds more than it was given.

    For a failover (docs/deploy.md): the URL may name several hosts with
    `target_session_attrs=read-write`, and libpq connects to whichever is the primary; a
    connection is tried for at most `connect_timeout` a host (`CONNECT_TIMEOUT_S` unless the
    URL says), each is pinged when taken from the pool after `PING_IDLE_S` unused, and an error
    meaning the server is gone or read-only (`store.reach`) drops every pooled connection made
    before it."""
    parsed = make_url(url)
    if "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    # no server-side prepared statements (psycopg prepares one after 5 runs by default): in a
    # pipeline whose earlier statement failed (a unit's lock conflict, rolled back to its
    # savepoint) the server skips the PREPARE while psycopg counts it done, and every later run
    # of that statement on the connection fails "prepared statement _pg3_N does not exist"
    engine = create_engine(
        parsed,
        pool_size=connections,
        max_overflow=0,
        hide_parameters=True,
        connect_args={"prepare_threshold": None},
    )
    event.listen(engine, "before_cursor_execute", sql.send_deferred)
    event.listen(engine, "handle_error", _server_lost)
    event.listen(engine, "checkin", _returned)
    dialect = engine.dialect

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        """SQLAlchemy's pre-ping, for a connection unused `PING_IDLE_S` or more (a new one is
        not pinged): a dead one is replaced, and every older pooled connection dropped."""
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned < PING_IDLE_S:
            return
        if not dialect._do_ping_w_event(dbapi_connection):  # as pool_pre_ping does
            raise InvalidatePoolError()

    return engine


_RETURNED = "duopass_returned"
"""A pooled connection's `info` key: when it was last given back (`time.monotonic()`)."""


def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RETURNED] = time.monotonic()


def _server_lost(context: ExceptionContext) -> None:
    """A connection whose server is gone or no longer writable (a standby, a demoted primary)
    is a disconnection: SQLAlchemy then invalidates it and the pool's older connections."""
    if not context.is_disconnect and lost_server(context.original_exception):
        context.is_disconnect = True


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write (SQLite `mode=ro`, PostgreSQL read-only transactions), for
    readers beside the server: `duopass audit --db`, `duopass settlement`. Raises ValueError
    for a URL it cannot open."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError("not a database URL (sqlite:///path.db or postgresql://...)") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("a SQLite file is needed: sqlite:///path.db")
        path = Path(parsed.database)
        if not path.is_file():
            raise ValueError(f"{path}: no such database file")
        uri = path.resolve().as_uri() + "?mode=ro"
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    if backend == "postgresql":
        options = {"options": "-c default_transaction_read_only=on"}
        return create_engine(parsed, connect_args=options)
    shown = parsed.render_as_string(hide_password=True)  # a refusal never repeats a password
    raise ValueError(f"{shown}: only sqlite:/// and postgresql:// are supported")
