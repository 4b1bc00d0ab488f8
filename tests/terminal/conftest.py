"""A real server on a SQLite file, a proxy in front of it, and terminals that talk to it through
the proxy: in this process (`TerminalAgent`) or as the `duopass terminal` command."""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duopass.demo.netcut import Proxy
from duopass.server.store.tables import Terminal as TerminalRow
from tests.server.harness import Admin, Running, running_server

DEADLINE_S = 60.0
"""Long enough for a loaded machine, so a broken test fails instead of hanging."""
DUOPASS = [sys.executable, "-m", "duopass"]


@pytest.fixture
def server(tmp_path) -> Iterator[Running]:
    with running_server(f"sqlite:///{tmp_path / 'duopass.db'}", tmp_path / "server") as running:
        yield running


@pytest.fixture
def proxy(server) -> Iterator[Proxy]:
    port = int(server.url.rsplit(":", 1)[1])
    cut = Proxy(port)
    yield cut
    cut.close()


def till_code(admin: Admin, name: str = "till-1") -> tuple[str, int]:
    """A till at the canteen (CNY) for a new merchant: (enrolment code, merchant account)."""
    merchant = admin.merchant(f"canteen-{name}")
    code = admin.terminal(
        name, mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
    )
    return code, merchant


def server_acked(server: Running, terminal_id: str) -> int:
    row = server.ctx.run(lambda u: u.session.get(TerminalRow, terminal_id))
    assert row is not None
    return int(row.acked_seq)


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def local(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    """Read the terminal's own SQLite file, as an inspector would."""
    with sqlite3.connect(f"file:{data_dir / 'terminal.db'}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DUOPASS, "terminal", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )


def enrol_till(
    proxy: Proxy, code: str, data: Path, terminal_id: str = "till-1"
) -> subprocess.CompletedProcess[str]:
    """`duopass terminal enrol` through the proxy, as an installer runs it."""
    done = cli(
        "enrol", "--server", proxy.url, "--id", terminal_id, "--code", code, "--data-dir", str(data)
    )
    assert done.returncode == 0, done.stderr
    return done


class TerminalProcess:
    """`duopass terminal run --json` as a child process, fed one line at a time."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                *DUOPASS,
                "terminal",
                "run",
                "--json",
                "--data-dir",
                str(data_dir),
                "--probe-s",
                "0.2",
                "--upload-s",
                "0.3",
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def scan(self, code: str, amount: str | None = None) -> dict[str, Any]:
        if amount is not None:
            self.send(amount)
        self.send(code)
        try:
            return dict(json.loads(self.lines.get(timeout=DEADLINE_S)))
        except queue.Empty:
            raise AssertionError(f"no verdict; stderr: {self.stderr()}") from None

    def finish(self) -> int:
        """Close standard input (the scanner is unplugged) and wait for the exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self._reap()

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        self.proc.kill()
        self._reap()

    def _reap(self) -> int:
        status = self.proc.wait(timeout=DEADLINE_S)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        self.errors = self.proc.stderr.read()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return status

    def stderr(self) -> str:
        return getattr(self, "errors", "(still running)")
