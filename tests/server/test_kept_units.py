"""`Database.kept()`: the group-commit writer's units on one connection and session kept from
transaction to transaction (SQLite). Each transaction commits durably and starts as a new
session would; a read left unfinished holds nothing into the next; a transaction that fails
gives its connection up; the risk counts queued for a commit are counted once a transaction."""

from __future__ import annotations

import gc
import sqlite3

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.risk import Count, Key, KeyKind, Observation, Signal, Window
from duopass.server.services import risk_features
from duopass.server.services.risk_features import DatabaseFeatureStore
from duopass.server.store import sql
from duopass.server.store.tables import Meta
from tests.server.harness import Running

INSERT = sql.statement("INSERT INTO meta (name, value) VALUES (:name, :value)")
READ = sql.statement("SELECT value FROM meta WHERE name = :name")
NAMES = sql.statement("SELECT name FROM meta ORDER BY name")


def test_each_transaction_commits_and_starts_afresh(server: Running) -> None:
    db = server.ctx.db
    kept = db.kept()
    try:
        with kept.unit() as session:
            sql.raw(session).run(INSERT, {"name": "kept-a", "value": 1})
            session.info["mine"] = 1
            first = session.scalars(select(Meta).where(Meta.name == "kept-a")).one()
        with kept.unit() as session:
            assert "mine" not in session.info
            assert first not in session  # its objects are forgotten: read again, not stale
            sql.raw(session).run(INSERT, {"name": "kept-b", "value": 2})
    finally:
        kept.close()
    with db.unit() as other:  # another connection sees both
        found = other.scalars(select(Meta.value).where(Meta.name.like("kept-%"))).all()
    assert sorted(found) == [1, 2]


def test_a_read_left_unfinished_holds_nothing_into_the_next_transaction(
    sqlite_server: Running,
) -> None:
    """SQLite only: PostgreSQL's kept units are `Database.unit`'s, a pooled connection each."""
    db = sqlite_server.ctx.db
    kept = db.kept()
    try:
        with kept.unit() as session:
            sql.raw(session).run(INSERT, {"name": "kept-r1", "value": 1})
            sql.raw(session).run(INSERT, {"name": "kept-r2", "value": 1})
        with kept.unit() as session:
            assert sql.raw(session).one(NAMES) is not None  # one row of several read
        path = db.url.database
        assert path is not None
        with sqlite3.connect(path, isolation_level=None) as writer:  # a write in between
            writer.execute("INSERT INTO meta (name, value) VALUES ('kept-w', 1)")
        with kept.unit() as session:  # on a stale snapshot this write fails busy
            session.add(Meta(name="kept-r3", value=1))
            session.flush()  # a cursor of SQLAlchemy's, not the one that read
            names = [row[0] for row in sql.raw(session).all(NAMES, {})]
        assert {"kept-r1", "kept-r2", "kept-r3", "kept-w"} <= set(names)
    finally:
        kept.close()


def test_a_failed_transaction_rolls_back_and_gives_its_connection_up(server: Running) -> None:
    db = server.ctx.db
    kept = db.kept()
    try:
        failed: list[Session] = []

        def fail() -> None:
            with kept.unit() as session:
                sql.raw(session).run(INSERT, {"name": "kept-f", "value": 1})
                failed.append(session)
                raise RuntimeError("the batch failed")

        with pytest.raises(RuntimeError):
            fail()
        with kept.unit() as session:
            assert session is not failed[0] or not db.is_sqlite
            assert sql.raw(session).one(READ, {"name": "kept-f"}) is None
            sql.raw(session).run(INSERT, {"name": "kept-g", "value": 1})
        with kept.unit() as session:
            assert sql.raw(session).one(READ, {"name": "kept-g"}) == (1,)
    finally:
        kept.close()


def test_risk_counts_queued_for_the_commit_count_once_a_transaction(server: Running) -> None:
    ctx = server.ctx
    kept = ctx.db.kept()
    terminal = Key(KeyKind.TERMINAL, "kept-till")
    try:
        for _ in range(3):
            with kept.unit() as session:
                unit = ctx._unit(session)
                seen = Observation(unit.now, Signal.ONLINE_SCAN, (terminal,), ())
                risk_features.observe_at_commit(unit, seen, seen)
        with kept.unit() as session:
            now = ctx.now()
            count = Count(terminal, Signal.ONLINE_SCAN, Window.DAY)
            features = DatabaseFeatureStore(session).read([count], now=now)
    finally:
        kept.close()
    assert features[count.feature] == 6


def test_the_writers_savepoint_journal_stays_in_memory_and_not_in_the_pool(
    sqlite_server: Running,
) -> None:
    """SQLite: the kept connection holds its savepoints' journal in memory (`temp_store`
    2); given back to the pool it is as every other connection (0, the default), so a large
    sort elsewhere still spills to a file."""
    kept = sqlite_server.ctx.db.kept()
    try:
        with kept.unit() as session:
            driver = session.connection().connection.driver_connection
            assert driver is not None
            assert driver.execute("PRAGMA temp_store").fetchone() == (2,)
    finally:
        kept.close()
    assert driver.execute("PRAGMA temp_store").fetchone() == (0,)


def test_a_kept_connection_collected_unclosed_goes_back_to_the_pool_reset(
    sqlite_server: Running,
) -> None:
    """A `KeptUnits` dropped without `close` (its connection given back by the garbage
    collector, not by `close`) still leaves no pooled connection keeping its journal in
    memory: the pool's check-in sets it back."""
    kept = sqlite_server.ctx.db.kept()
    with kept.unit() as session:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        assert driver.execute("PRAGMA temp_store").fetchone() == (2,)
    del kept, session
    gc.collect()
    assert driver.execute("PRAGMA temp_store").fetchone() == (0,)


def test_a_kept_connection_that_cannot_be_set_back_is_dropped_not_pooled(
    sqlite_server: Running,
) -> None:
    """A connection whose temporary store cannot be set back as it comes back (here its
    SQLite connection closed under it) is dropped: the pool holds no connection left keeping
    its journal in memory, and the next unit opens a working one."""
    db = sqlite_server.ctx.db
    kept = db.kept()
    with kept.unit() as session:
        driver = session.connection().connection.driver_connection
        assert driver is not None
    driver.close()
    kept.close()
    with db.engine.connect() as connection:
        again = connection.connection.driver_connection
        assert again is not driver
        assert again is not None and again.execute("PRAGMA temp_store").fetchone() == (0,)
    with db.unit() as session:
        assert session.execute(select(1)).scalar_one() == 1
