"""Closing a settlement day by maker and checker: one admin prepares the close (the day's report
as they saw it, by its SHA-256), a different admin approves it, and only then is the day closed:
the report's digest and per-merchant totals become a ledger entry (§7), once. The closed day
exports the merchants' payouts.

Refusals: a day not yet ended 409 `conflict`; approving a day nobody prepared 409
`not_prepared`; the preparer approving their own close 403 `same_person`; a report that no
longer hashes as prepared (or as closed) 409 `report_changed`; payouts of a day not closed 409
`not_closed`. Preparing or approving again answers the state as it is.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, settlement, tlog
from duopass.server.store.tables import Settlement, SettlementPreparation
from duopass.server.unit_of_work import Unit

__all__ = ["DayState", "approve", "payouts", "payouts_csv", "prepare", "state"]

PAYOUT_COLUMNS: Final = ("merchant", "amount_minor", "amount_yuan", "day", "report_sha256")


@dataclass(frozen=True)
class DayState:
    """Where a day's closing stands: open, prepared (by whom) or closed (approved by whom)."""

    day: str
    state: Literal["open", "prepared", "closed"]
    prepared: SettlementPreparation | None
    closed: Settlement | None

    def as_json(self) -> dict[str, object]:
        shown: dict[str, object] = {"day": self.day, "state": self.state}
        if self.prepared is not None:
            shown |= {
                "prepared_by": self.prepared.prepared_by,
                "prepared_at": self.prepared.prepared_at,
                "report_sha256": self.prepared.report_sha256.hex(),
            }
        if self.closed is not None:
            shown |= {
                "approved_by": self.closed.closed_by,
                "closed_at": self.closed.closed_at,
                "report_sha256": self.closed.report_sha256.hex(),
                "ledger_index": self.closed.ledger_index,
            }
        return shown


def state(session: Session, day: str) -> DayState:
    settlement.check_day(day)
    prepared = session.get(SettlementPreparation, day)
    closed = session.get(Settlement, day)
    kind: Literal["open", "prepared", "closed"] = (
        "closed" if closed is not None else "prepared" if prepared is not None else "open"
    )
    return DayState(day, kind, prepared, closed)


def _current_digest(unit: Unit, day: str) -> tuple[list[settlement.Line], bytes]:
    lines = settlement.report(unit.session, day)
    return lines, settlement.digest(day, lines, zone=unit.settings.timezone)


def prepare(unit: Unit, *, day: str, by: int) -> DayState:
    """The maker's step: record the ended day's report digest, awaiting another admin."""
    now = state(unit.session, day)
    if now.state != "open":
        return now
    if day >= accounts.business_date(unit.now, unit.settings.zone):
        raise Problem(ProblemCode.CONFLICT, "a day is closed once it has ended")
    _, sha = _current_digest(unit, day)
    unit.session.add(
        SettlementPreparation(day=day, prepared_at=unit.now, prepared_by=by, report_sha256=sha)
    )
    unit.session.flush()
    return state(unit.session, day)


def approve(unit: Unit, *, day: str, by: int) -> DayState:
    """The checker's step: another admin than the preparer closes the day as prepared."""
    now = state(unit.session, day)
    if now.state == "closed":
        return now
    if now.prepared is None:
        raise Problem(ProblemCode.NOT_PREPARED, "the day's close must be prepared first")
    if now.prepared.prepared_by == by:
        raise Problem(ProblemCode.SAME_PERSON, "the admin who prepared a close cannot approve it")
    lines, sha = _current_digest(unit, day)
    if sha != now.prepared.report_sha256:
        raise Problem(ProblemCode.REPORT_CHANGED, "the day's report changed since it was prepared")
    index = tlog.append(
        unit,
        EventType.SETTLEMENT,
        {
            "day": day,
            "time_zone": unit.settings.timezone,
            "report": sha,
            "merchants": [[m, n] for m, n in settlement.merchant_totals(lines).items()],
        },
    )
    unit.session.add(
        Settlement(day=day, closed_at=unit.now, closed_by=by, report_sha256=sha, ledger_index=index)
    )
    unit.session.flush()
    data = {"day": day, "report_sha256": sha.hex(), "ledger_index": index}
    emit(unit, WebhookEvent.DAY_SETTLED, data)
    return state(unit.session, day)


def payouts(unit: Unit, day: str) -> tuple[bytes, dict[str, int]]:
    """A closed day's report digest and each merchant's payout (its net), checked against the
    digest the ledger holds."""
    now = state(unit.session, day)
    if now.closed is None:
        raise Problem(ProblemCode.NOT_CLOSED, "payouts are exported once the day is closed")
    lines, sha = _current_digest(unit, day)
    if sha != now.closed.report_sha256:
        raise Problem(ProblemCode.REPORT_CHANGED, "the day's report no longer hashes as closed")
    return sha, settlement.merchant_totals(lines)


def yuan(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def payouts_csv(day: str, sha: bytes, totals: dict[str, int]) -> str:
    """The payouts as CSV: merchant, amount in minor units and in yuan, day, the report's
    SHA-256 (hex, as `sha256sum` prints the report CSV's)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAYOUT_COLUMNS)
    for merchant, amount in totals.items():
        writer.writerow((merchant, amount, yuan(amount), day, sha.hex()))
    return out.getvalue()
