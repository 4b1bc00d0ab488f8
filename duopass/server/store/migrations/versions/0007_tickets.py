"""tickets: venues, events, ticket types, orders, tickets, check-in lists and check-ins; policy
versions, decisions, reissue requests and step-up codes; a credential names its ticket

Nothing before needs changing: purse credentials have no ticket.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("doors", sa.BigInteger(), nullable=False),
        sa.Column("ends", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("ends > doors", name="event_times"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_loaded_at", sa.BigInteger(), nullable=False),
        sa.Column("activated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_versions_activated_at"), ["activated_at"], unique=False
        )

    op.create_table(
        "venues",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lat_e6", sa.BigInteger(), nullable=True),
        sa.Column("lon_e6", sa.BigInteger(), nullable=True),
        sa.Column("networks", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "checkin_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ticket_types", sa.Text(), nullable=True),
        sa.Column("allow_reentry", sa.Boolean(), nullable=False),
        sa.Column("entry_limit", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkin_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_lists_event_id"), ["event_id"], unique=False)

    op.create_table(
        "event_venues",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("venue_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"],
            ["venues.id"],
        ),
        sa.PrimaryKeyConstraint("event_id", "venue_id"),
    )
    op.create_table(
        "ticket_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("static_allowed", sa.Boolean(), nullable=False),
        sa.CheckConstraint("price >= 0 AND entries >= 1 AND sold >= 0", name="ticket_type_values"),
        sa.CheckConstraint("sold <= quota", name="ticket_type_quota"),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_types_event_id"), ["event_id"], unique=False)

    op.create_table(
        "gate_lists",
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["checkin_lists.id"],
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
        ),
        sa.PrimaryKeyConstraint("terminal_id"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("paid_by", sa.String(length=8), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("payment_index", sa.BigInteger(), nullable=False),
        sa.Column("payment_leaf", sa.LargeBinary(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("request_fingerprint", sa.LargeBinary(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("refund_transaction_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("state IN ('paid', 'cancelled')", name="order_state"),
        sa.CheckConstraint("quantity >= 1 AND amount >= 0", name="order_values"),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("holder_id", "request_id", name="order_request_once"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_holder_id"), ["holder_id"], unique=False)

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_type_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('valid', 'cancelled')", name="ticket_state"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sub"),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_order_id"), ["order_id"], unique=False)

    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=5), nullable=False),
        sa.Column("successful", sa.Boolean(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("gen", sa.Integer(), nullable=True),
        sa.Column("cti", sa.LargeBinary(length=16), nullable=True),
        sa.Column("nonce", sa.String(length=190), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.CheckConstraint("type IN ('entry', 'exit')", name="checkin_type"),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["checkin_lists.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "nonce", name="checkin_nonce_once"),
    )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index("checkins_ticket", ["ticket_id", "successful"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("policy_sha256", sa.LargeBinary(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=True),
        sa.Column("inputs_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ledger_index"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_decisions_request_id"), ["request_id"], unique=False)

    op.create_table(
        "reissue_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("device_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("to_holder_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("factors", sa.Text(), nullable=False),
        sa.Column("factor_done", sa.String(length=12), nullable=True),
        sa.Column("policy_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("old_cti", sa.LargeBinary(length=16), nullable=True),
        sa.Column("new_cti", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "state IN ('step_up', 'review', 'ready', 'done', 'denied', 'expired')",
            name="reissue_state",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["to_holder_id"],
            ["holders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reissue_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reissue_requests_holder_id"), ["holder_id"], unique=False
        )
        batch_op.create_index("reissue_requests_state", ["state"], unique=False)

    op.create_table(
        "step_up_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("factor", sa.String(length=12), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("step_up_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_up_codes_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_step_up_codes_purpose"), ["purpose"], unique=False)

    # not in batch mode (SQLite could not copy `credentials` while other tables refer to it):
    # SQLite adds the column in place, without the reference, which PostgreSQL gets
    op.add_column("credentials", sa.Column("ticket_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(
            "credentials_ticket_id_fkey", "credentials", "tickets", ["ticket_id"], ["id"]
        )
    op.create_index("ix_credentials_ticket_id", "credentials", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_credentials_ticket_id", table_name="credentials")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("credentials_ticket_id_fkey", "credentials", type_="foreignkey")
    op.drop_column("credentials", "ticket_id")
    with op.batch_alter_table("step_up_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_up_codes_purpose"))
        batch_op.drop_index(batch_op.f("ix_step_up_codes_holder_id"))

    op.drop_table("step_up_codes")
    with op.batch_alter_table("reissue_requests", schema=None) as batch_op:
        batch_op.drop_index("reissue_requests_state")
        batch_op.drop_index(batch_op.f("ix_reissue_requests_holder_id"))

    op.drop_table("reissue_requests")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_request_id"))
        batch_op.drop_index(batch_op.f("ix_decisions_holder_id"))

    op.drop_table("decisions")
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_index("checkins_ticket")

    op.drop_table("checkins")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_order_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_holder_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_event_id"))

    op.drop_table("tickets")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_holder_id"))

    op.drop_table("orders")
    op.drop_table("gate_lists")
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_types_event_id"))

    op.drop_table("ticket_types")
    op.drop_table("event_venues")
    with op.batch_alter_table("checkin_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_lists_event_id"))

    op.drop_table("checkin_lists")
    op.drop_table("venues")
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_activated_at"))

    op.drop_table("policy_versions")
    op.drop_table("events")
