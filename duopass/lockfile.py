"""One process per directory: an OS lock (`flock`) on a file, held for as long as the process
keeps the descriptor open. The kernel drops it when the process ends, however it ends, so a
crash leaves no stale lock behind. The terminal agent holds one on its data directory, and
`duopass serve` one beside its SQLite database; `locked` waits for one around a short critical
section (the server's processes replacing a shared file in turn)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Held", "hold", "locked"]


class Held(Exception):
    """Another process holds the lock."""


def hold(path: Path) -> int:
    """Lock `path` (created, mode 0600, where missing) for this process and return the descriptor
    that holds it: closing it releases the lock. Raises `Held` at once when another process holds
    it. The descriptor is not inherited by programs this one starts (PEP 446)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise Held(str(path)) from exc
    return fd


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold `path`'s lock (created, mode 0600, where missing) for the `with` block, waiting for
    whichever process holds it; released however the block ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it
