"""settlement preparations: closing a day is prepared by one admin (the report's SHA-256 as
they saw it) and approved by another (maker and checker); a preparation is evidence, kept
append-only like the closing itself

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from duopass.server.store.triggers import append_only, drop_append_only

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_preparations",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("prepared_at", sa.BigInteger(), nullable=False),
        sa.Column("prepared_by", sa.Integer(), nullable=False),
        sa.Column("report_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    append_only(op, "settlement_preparations")


def downgrade() -> None:
    drop_append_only(op, "settlement_preparations")
    op.drop_table("settlement_preparations")
