"""Several server processes on one listening socket (`duopass serve --workers N`, PostgreSQL
only): the parent binds the socket, migrates and loads what must be loaded once, then forks N
workers; each builds its own app (database pool, group-commit writer) and runs uvicorn on the
inherited socket, the kernel handing each connection to one of them.

The parent only watches. A worker that dies is logged and started again, unless it could not
start at all (its app refused to build: every restart would fail the same way) or workers died
`RESTARTS_MAX` times within `RESTART_WINDOW_S`: then every worker is stopped and the server
exits 1, saying why on standard error. SIGTERM or SIGINT stops the workers (uvicorn finishes
the requests in flight) and the parent exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from duopass.server.logbook import JsonLines
from duopass.server.siblings import Changes, LocalChanges, SharedChanges

__all__ = ["Supervisor", "Worker", "WorkersFailed"]

CONNECTIONS_PER_WORKER_MIN: Final = 8
"""A worker's PostgreSQL pool holds at least this many: its group-commit writer, maintenance and
a few requests of its thread pool at once."""
RESTARTS_MAX: Final = 5
RESTART_WINDOW_S: Final = 60.0
STOP_WAIT_S: Final = 30.0
"""How long the workers have to finish their requests once told to stop; then they are killed."""
CANNOT_START: Final = 3
"""A worker's exit status when its app could not be built (uvicorn's own for a failed start)."""
POLL_S: Final = 0.2

log = logging.getLogger("duopass.server.workers")


class WorkersFailed(Exception):
    """The workers kept dying, or one could not start: the message says which, in one line."""


@dataclass(frozen=True)
class Worker:
    """Which process of the server this is (`index` of `count`; maintenance runs in the first)
    and the change counter the processes share (`server.siblings`)."""

    index: int = 0
    count: int = 1
    changes: Changes = field(default_factory=LocalChanges)

    def connections(self, total: int) -> int:
        """This worker's share of the server's PostgreSQL connections."""
        if self.count == 1:
            return total
        return max(CONNECTIONS_PER_WORKER_MIN, total // self.count)


class Supervisor:
    """Forks `count` workers, each running `serve(worker)` until it returns, and keeps them
    running (`run`)."""

    def __init__(self, count: int, serve: Callable[[Worker], None]) -> None:
        self.count, self.serve = count, serve
        self.changes = SharedChanges()  # made before any fork: every worker inherits it
        self.pids: dict[int, int] = {}  # pid -> worker index
        self._deaths: list[float] = []
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve until told to stop (returns) or the workers fail (raises WorkersFailed)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        try:
            for index in range(self.count):
                self._start(index)
            while not self._stop.wait(POLL_S):
                self._reap()
        finally:
            self._stop_all()

    def _start(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: uvicorn installs its own SIGTERM and SIGINT handlers
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            JsonLines.worker = index
            os._exit(self._child(Worker(index, self.count, self.changes)))
        self.pids[pid] = index

    def _child(self, worker: Worker) -> int:
        try:
            self.serve(worker)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker %d failed", worker.index)
            return 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
        return 0

    def _reap(self) -> None:
        while self.pids:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            index = self.pids.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stop.is_set():
                continue
            log.error("worker %d (pid %d) ended with status %d", index, pid, code)
            if code == CANNOT_START:
                raise WorkersFailed(f"worker {index} could not start (see the log above)")
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
            if len(self._deaths) > RESTARTS_MAX:
                raise WorkersFailed(
                    f"workers died {len(self._deaths)} times within {RESTART_WINDOW_S:.0f} s"
                    " (see the log above): stopping"
                )
            self._start(index)

    def _stop_all(self) -> None:
        self._stop.set()
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while self.pids and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
            else:
                self.pids.pop(pid, None)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.pids.clear()
