"""partner clients: OAuth 2.0 client-credentials clients (scopes, hashed secrets, a previous
one during a rotation's overlap, revocation), their per-client call counters, and the partner
that owns an event (`events.partner_id`)

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("previous_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("previous_until", sa.BigInteger(), nullable=True),
        sa.Column("calls_per_minute", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('active', 'revoked')", name="partner_client_state"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    # a plain column (no foreign key), added in place: batch mode would copy `events`, which
    # SQLite cannot drop while tickets refer to it
    op.add_column("events", sa.Column("partner_id", sa.Integer(), nullable=True))
    op.create_index("events_partner", "events", ["partner_id"])
    op.create_table(
        "partner_rates",
        sa.Column("client", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["client"], ["partner_clients.id"]),
        sa.PrimaryKeyConstraint("client"),
    )


def downgrade() -> None:
    op.drop_table("partner_rates")
    op.drop_index("events_partner", table_name="events")
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    op.drop_column("events", "partner_id")
    op.drop_table("partner_clients")
