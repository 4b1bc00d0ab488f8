"""Storage: tables, the engine (SQLite WAL with durable commits, or PostgreSQL) and migrations."""

from duopass.server.store import people as _people  # noqa: F401  (its tables join Base's)
from duopass.server.store.db import Database
from duopass.server.store.tables import Base

__all__ = ["Base", "Database"]
