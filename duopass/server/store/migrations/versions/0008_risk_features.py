"""risk features: bucket counts per key, signal and window, and the pairs distinct counts read

Both tables start empty and hold at most a day of observations (duopass.risk.windows).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_buckets",
        sa.Column("key", sa.String(length=136), nullable=False),
        sa.Column("signal", sa.String(length=32), nullable=False),
        sa.Column("span_s", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "signal", "span_s", "start"),
    )
    op.create_index("risk_buckets_expiry", "risk_buckets", [sa.text("(start + span_s)")])
    op.create_table(
        "risk_pairs",
        sa.Column("subject", sa.String(length=136), nullable=False),
        sa.Column("signal", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("other", sa.String(length=136), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "signal", "kind", "other"),
    )
    op.create_index("ix_risk_pairs_last_at", "risk_pairs", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_risk_pairs_last_at", table_name="risk_pairs")
    op.drop_table("risk_pairs")
    op.drop_index("risk_buckets_expiry", table_name="risk_buckets")
    op.drop_table("risk_buckets")
