"""risk decision keys: each key a risk decision read, with its time and score, for the card
office's view of the keys most at risk and its decisions filtered by key; and the alert whose
release (a person's) let a decision held for review through

Decisions recorded before it get their rows from their subjects (a JSON list of keys), read
1,000 at a time.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BATCH = 1_000
"""Decisions read at once: a large table is copied a batch at a time, by primary key."""


def upgrade() -> None:
    op.add_column("risk_decisions", sa.Column("released_by", sa.Integer(), nullable=True))
    op.create_table(
        "risk_decision_keys",
        sa.Column("decision_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=136), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", "key"),
    )
    op.create_index("risk_decision_keys_at", "risk_decision_keys", ["at"])
    op.create_index("risk_decision_keys_key", "risk_decision_keys", ["key", "decision_id"])
    bind = op.get_bind()
    read = sa.text(
        "SELECT id, at, score, subject FROM risk_decisions WHERE id > :after "
        "ORDER BY id LIMIT :batch"
    )
    insert = sa.text(
        "INSERT INTO risk_decision_keys (decision_id, key, at, score)"
        " VALUES (:decision_id, :key, :at, :score)"
    )
    after = 0
    while rows := bind.execute(read, {"after": after, "batch": BATCH}).all():
        keys = [
            {"decision_id": id_, "key": key, "at": at, "score": score}
            for id_, at, score, subject in rows
            for key in dict.fromkeys(json.loads(subject))
        ]
        if keys:
            bind.execute(insert, keys)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("risk_decision_keys_key", table_name="risk_decision_keys")
    op.drop_index("risk_decision_keys_at", table_name="risk_decision_keys")
    op.drop_table("risk_decision_keys")
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    op.drop_column("risk_decisions", "released_by")
