"""webhook_endpoints.partner_id: the partner client that owns an endpoint (NULL: the card
office's), whose endpoints take only events about that partner's own events; and partner_rates
dropped, now that the risk engine's shared counters count partners' calls

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain column (no foreign key), added in place, as events.partner_id (0024): batch mode
    # would copy `webhook_endpoints`, which SQLite cannot drop while messages refer to it
    op.add_column("webhook_endpoints", sa.Column("partner_id", sa.Integer(), nullable=True))
    op.create_index("webhook_endpoints_partner", "webhook_endpoints", ["partner_id"])
    op.drop_table("partner_rates")


def downgrade() -> None:
    op.create_table(
        "partner_rates",
        sa.Column("client", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["client"], ["partner_clients.id"]),
        sa.PrimaryKeyConstraint("client"),
    )
    op.drop_index("webhook_endpoints_partner", table_name="webhook_endpoints")
    op.drop_column("webhook_endpoints", "partner_id")
