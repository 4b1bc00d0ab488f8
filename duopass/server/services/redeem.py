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
from typing import Any

from sqlalchemy import select

from duopass.ledger.events import EventType
from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Claims
from duopass.protocol.code import Code, FormatError, decode_code
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, verify_code
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import checkins, events, tickets, tlog
from duopass.server.services.checkins import Made
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.server_view import Payer, ServerMemory, ServerTrust
from duopass.server.store import sql
from duopass.server.store.tickets import Checkin, CheckinList, Order, Ticket
from duopass.server.unit_of_work import Unit
from duopass.tickets.checkin import ENTRY, Decision, entries_used

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
    """Who redeems: a staff member or an entry terminal (only on lists of its own event)."""

    staff_id: int | None = None
    terminal_id: str | None = None
    terminal_event: str | None = None


@dataclass(frozen=True)
class _Call:
    """One redeem in progress: its unit, request, caller and the check-in's time."""

    unit: Unit
    request: RedeemRequest
    by: Redeemer
    at: int


def status_of(answer: dict[str, Any]) -> int:
    """pretix's HTTP status for an answer: 201 ok, 404 invalid, 400 any other error."""
    if answer["status"] == "ok":
        return 201
    return 404 if answer["reason"] == INVALID else 400


def redeem(unit: Unit, request: RedeemRequest, by: Redeemer) -> dict[str, Any]:
    """Check the code in (or out) on the list of its event among `request.lists`."""
    session = unit.session
    lists = _lists(session, request.lists, by)
    if request.nonce is not None:
        before = session.scalar(
            select(Checkin.answer).where(
                Checkin.nonce == request.nonce, Checkin.list_id.in_(request.lists)
            )
        )
        if before is not None:
            return dict(json.loads(before))
    at = unit.now if request.at is None else request.at
    call = _Call(unit, request, by, at)
    try:
        code = decode_code(request.secret, known=VERIFIED)
    except (FormatError, MalformedError) as exc:
        check = Reason.FORMAT if isinstance(exc, FormatError) else Reason.MALFORMED
        return _decided(call, lists[0], None, None, check=check, why=INVALID)
    claims = code.credential.claims
    row = next((r for r in lists if r.event_id == claims.ev), lists[0])
    ticket = (
        session.scalars(select(Ticket).where(Ticket.sub == claims.sub)).first()
        if claims.iss == unit.settings.issuer
        else None
    )
    payer = _payer(unit, claims)
    # a forced upload is checked at the time it happened, like a journal's entry (§5.3)
    now = at if request.force and request.at is not None else unit.now
    check = _verify(unit, code, payer, row, now=now)
    if check in (Reason.FORMAT, Reason.MALFORMED, Reason.UNKNOWN_KEY) or (
        ticket is None and check not in FORGED
    ):
        return _decided(call, row, None, claims, check=check, why=INVALID)
    if check in FORGED or ticket is None:
        return _decided(call, row, None, claims, check=check, why=check.value)
    decision, past = checkins.decide_for(
        session, row, ticket, entries_allowed=claims.ent or 1, type=request.type
    )
    why = _refusal(ticket, check, decision)
    if why is not None and not (request.force and why in FORCEABLE):
        return _decided(call, row, ticket, claims, check=check, why=why)
    counted = decision.counted if decision.ok else request.type == ENTRY
    checkin = _checkin(call, row, ticket, claims, counted=counted, why=why)
    if code.dynamic is not None:
        _consume(unit, code, checkin)
    tlog.append(unit, EventType.CHECKIN, checkins.leaf_body(checkin, ticket))
    used = entries_used(past) + int(checkin.counted)
    return _answered(unit, checkin, row, ticket, claims, check=check, used=used)


def _lists(session: Any, ids: tuple[int, ...], by: Redeemer) -> list[CheckinList]:
    rows = [checkins.checkin_list(session, list_id) for list_id in ids]
    event_ids = [r.event_id for r in rows]
    if len(set(event_ids)) != len(event_ids):
        raise Problem(ProblemCode.INVALID_REQUEST, "no two lists of the same event")
    if by.terminal_id is not None and any(e != by.terminal_event for e in event_ids):
        raise Problem(ProblemCode.FORBIDDEN, "a terminal checks in on its own event's lists only")
    return rows


def _payer(unit: Unit, claims: Claims) -> Payer | None:
    """The credential with its holder's freeze, the holder's account locked (as a scan does):
    check-ins of one holder's tickets wait for each other."""
    if claims.iss != unit.settings.issuer:
        return None
    found = sql.raw(unit.session).one(sql.PAYER, {"cti": claims.cti})
    return None if found is None else Payer._make(found)


class _Memory(ServerMemory):
    """The system's memory, without check 19: the list's rules count entries (re-entries and
    exits use none)."""

    def entries_accepted(self, iss: str, sub: str) -> int:
        return 0


def _verify(unit: Unit, code: Code, payer: Payer | None, row: CheckinList, *, now: int) -> Reason:
    """§3 as an entry gate of the list's event at the venue of it that the code names."""
    claims = code.credential.claims
    venues = [v.id for v in events.venues_of(unit.session, row.event_id)]
    scoped = [v for v in venues if claims.scope is None or v in claims.scope]
    config = TerminalConfig(mode=Mode.ENTRY, venue=(scoped or venues)[0], event=row.event_id)
    return verify_code(
        code,
        trust=ServerTrust(unit.session, unit.settings, payer, now),
        config=config,
        memory=_Memory(unit.session, payer),
        now=now,
        verified=VERIFIED,
        online=True,
    ).reason


def _refusal(ticket: Ticket, check: Reason, decision: Decision) -> str | None:
    """The answer's reason: `canceled` first (it says why the code is revoked), then the first
    failing §3 check, then the list's rules."""
    if ticket.state == "cancelled":
        return "canceled"
    if check is not Reason.OK:
        return check.value
    return None if decision.refusal is None else decision.refusal.value


def _checkin(
    call: _Call,
    row: CheckinList,
    ticket: Ticket | None,
    claims: Claims | None,
    *,
    counted: bool,
    why: str | None,
    successful: bool = True,
) -> Checkin:
    made = Made(
        "redeem",
        terminal_id=call.by.terminal_id,
        staff_id=call.by.staff_id,
        nonce=call.request.nonce,
        forced=successful and why is not None,
    )
    return checkins.record(
        call.unit,
        row,
        ticket,
        type=call.request.type,
        successful=successful,
        counted=counted,
        reason=why,
        at=call.at,
        claims=claims,
        made=made,
    )


def _consume(unit: Unit, code: Code, checkin: Checkin) -> None:
    """The code's counter, consumed system-wide (a forced upload of a seen one consumes none)."""
    assert code.dynamic is not None
    claims, db = code.credential.claims, sql.raw(unit.session)
    key = {"cti": claims.cti, "ctr": code.dynamic.ctr}
    if db.one(sql.COUNTER_SEEN, key) is None:
        db.later(
            sql.INSERT_COUNTER,
            {
                **key,
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
    row: CheckinList,
    ticket: Ticket | None,
    claims: Claims | None,
    *,
    check: Reason,
    why: str,
) -> dict[str, Any]:
    """A refusal, recorded (pretix logs failed scans) and answered."""
    checkin = _checkin(call, row, ticket, claims, counted=False, why=why, successful=False)
    return _answered(call.unit, checkin, row, ticket, claims, check=check)


def _answered(
    unit: Unit,
    checkin: Checkin,
    row: CheckinList,
    ticket: Ticket | None,
    claims: Claims | None,
    *,
    check: Reason,
    used: int | None = None,
) -> dict[str, Any]:
    """The answer, kept on the check-in for a retry with the same nonce; `used`: the ticket's
    entries used, when known."""
    why = None if checkin.successful else checkin.reason
    answer: dict[str, Any] = {
        "status": "ok" if checkin.successful else "error",
        "reason": why,
        "reason_explanation": None if why is None else EXPLANATIONS.get(why, why),
        "check": check.value,
        "forced": checkin.forced,
        "overridden": checkin.reason if checkin.successful else None,
        "require_attention": False,
        "ticket": None if ticket is None else _ticket(unit, ticket, claims, used),
        "list": {"id": row.id, "name": row.name, "event": row.event_id},
        "checkin_id": checkin.id,
        "type": checkin.type,
    }
    if checkin.nonce is not None:
        checkin.answer = json.dumps(answer)
    return answer


def _ticket(unit: Unit, ticket: Ticket, claims: Claims | None, used: int | None) -> dict[str, Any]:
    order = unit.session.get(Order, ticket.order_id)
    assert order is not None
    return {
        "sub": ticket.sub,
        "event": ticket.event_id,
        "ticket_type": ticket.ticket_type_id,
        "gen": ticket.gen if claims is None else claims.gen,
        "entries_used": tickets.entries(unit.session, ticket.id) if used is None else used,
        "entries_allowed": (claims.ent or 1) if claims is not None else None,
        "order": order.code,
        "state": ticket.state,
    }
