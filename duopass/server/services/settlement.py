"""Daily settlement per merchant and terminal: what each till took, voided and was credited from
pending on one booking day, from the postings themselves, so the totals are the books' own.

A movement settles on the day it is booked in the issuer's time zone (an offline payment
uploaded on Tuesday settles on Tuesday), so a day never changes once it has ended; every report
names the zone (§5.4). Closing a day (`settlement_close`: prepared by one admin, approved by
another) records the report's digest and totals in the ledger (§7: settlement is a lifecycle
event).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.tables import Account, Posting, Transaction

COLUMNS = (
    "day",
    "time_zone",
    "merchant",
    "terminal",
    "currency",
    "payments",
    "count",
    "voids",
    "pending",
    "refunds",
    "other",
    "net",
)
_BUCKETS = {
    "payment": "payments",
    "amend": "payments",
    "void": "voids",
    "pending": "pending",
    "refund": "refunds",
}


@dataclass
class Line:
    """One merchant's takings at one terminal (terminal "" for movements without one)."""

    merchant: str
    terminal: str
    currency: str
    payments: int = 0
    count: int = 0
    voids: int = 0
    pending: int = 0
    refunds: int = 0
    other: int = 0

    @property
    def net(self) -> int:
        return self.payments + self.voids + self.pending + self.refunds + self.other


def report(session: Session, day: str) -> list[Line]:
    """Every merchant posting booked on `day`, by merchant and terminal, in minor units."""
    check_day(day)
    rows = session.execute(
        select(
            Account.name,
            Account.currency,
            Transaction.terminal_id,
            Transaction.kind,
            func.sum(Posting.amount),
            func.count(Posting.id),
        )
        .join(Posting, Posting.transaction_id == Transaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Transaction.business_date == day, Account.kind == "merchant")
        .group_by(Account.name, Account.currency, Transaction.terminal_id, Transaction.kind)
    ).all()
    lines: dict[tuple[str, str], Line] = {}
    for name, currency, terminal, kind, amount, count in rows:
        key = (name.removeprefix("merchant:"), terminal or "")
        line = lines.setdefault(key, Line(key[0], key[1], currency))
        bucket = _BUCKETS.get(kind, "other")
        setattr(line, bucket, getattr(line, bucket) + int(amount))
        if kind == "payment":
            line.count += int(count)
    return [lines[key] for key in sorted(lines)]


@dataclass
class PartnerLine:
    """What one partner sold of the card office's tickets on a day (it collected the price),
    less what was cancelled, and what it owes in all (its account's balance, negated)."""

    partner: str
    currency: str
    sold: int = 0
    cancelled: int = 0
    owed_total: int = 0

    @property
    def net(self) -> int:
        return self.sold - self.cancelled


def partner_lines(session: Session, day: str) -> list[PartnerLine]:
    """Every partner's sales booked on `day` (`partners.sales`), in minor units."""
    check_day(day)
    rows = session.execute(
        select(Account.name, Account.currency, Account.balance, Transaction.kind)
        .add_columns(func.sum(Posting.amount))
        .join(Posting, Posting.account_id == Account.id)
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .where(Transaction.business_date == day, Account.name.startswith("partner:"))
        .group_by(Account.name, Account.currency, Account.balance, Transaction.kind)
    ).all()
    lines: dict[str, PartnerLine] = {}
    for name, currency, balance, kind, amount in rows:
        client = name.removeprefix("partner:").removesuffix(f":{currency}")
        line = lines.setdefault(name, PartnerLine(client, currency, owed_total=-int(balance)))
        if kind == "partner_order":
            line.sold -= int(amount)
        else:
            line.cancelled += int(amount)
    return [lines[name] for name in sorted(lines)]


def to_csv(day: str, lines: list[Line], *, zone: str) -> str:
    """The report as CSV; each row names the time zone its booking day is in."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(
            (
                day,
                zone,
                line.merchant,
                line.terminal,
                line.currency,
                line.payments,
                line.count,
                line.voids,
                line.pending,
                line.refunds,
                line.other,
                line.net,
            )
        )
    return out.getvalue()


def digest(day: str, lines: list[Line], *, zone: str) -> bytes:
    """SHA-256 of the day's CSV report: what a closing records and its approval checks."""
    return hashlib.sha256(to_csv(day, lines, zone=zone).encode()).digest()


def merchant_totals(lines: list[Line]) -> dict[str, int]:
    """Each merchant's net for the day over all its terminals, in minor units."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.merchant] = totals.get(line.merchant, 0) + line.net
    return dict(sorted(totals.items()))


def check_day(day: str) -> None:
    try:
        if date.fromisoformat(day).isoformat() != day:
            raise ValueError(day)
    except ValueError as exc:
        raise Problem(ProblemCode.INVALID_REQUEST, "day is YYYY-MM-DD") from exc
