"""The issuer server: the card office's system of record and the online half of every scan.

`create_app` (in `app`) builds the FastAPI application; routes are thin and call `services/`,
which do one unit of work per command in one database transaction (the ledger append included).
The package imports nothing itself, so that commands which only read the database (audit,
settlement) start without the web stack.
"""

__all__: list[str] = []
