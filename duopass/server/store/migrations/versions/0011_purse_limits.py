"""purse limits: the card office's bounds (one row), and each holder's own daily total, count
per meal period, confirmation amount and hashed payment PIN

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("limit_daily", sa.BigInteger()),
    ("limit_meal", sa.Integer()),
    ("confirm_above", sa.BigInteger()),
    ("pin_hash", sa.String(length=200)),
)


def upgrade() -> None:
    op.create_table(
        "purse_bounds",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("daily_max", sa.BigInteger(), nullable=True),
        sa.Column("daily_default", sa.BigInteger(), nullable=True),
        sa.Column("meal_max", sa.Integer(), nullable=True),
        sa.Column("meal_default", sa.Integer(), nullable=True),
        sa.Column("confirm_max", sa.BigInteger(), nullable=True),
        sa.Column("confirm_default", sa.BigInteger(), nullable=True),
        sa.Column("meals", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, kind in _COLUMNS:
        op.add_column("holders", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    for name, _kind in reversed(_COLUMNS):
        op.drop_column("holders", name)
    op.drop_table("purse_bounds")
