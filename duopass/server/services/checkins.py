"""Check-in lists and check-ins: lists per event (which ticket types, re-entry after an exit,
an entry limit), the list a gate counts on, and every check-in decision recorded on a list,
whichever way it came: the redeem route (`redeem`), a gate's online scan (`gate_entry`) or a
gate's journal (`journal_entry`). A successful one is also a `checkin` ledger event. The
rules themselves are pure (`duopass.tickets.checkin`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import select

from duopass.ledger.events import EventType
from duopass.protocol.claims import Claims
from duopass.protocol.reasons import Reason
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import events, tlog
from duopass.server.store.tables import Terminal
from duopass.server.store.tickets import Checkin, CheckinList, GateList, Ticket, TicketType
from duopass.server.unit_of_work import Unit
from duopass.tickets.checkin import ENTRY, Decision, ListRules, Past, Refusal, decide, inside

__all__ = [
    "GATE_REASONS",
    "ListRow",
    "Made",
    "Recorded",
    "add_list",
    "assign_gate",
    "checkin_list",
    "counts",
    "decide_for",
    "describe",
    "gate_entry",
    "gate_list",
    "history",
    "leaf_body",
    "of_event",
    "record",
    "rules_of",
    "ticket_of",
]

GATE_REASONS = {
    Refusal.ALREADY_USED: Reason.ALREADY_USED,
    Refusal.RULES: Reason.ALREADY_USED,
    Refusal.PRODUCT: Reason.OUT_OF_SCOPE,
    Refusal.CANCELED: Reason.REVOKED,
}
"""A gate answers in §3's words: a list's refusal as the §3 code that fits it."""


def add_list(
    unit: Unit,
    event_id: str,
    *,
    name: str,
    ticket_types: Sequence[int] | None,
    allow_reentry: bool,
    entry_limit: int | None,
) -> CheckinList:
    """A new check-in list of an event; its ticket types must be the event's."""
    session = unit.session
    events.event(session, event_id)
    if ticket_types is not None:
        if len(set(ticket_types)) != len(ticket_types):
            raise Problem(ProblemCode.INVALID_REQUEST, "ticket types listed twice")
        owned = set(
            session.scalars(
                select(TicketType.id).where(
                    TicketType.event_id == event_id, TicketType.id.in_(ticket_types)
                )
            )
        )
        if owned != set(ticket_types):
            missing = sorted(set(ticket_types) - owned)
            raise Problem(ProblemCode.NOT_FOUND, f"no ticket types {missing} of this event")
    row = CheckinList(
        event_id=event_id,
        name=name,
        ticket_types=None if ticket_types is None else json.dumps(sorted(ticket_types)),
        allow_reentry=allow_reentry,
        entry_limit=entry_limit,
        created_at=unit.now,
    )
    session.add(row)
    session.flush()
    return row


def checkin_list(session: Any, list_id: int) -> CheckinList:
    row = session.get(CheckinList, list_id)
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no check-in list {list_id}")
    assert isinstance(row, CheckinList)
    return row


def of_event(session: Any, event_id: str) -> list[CheckinList]:
    return list(
        session.scalars(
            select(CheckinList).where(CheckinList.event_id == event_id).order_by(CheckinList.id)
        )
    )


class ListRow(NamedTuple):
    """A check-in list's row, read without the ORM (the redeem route)."""

    id: int
    event_id: str
    name: str
    ticket_types: str | None
    allow_reentry: bool
    entry_limit: int | None


def rules_of(row: CheckinList | ListRow) -> ListRules:
    types = None if row.ticket_types is None else frozenset(json.loads(row.ticket_types))
    return ListRules(row.id, types, row.allow_reentry, row.entry_limit)


def gate_list(session: Any, terminal_id: str, event_id: str | None) -> CheckinList | None:
    """The list a gate counts on: the one assigned to it, else its event's first."""
    assigned = session.get(GateList, terminal_id)
    if assigned is not None:
        row = session.get(CheckinList, assigned.list_id)
        assert isinstance(row, CheckinList)
        return row
    if event_id is None:
        return None
    first = session.scalars(
        select(CheckinList)
        .where(CheckinList.event_id == event_id)
        .order_by(CheckinList.id)
        .limit(1)
    ).first()
    return first if isinstance(first, CheckinList) else None


def assign_gate(unit: Unit, terminal_id: str, list_id: int) -> CheckinList:
    """Make an entry gate count on a list of its own event."""
    session = unit.session
    terminal = session.get(Terminal, terminal_id)
    if terminal is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no terminal {terminal_id!r}")
    row = checkin_list(session, list_id)
    if terminal.mode != "entry" or terminal.event != row.event_id:
        raise Problem(ProblemCode.CONFLICT, "only an entry gate of the list's event counts on it")
    assigned = session.get(GateList, terminal_id)
    if assigned is None:
        session.add(GateList(terminal_id=terminal_id, list_id=list_id))
    else:
        assigned.list_id = list_id
    session.flush()
    return row


def history(session: Any, ticket_id: int) -> list[Past]:
    """The ticket's successful check-ins on every list, in the order they happened."""
    rows = session.execute(
        select(Checkin.list_id, Checkin.type, Checkin.counted)
        .where(Checkin.ticket_id == ticket_id, Checkin.successful.is_(True))
        .order_by(Checkin.at, Checkin.id)
    )
    return [Past(list_id, kind, bool(counted)) for list_id, kind, counted in rows]


def decide_for(
    session: Any, row: CheckinList, ticket: Ticket, *, entries_allowed: int, type: str
) -> tuple[Decision, list[Past]]:
    """The list's decision on the ticket now, and the history it was made on."""
    past = history(session, ticket.id)
    decision = decide(
        rules_of(row),
        ticket_type=ticket.ticket_type_id,
        cancelled=ticket.state == "cancelled",
        entries_allowed=entries_allowed,
        history=past,
        type=type,
    )
    return decision, past


@dataclass(frozen=True)
class Made:
    """Where a check-in came from and who made it."""

    source: str
    """redeem, scan (a gate online) or journal (a gate's offline entry)."""
    terminal_id: str | None = None
    seq: int | None = None
    staff_id: int | None = None
    nonce: str | None = None
    forced: bool = False


def record(
    unit: Unit,
    row: CheckinList,
    ticket: Ticket | None,
    *,
    type: str,
    successful: bool,
    counted: bool,
    reason: str | None,
    at: int,
    claims: Claims | None,
    made: Made,
) -> Checkin:
    """One check-in decision on the list (the caller appends the ledger event of a successful
    one: `leaf_body`)."""
    checkin = Checkin(
        list_id=row.id,
        ticket_id=None if ticket is None else ticket.id,
        type=type,
        successful=successful,
        counted=successful and counted,
        reason=reason,
        at=at,
        received_at=unit.now,
        gen=None if claims is None else claims.gen,
        cti=None if claims is None else claims.cti,
        nonce=made.nonce,
        forced=made.forced,
        source=made.source,
        terminal_id=made.terminal_id,
        seq=made.seq,
        staff_id=made.staff_id,
    )
    unit.session.add(checkin)
    unit.session.flush()
    return checkin


class Recorded(Protocol):
    """What a check-in's ledger event tells of it: a `Checkin` row, or the redeem route's."""

    @property
    def list_id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def at(self) -> int: ...
    @property
    def cti(self) -> bytes | None: ...
    @property
    def gen(self) -> int | None: ...
    @property
    def nonce(self) -> str | None: ...
    @property
    def forced(self) -> bool: ...
    @property
    def terminal_id(self) -> str | None: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def staff_id(self) -> int | None: ...


class _Subject(Protocol):
    @property
    def sub(self) -> str: ...


def leaf_body(checkin: Recorded, ticket: _Subject) -> dict[str, Any]:
    """The `checkin` ledger event's body."""
    body: dict[str, Any] = {
        "ticket": ticket.sub,
        "list": checkin.list_id,
        "type": checkin.type,
        "at": checkin.at,
    }
    if checkin.cti is not None:
        body.update(cti=checkin.cti, gen=checkin.gen or 0)
    if checkin.nonce is not None:
        body["nonce"] = checkin.nonce
    if checkin.forced:
        body["forced"] = 1
    if checkin.terminal_id is not None:
        body["terminal"] = checkin.terminal_id
    if checkin.seq is not None:
        body["seq"] = checkin.seq
    if checkin.staff_id is not None:
        body["by"] = checkin.staff_id
    return body


def webhook_data(checkin: Recorded, ticket: _Subject, event_id: str) -> dict[str, Any]:
    """The `ticket.checked_in` webhook's data: the ledger event's, without the code's ids."""
    data: dict[str, Any] = {"ticket": ticket.sub, "event": event_id, "list": checkin.list_id}
    data.update(type=checkin.type, at=checkin.at, forced=checkin.forced)
    if checkin.terminal_id is not None:
        data["terminal"] = checkin.terminal_id
    return data


def ticket_of(session: Any, sub: str) -> Ticket | None:
    found = session.scalars(select(Ticket).where(Ticket.sub == sub)).first()
    return found if isinstance(found, Ticket) else None


def gate_entry(unit: Unit, *, terminal_id: str, event_id: str, claims: Claims, seq: int) -> Reason:
    """An entry a gate's online scan passed §3 for: its list's rules too (answered in §3's
    words, `GATE_REASONS`), then the check-in and its ledger event. OK or the refusal."""
    session = unit.session
    row = gate_list(session, terminal_id, event_id)
    ticket = ticket_of(session, claims.sub)
    if row is None or ticket is None:  # an event without lists, a code of no ticket
        return Reason.OK
    decision, _ = decide_for(session, row, ticket, entries_allowed=claims.ent or 1, type=ENTRY)
    if decision.refusal is not None:
        return GATE_REASONS[decision.refusal]
    made = Made("scan", terminal_id=terminal_id, seq=seq)
    checkin = record(
        unit,
        row,
        ticket,
        type=ENTRY,
        successful=True,
        counted=decision.counted,
        reason=None,
        at=unit.now,
        claims=claims,
        made=made,
    )
    tlog.append(unit, EventType.CHECKIN, leaf_body(checkin, ticket))
    emit(unit, WebhookEvent.TICKET_CHECKED_IN, webhook_data(checkin, ticket, event_id))
    return Reason.OK


def counts(session: Any, row: CheckinList) -> dict[str, int]:
    """How many tickets entered on the list, and how many are inside now."""
    rows = session.execute(
        select(Checkin.ticket_id, Checkin.type, Checkin.counted)
        .where(Checkin.list_id == row.id, Checkin.successful.is_(True))
        .order_by(Checkin.at, Checkin.id)
    )
    per_ticket: dict[int, list[Past]] = {}
    for ticket_id, kind, counted in rows:
        per_ticket.setdefault(ticket_id, []).append(Past(row.id, kind, bool(counted)))
    entered = sum(1 for past in per_ticket.values() if any(p.type == ENTRY for p in past))
    now_inside = sum(1 for past in per_ticket.values() if inside(past, row.id))
    return {"entered": entered, "inside": now_inside}


def describe(session: Any, row: CheckinList) -> dict[str, Any]:
    """A list with its counts."""
    return {**events.describe_list(row), **counts(session, row)}
