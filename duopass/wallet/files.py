"""Files in the wallet's data dir: created private (mode 0600) and durably."""

from __future__ import annotations

import os
from pathlib import Path

from duopass.wallet.errors import Failure, WalletError

__all__ = ["create_private", "sync_directory"]


def create_private(path: Path) -> None:
    """Create an empty file of mode 0600 unless it exists, durably (the state file: it holds
    the session token, and SQLite gives its -wal and -shm files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{path}: {exc.strerror}") from exc
    os.close(fd)
    sync_directory(path.parent)


def sync_directory(folder: Path) -> None:
    """Make a new entry in `folder` durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
