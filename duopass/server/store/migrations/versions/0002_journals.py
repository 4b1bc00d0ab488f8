"""journals, alerts and the review queue

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from duopass.server.store.triggers import append_only, drop_append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_EVIDENCE = ("journal_batches", "journal_entries", "settlements")


def upgrade() -> None:
    zero = sa.text("0")
    op.add_column("credentials", sa.Column("lost_at", sa.BigInteger(), nullable=True))
    op.add_column(
        "credentials",
        sa.Column("refresh", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "credentials", sa.Column("released", sa.BigInteger(), nullable=False, server_default=zero)
    )
    op.create_index("ix_transactions_business_date", "transactions", ["business_date"])
    op.create_table(
        "settlements",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=False),
        sa.Column("report_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.add_column(
        "counters_seen", sa.Column("amount", sa.BigInteger(), nullable=False, server_default=zero)
    )
    op.add_column(
        "counters_seen", sa.Column("hold", sa.BigInteger(), nullable=False, server_default=zero)
    )
    op.add_column("counters_seen", sa.Column("transaction_id", sa.Integer(), nullable=True))
    op.add_column(
        "terminals", sa.Column("acked_seq", sa.BigInteger(), nullable=False, server_default=zero)
    )
    op.create_table(
        "journal_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("first", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prev", sa.LargeBinary(length=32), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("terminal_id", "digest", name="journal_batch_once"),
    )
    op.create_index("journal_batches_end", "journal_batches", ["terminal_id", "last"])
    op.create_table(
        "journal_entries",
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["journal_batches.id"]),
        sa.PrimaryKeyConstraint("terminal_id", "seq"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("cti", sa.LargeBinary(length=16), nullable=True),
        sa.Column("terminal_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'resolved')", name="alert_state"),
        sa.CheckConstraint("pending >= 0", name="alert_pending"),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("alerts_state", "alerts", ["state", "id"])
    op.create_index("trust_changes_cti", "trust_changes", ["cti"])
    op.create_index("trust_changes_sub", "trust_changes", ["sub"])
    for table in _EVIDENCE:
        append_only(op, table)


def downgrade() -> None:
    for table in _EVIDENCE:
        drop_append_only(op, table)
    op.drop_index("trust_changes_sub", table_name="trust_changes")
    op.drop_index("trust_changes_cti", table_name="trust_changes")
    op.drop_index("alerts_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("journal_entries")
    op.drop_index("journal_batches_end", table_name="journal_batches")
    op.drop_table("journal_batches")
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("acked_seq")
    with op.batch_alter_table("counters_seen") as batch:
        batch.drop_column("transaction_id")
        batch.drop_column("hold")
        batch.drop_column("amount")
    op.drop_table("settlements")
    op.drop_index("ix_transactions_business_date", table_name="transactions")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("released")
        batch.drop_column("refresh")
        batch.drop_column("lost_at")
