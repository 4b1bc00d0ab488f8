"""What tests/pg.py and tests/redis.py share about a server a script starts: the watchdog that
stops it should the process it follows die, and the record through which the processes of one
test run share one server (a JSON file in the run's share folder, read and written under a file
lock), started by whichever process asks first and stopped by the run's main process."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Record", "end_watchdog", "watchdog"]


def watchdog(script: Path, name: str, directory: str, pid: int) -> subprocess.Popen[bytes]:
    """A process that runs `script stop directory` once process `pid` is gone (SIGKILL or an
    unhandled SIGTERM skip `atexit`). It polls that pid, in its own session so that a
    terminal's Ctrl-C does not reach it; `name` is its process name."""
    body = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"'
    return subprocess.Popen(
        ["sh", "-c", body, name, str(pid), str(script), directory],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def end_watchdog(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Record:
    """One kind of shared server's record in a run's share folder: `record` (its URL, folder
    and watchdog's pid) under the lock file `lock`."""

    lock: str
    record: str

    @contextlib.contextmanager
    def locked(self, share: Path) -> Iterator[Path]:
        """The record's path, with the lock held."""
        with (share / self.lock).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield share / self.record
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def url(self, share: Path, start: Callable[[], tuple[str, str, int]]) -> str:
        """The shared server's URL: the recorded one, else `start()`'s (URL, folder, watchdog
        pid), recorded."""
        with self.locked(share) as record:
            if record.exists():
                return str(json.loads(record.read_text())["url"])
            url, directory, watchdog_pid = start()
            server = {"url": url, "directory": directory, "watchdog": watchdog_pid}
            record.write_text(json.dumps(server))
            return url

    def stop(self, share: Path, stop: Callable[[str], None]) -> None:
        """If a server was recorded: forget it, end its watchdog and `stop(its folder)`."""
        with self.locked(share) as record:
            if record.exists():
                server = json.loads(record.read_text())
                record.unlink()
                end_watchdog(server["watchdog"])
                stop(server["directory"])
