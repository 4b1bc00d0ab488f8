"""Group commit: one writer thread runs many concurrent units of work in one transaction (a
savepoint each) and answers them after one commit.

Group commit is for the hot path (online scans): a durable commit, the write lock and, on
PostgreSQL, the ledger's append lock are paid once per batch instead of once per scan. Nothing is
answered before the commit that holds it has returned; a unit that fails rolls back to its own
savepoint and leaves the others in; a batch whose transaction fails is run again whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode, store_unavailable
from duopass.server.store import sql
from duopass.server.store.db import Database
from duopass.server.store.reach import is_unavailable
from duopass.server.unit_of_work import UNIT_ATTEMPTS, Unit, retrying

T = TypeVar("T")
BATCH_UNITS_MAX = 64
AGAIN_MAX = 8
"""Batches a unit may be moved out of by lock conflicts before it is answered 503 `busy`."""
UNIT_WAIT_S = 30.0
"""Longest a request waits for its batch's commit; then 503 `busy` (its unit may still commit:
the terminal retries with the same seq and gets the verdict it holds)."""

log = logging.getLogger("duopass.server.group_commit")


@dataclass(slots=True)
class _Unit(Generic[T]):
    work: Callable[[Unit], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    outcome: tuple[bool, Any] = (False, None)
    """(True, result) or (False, exception), set by the writer before the batch commits."""
    again: int = 0
    """Batches this unit was moved out of by a lock conflict (`_LOCKED`)."""


class GroupCommit:
    """One writer thread per process, started on first use; `run` queues a unit and waits."""

    def __init__(
        self,
        db: Database,
        make_unit: Callable[[Session], Unit],
        *,
        batch_max: int = BATCH_UNITS_MAX,
    ) -> None:
        self.db, self.make_unit, self.batch_max = db, make_unit, batch_max
        self._kept = db.kept()
        """The writer's connection and session, kept from batch to batch (SQLite)."""
        self._queue: SimpleQueue[_Unit[Any] | None] = SimpleQueue()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()

    async def run(self, work: Callable[[Unit], T]) -> T:
        """`work`'s result once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop, loop.create_future())
        self._start()
        self._queue.put(unit)
        # a timer rather than `wait_for(shield(...))`: one future a request, not three and a
        # task's worth of callbacks; a request cancelled meanwhile cancels the future, and
        # `_settle` passes over a future already done, its unit committed all the same
        late = loop.call_later(UNIT_WAIT_S, _too_late, unit.future)
        try:
            return await unit.future
        finally:
            late.cancel()

    def stop(self) -> None:
        """Finish the queued units, then end the writer."""
        with self._starting:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join()

    def _start(self) -> None:
        """Start the writer, or a new one if the last died (it never should; see `_batches`)."""
        if self._writer is None or not self._writer.is_alive():
            with self._starting:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(
                        target=self._write, name="duopass-group-commit", daemon=True
                    )
                    self._writer.start()

    def _write(self) -> None:
        try:
            self._batches()
        finally:
            self._kept.close()

    def _batches(self) -> None:
        again: list[_Unit[Any]] = []
        while True:
            if again:
                batch, again = again, []
            else:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
            try:
                self._commit(batch)
            except BaseException as exc:  # no request is ever left waiting on a dead writer
                log.exception("group commit failed")
                for unit in batch:
                    unit.outcome = (False, exc)
            again = _moved_out(batch)
            _answer([unit for unit in batch if unit.outcome is not _LOCKED])

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        """Run the batch in one transaction, taking in units queued meanwhile until none is
        waiting (or the batch is full), then commit; a failed transaction is run again whole."""
        for n in range(UNIT_ATTEMPTS):
            try:
                with self._kept.unit() as session:
                    done = 0
                    while done < len(batch):
                        for unit in batch[done:]:
                            unit.outcome = _in_savepoint(session, self.make_unit, unit.work)
                        done = len(batch)
                        if n == 0:
                            self._take_queued(batch)
                return
            except Exception as exc:  # BEGIN, a savepoint or COMMIT failed: nothing is answered
                if is_unavailable(exc):  # the database is gone: its COMMIT's outcome unknown,
                    for unit in batch:  # so never run again here (`store.reach`)
                        unit.outcome = (False, store_unavailable())
                    return
                if n == UNIT_ATTEMPTS - 1:
                    for unit in batch:
                        unit.outcome = (False, exc)

    def _take_queued(self, batch: list[_Unit[Any]]) -> None:
        while len(batch) < self.batch_max and not self._queue.empty():
            unit = self._queue.get()
            if unit is None:  # stop once this batch is answered
                self._queue.put(None)
                return
            batch.append(unit)


_LOCKED: tuple[bool, Any] = (False, object())  # its own object: compared by identity
"""A unit's outcome when a lock conflict rolled it back: the lock may be held by another
process's batch that waits on a lock this batch holds (PostgreSQL aborts one side of such a
deadlock), so retrying inside this batch would meet the same conflict; it runs again in the
next batch, after this one's commit has released everything."""


def _moved_out(batch: list[_Unit[Any]]) -> list[_Unit[Any]]:
    """The units a lock conflict rolled back, for the next batch; one moved out too often is
    answered 503 `busy` (the terminal sends the same request again)."""
    again = []
    for unit in batch:
        if unit.outcome is _LOCKED:
            unit.again += 1
            if unit.again > AGAIN_MAX:
                busy = Problem(ProblemCode.BUSY, "busy with other requests: send it again")
                unit.outcome = (False, busy)
            else:
                again.append(unit)
    return again


class _Locked(Exception):
    """A unit's statement met a lock conflict (OperationalError); its savepoint is undone."""


class _Broken(Exception):
    """A savepoint could not be set, released or rolled back: the transaction is not to be
    trusted, so the whole batch is run again."""


def _control(db: sql.Raw, stmt: sql.Statement) -> None:
    try:
        db.run(stmt)
    except Exception as exc:
        raise _Broken(str(exc)) from exc


def _in_savepoint(
    session: Session, make_unit: Callable[[Session], Unit], work: Callable[[Unit], Any]
) -> tuple[bool, Any]:
    """One unit under its own savepoint, retried like a unit of its own; a failure rolls back
    its writes (and what it kept in `session.info`) and is its answer alone. On PostgreSQL the
    savepoint and the unit's writes go with its reads (`sql.Raw.deferred`): a few round trips a
    unit, its last one ending it, so an error is always the unit's own. A unit that succeeds
    leaves its savepoint for the commit to end (one statement fewer a unit): the next unit's
    savepoint nests in it, and a rollback goes to the newest savepoint of the name, its own."""
    db = sql.raw(session)
    kept = dict(session.info)

    def attempt() -> Any:
        with db.deferred():
            db.later(sql.SAVEPOINT)
            try:
                result = work(make_unit(session))
                session.flush()  # ORM writes too belong inside the savepoint
                db.sync()
            except Exception as exc:
                if is_unavailable(exc):  # no savepoint to go back to: the batch fails whole
                    raise _Broken(str(exc)) from exc
                if sql.SAVEPOINT.pyformat not in db.discard():  # else nothing was sent
                    _control(db, sql.ROLLBACK_TO)
                    _control(db, sql.RELEASE)
                session.expunge_all()
                session.info.clear()
                session.info.update(kept)
                if isinstance(exc, OperationalError):
                    raise _Locked from exc
                raise
        return result

    try:
        return True, retrying(attempt)
    except _Broken:
        raise
    except _Locked:
        return _LOCKED
    except Exception as exc:
        return False, exc


def _answer(batch: list[_Unit[Any]]) -> None:
    """Wake every waiting request, one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Unit[Any]]] = {}
    for unit in batch:
        by_loop.setdefault(unit.loop, []).append(unit)
    for loop, units in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop has no one left to answer
            loop.call_soon_threadsafe(_settle, units)


def _too_late(future: asyncio.Future[Any]) -> None:
    if not future.done():
        busy = Problem(ProblemCode.BUSY, "not committed in time: send the same request again")
        future.set_exception(busy)


def _settle(units: list[_Unit[Any]]) -> None:
    for unit in units:
        if unit.future.done():  # the request was cancelled; its unit committed all the same
            continue
        ok, value = unit.outcome
        if ok:
            unit.future.set_result(value)
        else:
            unit.future.set_exception(value)
