"""Prepared SQL for the hot paths (online scans, ledger appends, postings), run on the driver.

SQLAlchemy builds a result and fires events on every execution, which costs several times what
SQLite spends running a statement; these statements go to the DB-API connection under the
session's transaction instead (`Raw`). Only standard SQL is used, so one text serves SQLite and
PostgreSQL (its parameters rewritten once to psycopg's style); row locks are added where the
dialect has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement in both drivers' parameter styles: sqlite3's `:name`, psycopg's `%(name)s`."""

    named: str
    pyformat: str


def statement(sql: str) -> Statement:
    return Statement(sql, _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")))


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
    session, so the retry rule of units applies unchanged."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self._dialect = connection.dialect
        self.is_sqlite = self._dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        assert driver is not None
        self._cursor = driver.cursor()

    def _text(self, stmt: Statement | Locking) -> str:
        if isinstance(stmt, Locking):
            stmt = stmt.plain if self.is_sqlite else stmt.locked
        return stmt.named if self.is_sqlite else stmt.pyformat

    def _execute(self, stmt: Statement | Locking, params: Any, *, many: bool = False) -> None:
        text = self._text(stmt)
        try:
            if many:
                self._cursor.executemany(text, params)
            else:
                self._cursor.execute(text, params)
        except self._dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                text, params, exc, self._dialect.loaded_dbapi.Error, dialect=self._dialect
            ) from exc

    def one(self, stmt: Statement | Locking, params: Mapping[str, Any] | None = None) -> Any:
        """The first row (a tuple), or None."""
        self._execute(stmt, params or {})
        return self._cursor.fetchone()

    def all(self, stmt: Statement, params: Mapping[str, Any]) -> list[Any]:
        self._execute(stmt, params)
        return list(self._cursor.fetchall())

    def run(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> None:
        self._execute(stmt, params or {})

    def many(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        self._execute(stmt, list(rows), many=True)


def raw(session: Session) -> Raw:
    """The session's `Raw`, made once per session (the transaction's connection stays put)."""
    found = session.info.get("raw")
    if found is None:
        found = session.info["raw"] = Raw(session)
    assert isinstance(found, Raw)
    return found


SETTLED = statement(
    "SELECT s.verdict, s.request_fingerprint, j.data FROM (SELECT 1 AS one) AS k "
    "LEFT JOIN scans s ON s.terminal_id = :terminal_id AND s.seq = :seq "
    "LEFT JOIN journal_entries j ON j.terminal_id = :terminal_id AND j.seq = :seq"
)
"""What the server already holds for a (terminal, seq): its online verdict and the request it
answered, the terminal's journal entry, both or neither (one row, one round trip on every scan)."""
INSERT_SCAN = statement(
    "INSERT INTO scans (terminal_id, seq, received_at, verdict, request_fingerprint, provisional) "
    "VALUES (:terminal_id, :seq, :received_at, :verdict, :request_fingerprint, :provisional)"
)
PAYER = _with_lock(
    "SELECT c.holder_id, c.state, c.mark, c.release_mark, c.uses, c.txmax, c.offline, "
    "c.holds_released, h.frozen, a.id, a.balance, a.overdraft, a.held "
    "FROM credentials c JOIN holders h ON h.id = c.holder_id "
    "JOIN accounts a ON a.id = h.account_id "
    "WHERE c.cti = :cti",
    of="a",
)
"""A credential with its holder and their account, the account locked: every operation on an
account waits here for the one before it."""
COUNTER_SEEN = statement("SELECT 1 FROM counters_seen WHERE cti = :cti AND ctr = :ctr")
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
