"""The trust store as a terminal keeps it in its SQLite file: the §3 JSON without its lists (the
`trust` meta value, small), and the revocations and freezes packed (protocol.packed), one row a
list, issuer and entry width, each row's blob the sorted entries back to back.

A million revocations load as a dozen megabytes of blob, with no Python object per entry, and a
save rewrites only the rows whose content changed since this process last read or wrote them:
a delta bundle that revokes nothing writes no list at all. A store an older version wrote (its
lists inside the JSON) still loads, and moves to rows at its next save.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sqlite3
import threading
from collections.abc import Iterator

from duopass.protocol.packed import Freezes, Listing, PackedSet, Revocations
from duopass.protocol.trust import TrustStore, dump_trust_store, parse_trust_store

__all__ = ["SCHEMA", "HeldTrust", "give_back_memory"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS trust_lists (
    list TEXT NOT NULL,       -- 'revoked' or 'frozen'
    iss TEXT NOT NULL,
    width INTEGER NOT NULL,   -- bytes an entry (a sub: its UTF-8)
    count INTEGER NOT NULL,
    data BLOB NOT NULL,       -- count sorted entries, back to back
    PRIMARY KEY (list, iss, width)
);
"""

_Row = tuple[str, str, int]
_GENERATION = "trust_lists_generation"
"""Meta value raised by every save: rows this process saw at another generation are rewritten."""


class HeldTrust:
    """Loads and saves one terminal's trust store; `db` is the caller's connection (inside its
    transaction for a save)."""

    def __init__(self) -> None:
        self._seen: dict[_Row, bytes] = {}
        self._seen_generation: object = None
        self._held: TrustStore | None = None
        self._lock = threading.Lock()

    def load(self, db: sqlite3.Connection) -> TrustStore | None:
        """The store in the file: the one this process last read or wrote while the file is
        still at that generation (no copy, no read of the lists), else read anew."""
        generation = _meta(db, _GENERATION)
        with self._lock:
            if self._held is not None and generation == self._seen_generation:
                return self._held
        data = _meta(db, "trust")
        if not isinstance(data, bytes):
            return None
        store = parse_trust_store(data)
        if len(store.revoked) or len(store.frozen):  # written before the lists had rows
            return store
        rows = db.execute("SELECT list, iss, width, count, data FROM trust_lists").fetchall()
        lists: dict[str, dict[str, dict[int, tuple[bytes, int]]]] = {"revoked": {}, "frozen": {}}
        for name, iss, width, count, blob in rows:
            lists[name].setdefault(iss, {})[width] = (blob, count)
        store = TrustStore(
            seq=store.seq,
            issued_at=store.issued_at,
            max_age_s=store.max_age_s,
            issuers=store.issuers,
            revoked=Revocations.of(_sets(lists["revoked"])),
            frozen=Freezes.of(_sets(lists["frozen"])),
        )
        with self._lock:
            self._seen = {(name, iss, width): blob for name, iss, width, _, blob in rows}
            self._seen_generation, self._held = generation, store
        return store

    def save(self, db: sqlite3.Connection, store: TrustStore) -> dict[str, object]:
        """Inside the caller's transaction: write the changed list rows and return the meta
        values to put with them (the JSON without its lists, the new generation)."""
        generation = _meta(db, _GENERATION)
        with self._lock:
            seen = self._seen if generation == self._seen_generation else {}
        wanted = dict(_rows(store))
        for row in seen.keys() - wanted.keys():
            db.execute("DELETE FROM trust_lists WHERE list = ? AND iss = ? AND width = ?", row)
        if not seen:
            db.execute("DELETE FROM trust_lists")
        for (name, iss, width), (blob, count) in wanted.items():
            if seen.get((name, iss, width)) is not blob:
                db.execute(
                    "INSERT OR REPLACE INTO trust_lists (list, iss, width, count, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, iss, width, count, blob),
                )
        new_generation = (generation if isinstance(generation, int) else 0) + 1
        with self._lock:
            self._seen = {row: blob for row, (blob, _) in wanted.items()}
            self._seen_generation, self._held = new_generation, store
        return {"trust": dump_trust_store(store, lists_apart=True), _GENERATION: new_generation}


def give_back_memory() -> None:
    """After a whole bundle: decoding a million entries leaves tens of megabytes the C heap has
    freed but keeps; glibc's `malloc_trim` returns them to the system (a no-op elsewhere)."""
    gc.collect()
    with contextlib.suppress(AttributeError, OSError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _meta(db: sqlite3.Connection, key: str) -> object:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _sets(groups: dict[str, dict[int, tuple[bytes, int]]]) -> dict[str, PackedSet]:
    return {iss: PackedSet.from_groups(by_width) for iss, by_width in groups.items()}


def _rows(store: TrustStore) -> Iterator[tuple[_Row, tuple[bytes, int]]]:
    listings: tuple[tuple[str, Listing[bytes] | Listing[str]], ...] = (
        ("revoked", store.revocations),
        ("frozen", store.freezes),
    )
    for name, listing in listings:
        for iss, packed in listing.issuers().items():
            for width, group in packed.groups().items():
                yield (name, iss, width), group
