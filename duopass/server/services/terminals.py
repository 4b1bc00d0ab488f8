"""Terminals: created by the card office with a one-time enrolment code, enrolled with the
terminal's own key (proof of possession), and authenticated on every call by that key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from time import monotonic
from typing import Literal, NamedTuple

from sqlalchemy.orm import Session

from duopass.ledger.events import EventType
from duopass.protocol.keys import is_usable_public_key, verify_signature
from duopass.protocol.signed_requests import enrolment_message, verify_request
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import accounts, tlog
from duopass.server.siblings import Changes
from duopass.server.store import sql
from duopass.server.store.tables import Terminal
from duopass.server.unit_of_work import Unit

__all__ = ["Directory", "TerminalRow", "authenticate", "create", "enrol", "revoke", "row"]

ENROL_CODE_BYTES = 12
DIRECTORY_TTL_S = 5.0
DIRECTORY_ENTRIES_MAX = 100_000
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
    unit: Unit,
    *,
    terminal_id: str,
    mode: str,
    venue: str | None,
    merchant_account_id: int | None,
    currency: str | None,
    event: str | None,
) -> str:
    """Create a terminal; returns its one-time enrolment code (only its hash is stored)."""
    session = unit.session
    if session.get(Terminal, terminal_id) is not None:
        raise Problem(
            ProblemCode.CONFLICT, f"terminal {terminal_id} exists; terminal ids are never reused"
        )
    if mode == "pay" and (merchant_account_id is None or currency is None):
        raise Problem(ProblemCode.INVALID_REQUEST, "a till needs a merchant and a currency")
    if merchant_account_id is not None:
        accounts.merchant(session, merchant_account_id)
    if mode == "entry" and event is None:
        raise Problem(ProblemCode.INVALID_REQUEST, "a gate needs an event")
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
    body = {"terminal": terminal_id, "mode": mode, "venue": venue or ""}
    tlog.append(unit, EventType.TERMINAL_CREATE, body)
    return code


def enrol(
    unit: Unit, *, terminal_id: str, enrol_code: str, public_key: bytes, proof: bytes
) -> Terminal:
    """Bind the terminal's key, once. The spent code enrols nothing else: it only repeats its
    own enrolment, for the same key, whose answer may have been lost on the way."""
    terminal = unit.session.get(Terminal, terminal_id)
    if (
        terminal is None
        or terminal.enrol_code_hash is None
        or not hmac.compare_digest(terminal.enrol_code_hash, _code_hash(enrol_code))
    ):
        raise Problem(ProblemCode.BAD_ENROLMENT_CODE, _BAD_CODE)
    if not is_usable_public_key(public_key):
        raise Problem(ProblemCode.BAD_DEVICE_KEY, "the terminal key is not a usable Ed25519 key")
    if not verify_signature(
        public_key, enrolment_message(terminal_id, enrol_code, public_key), proof
    ):
        raise Problem(ProblemCode.BAD_PROOF, "the proof of possession does not verify")
    if terminal.state != "created":
        if terminal.state == "enrolled" and terminal.public_key == public_key:
            return terminal  # a retry: the same answer, nothing changes
        raise Problem(ProblemCode.BAD_ENROLMENT_CODE, _BAD_CODE)
    terminal.public_key, terminal.state = public_key, "enrolled"
    tlog.append(unit, EventType.TERMINAL_ENROL, {"terminal": terminal_id, "key": public_key})
    return terminal


def revoke(unit: Unit, terminal_id: str, *, by: int) -> bool:
    """Refuse the terminal's signed requests from now on (its id is never enrolled again);
    False when it was revoked already. The caller counts the change (`Directory.changes`) once
    it has committed, so every process of this server refuses it from its answer on."""
    terminal = unit.session.get(Terminal, terminal_id, with_for_update=True)
    if terminal is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no terminal {terminal_id}")
    if terminal.state == "revoked":
        return False
    terminal.state, terminal.enrol_code_hash = "revoked", None
    tlog.append(unit, EventType.TERMINAL_REVOKE, {"terminal": terminal_id, "by": by})
    return True


def row(session: Session, terminal_id: str) -> TerminalRow | None:
    """A terminal as requests see it (prepared SQL: read on every signed request's path)."""
    found = sql.raw(session).one(sql.TERMINAL, {"id": terminal_id})
    return None if found is None else TerminalRow._make(found)


def authenticate(
    terminal: TerminalRow | None,
    *,
    time: str,
    signature: str,
    method: str,
    target: str,
    body: bytes,
    now: int,
) -> TerminalRow:
    """The calling terminal, once its signature checks out (on every terminal request)."""
    if terminal is None or terminal.state != "enrolled" or terminal.public_key is None:
        raise Problem(ProblemCode.UNAUTHENTICATED, "unknown or unenrolled terminal")
    if not verify_request(
        terminal.public_key,
        method=method,
        target=target,
        time=time,
        signature=signature,
        body=body,
        now=now,
    ):
        raise Problem(
            ProblemCode.UNAUTHENTICATED, "bad terminal signature or clock more than 300 s off"
        )
    return terminal


class Directory:
    """Terminals by id, each read from the database at most once every `ttl_s` seconds. A
    terminal's row changes only at enrolment and revocation, and the process that commits one
    counts it (`changes.bump`, in memory the server's processes share: `server.siblings`): an
    entry read before the count moved is stale at once, in every process of this server. Other
    servers on the same database learn of it within `ttl_s`. Saves a read on every signed
    request, the online scans' hot path among them."""

    def __init__(self, changes: Changes, ttl_s: float = DIRECTORY_TTL_S) -> None:
        self.changes, self.ttl_s = changes, ttl_s
        self._rows: dict[str, tuple[float, int, TerminalRow | None]] = {}
        self._lock = threading.Lock()

    def cached(self, terminal_id: str) -> TerminalRow | Literal[False] | None:
        """The row if it was read recently (None: no such terminal), else False."""
        with self._lock:
            hit = self._rows.get(terminal_id)
        if hit is None or monotonic() - hit[0] > self.ttl_s or hit[1] != self.changes.seen():
            return False
        return hit[2]

    def keep(self, terminal_id: str, found: TerminalRow | None, seen: int) -> None:
        """Keep a row read from the database; `seen` is `changes.seen()` taken before the
        read, so a change committed meanwhile leaves the entry stale."""
        with self._lock:
            if len(self._rows) >= DIRECTORY_ENTRIES_MAX:
                self._rows.clear()
            self._rows[terminal_id] = (monotonic(), seen, found)
