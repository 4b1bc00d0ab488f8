"""Online scans (§3 online, §4, §5.1): the checks against the whole system's state, and a
payment, its postings and its ledger event in one transaction, exactly once per (terminal, seq).

This is the server's hot path, so it reads and writes with prepared SQL on the driver (rows, not
ORM objects), and caches the signing keys, which never change once written, and the credentials
whose signature checked out under them (as a terminal's `Verifier` does)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from duopass.ledger.events import EventType
from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Code, FormatError, decode_code, strip_line_ending
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.journal import parse_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, Verdict, verify_code
from duopass.server import domain
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import (
    accounts,
    checkins,
    confirmations,
    idempotency,
    purse_limits,
    risk_engine,
    signing_keys,
    tlog,
    venue_ceilings,
)
from duopass.server.services.credential_cache import VERIFIED
from duopass.server.services.server_view import Payer, ServerMemory, ServerTrust
from duopass.server.services.terminals import TerminalRow
from duopass.server.store import sql
from duopass.server.unit_of_work import Unit

__all__ = ["ScanRequest", "scan"]


@dataclass(frozen=True)
class ScanRequest:
    code: str
    mode: Mode
    amount: int | None
    seq: int
    scanned_at: int
    pin: purse_limits.PinCheck | None = None
    """The PIN the till sent, checked (None: none sent): purse limits."""


@dataclass(frozen=True, slots=True)
class _Read:
    """What one round trip read for a scan (`_read`)."""

    settled: tuple[Any, Any, Any]
    """The online verdict held for (terminal, seq), the request it answered, its journal entry."""
    payer: Payer | None
    """The code's credential with its holder's freeze and account, the account locked."""
    seen: dict[tuple[bytes, int], bool]
    """Whether the code's counter was accepted (read after the lock)."""
    txn_id: int | None
    """A payment's transaction id, taken ahead (PostgreSQL)."""
    revoked: dict[bytes, bool]
    """Whether the code's signing key is revoked, by kid (read with the rest)."""


def scan(unit: Unit, *, terminal: TerminalRow, request: ScanRequest) -> dict[str, Any]:
    """The verdict for one scan; the same scan for the same (terminal, seq) again returns the
    first verdict, and another scan (code, mode or amount) under that seq is refused: the first
    verdict is not its answer, and a 200 would hide that it was never decided (or charged)."""
    db = sql.raw(unit.session)
    key = {"terminal_id": terminal.id, "seq": request.seq}
    fingerprint = idempotency.scan(
        code=request.code, mode=request.mode.value, amount=request.amount
    )
    code = _decode(request.code)
    read = _read(unit, key, code, request.mode)
    verdict, answered, journaled = read.settled
    if verdict is not None:
        # a verdict from before 0005 has no fingerprint: returned as before, unchecked
        if answered is not None and bytes(answered) != fingerprint:
            raise idempotency.refuse(f"seq {request.seq}")
        return dict(json.loads(verdict))
    if journaled is not None:  # the terminal decided it and said so in its journal (§5.1)
        return _journaled(bytes(journaled), request)
    counter = None
    if isinstance(code, Reason):
        answer = _answer(code)
    else:
        answer, counter = _decide(unit, code, read, terminal=terminal, request=request)
    holder = None if read.payer is None else read.payer.holder_id
    risk_engine.scanned(
        unit,
        terminal=terminal.id,
        venue=terminal.venue,
        event=terminal.event,
        holder_id=holder,
        ok=answer["ok"],
    )
    row = {
        **key,
        "received_at": unit.now,
        "verdict": json.dumps(answer),
        "request_fingerprint": fingerprint,
        "provisional": True,
    }
    if counter is not None and not db.is_sqlite:
        db.later(sql.INSERT_COUNTER_AND_SCAN, {**counter, **row})
        return answer
    if counter is not None:
        db.later(sql.INSERT_COUNTER, counter)
    db.later(sql.INSERT_SCAN, row)
    return answer


def _decode(text: str) -> Code | Reason:
    try:
        return decode_code(text, known=VERIFIED)
    except FormatError:
        return Reason.FORMAT
    except MalformedError:
        return Reason.MALFORMED


def _read(unit: Unit, key: dict[str, Any], code: Code | Reason, mode: Mode) -> _Read:
    """What the server holds for (terminal, seq), and for a code of this issuer its credential
    with its holder's freeze and account (locked), whether its counter was accepted (read
    after the lock: every operation on an account waits for the one before it) and a payment's
    transaction id: one round trip on PostgreSQL."""
    db = sql.raw(unit.session)
    if isinstance(code, Reason) or code.credential.claims.iss != unit.settings.issuer:
        return _Read(db.fetch((sql.SETTLED, key))[0], None, {}, None, {})
    numbered = mode is Mode.PAY and not db.is_sqlite
    settled = sql.SETTLED_NUMBERED if numbered else sql.SETTLED
    reads: list[tuple[sql.Statement | sql.Locking, dict[str, Any]]] = [(settled, key)]
    cti, kid = code.credential.claims.cti, code.credential.kid
    reads.append((sql.PAYER, {"cti": cti}))
    reads.append((signing_keys.REVOKED, {"kid": kid}))  # read by §3's key lookup
    counter = None if code.dynamic is None else (cti, code.dynamic.ctr)
    if counter is not None:
        reads.append((sql.COUNTER_SEEN, {"cti": cti, "ctr": counter[1]}))
    rows = db.fetch(*reads)
    return _Read(
        rows[0][:3],
        None if rows[1] is None else Payer._make(rows[1]),
        {} if counter is None else {counter: rows[3] is not None},
        int(rows[0][3]) if numbered else None,
        {kid: rows[2] is not None},
    )


Counter = dict[str, Any]
"""The `counters_seen` row an acceptance adds (`sql.INSERT_COUNTER`), written with the scan's."""


def _decide(
    unit: Unit, code: Code, read: _Read, *, terminal: TerminalRow, request: ScanRequest
) -> tuple[dict[str, Any], Counter | None]:
    """Run §3 against the whole system, then book what an acceptance changes: the answer, and
    the counter it accepted, for the caller to write."""
    verdict = _verify(unit, code, read, terminal=terminal, request=request)
    if not verdict.ok:
        return _answer(verdict.reason, code), None
    assert read.payer is not None
    if request.mode is Mode.IDENTITY:
        return _answer(Reason.OK, code), None
    return _accept(unit, code, read, verdict.ctr, terminal=terminal, request=request)


def _verify(
    unit: Unit, code: Code, read: _Read, *, terminal: TerminalRow, request: ScanRequest
) -> Verdict:
    config = TerminalConfig(
        mode=request.mode, currency=terminal.currency, venue=terminal.venue, event=terminal.event
    )
    return verify_code(
        code,
        trust=ServerTrust(unit.session, unit.settings, read.payer, unit.now, read.revoked),
        config=config,
        memory=ServerMemory(unit.session, read.payer, read.seen),
        now=unit.now,
        amount=request.amount,
        verified=VERIFIED,
        online=True,
    )


def _accept(
    unit: Unit,
    code: Code,
    read: _Read,
    ctr: int | None,
    *,
    terminal: TerminalRow,
    request: ScanRequest,
) -> tuple[dict[str, Any], Counter | None]:
    """An accepted payment or entry: the money (a payment within its hold plus the free funds,
    §3 online) or the check-in on the gate's list (its rules may still refuse), the ledger
    event and the counter, in the unit's transaction."""
    payer = read.payer
    assert payer is not None
    claims = code.credential.claims
    scan_event = {"cti": claims.cti, "terminal": terminal.id, "seq": request.seq}
    hold, txn_id = 0, None
    if request.mode is Mode.PAY:
        assert request.amount is not None and ctr is not None
        # verify_code found the counter unseen (check 17): its hold is outstanding if it holds
        _purse_limits(unit, payer, claims.cti, terminal=terminal, request=request)  # or refuse
        hold = domain.hold_of(payer.terms, ctr)
        free = domain.free_funds(balance=payer.balance, overdraft=payer.overdraft, held=payer.held)
        if not domain.payable(request.amount, hold=hold, free=free):
            return _answer(Reason.INSUFFICIENT_FUNDS, code), None
        assert terminal.merchant_account_id is not None, "a till has a merchant"
        txn_id = accounts.post(
            unit,
            kind="payment",
            legs=[
                (payer.account_id, -request.amount),
                (terminal.merchant_account_id, request.amount),
            ],
            occurred_at=request.scanned_at,
            terminal_id=terminal.id,
            released={payer.account_id: hold},
            txn_id=read.txn_id,
        )
        body = {**scan_event, "ctr": ctr, "amount": request.amount, "transaction": txn_id}
        tlog.append(unit, EventType.PAYMENT, {**body, "online": 1})
        if terminal.venue:  # above its price ceiling: flagged, not refused
            venue = terminal.venue
            venue_ceilings.judge_online(unit, terminal.id, venue, request.seq, request.amount)
    else:  # an entry: its gate's check-in list decides too, and records it
        assert terminal.event is not None, "an entry gate has an event"
        refused = checkins.gate_entry(
            unit, terminal_id=terminal.id, event_id=terminal.event, claims=claims, seq=request.seq
        )
        if refused is not Reason.OK:
            return _answer(refused, code), None
        tlog.append(unit, EventType.ENTRY, {**scan_event, "ctr": -1 if ctr is None else ctr})
    if ctr is None:
        return _answer(Reason.OK, code), None
    assert code.dynamic is not None
    counter = {
        "cti": claims.cti,
        "ctr": ctr,
        "ts": code.dynamic.ts,
        "terminal_id": terminal.id,
        "seq": request.seq,
        "amount": request.amount or 0,
        "hold": hold,
        "transaction_id": txn_id,
    }
    return _answer(Reason.OK, code), counter


def _purse_limits(
    unit: Unit, payer: Payer, cti: bytes, *, terminal: TerminalRow, request: ScanRequest
) -> None:
    """`purse_limits.check`; above the PIN amount without a PIN, a confirmation the holder
    approved in their wallet for exactly this payment lets it through (used in this unit)."""
    assert request.amount is not None
    try:
        purse_limits.check(unit, payer, request.amount, pin=request.pin)
    except Problem as refusal:
        if refusal.code is not ProblemCode.PIN_REQUIRED:
            raise
        pending = confirmations.Pending(
            holder_id=payer.holder_id,
            cti=cti,
            terminal_id=terminal.id,
            seq=request.seq,
            amount=request.amount,
            currency=terminal.currency,
            venue=terminal.venue,
        )
        confirmations.redeem(unit, refusal, pending)


def _journaled(data: bytes, request: ScanRequest) -> dict[str, Any]:
    """The verdict a journal entry already gave this (terminal, seq): a late scan request for it
    returns that and changes nothing (§5.1), when it is the scan the entry records (the code as
    verifiers read it, the mode and the amount). Its mode is the terminal's own, offline."""
    try:
        entry = parse_entry(data)
    except MalformedError:  # an entry held for review: no verdict to repeat but a refusal
        return _answer(Reason.MALFORMED, mode="offline")
    if (strip_line_ending(entry.code), entry.mode, entry.amount) != (
        strip_line_ending(request.code),
        request.mode,
        request.amount,
    ):
        raise idempotency.refuse(f"seq {request.seq}")
    try:
        code = decode_code(entry.code)
    except (FormatError, MalformedError):
        code = None
    return _answer(entry.verdict, code, mode="offline")


def _answer(reason: Reason, code: Code | None = None, *, mode: str = "online") -> dict[str, Any]:
    answer: dict[str, Any] = {"ok": reason is Reason.OK, "reason": reason.value, "mode": mode}
    if code is not None:
        claims = code.credential.claims
        answer.update(
            iss=claims.iss,
            sub=claims.sub,
            cti=b64u_encode(claims.cti),
            ctr=code.dynamic.ctr if code.dynamic is not None else None,
        )
    return answer
