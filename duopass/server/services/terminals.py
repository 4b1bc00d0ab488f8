"""Terminals: created by the card office with a one-time enrolment code, enrolled with the
terminal's own key (proof of possession), and authenticated on every call by that key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from sqlalchemy.orm import Session

from duopass.protocol.keys import is_usable_public_key, verify_signature
from duopass.protocol.requests import enrolment_message, verify_request
from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.services import accounts, ledger
from duopass.server.store import sql
from duopass.server.store.tables import Terminal

ENROL_CODE_BYTES = 12
_BAD_CODE = "unknown terminal or wrong or spent enrolment code"


class TerminalRow(NamedTuple):
    """A terminal as a request sees it (a row of `sql.TERMINAL`, not an ORM object)."""

    id: str
    mode: str
    venue: str | None
    currency: str | None
    event: str | None
    merchant_account_id: int | None
    public_key: bytes | None
    state: str


def _code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def create(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    terminal_id: str,
    mode: str,
    venue: str | None,
    merchant_account_id: int | None,
    currency: str | None,
    event: str | None,
    now: int,
) -> str:
    """Create a terminal; returns its one-time enrolment code (only its hash is stored)."""
    if session.get(Terminal, terminal_id) is not None:
        raise Problem(
            Code.CONFLICT, f"terminal {terminal_id} exists; terminal ids are never reused"
        )
    if mode == "pay" and (merchant_account_id is None or currency is None):
        raise Problem(Code.INVALID_REQUEST, "a till needs a merchant and a currency")
    if merchant_account_id is not None:
        accounts.merchant(session, merchant_account_id)
    if mode == "entry" and event is None:
        raise Problem(Code.INVALID_REQUEST, "a gate needs an event")
    code = secrets.token_urlsafe(ENROL_CODE_BYTES)
    session.add(
        Terminal(
            id=terminal_id,
            venue=venue,
            merchant_account_id=merchant_account_id,
            mode=mode,
            currency=currency,
            event=event,
            enrol_code_hash=_code_hash(code),
            state="created",
        )
    )
    ledger.append(
        session,
        "terminal_create",
        now,
        settings.issuer,
        {"terminal": terminal_id, "mode": mode, "venue": venue or ""},
    )
    return code


def enrol(
    session: Session,
    settings: Settings,
    *,
    terminal_id: str,
    enrol_code: str,
    public_key: bytes,
    proof: bytes,
    now: int,
) -> Terminal:
    """Bind the terminal's key, once. The spent code enrols nothing else: it only repeats its
    own enrolment, for the same key, whose answer may have been lost on the way."""
    terminal = session.get(Terminal, terminal_id)
    if (
        terminal is None
        or terminal.enrol_code_hash is None
        or not hmac.compare_digest(terminal.enrol_code_hash, _code_hash(enrol_code))
    ):
        raise Problem(Code.BAD_ENROLMENT_CODE, _BAD_CODE)
    if not is_usable_public_key(public_key):
        raise Problem(Code.BAD_DEVICE_KEY, "the terminal key is not a usable Ed25519 key")
    if not verify_signature(
        public_key, enrolment_message(terminal_id, enrol_code, public_key), proof
    ):
        raise Problem(Code.BAD_PROOF, "the proof of possession does not verify")
    if terminal.state != "created":
        if terminal.state == "enrolled" and terminal.public_key == public_key:
            return terminal  # a retry: the same answer, nothing changes
        raise Problem(Code.BAD_ENROLMENT_CODE, _BAD_CODE)
    terminal.public_key, terminal.state = public_key, "enrolled"
    ledger.append(
        session,
        "terminal_enrol",
        now,
        settings.issuer,
        {"terminal": terminal_id, "key": public_key},
    )
    return terminal


def authenticate(
    session: Session,
    *,
    terminal_id: str,
    time: str,
    signature: str,
    method: str,
    target: str,
    body: bytes,
    now: int,
) -> TerminalRow:
    """The calling terminal's row, once its signature checks out (on every terminal request)."""
    row = sql.raw(session).one(sql.TERMINAL, {"id": terminal_id})
    terminal = None if row is None else TerminalRow._make(row)
    if terminal is None or terminal.state != "enrolled" or terminal.public_key is None:
        raise Problem(Code.UNAUTHENTICATED, "unknown or unenrolled terminal")
    if not verify_request(
        terminal.public_key,
        method=method,
        target=target,
        time=time,
        signature=signature,
        body=body,
        now=now,
    ):
        raise Problem(Code.UNAUTHENTICATED, "bad terminal signature or clock more than 300 s off")
    return terminal
