"""sessions that can be ended, one-time codes accepted once, sign-in throttles, device sign-in

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    zero = sa.text("0")
    op.add_column(
        "tokens", sa.Column("created_at", sa.BigInteger(), nullable=False, server_default=zero)
    )
    op.add_column(
        "tokens",
        sa.Column("method", sa.String(length=8), nullable=False, server_default="password"),
    )
    op.add_column("tokens", sa.Column("auth_at", sa.BigInteger(), nullable=True))
    op.add_column("tokens", sa.Column("device_id", sa.Integer(), nullable=True))
    op.create_index("tokens_principal", "tokens", ["principal_id", "role"])
    op.add_column("holders", sa.Column("totp_pending", sa.String(length=64), nullable=True))
    op.add_column("holders", sa.Column("totp_pending_at", sa.BigInteger(), nullable=True))
    op.add_column("holders", sa.Column("totp_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "auth_throttles",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.Column("blocked_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "used_challenges",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_used_challenges_expires_at", "used_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_challenges_expires_at", table_name="used_challenges")
    op.drop_table("used_challenges")
    op.drop_table("auth_throttles")
    with op.batch_alter_table("holders") as batch:
        for column in ("totp_step", "totp_pending_at", "totp_pending"):
            batch.drop_column(column)
    op.drop_index("tokens_principal", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        for column in ("device_id", "auth_at", "method", "created_at"):
            batch.drop_column(column)
