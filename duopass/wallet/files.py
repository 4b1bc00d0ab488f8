"""Files in the wallet's data dir: created private (mode 0600) and durably."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from duopass.wallet.errors import Failure, WalletError

__all__ = ["create_private", "make_private", "sync_directory"]


def make_private(folder: Path, *, leave: str) -> None:
    """The data dir (0700) and its files (0600) for their owner only: files an older version
    left open to others are closed. Symbolic links are left alone, and so is the file named
    `leave` (the device key: one others could read is refused, not quietly closed)."""
    try:
        for path in (folder, *folder.iterdir()):
            mode = path.lstat().st_mode
            if path.name != leave and not stat.S_ISLNK(mode) and mode & 0o077:
                path.chmod(stat.S_IMODE(mode) & ~0o077)
    except OSError as exc:
        raise WalletError(Failure.STATE, f"{folder}: {exc.strerror}") from exc


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
