"""partner orders: the partner that sold an order (`orders.partner_id`, its Idempotency-Key
unique per partner) and the partner that asked for a reissue on a holder's behalf
(`reissue_requests.partner_id`)

Plain columns (no foreign key), added in place as 0024's `events.partner_id`: batch mode would
copy `orders`, which SQLite cannot drop while tickets refer to it.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("partner_id", sa.Integer(), nullable=True))
    op.create_index(
        "order_partner_request_once", "orders", ["partner_id", "request_id"], unique=True
    )
    op.add_column("reissue_requests", sa.Column("partner_id", sa.Integer(), nullable=True))
    op.create_index("reissue_requests_partner", "reissue_requests", ["partner_id"])


def downgrade() -> None:
    op.drop_index("reissue_requests_partner", table_name="reissue_requests")
    op.drop_column("reissue_requests", "partner_id")
    op.drop_index("order_partner_request_once", table_name="orders")
    op.drop_column("orders", "partner_id")
