"""Prepared SQL for the hot paths (online scans, ledger appends, postings), run on the driver.

SQLAlchemy builds a result and fires events on every execution, which costs several times what
SQLite spends running a statement; these statements go to the DB-API connection under the
session's transaction instead (`Raw`). Only standard SQL is used, so one text serves SQLite and
PostgreSQL (its parameters rewritten once to psycopg's style); row locks are added where the
dialect has them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement in both drivers' parameter styles: sqlite3's `:name`, psycopg's `%(name)s`;
    and sqlite3's `?` with its names in order, for many rows (`Raw.many`)."""

    named: str
    pyformat: str
    qmark: str
    row: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    """A row's values in the order of `qmark`'s parameters."""


def statement(sql: str) -> Statement:
    names = _PARAM.findall(sql)
    get = itemgetter(*names) if len(names) > 1 else None
    row = get if get is not None else lambda params: tuple(params[name] for name in names)
    return Statement(sql, _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")), _PARAM.sub("?", sql), row)


@dataclass(frozen=True, slots=True)
class Locking:
    """A read that locks its rows until the transaction ends where the dialect has row locks
    (`FOR UPDATE`); on SQLite the write transaction itself serialises."""

    plain: Statement
    locked: Statement


def _with_lock(sql: str, of: str = "") -> Locking:
    return Locking(statement(sql), statement(sql + " FOR UPDATE" + (f" OF {of}" if of else "")))


class Raw:
    """The DB-API connection of a session's transaction: one driver call per statement. Driver
    errors are raised as SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), as from the
    session, so the retry rule of units applies unchanged.

    On PostgreSQL, inside `deferred()`, writes whose result no one reads (`later`) wait and go
    with the next statement that reads, in one pipeline: one round trip for all of them
    (`fetch` reads several rows in one too). Any other statement on the connection, through
    SQLAlchemy as well (`send_deferred`), sends them first, so the order of statements never
    changes; only when a deferred write fails does: its error is raised by the statement that
    sent it, at the latest when the block ends. On SQLite, a call into the library, every
    statement runs when called."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self._dialect = connection.dialect
        self.is_sqlite = self._dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        assert driver is not None
        self._driver: Any = driver
        self._cursor = driver.cursor()
        self._writes = driver.cursor()
        self._reads: list[Any] = []
        """Cursors of `fetch`, reused: each read's row is taken before the next round."""
        self._info = connection.info
        self._deferring = False
        self._pending: list[tuple[str, Any, bool]] = []

    def _text(self, stmt: Statement | Locking) -> str:
        if isinstance(stmt, Locking):
            stmt = stmt.plain if self.is_sqlite else stmt.locked
        return stmt.named if self.is_sqlite else stmt.pyformat

    def _raised(self, text: str, params: Any, exc: Exception) -> Exception:
        error = self._dialect.loaded_dbapi.Error
        return DBAPIError.instance(text, params, exc, error, dialect=self._dialect)

    @contextmanager
    def _errors(self, text: str, params: Any) -> Iterator[None]:
        try:
            yield
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._raised(text, params, exc) from exc

    def _execute(self, stmt: Statement | Locking, params: Any, *, many: bool = False) -> None:
        if many and self.is_sqlite and isinstance(stmt, Statement):
            # sqlite3 binds a named parameter by looking its name up for every row: by position,
            # rows go in a sixth faster (a journal batch writes thousands)
            text, params = stmt.qmark, list(map(stmt.row, params))
        else:
            text = self._text(stmt)
        if self._pending:
            self._round([(text, params, many)], self._cursor)
            return
        try:  # not `_errors`: a context manager a statement costs as much as SQLite's call
            if many:
                self._cursor.executemany(text, params)
            else:
                self._cursor.execute(text, params)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._raised(text, params, exc) from exc

    def one(self, stmt: Statement | Locking, params: Mapping[str, Any] | None = None) -> Any:
        """The first row (a tuple), or None."""
        self._execute(stmt, params or {})
        return self._cursor.fetchone()

    def all(self, stmt: Statement, params: Mapping[str, Any]) -> list[Any]:
        self._execute(stmt, params)
        return list(self._cursor.fetchall())

    def run(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> None:
        self._execute(stmt, params or {})

    def run_values(self, stmt: Statement, values: Sequence[Any]) -> None:
        """SQLite: `stmt` with its parameters by position, in the order they appear (`qmark`):
        sqlite3 looks a named parameter up by its name, and a statement of many rows (a batch's
        risk counts) has hundreds."""
        if not self.is_sqlite:
            raise ValueError("parameters by position are for SQLite")
        try:
            self._cursor.execute(stmt.qmark, values)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._raised(stmt.qmark, values, exc) from exc

    def many(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        self._execute(stmt, list(rows), many=True)

    def fetch(self, *reads: tuple[Statement | Locking, Mapping[str, Any]]) -> list[Any]:
        """The first row (or None) of each read, run in order; on PostgreSQL sent together with
        what waits, in one round trip (each read sees what committed before it ran)."""
        if self.is_sqlite:
            return [self.one(stmt, params) for stmt, params in reads]
        cursors = self._round([(self._text(stmt), params, False) for stmt, params in reads])
        return [cursor.fetchone() for cursor in cursors]

    def fetch_all(self, *reads: tuple[Statement | Locking, Mapping[str, Any]]) -> list[list[Any]]:
        """Every row of each read, as `fetch` runs them (one round trip on PostgreSQL)."""
        if self.is_sqlite:
            found = []
            for stmt, params in reads:
                self._execute(stmt, params)
                found.append(list(self._cursor.fetchall()))
            return found
        cursors = self._round([(self._text(stmt), params, False) for stmt, params in reads])
        return [list(cursor.fetchall()) for cursor in cursors]

    def later(self, stmt: Statement, params: Any = None, *, many: bool = False) -> None:
        """A write whose result no one reads: inside `deferred()` it waits to go with the next
        statement, else it runs now. `many`: `params` is a list of rows (executemany)."""
        rows = list(params) if many else params or {}
        if not self._deferring:
            self._execute(stmt, rows, many=many)
        elif not many or rows:
            self._pending.append((self._text(stmt), rows, many))
            self._info[_DEFERRED] = self

    def sync(self) -> None:
        """Send what waits now (its errors are raised here)."""
        if self._pending:
            self._round([])

    def discard(self) -> list[str]:
        """Forget what waits (the unit failed before sending it); the texts forgotten."""
        dropped = [text for text, _, _ in self._pending]
        self._pending.clear()
        self._info.pop(_DEFERRED, None)
        return dropped

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Let `later` writes wait (PostgreSQL); whatever waits is sent when the block ends,
        or forgotten if it ends by an exception."""
        if self.is_sqlite or self._deferring:
            yield
            return
        self._deferring = True
        try:
            yield
            self.sync()
        except BaseException:
            self.discard()
            raise
        finally:
            self._deferring = False

    def _round(self, then: list[tuple[str, Any, bool]], cursor: Any = None) -> list[Any]:
        """Send what waits, then `then` (on `cursor`, else one cursor each), in one pipeline;
        the cursors of `then`, in order."""
        pending = self._pending
        self._pending = []
        self._info.pop(_DEFERRED, None)
        statements = [(self._writes, *sent) for sent in pending]
        if cursor is None:
            while len(self._reads) < len(then):
                self._reads.append(self._driver.cursor())
            statements += [(on, *sent) for on, sent in zip(self._reads, then, strict=False)]
        else:
            statements += [(cursor, *sent) for sent in then]
        texts = "; ".join(sent[1] for sent in statements)
        with self._errors(texts, None), self._driver.pipeline():
            for on, text, params, many in statements:
                if many:
                    on.executemany(text, params)
                else:
                    on.execute(text, params)
        return [cursor for cursor, *_ in statements[len(pending) :]]


_DEFERRED = "duopass_deferred"
"""`Connection.info` key: the `Raw` whose writes wait, while some do."""


def send_deferred(conn: Connection, *_: Any) -> None:
    """SQLAlchemy's `before_cursor_execute` on PostgreSQL: the writes waiting in `Raw` go
    first, so a statement never overtakes one issued before it."""
    waiting = conn.info.get(_DEFERRED)
    if waiting is not None:
        waiting.sync()


RAW_KEY = "raw"
"""`Session.info` key: the session's `Raw` (`store.db.KeptUnits` drops it with each transaction:
its cursors end with it)."""


def raw(session: Session) -> Raw:
    """The session's `Raw`, made once per session (the transaction's connection stays put)."""
    found = session.info.get(RAW_KEY)
    if found is None:
        found = session.info[RAW_KEY] = Raw(session)
    assert isinstance(found, Raw)
    return found


SETTLED = statement(
    "SELECT s.verdict, s.request_fingerprint, j.data FROM (SELECT 1 AS one) AS k "
    "LEFT JOIN scans s ON s.terminal_id = :terminal_id AND s.seq = :seq "
    "LEFT JOIN journal_entries j ON j.terminal_id = :terminal_id AND j.seq = :seq"
)
"""What the server already holds for a (terminal, seq): its online verdict and the request it
answered, the terminal's journal entry, both or neither (one row, one round trip on every scan)."""
SETTLED_NUMBERED = statement(
    "SELECT s.verdict, s.request_fingerprint, j.data, "
    "nextval(pg_get_serial_sequence('transactions', 'id')) FROM (SELECT 1 AS one) AS k "
    "LEFT JOIN scans s ON s.terminal_id = :terminal_id AND s.seq = :seq "
    "LEFT JOIN journal_entries j ON j.terminal_id = :terminal_id AND j.seq = :seq"
)
"""PostgreSQL: `SETTLED` with a payment's transaction id taken ahead, so that its insert needs
no round trip of its own; an id taken and not used leaves a gap, as a rollback does."""
INSERT_SCAN = statement(
    "INSERT INTO scans (terminal_id, seq, received_at, verdict, request_fingerprint, provisional) "
    "VALUES (:terminal_id, :seq, :received_at, :verdict, :request_fingerprint, :provisional)"
)
PAYER = _with_lock(
    "SELECT c.holder_id, c.state, c.mark, c.release_mark, c.uses, c.txmax, c.offline, "
    "c.holds_released, h.frozen, a.id, a.balance, a.overdraft, a.held, "
    "h.limit_daily, h.limit_meal, h.confirm_above, h.pin_hash IS NOT NULL, "
    "b.daily_max, b.daily_default, b.meal_max, b.meal_default, b.confirm_max, "
    "b.confirm_default, b.meals "
    "FROM credentials c JOIN holders h ON h.id = c.holder_id "
    "JOIN accounts a ON a.id = h.account_id "
    "LEFT JOIN purse_bounds b ON b.id = 1 "
    "WHERE c.cti = :cti",
    of="a",
)
"""A credential with its holder and their account, the account locked: every operation on an
account waits here for the one before it; with the holder's purse limits and the office's
bounds (`services.purse_limits`)."""
COUNTER_SEEN = statement("SELECT 1 FROM counters_seen WHERE cti = :cti AND ctr = :ctr")
INSERT_COUNTER_AND_SCAN = statement(
    "WITH c AS (INSERT INTO counters_seen "
    "(cti, ctr, ts, terminal_id, seq, amount, hold, transaction_id) "
    "VALUES (:cti, :ctr, :ts, :terminal_id, :seq, :amount, :hold, :transaction_id)) "
    "INSERT INTO scans (terminal_id, seq, received_at, verdict, request_fingerprint, provisional) "
    "VALUES (:terminal_id, :seq, :received_at, :verdict, :request_fingerprint, :provisional)"
)
"""PostgreSQL: an accepted scan's counter and its scan row in one statement (the counter's
`terminal_id` and `seq` are the scan's)."""
INSERT_COUNTER = statement(
    "INSERT INTO counters_seen (cti, ctr, ts, terminal_id, seq, amount, hold, transaction_id) "
    "VALUES (:cti, :ctr, :ts, :terminal_id, :seq, :amount, :hold, :transaction_id)"
)
INSERT_TRANSACTIONS = statement(
    "INSERT INTO transactions (kind, created_at, occurred_at, business_date, terminal_id, memo) "
    "VALUES (:kind, :created_at, :occurred_at, :business_date, :terminal_id, :memo)"
)
"""Many at once, without a request id (`accounts.Movements`)."""
LAST_ROWID = statement("SELECT last_insert_rowid()")
"""SQLite: the rowid the connection inserted last."""
INSERT_JOURNAL_ENTRY = statement(
    "INSERT INTO journal_entries "
    "(terminal_id, seq, data, batch_id, received_at, outcome, reason, transaction_id) "
    "VALUES (:terminal_id, :seq, :data, :batch_id, :received_at, :outcome, :reason, "
    ":transaction_id)"
)
CHANGE_HELD = statement("UPDATE accounts SET held = held + :delta WHERE id = :id")
CHANGE_BALANCE = statement(
    "UPDATE accounts SET balance = balance + :amount, held = held - :released WHERE id = :id"
)
INSERT_TRANSACTION = statement(
    "INSERT INTO transactions "
    "(kind, request_id, request_fingerprint, created_at, occurred_at, business_date, "
    "terminal_id, memo) VALUES (:kind, :request_id, :request_fingerprint, :created_at, "
    ":occurred_at, :business_date, :terminal_id, :memo) "
    "RETURNING id"
)
INSERT_NUMBERED_TRANSACTION = statement(
    "INSERT INTO transactions "
    "(id, kind, request_id, request_fingerprint, created_at, occurred_at, business_date, "
    "terminal_id, memo) VALUES (:id, :kind, :request_id, :request_fingerprint, :created_at, "
    ":occurred_at, :business_date, :terminal_id, :memo)"
)
INSERT_POSTING = statement(
    "INSERT INTO postings (transaction_id, account_id, amount) "
    "VALUES (:transaction_id, :account_id, :amount)"
)
LEDGER_SIZE = _with_lock("SELECT value FROM meta WHERE name = 'ledger_size'")
INSERT_LEDGER_SIZE = statement("INSERT INTO meta (name, value) VALUES ('ledger_size', 0)")
SET_LEDGER_SIZE = statement("UPDATE meta SET value = :value WHERE name = 'ledger_size'")
INSERT_LEAF = statement('INSERT INTO ledger_leaves ("index", data) VALUES (:index, :data)')
INSERT_NODE = statement(
    'INSERT INTO ledger_nodes (level, "index", hash) VALUES (:level, :index, :hash)'
)
TERMINAL = statement(
    "SELECT id, mode, venue, currency, event, merchant_account_id, public_key, state "
    "FROM terminals WHERE id = :id"
)
SAVEPOINT = statement("SAVEPOINT unit")
RELEASE = statement("RELEASE SAVEPOINT unit")
ROLLBACK_TO = statement("ROLLBACK TO SAVEPOINT unit")


@cache
def nodes_query(count: int) -> Statement:
    """Read `count` perfect-subtree hashes by (level, index): one statement per proof or append."""
    wanted = " OR ".join(f'(level = :l{n} AND "index" = :i{n})' for n in range(count))
    # only bind-parameter names are interpolated; every value is bound
    return statement(f'SELECT level, "index", hash FROM ledger_nodes WHERE {wanted}')  # noqa: S608


_MOVEMENT_COLUMNS = (
    "id, kind, request_id, request_fingerprint, created_at, occurred_at, business_date, "
    "terminal_id, memo"
)


@cache
def movement_writes(legs: int) -> Statement:
    """PostgreSQL: a movement whose id was taken ahead, in one statement (one parse, one
    execution instead of one a row): its transaction, its `legs` postings and the balance and
    hold change of each leg's account (`:a0, :m0, :r0` ...: account, amount, released; the
    accounts distinct, as an UPDATE changes a row once). Data-modifying CTEs run once each
    and the foreign keys are checked when the statement ends, when all rows are in."""
    values = ", ".join(f"(:id, :a{n}, :m{n})" for n in range(legs))
    changes = ", ".join(
        f"(CAST(:a{n} AS BIGINT), CAST(:m{n} AS BIGINT), CAST(:r{n} AS BIGINT))"
        for n in range(legs)
    )
    placeholders = ", ".join(f":{name.strip()}" for name in _MOVEMENT_COLUMNS.split(","))
    # only bind-parameter names are interpolated; every value is bound
    return statement(
        f"WITH t AS (INSERT INTO transactions ({_MOVEMENT_COLUMNS}) VALUES ({placeholders})), "  # noqa: S608
        f"p AS (INSERT INTO postings (transaction_id, account_id, amount) VALUES {values}) "
        "UPDATE accounts SET balance = accounts.balance + v.amount, "
        "held = accounts.held - v.released "
        f"FROM (VALUES {changes}) AS v (id, amount, released) WHERE accounts.id = v.id"
    )


@cache
def ledger_writes(nodes: int) -> Statement:
    """PostgreSQL: one leaf (`:index`, `:data`), the `nodes` perfect-subtree hashes it completes
    (`:l0, :i0, :h0` ...) and the new size, in one statement (see `movement_writes`)."""
    hashes = ", ".join(f"(:l{n}, :i{n}, :h{n})" for n in range(nodes))
    # only bind-parameter names are interpolated; every value is bound
    stored = f', n AS (INSERT INTO ledger_nodes (level, "index", hash) VALUES {hashes})'  # noqa: S608
    leaf = 'WITH l AS (INSERT INTO ledger_leaves ("index", data) VALUES (:index, :data))'
    size = " UPDATE meta SET value = :value WHERE name = 'ledger_size'"
    return statement(leaf + (stored if nodes else "") + size)
