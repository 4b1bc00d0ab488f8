"""The tables of the wallet's state file and their upgrades: a file of any earlier version
opens and is brought up to this one in the transaction that opens it.

Versions: 1 the purse (one `wallet` row); 2 the issuer's policy from the last sync answer
(protocol revision 1.1); 3 tickets beside the purse and the requests a retry must repeat
(a purchase's request id).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from duopass.wallet.errors import Failure, WalletError

__all__ = ["SCHEMA_VERSION", "upgrade"]

SCHEMA_VERSION = 3
_WALLET = """
CREATE TABLE IF NOT EXISTS wallet (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    binding TEXT NOT NULL,
    server TEXT, login TEXT, token TEXT, token_expires INTEGER, device_id INTEGER,
    l1 BLOB, offline INTEGER,
    next_ctr INTEGER NOT NULL DEFAULT 0,
    ceiling INTEGER NOT NULL DEFAULT -1,
    request_id TEXT, request_mark INTEGER, request_binding TEXT,
    clock_server INTEGER, clock_wall REAL, clock_elapsed REAL, clock_boot TEXT, policy TEXT
)
"""
_TICKETS = """
CREATE TABLE IF NOT EXISTS tickets (
    sub TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    refusal TEXT,
    l1 BLOB,
    binding TEXT,
    next_ctr INTEGER NOT NULL DEFAULT 0,
    ceiling INTEGER NOT NULL DEFAULT -1
)
"""
"""One row a ticket: what the server said of it (`info`, JSON), its credential or why it has
none, where the credential was stored (`binding`, as the wallet row's) and its counters."""
_REQUESTS = """
CREATE TABLE IF NOT EXISTS requests (
    purpose TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    body TEXT NOT NULL
)
"""
"""A request sent and not yet answered, so that a retry carries the same id."""


def upgrade(db: sqlite3.Connection, path: Path, binding: str) -> None:
    """Create the tables in a new file, or upgrade an older one (inside a transaction)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if not 1 <= version <= SCHEMA_VERSION and (version, tables) != (0, 0):
        raise WalletError(Failure.STATE, f"{path}: not a wallet state file")
    if version == 0:
        db.execute(_WALLET)
        db.execute("INSERT INTO wallet (id, binding) VALUES (1, ?)", (binding,))
        version = 2
    if version == 1:  # no policy kept yet: the defaults, until the next sync
        db.execute("ALTER TABLE wallet ADD COLUMN policy TEXT")
        version = 2
    if version == 2:  # no tickets yet: the next sync fetches them
        db.execute(_TICKETS)
        db.execute(_REQUESTS)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
