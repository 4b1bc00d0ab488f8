"""The pretix-style redeem (`POST /v1/checkin/redeem`): a scanned code checked in (or out) on
one of the caller's check-in lists, online.

The server runs PROTOCOL §3 on the code with its own state (as `scans` does), as an entry
verifier for the list's event at whichever of its venues the code's `scope` names, then the
list's rules (`duopass.tickets.checkin`). Every decision is a check-in row, a refusal too; a
successful one also consumes the code's counter system-wide and is a `checkin` ledger event.
The same `nonce` on the same list answers the first answer again. `force` records what a device
that was offline did: it overrides the refusals in `FORCEABLE`, never a code that is not
genuinely the issuer's and the holder's, nor one for another event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from duopass.ledger.events import EventType
from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Claims
from duopass.protocol.code import Code, FormatError, decode_code
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, verify_code
from duopass.server.partners.outbox import WebhookEvent, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import checkin_reads, checkins, events, tlog
from duopass.server.services.checkin_reads import Read, TicketRow
from duopass.server.services.checkins import ListRow
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.server_view import ServerMemory, ServerTrust
from duopass.server.store import checkin_sql, sql
from duopass.server.unit_of_work import Unit
from duopass.tickets.checkin import ENTRY, Decision, decide, entries_used

__all__ = ["FORCEABLE", "INVALID", "RedeemRequest", "Redeemer", "redeem", "status_of"]

INVALID = "invalid"
"""pretix's reason for a secret it cannot find: ours for a text that is no code of this
issuer (FORMAT, MALFORMED, UNKNOWN_KEY) or of no ticket. HTTP 404."""
FORGED = frozenset({Reason.BAD_SIGNATURE, Reason.KEY_WINDOW})
"""The issuer's key did not sign it (in its window): never a cancelled ticket, never forced."""
FORCEABLE = frozenset(
    {
        Reason.NOT_YET_VALID.value,
        Reason.EXPIRED.value,
        Reason.REVOKED.value,
        Reason.FROZEN.value,
        Reason.STALE.value,
        Reason.USES_EXHAUSTED.value,
        Reason.REPLAY.value,
        Reason.ALREADY_USED.value,
        "canceled",
        "product",
        "rules",
    }
)
"""What `force` overrides: the state of the ticket and its uses, which an offline device could
not know. It never overrides FORMAT, MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE, KEY_WINDOW,
WRONG_KIND, OUT_OF_SCOPE, DEVICE_BINDING_REQUIRED or BAD_DEVICE_SIGNATURE."""
EXPLANATIONS = {
    INVALID: "not a ticket code of this issuer",
    "canceled": "the ticket's order was cancelled",
    "product": "this list does not admit the ticket's type",
    "rules": "the list's rules refuse it (entry after an exit without re-entry, or an exit "
    "of a ticket that is not inside)",
    Reason.ALREADY_USED.value: "no entries left on this ticket (or on this list)",
}


@dataclass(frozen=True)
class RedeemRequest:
    secret: str
    lists: tuple[int, ...]
    type: str
    nonce: str | None
    at: int | None
    """The check-in's time (`datetime`); None: the server's clock."""
    force: bool


@dataclass(frozen=True)
class Redeemer:
    """Who redeems: a staff member, an entry terminal (only on lists of its own event) or a
    partner client (only on lists of events it owns: `events.partner_id`)."""

    staff_id: int | None = None
    terminal_id: str | None = None
    terminal_event: str | None = None
    partner_id: int | None = None


class _Checkin(NamedTuple):
    """A check-in as it is recorded (a row of `checkins`), before its insert."""

    id: int
    list_id: int
    ticket_id: int | None
    type: str
    successful: bool
    counted: bool
    reason: str | None
    at: int
    received_at: int
    gen: int | None
    cti: bytes | None
    nonce: str | None
    forced: bool
    source: str
    terminal_id: str | None
    seq: int | None
    staff_id: int | None


@dataclass(frozen=True)
class _Call:
    """One redeem in progress: its unit, request, caller, the check-in's time, what it read."""

    unit: Unit
    request: RedeemRequest
    by: Redeemer
    at: int
    read: Read


def status_of(answer: dict[str, Any]) -> int:
    """pretix's HTTP status for an answer: 201 ok, 404 invalid, 400 any other error."""
    if answer["status"] == "ok":
        return 201
    return 404 if answer["reason"] == INVALID else 400


def redeem(unit: Unit, request: RedeemRequest, by: Redeemer) -> dict[str, Any]:
    """Check the code in (or out) on the list of its event among `request.lists`."""
    code = _decode(request.secret)
    found = checkin_reads.read(unit, request.lists, request.nonce, code)
    lists = _lists(found.lists, request.lists, by)
    if by.partner_id is not None:
        events.owned(unit.session, by.partner_id, {row.event_id for row in lists})
        if request.force or request.at is not None:  # staff's and offline gates' overrides
            raise Problem(ProblemCode.FORBIDDEN, "a partner checks in live: no force, no datetime")
    if found.answered is not None:
        return dict(json.loads(found.answered))
    at = unit.now if request.at is None else request.at
    call = _Call(unit, request, by, at, found)
    if isinstance(code, Reason):
        return _decided(call, lists[0], None, None, check=code, why=INVALID)
    claims = code.credential.claims
    row = next((r for r in lists if r.event_id == claims.ev), lists[0])
    ticket = found.ticket
    # a forced upload is checked at the time it happened, like a journal's entry (§5.3)
    now = at if request.force and request.at is not None else unit.now
    check = _verify(call, code, row, now=now)
    if check in (Reason.FORMAT, Reason.MALFORMED, Reason.UNKNOWN_KEY) or (
        ticket is None and check not in FORGED
    ):
        return _decided(call, row, None, claims, check=check, why=INVALID)
    if check in FORGED or ticket is None:
        return _decided(call, row, None, claims, check=check, why=check.value)
    decision = decide(
        checkins.rules_of(row),
        ticket_type=ticket.ticket_type_id,
        cancelled=ticket.state == "cancelled",
        entries_allowed=claims.ent or 1,
        history=found.past,
        type=request.type,
    )
    why = _refusal(ticket, check, decision)
    if why is not None and not (request.force and why in FORCEABLE):
        return _decided(call, row, ticket, claims, check=check, why=why)
    counted = decision.counted if decision.ok else request.type == ENTRY
    checkin = _checkin(call, row, ticket, claims, counted=counted, why=why)
    answer = _answered(call, checkin, row, ticket, claims, check=check)
    if code.dynamic is not None:
        _consume(unit, code, found, checkin)
    tlog.append(unit, EventType.CHECKIN, checkins.leaf_body(checkin, ticket))
    emit(unit, WebhookEvent.TICKET_CHECKED_IN, checkins.webhook_data(checkin, ticket, row.event_id))
    return answer


def _decode(secret: str) -> Code | Reason:
    try:
        return decode_code(secret, known=VERIFIED)
    except FormatError:
        return Reason.FORMAT
    except MalformedError:
        return Reason.MALFORMED


def _lists(found: list[ListRow | None], ids: tuple[int, ...], by: Redeemer) -> list[ListRow]:
    rows = []
    for row, list_id in zip(found, ids, strict=True):
        if row is None:
            raise Problem(ProblemCode.NOT_FOUND, f"no check-in list {list_id}")
        rows.append(row)
    event_ids = [r.event_id for r in rows]
    if len(set(event_ids)) != len(event_ids):
        raise Problem(ProblemCode.INVALID_REQUEST, "no two lists of the same event")
    if by.terminal_id is not None and any(e != by.terminal_event for e in event_ids):
        raise Problem(ProblemCode.FORBIDDEN, "a terminal checks in on its own event's lists only")
    return rows


class _Memory(ServerMemory):
    """The system's memory, without check 19: the list's rules count entries (re-entries and
    exits use none)."""

    def entries_accepted(self, iss: str, sub: str) -> int:
        return 0


def _verify(call: _Call, code: Code, row: ListRow, *, now: int) -> Reason:
    """§3 as an entry gate of the list's event at the venue of it that the code names."""
    unit, read = call.unit, call.read
    claims = code.credential.claims
    venues = read.venues
    if row.event_id != claims.ev:  # no list of the code's event: the first list's
        found = sql.raw(unit.session).all(checkin_sql.VENUES, {"event": row.event_id})
        venues = [venue for (venue,) in found]
    scoped = [v for v in venues if claims.scope is None or v in claims.scope]
    config = TerminalConfig(mode=Mode.ENTRY, venue=(scoped or venues)[0], event=row.event_id)
    return verify_code(
        code,
        trust=ServerTrust(unit.session, unit.settings, read.payer, now),
        config=config,
        memory=_Memory(unit.session, read.payer, read.seen),
        now=now,
        verified=VERIFIED,
        online=True,
    ).reason


def _refusal(ticket: TicketRow, check: Reason, decision: Decision) -> str | None:
    """The answer's reason: `canceled` first (it says why the code is revoked), then the first
    failing §3 check, then the list's rules."""
    if ticket.state == "cancelled":
        return "canceled"
    if check is not Reason.OK:
        return check.value
    return None if decision.refusal is None else decision.refusal.value


def _checkin(
    call: _Call,
    row: ListRow,
    ticket: TicketRow | None,
    claims: Claims | None,
    *,
    counted: bool,
    why: str | None,
    successful: bool = True,
) -> _Checkin:
    """One check-in decision on the list (inserted with its answer: `_answered`)."""
    return _Checkin(
        id=call.read.checkin_id,
        list_id=row.id,
        ticket_id=None if ticket is None else ticket.id,
        type=call.request.type,
        successful=successful,
        counted=successful and counted,
        reason=why,
        at=call.at,
        received_at=call.unit.now,
        gen=None if claims is None else claims.gen,
        cti=None if claims is None else claims.cti,
        nonce=call.request.nonce,
        forced=successful and why is not None,
        source="redeem",
        terminal_id=call.by.terminal_id,
        seq=None,
        staff_id=call.by.staff_id,
    )


def _consume(unit: Unit, code: Code, read: Read, checkin: _Checkin) -> None:
    """The code's counter, consumed system-wide (a forced upload of a seen one consumes none)."""
    assert code.dynamic is not None
    claims = code.credential.claims
    key = (claims.cti, code.dynamic.ctr)
    if not read.seen.get(key, False):
        sql.raw(unit.session).later(
            sql.INSERT_COUNTER,
            {
                "cti": key[0],
                "ctr": key[1],
                "ts": code.dynamic.ts,
                "terminal_id": f"checkin:{checkin.list_id}",
                "seq": checkin.id,
                "amount": 0,
                "hold": 0,
                "transaction_id": None,
            },
        )


def _decided(
    call: _Call,
    row: ListRow,
    ticket: TicketRow | None,
    claims: Claims | None,
    *,
    check: Reason,
    why: str,
) -> dict[str, Any]:
    """A refusal, recorded (pretix logs failed scans) and answered."""
    checkin = _checkin(call, row, ticket, claims, counted=False, why=why, successful=False)
    return _answered(call, checkin, row, ticket, claims, check=check)


def _answered(
    call: _Call,
    checkin: _Checkin,
    row: ListRow,
    ticket: TicketRow | None,
    claims: Claims | None,
    *,
    check: Reason,
) -> dict[str, Any]:
    """The answer, inserted with the check-in, kept for a retry with the same nonce."""
    why = None if checkin.successful else checkin.reason
    answer: dict[str, Any] = {
        "status": "ok" if checkin.successful else "error",
        "reason": why,
        "reason_explanation": None if why is None else EXPLANATIONS.get(why, why),
        "check": check.value,
        "forced": checkin.forced,
        "overridden": checkin.reason if checkin.successful else None,
        "require_attention": False,
        "ticket": None if ticket is None else _ticket(ticket, claims, checkin, call.read),
        "list": {"id": row.id, "name": row.name, "event": row.event_id},
        "checkin_id": checkin.id,
        "type": checkin.type,
    }
    kept = None if checkin.nonce is None else json.dumps(answer)
    row_fields = {**checkin._asdict(), "answer": kept}
    sql.raw(call.unit.session).later(checkin_sql.INSERT_CHECKIN, row_fields)
    return answer


def _ticket(
    ticket: TicketRow, claims: Claims | None, checkin: _Checkin, read: Read
) -> dict[str, Any]:
    """The ticket in an answer, with the entries it used (this check-in's included)."""
    past = read.past
    if checkin.successful:
        used = entries_used(past) + int(checkin.counted)
    else:
        used = sum(1 for p in past if p.counted)
    return {
        "sub": ticket.sub,
        "event": ticket.event_id,
        "ticket_type": ticket.ticket_type_id,
        "gen": ticket.gen if claims is None else claims.gen,
        "entries_used": used,
        "entries_allowed": (claims.ent or 1) if claims is not None else None,
        "order": ticket.order,
        "state": ticket.state,
    }
