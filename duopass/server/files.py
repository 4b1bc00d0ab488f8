"""The server's files readable by their owner only: the data directory (mode 0700) and all it
holds (0600): the keys, the SQLite database and its -wal and -shm files (personal data), demo.json,
lock files. `duopass serve` creates everything under umask 0o077 and, at start, takes away what
others may do with the files an older version (or a copy) left open to them."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["PRIVATE_UMASK", "make_private", "replace_atomically", "sqlite_files"]

PRIVATE_UMASK = 0o077
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def sqlite_files(db_url: str) -> list[Path]:
    """The SQLite database file of `db_url` and its -wal and -shm files; none for PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return []
    database = Path(url.database)
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def make_private(data_dir: Path, also: list[Path]) -> list[Path]:
    """Take group and other permissions away from `data_dir`, everything in it and `also`
    (symbolic links are left alone, never followed); returns what was changed."""
    changed: list[Path] = []
    paths = [data_dir, *also]
    if data_dir.is_dir():
        for folder, dirs, files in os.walk(data_dir):
            paths += [Path(folder, name) for name in (*dirs, *files)]
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & _OPEN_TO_OTHERS:
            continue
        path.chmod(stat.S_IMODE(mode) & ~_OPEN_TO_OTHERS)
        changed.append(path)
    return changed


def replace_atomically(target: Path, data: bytes) -> None:
    """A temporary file beside `target`, fsynced, renamed over it, the folder fsynced: after a
    crash the file is the old one or the new one, never half of either."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
