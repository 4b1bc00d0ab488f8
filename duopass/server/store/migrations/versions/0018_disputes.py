"""disputes: a holder disputes a payment within 30 days of its booking (PROTOCOL §5.3); staff
uphold it (charged back to the merchant) or reject it; journal entries by transaction, so a
holder's history says which payments were booked from a journal (offline)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("merchant_account_id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("chargeback_transaction_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'upheld', 'rejected')", name="dispute_state"),
        sa.CheckConstraint("amount > 0", name="dispute_amount"),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"]),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"]),
        sa.ForeignKeyConstraint(["merchant_account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transaction_id"),
    )
    op.create_index("disputes_holder", "disputes", ["holder_id", "id"])
    op.create_index("disputes_state", "disputes", ["state", "id"])
    op.create_index("journal_entries_transaction", "journal_entries", ["transaction_id"])


def downgrade() -> None:
    op.drop_index("journal_entries_transaction", table_name="journal_entries")
    op.drop_index("disputes_state", table_name="disputes")
    op.drop_index("disputes_holder", table_name="disputes")
    op.drop_table("disputes")
