"""people: holders' personal data apart from the books, erasures, staff disabled, bundle sent

`holder_people` holds what the card office knows of a holder (name, number, e-mail, phone) and
the per-holder key that salts the digest of the number in the holder's ledger leaf; erasure
deletes its row and writes one in `erasures`. Holders created before have no row: their numbers
were never stored, only digested under the server's digest key (docs/server.md, "Erasure").
`terminals` notes the trust bundle version each was last sent; `staff` can be disabled.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holder_people",
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("person_key", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"]),
        sa.PrimaryKeyConstraint("holder_id"),
        sa.UniqueConstraint("number", name="holder_people_number_key"),
    )
    op.create_table(
        "erasures",
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.BigInteger(), nullable=False),
        sa.Column("erased_by", sa.Integer(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["holder_id"], ["holders.id"]),
        sa.PrimaryKeyConstraint("holder_id"),
    )
    op.add_column("staff", sa.Column("disabled_at", sa.BigInteger(), nullable=True))
    op.add_column("terminals", sa.Column("bundle_seq", sa.BigInteger(), nullable=True))
    op.add_column("terminals", sa.Column("bundle_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # not in batch mode: SQLite drops a column without constraints in place (3.35+), and could
    # not copy `holders` or `terminals` while other tables refer to them
    for table, column in (
        ("terminals", "bundle_at"),
        ("terminals", "bundle_seq"),
        ("staff", "disabled_at"),
    ):
        op.drop_column(table, column)
    op.drop_table("erasures")
    op.drop_table("holder_people")
