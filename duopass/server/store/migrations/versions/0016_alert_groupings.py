"""alert groupings: a risk decision's alert names its guard, point and subject (`grouping`, a
digest), and one alert of a grouping may be open at once (a unique partial index), so
decisions made at once count on one alert rather than each raising its own

Risk alerts raised before it get their grouping from their evidence, a batch at a time; of
open ones that already share one (raised at once before), the newest keeps it.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BATCH = 1_000


def _grouping(guard: object, point: object, holder_id: int | None, grouped_by: object) -> str:
    """As `risk_records.grouping` made it when this was written."""
    named = json.dumps([guard, point, holder_id, grouped_by])
    return hashlib.sha256(named.encode()).hexdigest()


def upgrade() -> None:
    op.add_column("alerts", sa.Column("grouping", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    read = sa.text(
        "SELECT id, holder_id, state, evidence FROM alerts WHERE kind = 'risk_decision' "
        "AND id < :before ORDER BY id DESC LIMIT :batch"
    )
    write = sa.text("UPDATE alerts SET grouping = :grouping WHERE id = :id")
    before, opened = 2**62, set()
    while rows := bind.execute(read, {"before": before, "batch": BATCH}).all():
        updates = []
        for id_, holder_id, state, evidence in rows:
            held = json.loads(evidence)
            found = _grouping(
                held.get("guard"), held.get("point"), holder_id, held.get("grouped_by")
            )
            if state == "open":
                if found in opened:
                    continue
                opened.add(found)
            updates.append({"id": id_, "grouping": found})
        if updates:
            bind.execute(write, updates)
        before = rows[-1][0]
    op.create_index(
        "alerts_open_grouping",
        "alerts",
        ["grouping"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("alerts_open_grouping", table_name="alerts")
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    op.drop_column("alerts", "grouping")
