"""the fleet watched: each terminal's heartbeat, clock offset and reported backlog, and what the
fleet sweep keeps between runs (the backlog it saw, how often in a row it rose, the fleet alerts
in episode, when it last looked)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("heartbeat_at", sa.BigInteger(), None),
    ("clock_offset_s", sa.BigInteger(), None),
    ("held_bundle_seq", sa.BigInteger(), None),
    ("reported_backlog", sa.BigInteger(), "0"),
    ("backlog_seen", sa.BigInteger(), "0"),
    ("backlog_rises", sa.Integer(), "0"),
    ("fleet_alerts", sa.String(length=120), ""),
    ("fleet_swept_at", sa.BigInteger(), "0"),
)


def upgrade() -> None:
    for name, kind, default in _COLUMNS:
        column = sa.Column(name, kind, nullable=default is None, server_default=default)
        op.add_column("terminals", column)
    op.create_index("terminals_fleet_swept", "terminals", ["fleet_swept_at"])


def downgrade() -> None:
    op.drop_index("terminals_fleet_swept", table_name="terminals")
    # not in batch mode, as 0006: SQLite drops a column without constraints in place
    for name, _kind, _default in reversed(_COLUMNS):
        op.drop_column("terminals", name)
