"""The day's spend of a holder reads only that day (issue 15, review mends): the query behind
the daily total and meal count (`purse_limits._SPENT`) finds the holder's postings of the day by
index, on SQLite and PostgreSQL, not the holder's whole history."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from duopass.server.services import purse_limits
from duopass.server.store.db import Database
from tests.server.conftest import database_url

PARAMS = {"account": 7, "start": 1, "end": 2, "meal_start": 1, "meal_end": 2}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_days_spend_is_read_by_index(request: pytest.FixtureRequest, tmp_path, kind) -> None:
    request.param = kind  # what `database_url` reads
    database = Database(database_url(request, tmp_path))
    query = purse_limits._SPENT.named  # the statement itself
    try:
        with database.engine.connect() as connection:
            if database.is_sqlite:
                rows = connection.execute(text("EXPLAIN QUERY PLAN " + query), PARAMS).all()
                plan = "\n".join(str(row[-1]) for row in rows)
            else:  # an empty table is read whole unless the planner is told not to
                connection.execute(text("SET enable_seqscan = off"))
                rows = connection.execute(text("EXPLAIN " + query), PARAMS).all()
                plan = "\n".join(str(row[0]) for row in rows)
    finally:
        database.dispose()
    assert "postings_account_transaction" in plan, plan
    assert "transactions_created_at" in plan, plan
    if database.is_sqlite:  # the holder's postings from the day's first transaction on
        assert "(account_id=? AND transaction_id>?)" in plan, plan
        assert "SCAN" not in plan, plan
    else:
        assert "Seq Scan" not in plan, plan
