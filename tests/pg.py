"""A real PostgreSQL server for the tests, started by the test run itself (`scripts/pg.sh`).

A test module that needs the database imports the session fixture (its Python name differs from
the fixture's, so that parameters named after it do not shadow the import) and takes it by name::

    from tests.pg import postgres_url_fixture  # noqa: F401

    def test_something(postgres_url: str) -> None:
        engine = sqlalchemy.create_engine(postgres_url)

`postgres_url` is a SQLAlchemy URL (`postgresql+psycopg://postgres@127.0.0.1:PORT/duopass`). With
`$DUOPASS_PG_URL` set, the tests use that server and start nothing; otherwise one server is started
for the whole run, however many modules and pytest-xdist workers ask for it, and stopped at its end
(and by a watchdog if the run dies first). The workers share it through a folder the run's main
process makes (`tests/conftest.py`): the first to need it starts it under a file lock and writes
where it is; the main process stops it when the run ends. Tests that change data make a database
of their own on it. When the server cannot be started the fixture fails with the script's own
messages: it never skips.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from duopass.demo.serving import free_port
from tests import servers

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg.sh"
URL_ENV = "DUOPASS_PG_URL"
SHARE_ENV = "DUOPASS_PG_SHARE"
"""The folder through which the processes of one test run share a server (set by conftest.py)."""
RUN_PID_ENV = "DUOPASS_PG_RUN_PID"
"""The pid of the run's main process: the shared server's watchdog outlives the worker that
started it, and ends the server only once the whole run is gone."""
PORT_TAKEN = 75  # scripts/pg.sh's exit status when another process took the port first
START_TIMEOUT = 900  # seconds; a first run may install PostgreSQL from Debian
STOP_TIMEOUT = 120


class PostgresError(RuntimeError):
    """`scripts/pg.sh` could not start a server; the message holds its stderr."""


def _watchdog(directory: str, pid: int) -> subprocess.Popen[bytes]:
    """A process that stops the server should process `pid` die without cleaning up."""
    return servers.watchdog(SCRIPT, "duopass-pg-watchdog", directory, pid)


def _run_stop(directory: str) -> None:
    result = subprocess.run(
        [str(SCRIPT), "stop", directory],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=STOP_TIMEOUT,
    )
    if result.returncode != 0:
        print(result.stderr, end="", file=sys.stderr)
    shutil.rmtree(directory, ignore_errors=True)


_WATCHDOGS: list[subprocess.Popen[bytes]] = []


def start_postgres(
    attempts: int = 3, *, on_start: Callable[[str, str, int], None] | None = None
) -> tuple[str, Callable[[], None]]:
    """Starts a throwaway server on a free port of 127.0.0.1 and returns its SQLAlchemy URL and a
    function that stops it and deletes its files (safe to call more than once).

    With `on_start`, the server belongs to the whole test run instead of this process: its
    watchdog follows the run's main process, nothing stops it at this process's exit, and
    `on_start(url, directory, watchdog_pid)` is told where it is, for `stop_shared`."""
    for attempt in range(1, attempts + 1):
        directory = tempfile.mkdtemp(prefix="duopass-pg-", dir="/tmp")
        try:
            result = subprocess.run(
                [str(SCRIPT), "start", str(free_port()), directory],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=START_TIMEOUT,
            )
        except BaseException:
            _run_stop(directory)
            raise
        if result.returncode == 0:
            break
        _run_stop(directory)
        if result.returncode != PORT_TAKEN or attempt == attempts:
            raise PostgresError(
                f"{SCRIPT.name} start failed (exit status {result.returncode}):\n"
                f"{result.stderr.rstrip()}"
            )
    url = result.stdout.strip()
    if on_start is not None:
        watchdog = _watchdog(directory, int(os.environ[RUN_PID_ENV]))
        _WATCHDOGS.append(watchdog)  # running when this process ends, by design: keep it quiet
        on_start(url, directory, watchdog.pid)
        return url, lambda: None
    watchdog = _watchdog(directory, os.getpid())
    lock = threading.Lock()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        with lock:
            if stopped:
                return
            stopped = True
            servers.end_watchdog(watchdog.pid)
            watchdog.wait()
            _run_stop(directory)

    atexit.register(stop)
    return url, stop


_RECORD = servers.Record(lock="lock", record="server.json")


def shared_url(share: Path) -> str:
    """The URL of the run's shared server, started by whichever process asks first."""

    def start() -> tuple[str, str, int]:
        started: list[tuple[str, str, int]] = []
        start_postgres(on_start=lambda *server: started.append(server))
        return started[0]

    return _RECORD.url(share, start)


def stop_shared(share: Path) -> None:
    """Stops the run's shared server if a process started one; for the run's main process."""
    _RECORD.stop(share, _run_stop)


class _Shared:
    """The one server of a test process, shared by every module that imports the fixture: pytest
    makes a separate session fixture of each import, so the state lives here, not in pytest."""

    server: tuple[str, Callable[[], None]] | None = None
    failure: str | None = None

    @classmethod
    def url(cls) -> str:
        if cls.server is None and cls.failure is None:
            share = os.environ.get(SHARE_ENV)
            try:
                if share:  # the run's server: its main process stops it
                    cls.server = (shared_url(Path(share)), lambda: None)
                else:
                    cls.server = start_postgres()
            except (PostgresError, OSError, subprocess.TimeoutExpired) as error:
                cls.failure = f"could not start PostgreSQL for the tests: {error}"
        if cls.server is None:
            pytest.fail(cls.failure or "no PostgreSQL server", pytrace=False)
        return cls.server[0]

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None:
            _, stop = cls.server
            cls.server = None
            stop()


@pytest.fixture(scope="session", name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    """The SQLAlchemy URL of the tests' PostgreSQL server: `$DUOPASS_PG_URL`, or one started for
    this run and stopped at its end."""
    external = os.environ.get(URL_ENV)
    if external:
        yield external
        return
    yield _Shared.url()
    _Shared.stop()
