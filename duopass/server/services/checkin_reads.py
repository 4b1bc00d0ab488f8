"""What one pretix-style redeem (`services.redeem`) reads: its lists with the answer already
given to its nonce, and for a code of this issuer the ticket, the credential with its holder's
account (locked, as a scan does), whether the code's counter was consumed, the ticket's
check-ins, the venues of its event and the check-in's id taken ahead: rows, not ORM objects,
in one round trip on PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from duopass.protocol.code import Code
from duopass.protocol.reasons import Reason
from duopass.server.services.checkins import ListRow
from duopass.server.services.server_view import Payer
from duopass.server.store import checkin_sql, sql
from duopass.server.unit_of_work import Unit
from duopass.tickets.checkin import Past

__all__ = ["Read", "TicketRow", "read"]


class TicketRow(NamedTuple):
    """A ticket's row (`checkin_sql.TICKET`), with its order's code."""

    id: int
    sub: str
    event_id: str
    ticket_type_id: int
    state: str
    gen: int
    order: str


@dataclass(slots=True)
class Read:
    """What one redeem reads, in one round trip on PostgreSQL (`read`)."""

    lists: list[ListRow | None]
    """The lists asked for, in order (None: no such list)."""
    answered: str | None
    """The answer already given to the request's nonce on one of its lists."""
    ticket: TicketRow | None
    payer: Payer | None
    """The code's credential with its holder's freeze and account, the account locked (as a
    scan does): check-ins of one holder's tickets wait for each other."""
    seen: dict[tuple[bytes, int], bool]
    """Whether the code's counter was consumed (read after the lock)."""
    past: list[Past]
    """The ticket's successful check-ins (read after the lock)."""
    venues: list[str]
    """The venues of the code's event, by id."""
    checkin_id: int
    """The id the check-in will have (taken ahead)."""


def read(unit: Unit, list_ids: tuple[int, ...], nonce: str | None, code: Code | Reason) -> Read:
    """The lists with the nonce's answer on them, and for a code of this issuer its ticket, its
    credential with the holder's account (locked), whether its counter was consumed and the
    ticket's check-ins (both read after the lock), the venues of its event, and the check-in's
    id: one round trip on PostgreSQL."""
    db = sql.raw(unit.session)
    reads: list[tuple[sql.Statement | sql.Locking, dict[str, Any]]]
    reads = [(checkin_sql.LIST, {"id": list_id, "nonce": nonce}) for list_id in list_ids]
    claims = None if isinstance(code, Reason) else code.credential.claims
    ours = claims is not None and claims.iss == unit.settings.issuer
    counter = None
    if claims is not None and ours:
        sub = {"sub": claims.sub}
        reads += [(checkin_sql.TICKET, sub), (sql.PAYER, {"cti": claims.cti})]
        if not isinstance(code, Reason) and code.dynamic is not None:
            counter = (claims.cti, code.dynamic.ctr)
            reads.append((sql.COUNTER_SEEN, {"cti": claims.cti, "ctr": counter[1]}))
        reads.append((checkin_sql.HISTORY, {**sub, "yes": True}))
    if claims is not None:
        reads.append((checkin_sql.VENUES, {"event": claims.ev}))
    next_id = checkin_sql.NEXT_CHECKIN_ID_SQLITE if db.is_sqlite else checkin_sql.NEXT_CHECKIN_ID
    reads.append((next_id, {}))
    found = db.fetch_all(*reads)
    rows, rest = found[: len(list_ids)], found[len(list_ids) :]
    read = Read(
        lists=[_list_row(r[0]) if r else None for r in rows],
        answered=next((r[0][6] for r in rows if r and r[0][6] is not None), None),
        ticket=None,
        payer=None,
        seen={},
        past=[],
        venues=[] if claims is None else [venue for (venue,) in rest[-2]],
        checkin_id=int(rest[-1][0][0]),
    )
    if ours:
        read.ticket = TicketRow(*rest[0][0]) if rest[0] else None
        read.payer = Payer._make(rest[1][0]) if rest[1] else None
        if counter is not None:
            read.seen = {counter: bool(rest[2])}
        read.past = [Past(list_id, kind, bool(counted)) for list_id, kind, counted in rest[-3]]
    return read


def _list_row(row: Any) -> ListRow:
    list_id, event_id, name, ticket_types, allow_reentry, entry_limit, _ = row
    return ListRow(list_id, event_id, name, ticket_types, bool(allow_reentry), entry_limit)
