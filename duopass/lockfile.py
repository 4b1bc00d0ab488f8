"""One process per directory: an OS lock (`flock`) on a file, held for as long as the process
keeps the descriptor open. The kernel drops it when the process ends, however it ends, so a
crash leaves no stale lock behind. The terminal agent holds one on its data directory, and
`duopass serve` one beside its SQLite database."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["Held", "hold"]


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
