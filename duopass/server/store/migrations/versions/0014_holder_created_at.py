"""holders' creation time: the risk engine's account age (`account.age_s`)

Holders created before it have none (NULL): their age reads as unknown (-1), not as new.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("holders", sa.Column("created_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    op.drop_column("holders", "created_at")
