"""journal baselines: each holder's and terminal's habits over its offline journal entries

The table starts empty; a key's row is made by the first journal batch that names it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_baselines",
        sa.Column("key", sa.String(length=136), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("journal_baselines")
