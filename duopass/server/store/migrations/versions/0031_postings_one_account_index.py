"""postings: one index led by account_id, not two (`ix_postings_account_id` was a prefix of
`postings_account_transaction`, which serves every lookup by account; each posting paid for
both)

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_postings_account_id", table_name="postings")


def downgrade() -> None:
    op.create_index("ix_postings_account_id", "postings", ["account_id"])
