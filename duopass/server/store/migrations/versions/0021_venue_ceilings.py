"""venue ceilings: the card office's highest plausible single payment at a venue per meal period
(and outside them), a JSON object on the venue; an acceptance above it raises a journal anomaly

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("venues", sa.Column("ceilings", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("venues") as batch:
        batch.drop_column("ceilings")
