"""Migrations that copy rows read them a batch at a time (issue 15, review mends): 0013 on a
database with a few thousand risk decisions reads them 1,000 at a time by primary key, and every
decision gets its key rows."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text

from duopass.server.store.db import MIGRATIONS, Database

DECISIONS = 2_500


def test_0013_reads_the_decisions_a_batch_at_a_time(tmp_path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'duopass.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    reads: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM risk_decisions" in statement and statement.lstrip().startswith("SELECT"):
            reads.append((statement, params))

    try:
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0012")
            rows = [
                {"id": n, "at": 1_800_000_000 + n, "subject": json.dumps([f"account:holder:{n}"])}
                for n in range(1, DECISIONS + 1)
            ]
            connection.execute(
                text(
                    "INSERT INTO risk_decisions (id, at, point, subject, policy_version, "
                    "policy_sha256, guard, score, signals, features, action) VALUES (:id, :at, "
                    "'sign_in', :subject, 'v1', x'00', NULL, 5, '[]', '[]', 'allow')"
                ),
                rows,
            )
        event.listen(database.engine, "before_cursor_execute", seen)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0013")
        event.remove(database.engine, "before_cursor_execute", seen)
        with database.engine.connect() as connection:
            keys = connection.execute(text("SELECT COUNT(*) FROM risk_decision_keys")).scalar()
    finally:
        database.dispose()
    assert keys == DECISIONS
    assert len(reads) >= DECISIONS // 1_000 + 1, reads  # 1,000, 1,000, 500 (and an empty one)
    assert all("LIMIT" in statement for statement, _ in reads), reads
