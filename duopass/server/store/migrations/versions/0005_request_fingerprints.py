"""request fingerprints: an idempotency key is bound to the request it was first used for

Top-ups and refunds (`transactions`), syncs (`credentials`) and online scans (`scans`) store a
fingerprint of their request (duopass/server/services/idempotency.py). A sync's request id is
unique per holder, no longer system-wide, so another holder's id is no oracle.

Rows written before: a top-up's or refund's fingerprint is computed here from its postings, which
record every field of its request, so a retry of it after the upgrade is judged like any other. A
sync's mark and a scan's code were not stored: their fingerprints stay NULL, and the services
compare what the row records (a sync's device) and nothing else, as before the upgrade.

A downgrade fails while two holders share a sync request id (the old schema cannot hold that).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from duopass.server.services.idempotency import money

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("transactions", "credentials", "scans")
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
"""Names SQLite's unnamed UNIQUE (request_id) of 0001 in batch mode, so it can be dropped."""
_PER_HOLDER = "credential_request_once"
_BATCH_ROWS = 1_000

_MONEY = sa.text(
    "SELECT t.id, t.kind, p.account_id, p.amount, a.kind, a.currency "
    "FROM transactions t JOIN postings p ON p.transaction_id = t.id "
    "JOIN accounts a ON a.id = p.account_id "
    "WHERE t.id IN (SELECT id FROM transactions WHERE request_id IS NOT NULL AND id > :after "
    "ORDER BY id LIMIT :rows) ORDER BY t.id, p.id"
)
_SET = sa.text("UPDATE transactions SET request_fingerprint = :fingerprint WHERE id = :id")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("request_fingerprint", sa.LargeBinary(32), nullable=True))
    system_wide = _unique_name(["request_id"])
    with op.batch_alter_table("credentials", naming_convention=_CONVENTION) as batch:
        batch.drop_constraint(system_wide, type_="unique")
        batch.create_unique_constraint(_PER_HOLDER, ["holder_id", "request_id"])
    _fingerprint_money(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("credentials", naming_convention=_CONVENTION) as batch:
        batch.drop_constraint(_PER_HOLDER, type_="unique")
        batch.create_unique_constraint("credentials_request_id_key", ["request_id"])
        batch.drop_column("request_fingerprint")
    # not in batch mode: SQLite could not drop a copied `transactions` while postings refer to
    # it, and drops a column without constraints in place (ALTER TABLE DROP COLUMN, 3.35+)
    for table in ("transactions", "scans"):
        op.drop_column(table, "request_fingerprint")


def _unique_name(columns: list[str]) -> str:
    """The name of the credentials' unique constraint on `columns`: PostgreSQL's own, or on
    SQLite (where 0001 left it unnamed) the one batch mode gives it by `_CONVENTION`."""
    for unique in sa.inspect(op.get_bind()).get_unique_constraints("credentials"):
        if unique["column_names"] == columns and unique["name"]:
            return str(unique["name"])
    return _CONVENTION["uq"] % {"table_name": "credentials", "column_0_name": columns[0]}


def _fingerprint_money(bind: sa.Connection) -> None:
    """Every transaction with a request id (top-ups and refunds) gets the fingerprint of the
    request that booked it, read back from its two postings, a thousand at a time."""
    after = 0
    while True:
        legs: dict[int, list[Any]] = defaultdict(list)
        kinds: dict[int, str] = {}
        for txn, kind, *leg in bind.execute(_MONEY, {"after": after, "rows": _BATCH_ROWS}):
            kinds[txn] = kind
            legs[txn].append(leg)
        if not legs:
            return
        bind.execute(
            _SET,
            [{"id": txn, "fingerprint": _request(kinds[txn], legs[txn])} for txn in legs],
        )
        after = max(legs)


def _request(kind: str, legs: Sequence[Any]) -> bytes:
    """A top-up credits the holder from clearing, a refund from the merchant (topups.py)."""
    ((holder, amount, currency),) = [
        (account, amount, currency)
        for account, amount, account_kind, currency in legs
        if account_kind == "holder" and amount > 0
    ]
    merchants = [account for account, _, account_kind, _ in legs if account_kind == "merchant"]
    return money(
        kind,
        holder_account=holder,
        amount=amount,
        currency=currency,
        merchant_account=merchants[0] if kind == "refund" and merchants else 0,
    )
