"""The issuer server: the card office's system of record and the online half of every scan.

`create_app` builds the FastAPI application; routes are thin and call `services/`, which do one
unit of work per command in one database transaction (the ledger append included).
"""

from duopass.server.app import create_app
from duopass.server.config import Settings

__all__ = ["Settings", "create_app"]
