"""Storage: tables, the engine (SQLite WAL with durable commits, or PostgreSQL) and migrations."""

# the modules whose tables join Base's
from duopass.server.store import access as _access  # noqa: F401
from duopass.server.store import decisions as _decisions  # noqa: F401
from duopass.server.store import disputes as _disputes  # noqa: F401
from duopass.server.store import ledger_keys as _ledger_keys  # noqa: F401
from duopass.server.store import partners as _partners  # noqa: F401
from duopass.server.store import passkeys as _passkeys  # noqa: F401
from duopass.server.store import people as _people  # noqa: F401
from duopass.server.store import purse as _purse  # noqa: F401
from duopass.server.store import risk as _risk  # noqa: F401
from duopass.server.store import risk_keys as _risk_keys  # noqa: F401
from duopass.server.store import tickets as _tickets  # noqa: F401
from duopass.server.store import webhooks as _webhooks  # noqa: F401
from duopass.server.store.db import Database
from duopass.server.store.tables import Base

__all__ = ["Base", "Database"]
