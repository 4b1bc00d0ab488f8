"""oidc_bindings: the university provider's (iss, sub) bound to a staff member or a holder at
the first sign-in through it; later sign-ins match by it

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("bound_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('staff', 'holder')", name="oidc_binding_kind"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "principal_id", name="oidc_bindings_account"),
        sa.UniqueConstraint("kind", "issuer", "subject", name="oidc_bindings_subject"),
    )


def downgrade() -> None:
    op.drop_table("oidc_bindings")
