"""A database that cannot be reached or written (a failover under way) is told apart from a lock
conflict or a bad request (`store.reach`), answered 503 `store_unavailable` at once and never run
again inside the server (its COMMIT's outcome is unknown); the pool drops connections to a server
that went read-only. The whole failover, under load, is test_failover.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from duopass.demo.serving import free_port
from duopass.server.group_commit import GroupCommit
from duopass.server.keyring import Keyring
from duopass.server.problems import STATUS, Problem, ProblemCode, store_unavailable
from duopass.server.settings import Settings
from duopass.server.store import db as db_module
from duopass.server.store.db import Database
from duopass.server.store.reach import is_unavailable
from duopass.server.unit_of_work import Unit, retrying
from tests.pg import postgres_url_fixture  # noqa: F401


def _wrapped(orig: BaseException, kind: Any = OperationalError) -> Any:
    return kind("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.InterfaceError("the connection is closed"),
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CannotConnectNow("the database system is in recovery mode"),
        errors.ConnectionFailure("connection failure"),
    ],
)
def test_a_lost_server_is_unavailable(orig: BaseException) -> None:
    assert is_unavailable(_wrapped(orig))


def test_a_read_only_standby_is_unavailable() -> None:
    error = _wrapped(errors.ReadOnlySqlTransaction("read-only transaction"), InternalError)
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "orig",
    [
        errors.LockNotAvailable("could not obtain lock"),
        errors.DeadlockDetected("deadlock detected"),
        errors.SerializationFailure("could not serialize access"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_a_lock_conflict_is_not(orig: BaseException) -> None:
    assert not is_unavailable(_wrapped(orig))


def test_neither_is_a_clash_nor_anything_else() -> None:
    assert not is_unavailable(_wrapped(errors.UniqueViolation("duplicate key"), IntegrityError))
    assert not is_unavailable(ValueError("not a database error"))


def test_a_cause_is_looked_through() -> None:
    outer = RuntimeError("the batch failed")
    outer.__cause__ = _wrapped(errors.AdminShutdown("shutting down"))
    assert is_unavailable(outer)


def test_an_unavailable_unit_is_answered_at_once_and_not_run_again() -> None:
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise _wrapped(psycopg.OperationalError("server closed the connection unexpectedly"))

    with pytest.raises(Problem) as refused:
        retrying(attempt)
    assert refused.value.code is ProblemCode.STORE_UNAVAILABLE
    assert len(attempts) == 1


def test_a_lock_conflict_is_still_retried() -> None:
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise _wrapped(errors.LockNotAvailable("could not obtain lock"))

    with pytest.raises(Problem) as refused:
        retrying(attempt)
    assert refused.value.code is ProblemCode.BUSY
    assert len(attempts) == 3


def test_the_group_commit_answers_a_whole_batch_and_lives_on(tmp_path: Path) -> None:
    """Nothing listens on the port: every unit of the batch is 503, the writer stays up."""
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connections=2)
    keyring = Keyring.create(tmp_path, origin="demo-univ/ledger")
    group = GroupCommit(db, lambda session: Unit(session, Settings(), keyring, now=0))

    def work(unit: Unit) -> int:
        return int(unit.session.execute(text("SELECT 1")).scalar_one())

    async def main() -> list[Any]:
        runs = [group.run(work) for _ in range(3)]
        return list(await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 30))

    try:
        answers = asyncio.run(main())
        assert [getattr(a, "code", a) for a in answers] == [ProblemCode.STORE_UNAVAILABLE] * 3
        assert group._writer is not None and group._writer.is_alive()
    finally:
        group.stop()
        db.dispose()


def test_a_connection_to_a_read_only_server_is_dropped(postgres_url: str) -> None:
    """A primary demoted under a pooled connection (here: a read-only session) is a lost
    server: the write fails 503-wise and the pool invalidates the connection."""
    options = "options=-c%20default_transaction_read_only%3Don"
    db = Database(f"{postgres_url}?{options}", connections=1)
    try:
        with pytest.raises(InternalError) as failed, db.unit() as session:
            session.execute(text("CREATE TEMPORARY TABLE t (x int)"))
        assert is_unavailable(failed.value)
        assert failed.value.connection_invalidated
    finally:
        db.dispose()


def test_the_problem_is_a_503() -> None:
    problem = store_unavailable()
    assert problem.code is ProblemCode.STORE_UNAVAILABLE
    assert STATUS[problem.code] == 503 and "send it again" in problem.detail


def _backend(db: Database) -> int:
    with db.unit() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    other = Database(postgres_url, connections=1)
    try:
        with other.unit() as session:
            assert session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    finally:
        other.dispose()


def test_an_idle_connection_to_a_lost_server_is_replaced_unseen(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection unused `PING_IDLE_S` is pinged when taken: one whose server end is
    gone is replaced before the unit runs, which never sees it."""
    monkeypatch.setattr(db_module, "PING_IDLE_S", 0.0)
    db = Database(postgres_url, connections=1)
    try:
        gone = _backend(db)
        _terminate(postgres_url, gone)
        assert _backend(db) != gone
    finally:
        db.dispose()


def test_a_connection_just_used_is_not_pinged_and_its_loss_is_a_503_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the pool's connections are taken again at once and not pinged (no round trip
    a unit): a server lost meanwhile fails the unit that meets it as unavailable (503, never run
    again here), the pool drops the connection, and the next unit runs on a new one."""
    monkeypatch.setattr(db_module, "PING_IDLE_S", 3600.0)
    db = Database(postgres_url, connections=1)
    try:
        gone = _backend(db)
        _terminate(postgres_url, gone)
        with pytest.raises(OperationalError) as failed, db.unit() as session:
            session.execute(text("SELECT 1"))
        assert is_unavailable(failed.value) and failed.value.connection_invalidated
        assert _backend(db) != gone
    finally:
        db.dispose()
