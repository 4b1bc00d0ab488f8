"""spend of the day: transactions by booking time, and each account's postings by transaction,
so a holder's spend of a day (purse limits) reads that day's postings, not the account's whole
history

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("transactions_created_at", "transactions", ["created_at"])
    op.create_index("postings_account_transaction", "postings", ["account_id", "transaction_id"])


def downgrade() -> None:
    op.drop_index("postings_account_transaction", table_name="postings")
    op.drop_index("transactions_created_at", table_name="transactions")
