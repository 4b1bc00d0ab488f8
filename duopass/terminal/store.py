"""The terminal's one data directory: a SQLite file (WAL, `synchronous=FULL`) holding its
configuration, trust store, journal, stored batches and the memory of what it accepted.

Every write that a verdict depends on commits before the verdict is shown. Each thread has its
own connection; `transaction()` is `BEGIN IMMEDIATE`, so a scan's seq, its journal entry and its
acceptance are each written whole or not at all, and two processes on one directory (the agent
and `duopass terminal upload`) never cut the same entries into two batches.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from duopass.protocol.memory import Acceptance
from duopass.protocol.trust import TrustStore
from duopass.terminal.held_trust import SCHEMA as _TRUST_SCHEMA
from duopass.terminal.held_trust import HeldTrust

__all__ = ["DB_NAME", "KEY_NAME", "Config", "DurableMemory", "Open", "Store", "StoredBatch"]

DB_NAME = "terminal.db"
KEY_NAME = "terminal.jwk"
_BUSY_TIMEOUT_MS = 10_000
Pin = tuple[bytes, int] | None
"""A root to pin after a bundle: its public key and the seq of the link that led to it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    scanned_at INTEGER NOT NULL,
    mode TEXT NOT NULL,
    amount INTEGER,
    code TEXT NOT NULL,
    tried INTEGER NOT NULL DEFAULT 0,
    data BLOB,            -- the entry's exact bytes; NULL while its scan is being decided
    batch INTEGER         -- the first seq of the stored batch that carries it
);
CREATE TABLE IF NOT EXISTS batches (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    data BLOB NOT NULL,
    digest BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS accepted (
    iss TEXT NOT NULL,
    sub TEXT NOT NULL,
    cti BLOB NOT NULL,
    gen INTEGER NOT NULL,
    ctr INTEGER,
    entry INTEGER NOT NULL,
    keep_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accepted_counter ON accepted (iss, cti, ctr);
CREATE INDEX IF NOT EXISTS accepted_subject ON accepted (iss, sub);
"""


def _private(data_dir: Path) -> None:
    """The data directory and its files for their owner only (0700, 0600 or less): they hold the
    terminal's key and journal. Files an older version left open to others are closed."""
    for path in (data_dir, *data_dir.iterdir()):
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            path.chmod(stat.S_IMODE(mode) & ~0o077)


@dataclass(frozen=True, kw_only=True)
class Config:
    """What enrolment fixed: who the terminal is, where its server is, what it scans for."""

    terminal_id: str
    server: str
    iss: str
    root_key: bytes
    mode: str
    venue: str | None
    currency: str | None
    event: str | None


@dataclass(frozen=True)
class StoredBatch:
    first: int
    last: int
    data: bytes
    digest: bytes


@dataclass(frozen=True)
class Open:
    """A scan that took a seq but has no journal entry yet."""

    seq: int
    scanned_at: int
    mode: str
    amount: int | None
    code: str
    tried: bool


class Store:
    """The SQLite file of one terminal."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self._local = threading.local()
        self._held_trust = HeldTrust()
        _private(data_dir)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # -wal, -shm: the same
        self._db().executescript(_SCHEMA + _TRUST_SCHEMA)

    # -- connections and transactions ------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection, committed (durably) on exit; with
        `write=False`, a read transaction (one snapshot)."""
        db = self._db()
        if db.in_transaction:  # nested: the outer transaction commits
            yield db
            return
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- meta ------------------------------------------------------------------------------

    def get(self, key: str, default: object = None) -> object:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def put(self, **values: object) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def _int(self, key: str) -> int:
        value = self.get(key, 0)
        assert isinstance(value, int), key
        return value

    @property
    def enrolled(self) -> bool:
        return self.get("terminal_id") is not None

    def config(self) -> Config:
        def text(key: str) -> str | None:
            value = self.get(key)
            assert value is None or isinstance(value, str), key
            return value

        root = self.get("root_key")
        terminal_id, server, iss, mode = (
            text("terminal_id"),
            text("server"),
            text("iss"),
            text("mode"),
        )
        assert isinstance(root, bytes) and terminal_id and server and iss and mode, "enrolled"
        return Config(
            terminal_id=terminal_id,
            server=server,
            iss=iss,
            root_key=root,
            mode=mode,
            venue=text("venue"),
            currency=text("currency"),
            event=text("event"),
        )

    @property
    def clock_offset(self) -> int:
        """Server time minus terminal time at the last sync, in seconds."""
        return self._int("clock_offset")

    @property
    def acked_seq(self) -> int:
        return self._int("acked_seq")

    @property
    def next_seq(self) -> int:
        return self._int("next_seq") or 1

    # -- the trust store -------------------------------------------------------------------

    def trust(self) -> TrustStore | None:
        """The trust store held (its lists packed: held_trust), read in one transaction."""
        with self.transaction(write=False) as db:
            return self._held_trust.load(db)

    def save_trust(
        self, store: TrustStore, *, whole: bool, now: int, offset: int, root: Pin = None
    ) -> None:
        """With `root`, the root pinned from now on (its key, its link's seq: `root_key`,
        `root_seq`), in the same transaction: a crash keeps the old store and root, or both new."""
        with self.transaction() as db:
            values = self._held_trust.save(db, store)
            values.update(bundle_seq=store.seq, bundle_synced_at=now, clock_offset=offset)
            if whole:
                values["bundle_whole_at"] = now
            if root is not None:
                values.update(root_key=root[0], root_seq=root[1])
            self.put(**values)

    # -- the journal -----------------------------------------------------------------------

    def open_scan(
        self, *, scanned_at: int, mode: str, amount: int | None, code: str, tried: bool
    ) -> int:
        """Take the next seq for a scan, durably, before the server is asked."""
        with self.transaction() as db:
            seq = self.next_seq
            db.execute(
                "INSERT INTO journal (seq, scanned_at, mode, amount, code, tried) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (seq, scanned_at, mode, amount, code, int(tried)),
            )
            self.put(next_seq=seq + 1)
        return seq

    def close_scan(
        self, db: sqlite3.Connection, seq: int, entry: bytes, acceptance: Acceptance | None
    ) -> None:
        """Inside a transaction: the scan's journal entry and what it accepted."""
        db.execute("UPDATE journal SET data = ? WHERE seq = ? AND data IS NULL", (entry, seq))
        if acceptance is not None:
            DurableMemory(self).record(acceptance)

    def open_scans(self) -> list[Open]:
        """Scans that took a seq and never got an entry (the terminal stopped mid-scan)."""
        rows = self._db().execute(
            "SELECT seq, scanned_at, mode, amount, code, tried FROM journal "
            "WHERE data IS NULL ORDER BY seq"
        )
        return [Open(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def oldest_unacked(self) -> int | None:
        """The scan time (terminal clock) of the oldest entry the server has not acknowledged."""
        row = (
            self._db()
            .execute("SELECT MIN(scanned_at) FROM journal WHERE data IS NOT NULL")
            .fetchone()
        )
        return None if row is None or row[0] is None else int(row[0])

    def backlog(self) -> int:
        """Journal entries written and not yet acknowledged by the server (its heartbeat)."""
        row = self._db().execute("SELECT COUNT(*) FROM journal WHERE data IS NOT NULL").fetchone()
        return int(row[0])

    def unsent(self) -> int:
        row = self._db().execute("SELECT COUNT(*) FROM journal WHERE batch IS NULL").fetchone()
        return int(row[0])

    def entries(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    # -- batches ---------------------------------------------------------------------------

    def stored_batch(self) -> StoredBatch | None:
        """The oldest batch stored and not yet acknowledged, exactly as it was first cut."""
        row = (
            self._db()
            .execute("SELECT first, last, data, digest FROM batches ORDER BY first LIMIT 1")
            .fetchone()
        )
        return None if row is None else StoredBatch(*row)

    def unbatched(self, db: sqlite3.Connection, limit: int) -> list[tuple[int, bytes]]:
        """Inside a transaction: the finished entries after the last batch, contiguous from the
        first of them (a scan still being decided ends the run)."""
        rows = db.execute(
            "SELECT seq, data FROM journal WHERE batch IS NULL ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        run: list[tuple[int, bytes]] = []
        for seq, data in rows:
            if data is None or (run and seq != run[-1][0] + 1):
                break
            run.append((seq, data))
        return run

    def store_batch(self, db: sqlite3.Connection, batch: StoredBatch) -> None:
        """Inside a transaction: keep a batch's bytes before it is sent, and chain the next."""
        db.execute(
            "INSERT INTO batches (first, last, data, digest) VALUES (?, ?, ?, ?)",
            (batch.first, batch.last, batch.data, batch.digest),
        )
        db.execute(
            "UPDATE journal SET batch = ? WHERE seq BETWEEN ? AND ?",
            (batch.first, batch.first, batch.last),
        )
        self.put(chain_head=batch.digest)

    def chain_head(self) -> bytes | None:
        value = self.get("chain_head")
        return value if isinstance(value, bytes) else None

    def acknowledge(self, acked_seq: int) -> None:
        """The server holds every entry up to `acked_seq`: only now are they deleted."""
        with self.transaction() as db:
            if acked_seq <= self.acked_seq:
                return
            db.execute("DELETE FROM journal WHERE seq <= ? AND data IS NOT NULL", (acked_seq,))
            db.execute("DELETE FROM batches WHERE last <= ?", (acked_seq,))
            self.put(acked_seq=acked_seq)

    # -- the memory of acceptances ---------------------------------------------------------

    def forget_until(self, now: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM accepted WHERE keep_until < ?", (now,))


class DurableMemory:
    """`TerminalMemory` over the `accepted` table. `record` joins the caller's transaction, so an
    acceptance is durable together with its journal entry, before the verdict is shown."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _db(self) -> sqlite3.Connection:
        return self._store._db()  # one store, one connection per thread

    def highest_generation(self, iss: str, sub: str) -> int | None:
        row = (
            self._db()
            .execute("SELECT MAX(gen) FROM accepted WHERE iss = ? AND sub = ?", (iss, sub))
            .fetchone()
        )
        return None if row is None or row[0] is None else int(row[0])

    def counter_accepted(self, iss: str, cti: bytes, ctr: int) -> bool:
        row = (
            self._db()
            .execute(
                "SELECT 1 FROM accepted WHERE iss = ? AND cti = ? AND ctr = ? LIMIT 1",
                (iss, cti, ctr),
            )
            .fetchone()
        )
        return row is not None

    def entries_accepted(self, iss: str, sub: str) -> int:
        row = (
            self._db()
            .execute(
                "SELECT COUNT(*) FROM accepted WHERE iss = ? AND sub = ? AND entry = 1", (iss, sub)
            )
            .fetchone()
        )
        return int(row[0])

    def record(self, acceptance: Acceptance) -> None:
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO accepted (iss, sub, cti, gen, ctr, entry, keep_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    acceptance.iss,
                    acceptance.sub,
                    acceptance.cti,
                    acceptance.gen,
                    acceptance.ctr,
                    int(acceptance.entry),
                    acceptance.keep_until,
                ),
            )
