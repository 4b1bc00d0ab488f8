"""The sizes that hold an anchor, kept ascending in `anchors/sizes.u64` (one big-endian u64 a
size), so `GET /v1/ledger/anchors/sizes` answers a page with a binary search and one read, never
a listing of the anchors folder (a million folders after a few years).

The anchoring thread adds a size once its first anchor is written (`add`, under the lock file
`anchors/.sizes.lock` every server process takes): appended and fsynced when it is the largest,
the file rewritten in order otherwise (a handover cosigned after a larger size was stamped, a
restored database). A missing index is built from the folders (`rebuild`); one a crash left
short (an anchor written, its size not yet added) is rebuilt when the anchoring thread starts
(`repair`). Readers take no lock: a record half appended is not read."""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from duopass.lockfile import locked
from duopass.server.files import replace_atomically

__all__ = ["FILE_NAME", "add", "has_anchor", "holds", "page", "rebuild", "repair"]

FILE_NAME = "sizes.u64"
_LOCK_NAME = ".sizes.lock"
_RECORD = 8


def has_anchor(where: Path) -> bool:
    """`anchors/<size>/` holds a timestamp or a cosignature (not only the note)."""
    return (where / "timestamp.tsr").is_file() or any(where.glob("cosignature-*"))


class _Records:
    """The sizes of an open index, read one at a time (for `bisect`)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.count = os.fstat(fd).st_size // _RECORD  # a record half appended is left out

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return int.from_bytes(os.pread(self.fd, _RECORD, index * _RECORD), "big")

    def index(self, size: int) -> int | None:
        at = bisect.bisect_left(self, size)
        return at if at < self.count and self[at] == size else None


@contextlib.contextmanager
def _opened(folder: Path) -> Iterator[_Records]:
    """The index for reading, built first if it is missing."""
    try:
        fd = os.open(folder / FILE_NAME, os.O_RDONLY)
    except FileNotFoundError:
        rebuild(folder, only_if_missing=True)
        fd = os.open(folder / FILE_NAME, os.O_RDONLY)
    try:
        yield _Records(fd)
    finally:
        os.close(fd)


def page(folder: Path, after: int, limit: int, top: int) -> list[int]:
    """The indexed sizes above `after`, ascending, at most `limit`, none above `top`."""
    with _opened(folder) as records:
        start = bisect.bisect_right(records, after)
        data = os.pread(records.fd, min(limit, records.count - start) * _RECORD, start * _RECORD)
    found = [int.from_bytes(data[at : at + _RECORD], "big") for at in range(0, len(data), _RECORD)]
    return [size for size in found if size <= top]


def holds(folder: Path, size: int) -> bool:
    with _opened(folder) as records:
        return records.index(size) is not None


def _write(folder: Path, sizes: list[int]) -> None:
    replace_atomically(folder / FILE_NAME, b"".join(s.to_bytes(_RECORD, "big") for s in sizes))


def add(folder: Path, size: int) -> None:
    """Index `size`, whose first anchor was just written (nothing when it is indexed already)."""
    with locked(folder / _LOCK_NAME):
        try:
            fd = os.open(folder / FILE_NAME, os.O_RDWR)
        except FileNotFoundError:
            _write(folder, _found(folder))  # the folders hold `size` already
            return
        try:
            records = _Records(fd)
            if records.count and records[records.count - 1] >= size:
                if records.index(size) is None:  # out of order: rewritten, in order
                    _write(folder, sorted([*_all(records), size]))
                return
            os.ftruncate(fd, records.count * _RECORD)  # a record a crash left half appended
            os.pwrite(fd, size.to_bytes(_RECORD, "big"), records.count * _RECORD)
            os.fsync(fd)
        finally:
            os.close(fd)


def _all(records: _Records) -> list[int]:
    data = os.pread(records.fd, records.count * _RECORD, 0)
    return [int.from_bytes(data[at : at + _RECORD], "big") for at in range(0, len(data), _RECORD)]


def _found(folder: Path, indexed: frozenset[int] = frozenset()) -> list[int]:
    """The sizes whose folders hold an anchor: one listing of the anchors folder; a folder of
    a size `indexed` is not opened (an anchor is never taken away)."""
    named = (entry for entry in folder.iterdir() if entry.name.isdigit())
    return sorted(
        int(entry.name) for entry in named if int(entry.name) in indexed or has_anchor(entry)
    )


def rebuild(folder: Path, *, only_if_missing: bool = False) -> None:
    """Write the index from the folders (when `only_if_missing`, only if there is none)."""
    with locked(folder / _LOCK_NAME):
        if not (only_if_missing and (folder / FILE_NAME).is_file()):
            _write(folder, _found(folder))


def repair(folder: Path) -> bool:
    """Rebuild the index if it differs from the folders (a crash between an anchor and its
    record, an index lost or damaged); True when it was rebuilt."""
    if not folder.is_dir():
        return False
    with locked(folder / _LOCK_NAME):
        try:
            fd = os.open(folder / FILE_NAME, os.O_RDONLY)
        except FileNotFoundError:
            kept = None
        else:
            try:
                kept = _all(_Records(fd))
            finally:
                os.close(fd)
        found = _found(folder, frozenset(kept or ()))
        if kept == found:
            return False
        _write(folder, found)
        return True
