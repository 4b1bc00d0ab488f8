"""risk decisions: each decision of the risk engine with the rule, score and features it read

The table starts empty; maintenance keeps it within `risk_decision_retention_s`.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("point", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("policy_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("guard", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_risk_decisions_at", "risk_decisions", ["at"])
    op.create_index("ix_risk_decisions_action", "risk_decisions", ["action"])


def downgrade() -> None:
    op.drop_index("ix_risk_decisions_action", table_name="risk_decisions")
    op.drop_index("ix_risk_decisions_at", table_name="risk_decisions")
    op.drop_table("risk_decisions")
