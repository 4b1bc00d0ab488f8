"""passkey_challenges.network: the source network a sign-in challenge was handed to, so that
one network cannot hold every live sign-in challenge (and lock everyone out of passkeys)

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("passkey_challenges") as batch:
        batch.add_column(sa.Column("network", sa.String(64), nullable=True))
        batch.create_index("ix_passkey_challenges_network", ["network"])


def downgrade() -> None:
    with op.batch_alter_table("passkey_challenges") as batch:
        batch.drop_index("ix_passkey_challenges_network")
        batch.drop_column("network")
