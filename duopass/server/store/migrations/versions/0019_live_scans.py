"""live scans: online scans and journal entries by the time the server received them, so the
console's live charts read the last minutes of each, not the whole table

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("scans_received_at", "scans", ["received_at"])
    op.create_index("journal_entries_received_at", "journal_entries", ["received_at"])


def downgrade() -> None:
    op.drop_index("journal_entries_received_at", table_name="journal_entries")
    op.drop_index("scans_received_at", table_name="scans")
