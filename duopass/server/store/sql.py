"""Prepared SQL for the hot paths (online scans, ledger appends, postings).

SQLAlchemy builds, caches and compiles an expression on every execution, which costs more than
SQLite spends running it; a `text()` statement built once skips that. Only standard SQL is used,
so one text serves SQLite and PostgreSQL; row locks are added where the dialect has them.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session


def statement(sql: str) -> TextClause:
    return text(sql)


def locking(session: Session, pair: tuple[TextClause, TextClause]) -> TextClause:
    """The plain form on SQLite (its write transaction serialises), `FOR UPDATE` elsewhere."""
    return pair[0] if session.get_bind().dialect.name == "sqlite" else pair[1]


def _with_lock(sql: str) -> tuple[TextClause, TextClause]:
    return statement(sql), statement(sql + " FOR UPDATE")


SCAN_VERDICT = statement(
    "SELECT verdict FROM scans WHERE terminal_id = :terminal_id AND seq = :seq"
)
INSERT_SCAN = statement(
    "INSERT INTO scans (terminal_id, seq, received_at, verdict, provisional) "
    "VALUES (:terminal_id, :seq, :received_at, :verdict, :provisional)"
)
CREDENTIAL = statement(
    "SELECT holder_id, state, mark, release_mark, uses, txmax, offline, holds_released, kind "
    "FROM credentials WHERE cti = :cti"
)
HOLDER = statement("SELECT account_id, frozen FROM holders WHERE id = :id")
ACCOUNT = _with_lock("SELECT id, balance, overdraft, held FROM accounts WHERE id = :id")
COUNTER_SEEN = statement("SELECT 1 FROM counters_seen WHERE cti = :cti AND ctr = :ctr")
INSERT_COUNTER = statement(
    "INSERT INTO counters_seen (cti, ctr, ts, terminal_id, seq, amount, hold, transaction_id) "
    "VALUES (:cti, :ctr, :ts, :terminal_id, :seq, :amount, :hold, :transaction_id)"
)
CHANGE_HELD = statement("UPDATE accounts SET held = held + :delta WHERE id = :id")
CHANGE_BALANCE = statement("UPDATE accounts SET balance = balance + :amount WHERE id = :id")
INSERT_TRANSACTION = statement(
    "INSERT INTO transactions "
    "(kind, request_id, created_at, occurred_at, business_date, terminal_id, memo) VALUES "
    "(:kind, :request_id, :created_at, :occurred_at, :business_date, :terminal_id, :memo) "
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


@cache
def nodes_query(count: int) -> TextClause:
    """Read `count` perfect-subtree hashes by (level, index): one statement per proof or append."""
    wanted = " OR ".join(f'(level = :l{n} AND "index" = :i{n})' for n in range(count))
    # only bind-parameter names are interpolated; every value is bound
    return statement(f'SELECT level, "index", hash FROM ledger_nodes WHERE {wanted}')  # noqa: S608
