"""A pg_auto_failover formation for a test, started by the test itself (`scripts/pg_failover.sh`):
a monitor, a primary `a` and its synchronous standby `b` on free ports of 127.0.0.1, run as the
`postgres` user, each node's keeper (`pg_autoctl run`) in a process group of its own.

    with formation() as pg:
        engine = sqlalchemy.create_engine(pg.url)  # both hosts, target_session_attrs=read-write
        pg.kill("a")                               # the node gone: keeper and server, SIGKILL
        pg.wait_for_primary("b", timeout_s=60)

Everything is stopped and deleted when the block ends, and by a watchdog should this process
die first; the script's own messages say why a formation could not be started (never a skip).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from duopass.demo.serving import free_port
from tests import servers

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg_failover.sh"
PORT_TAKEN = 75
START_TIMEOUT = 900  # seconds; a first run may install pg_auto_failover from Debian
STOP_TIMEOUT = 120
PRIMARY_STATES = frozenset({"single", "wait_primary", "primary"})
"""The states in which the monitor has a node take writes."""


class FormationError(RuntimeError):
    """`scripts/pg_failover.sh` could not start a formation; the message holds its stderr."""


@dataclass(frozen=True)
class Formation:
    url: str
    """The server's SQLAlchemy URL: both nodes, the primary found by libpq."""
    directory: Path
    monitor_port: int
    ports: dict[str, int]

    def node_url(self, node: str, database: str = "duopass") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.ports[node]}/{database}"

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported, assigned) state, as the monitor has them."""
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.monitor_port}/pg_auto_failover"
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as db:
                rows = db.execute(
                    text("SELECT nodename, reportedstate, goalstate FROM pgautofailover.node")
                ).all()
        finally:
            engine.dispose()
        return {str(name): (str(reported), str(goal)) for name, reported, goal in rows}

    def primary(self) -> str | None:
        """The node the monitor has taking writes (reported and assigned), if one is."""
        for name, (reported, goal) in self.states().items():
            if reported in PRIMARY_STATES and goal in PRIMARY_STATES:
                return name
        return None

    def setting(self, node: str, name: str) -> str:
        """A setting of the server on `node`, read on it."""
        engine = create_engine(self.node_url(node), connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as db:
                return str(
                    db.execute(text("SELECT current_setting(:name)"), {"name": name}).one()[0]
                )
        finally:
            engine.dispose()

    def kill(self, node: str) -> None:
        """The node lost at once: its keeper's whole process group (the keeper and its
        PostgreSQL server) killed with SIGKILL, so nothing restarts the server."""
        group = int((self.directory / node / "keeper.pid").read_text())
        os.killpg(group, signal.SIGKILL)

    def wait_for_primary(self, node: str, *, timeout_s: float) -> float:
        """Wait until the monitor has `node` taking writes; the seconds waited."""
        started = time.monotonic()
        while True:
            with contextlib.suppress(Exception):  # the monitor busy: asked again
                if self.primary() == node:
                    return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"{node} not the primary after {timeout_s} s: {self.states()}")
            time.sleep(0.25)


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


def _start(attempts: int) -> tuple[Formation, str]:
    for attempt in range(1, attempts + 1):
        directory = tempfile.mkdtemp(prefix="duopass-failover-", dir="/tmp")
        ports = [free_port() for _ in range(3)]
        try:
            result = subprocess.run(
                [str(SCRIPT), "start", directory, *map(str, ports)],
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
            found = Formation(
                result.stdout.strip(), Path(directory), ports[0], {"a": ports[1], "b": ports[2]}
            )
            return found, directory
        _run_stop(directory)
        if result.returncode != PORT_TAKEN or attempt == attempts:
            raise FormationError(
                f"{SCRIPT.name} start failed (exit status {result.returncode}):\n"
                f"{result.stderr.rstrip()}"
            )
    raise AssertionError("unreachable")


@contextlib.contextmanager
def formation(attempts: int = 3) -> Iterator[Formation]:
    """A formation for the block; stopped and deleted at its end, whatever happened."""
    found, directory = _start(attempts)
    watchdog = servers.watchdog(SCRIPT, "duopass-failover-watchdog", directory, os.getpid())
    try:
        yield found
    finally:
        servers.end_watchdog(watchdog.pid)
        watchdog.wait()
        _run_stop(directory)
