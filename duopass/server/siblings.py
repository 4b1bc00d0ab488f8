"""What the server processes forked by one `duopass serve --workers N` share in memory: one
change counter, bumped by a process once it has committed a change that every process caches
(a terminal enrolled or revoked), and read on every request, so a change answered by one process
is seen by its siblings from then on, without a database read.

A server with one process counts the same way in its own memory. Other servers on the same
PostgreSQL database (another host) share no memory: they see such a change when their cache
entry expires (`terminals.DIRECTORY_TTL_S`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import threading
from typing import Protocol

__all__ = ["Changes", "LocalChanges", "SharedChanges"]


class Changes(Protocol):
    def seen(self) -> int:
        """The count now (a cache entry read at a lower count is stale)."""
        ...

    def bump(self) -> None:
        """Count one change: call it after the change has committed, before answering."""
        ...


class LocalChanges:
    """The counter of a server that is one process."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def seen(self) -> int:
        return self._count

    def bump(self) -> None:
        with self._lock:
            self._count += 1


class SharedChanges:
    """The counter in memory the worker processes inherit from the parent that made it (before
    it forks): a 64-bit word read without a lock (an aligned word reads whole), and bumped
    under a lock the processes share, so no bump is lost."""

    def __init__(self) -> None:
        self._value = multiprocessing.get_context("fork").Value(ctypes.c_uint64, 0)
        self._word = self._value.get_obj()

    def seen(self) -> int:
        return int(self._word.value)

    def bump(self) -> None:
        with self._value.get_lock():
            self._word.value += 1
