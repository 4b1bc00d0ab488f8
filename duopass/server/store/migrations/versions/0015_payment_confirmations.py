"""payment confirmations: an online payment above a holder's PIN amount that came without a PIN,
waiting for the holder to approve it in their wallet with the PIN (or to decline it); the till's
retry of the same seq then passes once

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_confirmations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("cti", sa.LargeBinary(length=16), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("venue", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'declined', 'used')", name="confirmation_state"
        ),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("payment_confirmations_scan", "payment_confirmations", ["terminal_id", "seq"])
    op.create_index("payment_confirmations_holder", "payment_confirmations", ["holder_id", "state"])


def downgrade() -> None:
    op.drop_index("payment_confirmations_holder", table_name="payment_confirmations")
    op.drop_index("payment_confirmations_scan", table_name="payment_confirmations")
    op.drop_table("payment_confirmations")
