"""What partners owe the card office, for people to read: the day's `partners` section of the
settlement (`settlement.partner_lines`) with each partner's name, its CSV, and what every partner
owes now (`partner:<client_id>:<currency>` balances, negated) for the partners list.

The partners CSV is its own file (`PARTNER_COLUMNS`), apart from the merchants' report: the
report's CSV, whose SHA-256 a closing records (`settlement.digest`), is unchanged, so a day closed
before keeps its digest. `owed_total` is a balance as it is now, not as of the day, which is one
more reason it stays out of what a closing hashes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.services.settlement import PartnerLine, partner_lines
from duopass.server.store.partners import PartnerClient
from duopass.server.store.tables import Account

__all__ = ["PARTNER_COLUMNS", "Named", "Owed", "named_lines", "owed_now", "to_csv"]

PARTNER_COLUMNS: Final = (
    "day",
    "time_zone",
    "partner",
    "partner_name",
    "currency",
    "sold",
    "cancelled",
    "net",
    "owed_total",
)
_PREFIX: Final = "partner:"


@dataclass(frozen=True)
class Named:
    """One `PartnerLine` with the client's row id and name ("" and 0 for an unknown client)."""

    line: PartnerLine
    row_id: int
    name: str


@dataclass(frozen=True)
class Owed:
    """What one partner owes in one currency now, in minor units."""

    currency: str
    amount: int


def _clients(session: Session) -> dict[str, PartnerClient]:
    return {row.client_id: row for row in session.scalars(select(PartnerClient))}


def named_lines(session: Session, day: str) -> list[Named]:
    """The day's partner lines (`settlement.partner_lines`), each with its client's name."""
    clients = _clients(session)
    shown = []
    for line in partner_lines(session, day):
        row = clients.get(line.partner)
        shown.append(Named(line, row.id if row else 0, row.name if row else ""))
    return shown


def owed_now(session: Session) -> dict[str, list[Owed]]:
    """Every partner's accounts by client id: what it owes now per currency (may be 0)."""
    rows = session.execute(
        select(Account.name, Account.currency, Account.balance)
        .where(Account.name.startswith(_PREFIX))
        .order_by(Account.name)
    ).all()
    owed: dict[str, list[Owed]] = {}
    for name, currency, balance in rows:
        client = name.removeprefix(_PREFIX).removesuffix(f":{currency}")
        owed.setdefault(client, []).append(Owed(currency, -int(balance)))
    return owed


def to_csv(day: str, lines: list[Named], *, zone: str) -> str:
    """The day's partners section as CSV (`PARTNER_COLUMNS`), amounts in minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PARTNER_COLUMNS)
    for each in lines:
        line = each.line
        writer.writerow(
            (
                day,
                zone,
                line.partner,
                _safe(each.name),
                line.currency,
                line.sold,
                line.cancelled,
                line.net,
                line.owed_total,
            )
        )
    return out.getvalue()


def _safe(text: str) -> str:
    """A name a spreadsheet would not run as a formula (OWASP CSV injection): a leading
    `=`, `+`, `-`, `@`, tab or carriage return gets a `'` before it."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
