"""The migrations make the schema the models describe: Alembic's comparison of a database
migrated to the newest revision against the models finds nothing, on SQLite and PostgreSQL.

A model changed without its migration (or the other way) would make the server's queries
and the schema disagree only on the database that was not tried; this finds it on both."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Integer

from duopass.server.store.db import Database
from duopass.server.store.tables import Base
from tests.server.conftest import database_url


def _differences(url: str) -> list[Any]:
    database = Database(url)
    try:
        with database.engine.connect() as connection, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes (risk_buckets_expiry): compared on PG
            warnings.simplefilter("ignore")
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, Base.metadata))
    finally:
        database.dispose()


def _sqlite_only(difference: Any) -> bool:
    """What SQLite cannot hold, so cannot differ in: BIGINT is its INTEGER, and a column
    added by ALTER TABLE carries no foreign key there (PostgreSQL checks both)."""
    if isinstance(difference, list):
        return all(_sqlite_only(item) for item in difference)
    kind = difference[0]
    if kind == "modify_type":
        return isinstance(difference[5], Integer) and isinstance(difference[6], BigInteger)
    return bool(kind == "add_fk")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migrated_schema_is_the_models(request: pytest.FixtureRequest, tmp_path, kind) -> None:
    request.param = kind  # what `database_url` reads
    differences = _differences(database_url(request, tmp_path))
    if kind == "sqlite":
        differences = [d for d in differences if not _sqlite_only(d)]
    assert differences == []
