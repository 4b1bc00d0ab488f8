"""Worker processes that verify device signatures for large batches (`signatures`): one Python
process each, fed through its standard input and answering on its standard output, so the
verification holds no lock of the server's interpreter at all.

Threads verified before: PyNaCl releases the GIL inside libsodium, but a thread needs the GIL
back after every signature, and while the unit's thread decoded and settled it waited up to the
switch interval (5 ms) for it each time, so the pool verified little until the unit's thread
stopped to wait. A worker needs nothing of the server's process: the unit's thread writes a
slice's checks to the pipe and reads the answers when it needs them.

A request is a count and that many (key, signature, message), each with its length; the answer
is a byte a check, 1 where `keys.verify_signature` holds, so the verdicts are those of the
re-check verifying the same bytes. A worker is lent to one batch at a time (`lend`, `Worker.back`);
at most one per core but one runs, and a batch that finds none free verifies in the re-check.
A worker that fails (killed, a broken pipe) is dropped and its batch's verdicts still missing are
left to the re-check, so every entry is verified either way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = ["Worker", "lend", "pids"]

_COUNT = struct.Struct(">I")
_LENGTHS = struct.Struct(">HHI")

_SERVE = """
import struct, sys
from duopass.protocol.keys import verify_signature
count, lengths = struct.Struct(">I"), struct.Struct(">HHI")
read, write = sys.stdin.buffer.read, sys.stdout.buffer
while head := read(4):
    answer = bytearray()
    for _ in range(count.unpack(head)[0]):
        k, s, m = lengths.unpack(read(8))
        key, sig, message = read(k), read(s), read(m)
        answer.append(verify_signature(key, message, sig))
    write.write(answer)
    write.flush()
"""
"""The worker: requests until its standard input ends (the server closed it, or exited)."""

_lock = threading.Lock()
_idle: list[Worker] = []
_started: list[Worker] = []
_exiting: list[object] = []
"""The exit handler, once registered."""


def _most() -> int:
    return max((os.cpu_count() or 1) - 1, 1)


class Worker:
    """One worker process, lent to one batch at a time."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[4])  # the directory holding `duopass`
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our own code)
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        self._in: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self._out: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        self.owed: list[int] = []
        """How many answers each request sent and not yet read is owed, in order."""

    def send(self, checks: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        """Ask for (key, message, signature) checks; raises OSError if the worker is gone."""
        parts = [_COUNT.pack(len(checks))]
        for key, message, signature in checks:
            parts += (_LENGTHS.pack(len(key), len(signature), len(message)), key, signature)
            parts.append(message)
        self._in.write(b"".join(parts))
        self._in.flush()
        self.owed.append(len(checks))

    def receive(self) -> list[bool]:
        """The verdicts of the oldest request not yet read; raises OSError if the worker is
        gone."""
        count = self.owed.pop(0)
        answer = self._out.read(count)
        if len(answer) != count:
            raise OSError("the signature worker ended")
        return [byte == 1 for byte in answer]

    def back(self) -> None:
        """Give the worker back once every answer owed is read; a failed one is dropped."""
        try:
            while self.owed:
                self.receive()
        except OSError:
            self.close()
            return
        with _lock:
            _idle.append(self)

    def close(self) -> None:
        with _lock:
            if self in _started:
                _started.remove(self)
        with contextlib.suppress(OSError):
            self._in.close()
        self.process.kill()
        self.process.wait()
        self._out.close()


def lend() -> Worker | None:
    """A free worker (started if fewer than one per core but one run), or None."""
    with _lock:
        if _idle:
            return _idle.pop()
        if len(_started) >= _most():
            return None
        if not _started and not _exiting:
            _exiting.append(atexit.register(_close_all))
        worker = Worker()
        _started.append(worker)
        return worker


def _close_all() -> None:
    for worker in list(_started):
        worker.close()


def pids() -> list[int]:
    """The started workers' process ids (a benchmark reads their CPU time)."""
    with _lock:
        return [worker.process.pid for worker in _started]
