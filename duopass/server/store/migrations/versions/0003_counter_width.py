"""counters_seen.ctr holds every L2 counter (below 2^32, limits.COUNTER_LIMIT)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite's INTEGER is already 64-bit
        op.alter_column("counters_seen", "ctr", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("counters_seen", "ctr", type_=sa.Integer(), existing_nullable=False)
