"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from duopass.server.store.triggers import append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("overdraft", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("unconfirmed_released", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('holder', 'merchant', 'topup', 'pending', 'loss')", name="account_kind"
        ),
        sa.CheckConstraint("overdraft >= 0 AND held >= 0", name="account_limits"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "counters_seen",
        sa.Column("cti", sa.LargeBinary(length=16), nullable=False),
        sa.Column("ctr", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cti", "ctr"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("index"),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index"),
    )
    op.create_table(
        "meta",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "scans",
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("terminal_id", "seq"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.LargeBinary(length=8), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed_seed", sa.LargeBinary(), nullable=False),
        sa.Column("nbf", sa.BigInteger(), nullable=False),
        sa.Column("exp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kid"),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signing_keys_nbf"), ["nbf"], unique=False)

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'operator')", name="staff_role"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("login"),
    )
    op.create_table(
        "tokens",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.String(length=10), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=True),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_table(
        "trust_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("cti", sa.LargeBinary(length=16), nullable=True),
        sa.Column("sub", sa.String(length=64), nullable=True),
        sa.Column("kid", sa.LargeBinary(length=8), nullable=True),
        sa.Column("until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trust_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trust_changes_seq"), ["seq"], unique=False)

    op.create_table(
        "holders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("offline_suspended", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handle"),
        sa.UniqueConstraint("login"),
    )
    op.create_table(
        "postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postings_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_postings_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "terminals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=True),
        sa.Column("merchant_account_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("enrol_code_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.CheckConstraint("state IN ('created', 'enrolled', 'revoked')", name="terminal_state"),
        sa.ForeignKeyConstraint(
            ["merchant_account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("enrolled_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_key"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_holder_id"), ["holder_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("cti", sa.LargeBinary(length=16), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("txmax", sa.BigInteger(), nullable=False),
        sa.Column("iat", sa.BigInteger(), nullable=False),
        sa.Column("exp", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("mark", sa.Integer(), nullable=True),
        sa.Column("release_mark", sa.Integer(), nullable=True),
        sa.Column("holds_released", sa.Boolean(), nullable=False),
        sa.Column("l1", sa.LargeBinary(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("issued_day", sa.String(length=10), nullable=False),
        sa.CheckConstraint("state IN ('live', 'superseded', 'revoked')", name="credential_state"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["holders.id"],
        ),
        sa.PrimaryKeyConstraint("cti"),
        sa.UniqueConstraint("request_id"),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index("credentials_live", ["holder_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_credentials_holder_id"), ["holder_id"], unique=False)

    for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints"):
        append_only(op, table)


def downgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_holder_id"))
        batch_op.drop_index("credentials_live")

    op.drop_table("credentials")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_holder_id"))

    op.drop_table("devices")
    op.drop_table("terminals")
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_postings_account_id"))

    op.drop_table("postings")
    op.drop_table("holders")
    with op.batch_alter_table("trust_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trust_changes_seq"))

    op.drop_table("trust_changes")
    op.drop_table("transactions")
    op.drop_table("tokens")
    op.drop_table("staff")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_keys_nbf"))

    op.drop_table("signing_keys")
    op.drop_table("scans")
    op.drop_table("meta")
    op.drop_table("ledger_nodes")
    op.drop_table("ledger_leaves")
    op.drop_table("ledger_checkpoints")
    op.drop_table("counters_seen")
    op.drop_table("accounts")
