"""Online scans (§3 online, §4, §5.1): the checks against the whole system's state, and a
payment, its postings and its ledger event in one transaction, exactly once per (terminal, seq).

This is the server's hot path, so it reads and writes with prepared SQL on the driver (rows, not
ORM objects), and caches the signing keys, which never change once written, and the credentials
whose signature checked out under them (as a terminal's `Verifier` does)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.protocol.cbor import MalformedError
from duopass.protocol.claims import Kind
from duopass.protocol.code import Code, FormatError, decode_code, strip_line_ending
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.journal import parse_entry
from duopass.protocol.keys import KeyId
from duopass.protocol.reasons import Reason
from duopass.protocol.trust import Policy, TrustKey
from duopass.protocol.verify import Mode, TerminalConfig, verify_code
from duopass.server.config import Settings
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, idempotency, ledger
from duopass.server.services.terminals import TerminalRow
from duopass.server.services.verified import VERIFIED
from duopass.server.store import sql
from duopass.server.store.tables import (
    CounterSeen,
    Credential,
    SigningKeyRow,
)

_NEVER_STALE_S = 2**40


@dataclass(frozen=True)
class ScanRequest:
    code: str
    mode: Mode
    amount: int | None
    seq: int
    scanned_at: int


class Payer(NamedTuple):
    """A credential with its holder's freeze and account (a row of `sql.PAYER`)."""

    holder_id: int
    state: str
    mark: int | None
    release_mark: int | None
    uses: int
    txmax: int
    offline: bool
    holds_released: bool
    frozen: bool
    account_id: int
    balance: int
    overdraft: int
    held: int


_KEYS: dict[bytes, TrustKey] = {}
"""Signing keys by kid: rows that are never updated, so safe to keep across requests."""


class ServerTrust:
    """The trust view of the whole system: keys from the database, revocations and freezes as
    they are right now (a superseded credential stays payable up to its mark, §4.2)."""

    def __init__(self, session: Session, settings: Settings, payer: Payer | None, now: int) -> None:
        self.session, self.settings, self.payer = session, settings, payer
        self.issued_at, self.max_age_s = now, _NEVER_STALE_S

    def key(self, iss: str, kid: bytes) -> TrustKey | None:
        if iss != self.settings.issuer:
            return None
        cached = _KEYS.get(kid)
        if cached is None:
            row = (
                self.session.connection()
                .execute(
                    select(SigningKeyRow.public_key, SigningKeyRow.nbf, SigningKeyRow.exp).where(
                        SigningKeyRow.kid == kid
                    )
                )
                .first()
            )
            if row is None:
                return None
            cached = _KEYS[kid] = TrustKey(KeyId(kid), row.public_key, row.nbf, row.exp)
        return cached

    def policy(self, iss: str) -> Policy:
        return self.settings.policy

    def is_revoked(self, iss: str, cti: bytes, ctr: int | None = None) -> bool:
        payer = self.payer
        if payer is None or payer.state == "revoked":
            return True
        if payer.state == "superseded":
            return ctr is None or payer.mark is None or ctr > payer.mark
        return False

    def is_frozen(self, iss: str, sub: str) -> bool:
        return self.payer is not None and bool(self.payer.frozen)


class ServerMemory:
    """What the system as a whole accepted: counters are unique system-wide."""

    def __init__(self, session: Session, payer: Payer | None) -> None:
        self.session, self.payer = session, payer

    def highest_generation(self, iss: str, sub: str) -> int | None:
        return None  # online, older generations are revoked in the database at reissue

    def counter_accepted(self, iss: str, cti: bytes, ctr: int) -> bool:
        return sql.raw(self.session).one(sql.COUNTER_SEEN, {"cti": cti, "ctr": ctr}) is not None

    def entries_accepted(self, iss: str, sub: str) -> int:
        if self.payer is None:
            return 0
        tickets = select(Credential.cti).where(
            Credential.holder_id == self.payer.holder_id, Credential.kind == Kind.TICKET
        )
        query = select(func.count()).select_from(CounterSeen).where(CounterSeen.cti.in_(tickets))
        return int(self.session.connection().execute(query).scalar_one())

    def record(self, acceptance: object) -> None:
        raise AssertionError("online acceptances are booked by the scan service")


def scan(
    session: Session,
    keyring: Keyring,
    settings: Settings,
    *,
    terminal: TerminalRow,
    request: ScanRequest,
    now: int,
) -> dict[str, Any]:
    """The verdict for one scan; the same scan for the same (terminal, seq) again returns the
    first verdict, and another scan (code, mode or amount) under that seq is refused: the first
    verdict is not its answer, and a 200 would hide that it was never decided (or charged)."""
    db = sql.raw(session)
    key = {"terminal_id": terminal.id, "seq": request.seq}
    fingerprint = idempotency.scan(
        code=request.code, mode=request.mode.value, amount=request.amount
    )
    verdict, answered, journaled = db.one(sql.SETTLED, key)
    if verdict is not None:
        # a verdict from before 0005 has no fingerprint: returned as before, unchecked
        if answered is not None and bytes(answered) != fingerprint:
            raise idempotency.refuse(f"seq {request.seq}")
        return dict(json.loads(verdict))
    if journaled is not None:  # the terminal decided it and said so in its journal (§5.1)
        return _journaled(bytes(journaled), request)
    answer = _decide(session, settings, terminal=terminal, request=request, now=now)
    db.run(
        sql.INSERT_SCAN,
        {
            **key,
            "received_at": now,
            "verdict": json.dumps(answer),
            "request_fingerprint": fingerprint,
            "provisional": True,
        },
    )
    return answer


def _decide(
    session: Session, settings: Settings, *, terminal: TerminalRow, request: ScanRequest, now: int
) -> dict[str, Any]:
    try:
        code = decode_code(request.code, known=VERIFIED)
    except FormatError:
        return _answer(Reason.FORMAT)
    except MalformedError:
        return _answer(Reason.MALFORMED)
    claims = code.credential.claims
    db = sql.raw(session)
    payer = None
    if claims.iss == settings.issuer:
        row = db.one(sql.PAYER, {"cti": claims.cti})
        payer = None if row is None else Payer._make(row)
    config = TerminalConfig(
        mode=request.mode, currency=terminal.currency, venue=terminal.venue, event=terminal.event
    )
    verdict = verify_code(
        code,
        trust=ServerTrust(session, settings, payer, now),
        config=config,
        memory=ServerMemory(session, payer),
        now=now,
        amount=request.amount,
        verified=VERIFIED,
        online=True,
    )
    if not verdict.ok:
        return _answer(verdict.reason, code)
    assert payer is not None
    if request.mode is Mode.IDENTITY:
        return _answer(Reason.OK, code)
    ctr = verdict.ctr
    hold, txn_id = 0, None
    if request.mode is Mode.PAY:
        assert request.amount is not None and ctr is not None
        # verify_code found the counter unseen (check 17), so its hold is outstanding unless
        # the credential never held or a refresh released it (§4.1, §4.2)
        held = (
            payer.offline
            and not payer.holds_released
            and ctr < payer.uses
            and (payer.release_mark is None or ctr <= payer.release_mark)
        )
        hold = payer.txmax if held else 0
        if request.amount > hold + payer.balance + payer.overdraft - payer.held:
            return _answer(Reason.INSUFFICIENT_FUNDS, code)
        assert terminal.merchant_account_id is not None, "a till has a merchant"
        txn_id = accounts.post(
            session,
            kind="payment",
            legs=[
                (payer.account_id, -request.amount),
                (terminal.merchant_account_id, request.amount),
            ],
            now=now,
            occurred_at=request.scanned_at,
            zone=settings.zone,
            terminal_id=terminal.id,
            released={payer.account_id: hold},
        )
        ledger.append(
            session,
            "payment",
            now,
            settings.issuer,
            {
                "cti": claims.cti,
                "ctr": ctr,
                "amount": request.amount,
                "terminal": terminal.id,
                "seq": request.seq,
                "transaction": txn_id,
                "online": 1,
            },
        )
    else:
        ledger.append(
            session,
            "entry",
            now,
            settings.issuer,
            {
                "cti": claims.cti,
                "ctr": -1 if ctr is None else ctr,
                "terminal": terminal.id,
                "seq": request.seq,
            },
        )
    if ctr is not None:
        assert code.dynamic is not None
        db.run(
            sql.INSERT_COUNTER,
            {
                "cti": claims.cti,
                "ctr": ctr,
                "ts": code.dynamic.ts,
                "terminal_id": terminal.id,
                "seq": request.seq,
                "amount": request.amount or 0,
                "hold": hold,
                "transaction_id": txn_id,
            },
        )
    return _answer(Reason.OK, code)


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
