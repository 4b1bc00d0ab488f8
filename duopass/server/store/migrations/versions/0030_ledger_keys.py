"""ledger_keys: each rotation of the ledger key, its key_rotation leaf and the keys it joins

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_keys",
        sa.Column("leaf", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("vkey", sa.String(256), nullable=False),
        sa.Column("previous", sa.String(256), nullable=False),
        sa.Column("rotated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("leaf"),
        sa.UniqueConstraint("vkey"),
    )


def downgrade() -> None:
    op.drop_table("ledger_keys")
