"""Worker processes that verify device signatures for large batches (`signatures`): one Python
process each, fed through its standard input and answering on its standard output, so the
verification holds no lock of the server's interpreter at all.

Threads verified before: PyNaCl releases the GIL inside libsodium, but a thread needs the GIL
back after every signature, and while the unit's thread decoded and settled it waited up to the
switch interval (5 ms) for it each time, so the pool verified little until the unit's thread
stopped to wait. A worker needs nothing of the server's process: the unit's thread writes a
slice's checks to the pipe and reads the answers when it needs them.

A request is a count and that many (key, signature, message), each with its length; the answer
is a byte a check, 1 where `keys.verify_signature` holds (after one byte the worker writes
once it has started), so the verdicts are those of the
re-check verifying the same bytes. A request whose count has its top bit set is entries to
decode instead (the request's number, then (seq, length, bytes) each): the worker answers
with a length and `entry_wire.dump`'s bytes, the batch's last entries decoded while the unit's
thread decodes the first (`signatures.decode`). The answer echoes the request's number (a stale
one is refused), and a length above what `entry_wire.answer_bytes_max` allows for the request
is the worker's failure, never read. A worker is lent to one batch at a time (`lend`,
`Worker.back`); at most one per core but one runs, and a batch that finds none free verifies in
the re-check.
A worker that fails (killed, a broken pipe) is dropped and its batch's verdicts still missing are
left to the re-check, so every entry is verified either way. So is one that does not take a
request or answer it within the deadline it was lent with (a stopped or hung process): it is
killed (a `signature_worker_stalled` event), and the next batch starts another.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from duopass.server import entry_wire
from duopass.server.logbook import Event, emit

__all__ = ["DEADLINE_S_DEFAULT", "Worker", "lend", "pids"]

DEADLINE_S_DEFAULT = 5.0
"""`Settings.signature_worker_deadline_s`'s default."""
START_S_MAX = 30.0
"""How long a new worker may take to start (an interpreter and PyNaCl: it writes a byte once
ready); from then on each request and answer is held to the deadline."""
_COUNT = struct.Struct(">I")
_LENGTHS = struct.Struct(">HHI")
_ENTRY = struct.Struct(">QI")
_REQUEST = struct.Struct(">Q")
_DECODE = 0x80000000
"""A request's count with this bit set: entries to decode (`entry_wire`), not checks."""
_DECODED = -1
"""In `Worker.owed`: a decode request's answer (a length, then that many bytes)."""

_SERVE = """
import struct, sys
from duopass.protocol.keys import verify_signature
from duopass.server.entry_wire import dump
count, lengths, entry = struct.Struct(">I"), struct.Struct(">HHI"), struct.Struct(">QI")
number = struct.Struct(">Q")
read, write = sys.stdin.buffer.read, sys.stdout.buffer
known = {}
write.write(b"\\x02")  # ready
write.flush()
try:
    while head := read(4):
        n = count.unpack(head)[0]
        if n & 0x80000000:  # entries to decode: their tuples back, framed by their length
            request, entries = number.unpack(read(8))[0], []
            for _ in range(n & 0x7FFFFFFF):
                seq, size = entry.unpack(read(12))
                entries.append((seq, read(size)))
            answer = dump(request, entries, known)
            write.write(count.pack(len(answer)) + answer)
            write.flush()
            continue
        answer = bytearray()
        for _ in range(n):
            k, s, m = lengths.unpack(read(8))
            key, sig, message = read(k), read(s), read(m)
            answer.append(verify_signature(key, message, sig))
        write.write(answer)
        write.flush()
except (struct.error, BrokenPipeError):  # its input ended mid-request, or its output closed
    pass  # the server went away: exit quietly
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
    """One worker process, lent to one batch at a time, each wait on it bounded by the
    deadline it was lent with (`lend`)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[4])  # the directory holding `duopass`
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our own code)
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={**os.environ, "PYTHONPATH": path},
        )
        self._in: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self._out: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        os.set_blocking(self._in.fileno(), False)  # a full pipe waits in `_wait`, bounded
        _widen(self._in)
        _widen(self._out)
        self._ready = False
        """Whether its ready byte (written once it has imported what it needs) was read."""
        self.deadline_s = DEADLINE_S_DEFAULT
        """How long one request may wait to be taken, or for its answer."""
        self.owed: list[int] = []
        """How many answers each request sent and not yet read is owed, in order (`_DECODED`:
        a decode request's)."""
        self._requests = 0
        """Decode requests sent: each one's number (`entry_wire.dump` echoes it)."""
        self._decodes: list[int] = []
        """The longest answer each decode request owed may have (`entry_wire.answer_bytes_max`),
        in order."""
        self._cut = False
        """A request or answer is being written or read: if an exception other than the
        worker's failure (which closes it) leaves one cut short, the pipes are out of step with
        `owed` and `back` closes the worker rather than lend it again."""

    @property
    def ready(self) -> bool:
        """Whether it has started (answered before): only then is it asked to decode."""
        return self._ready

    def send(self, checks: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        """Ask for (key, message, signature) checks; raises OSError if the worker is gone,
        TimeoutError (an OSError) if it takes none of it within the deadline."""
        parts = [_COUNT.pack(len(checks))]
        for key, message, signature in checks:
            parts += (_LENGTHS.pack(len(key), len(signature), len(message)), key, signature)
            parts.append(message)
        self._write(b"".join(parts))
        self.owed.append(len(checks))

    def _write(self, request: bytes) -> None:
        left = memoryview(request)
        until = time.monotonic() + (self.deadline_s if self._ready else START_S_MAX)
        self._cut = True
        while left:
            try:
                left = left[os.write(self._in.fileno(), left) :]
            except BlockingIOError:
                self._wait(self._in, select.POLLOUT, until)
        self._cut = False

    def send_decode(self, entries: Sequence[tuple[int, bytes]]) -> int:
        """Ask for (seq, entry bytes) to be decoded (`entry_wire.dump`); the request's number
        (`entry_wire.load` takes it); raises as `send`."""
        self._requests += 1
        parts = [_COUNT.pack(_DECODE | len(entries)), _REQUEST.pack(self._requests)]
        for seq, raw in entries:
            parts += (_ENTRY.pack(seq, len(raw)), raw)
        request = b"".join(parts)
        self._write(request)
        self.owed.append(_DECODED)
        framing = _COUNT.size + _REQUEST.size + _ENTRY.size * len(entries)
        most = entry_wire.answer_bytes_max(len(request) - framing, len(entries))
        self._decodes.append(most)  # from the entries' bytes together
        return self._requests

    def receive(self) -> list[bool]:
        """The verdicts of the oldest request not yet read; raises OSError if the worker is
        gone, TimeoutError (an OSError) if the answer is not whole within the deadline."""
        while self.owed[:1] == [_DECODED]:  # a decode answer no one read (it came late): dropped
            self._decoded()
        count = self.owed.pop(0)
        self._cut = True
        self._started()
        answer = self._read(count, time.monotonic() + self.deadline_s)
        self._cut = False
        return [byte == 1 for byte in answer]

    def receive_decoded(self) -> bytes:
        """The answer to the oldest request, a decode request's (`send_decode`); raises as
        `receive`, and ValueError if the oldest is not one."""
        if self.owed[:1] != [_DECODED]:
            raise ValueError("the oldest request is not a decode request")
        return self._decoded()

    def answered(self) -> bool:
        """Whether the oldest answer has begun to come (or the worker ended): reading it would
        not wait for the worker to work."""
        poller = select.poll()
        poller.register(self._out.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def _decoded(self) -> bytes:
        """The oldest answer owed, a decode request's, read whole; one longer than the request
        allows is the worker's failure (an OSError, the worker closed), never read."""
        self.owed.pop(0)
        most = self._decodes.pop(0)
        self._cut = True
        self._started()
        until = time.monotonic() + self.deadline_s
        (size,) = _COUNT.unpack(self._read(_COUNT.size, until))
        if size > most:
            self.close()
            raise OSError(f"the signature worker's answer is {size} bytes, above {most}")
        answer = self._read(size, until)
        self._cut = False
        return answer

    def _started(self) -> None:
        if not self._ready:  # the interpreter's start is not held to the deadline
            self._read(1, time.monotonic() + START_S_MAX)
            self._ready = True

    def _read(self, count: int, until: float) -> bytes:
        answer = bytearray()
        while len(answer) < count:
            self._wait(self._out, select.POLLIN, until)
            read = os.read(self._out.fileno(), count - len(answer))
            if not read:
                raise OSError("the signature worker ended")
            answer += read
        return bytes(answer)

    def _wait(self, pipe: IO[bytes], events: int, until: float) -> None:
        """Until `pipe` is ready for `events` (or closed); TimeoutError past `until`, the
        worker killed (a stopped or hung worker would otherwise hold its batch forever)."""
        poller = select.poll()
        poller.register(pipe.fileno(), events)
        if not poller.poll(max(until - time.monotonic(), 0) * 1000):
            emit(
                Event.SIGNATURE_WORKER_STALLED,
                f"signature worker {self.process.pid} did not answer within "
                f"{self.deadline_s} s: killed, its batch verified in the server's process",
                pid=self.process.pid,
                deadline_s=self.deadline_s,
            )
            self.close()
            raise TimeoutError("the signature worker did not answer in time")

    def back(self) -> None:
        """Give the worker back once every answer owed is read; a failed one is dropped, and
        so is one whose request or answer was cut short (its next answer would be misread)."""
        if self._cut:
            self.close()
            return
        whole = False
        try:
            while self.owed[:1] == [_DECODED]:
                self._decoded()
            while self.owed:
                self.receive()
            whole = True
        except OSError:
            pass
        finally:  # whatever cut the reading short (not only OSError), it is not left half-lent
            if whole:
                with _lock:
                    _idle.append(self)
            else:
                self.close()

    def close(self) -> None:
        """Kill the worker (if it still runs) and close its pipes; again changes nothing."""
        with _lock:
            if self in _started:
                _started.remove(self)
        self.process.kill()  # first: a stopped worker dies of it too, and nothing waits on it
        self.process.wait()
        with contextlib.suppress(OSError):
            self._in.close()
        self._out.close()


PIPE_BYTES = 1 << 20
"""The request pipe's size asked for (Linux; elsewhere, or refused, the system's): a batch of
500 checks is about 150 KB, more than the default 64 KiB, and a batch settled ahead sends every
slice as it is decoded, so with a wide pipe its thread never waits for the worker to read. The
answer pipe is widened too: a decode request's answer (some 170 KB) comes in one read."""


def _widen(pipe: IO[bytes]) -> None:
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: the default
            fcntl.fcntl(pipe.fileno(), setpipe, PIPE_BYTES)


def lend(deadline_s: float) -> Worker | None:
    """A free worker (started if fewer than one per core but one run), or None; each wait on
    it is bounded by `deadline_s` (`Settings.signature_worker_deadline_s`)."""
    with _lock:
        if _idle:
            worker = _idle.pop()
        elif len(_started) >= _most():
            return None
        else:
            if not _started and not _exiting:
                _exiting.append(atexit.register(_close_all))
            worker = Worker()
            _started.append(worker)
    worker.deadline_s = deadline_s
    return worker


def _close_all() -> None:
    for worker in list(_started):
        worker.close()


def pids() -> list[int]:
    """The started workers' process ids (a benchmark reads their CPU time)."""
    with _lock:
        return [worker.process.pid for worker in _started]
