"""The tickets the wallet holds beside its purse (PROTOCOL.md §2 kind 3, issue 13): one row a
ticket in the state file, with its credential, its counters and what the server said of it.

The counters follow §2 as the purse's do, under the same lock (the state file's `BEGIN
IMMEDIATE`): a display takes the next counter in a transaction committed before anything is
signed; the wallet never signs `ctr >= uses`; a ticket whose codes are used up is named in the
next sync's `exhausted`, and the server answers with a new credential (new `cti`) that starts at
counter 0. A credential stored under another binding (a restored or copied state file, see
`state.py`) signs nothing and is named in `exhausted` too, so the next sync replaces it.
A ticket has no refresh mark and holds no money: its counters only bound what one credential
may show.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from duopass.protocol.cbor import MalformedError
from duopass.protocol.code import Credential
from duopass.protocol.trust import Policy
from duopass.wallet.errors import Failure, WalletError
from duopass.wallet.limits import REQUEST_ID_BYTES
from duopass.wallet.state import State, decode_l1

__all__ = [
    "HeldTicket",
    "TicketInfo",
    "TicketItem",
    "Tickets",
    "TicketsAnswer",
    "available_from",
    "ticket_status",
    "usable_ticket",
]

TOO_EARLY, OTHER_DEVICE, CANCELLED, ENDED = "too_early", "other_device", "cancelled", "ended"
"""Why the server gives a ticket no credential now (its stable words, `refusal`)."""
_SELECT = "SELECT sub, info, refusal, l1, binding, next_ctr, ceiling FROM tickets"


@dataclass(frozen=True)
class TicketInfo:
    """What the server says of a ticket (`GET /v1/me/tickets`), checked by the client."""

    sub: str
    event_id: str
    event_name: str
    doors: int
    ends: int
    type_id: int
    type_name: str
    entries: int
    order: str
    state: str
    """`valid`, `cancelled`, ... as the server names it."""
    gen: int
    entries_used: int
    device_id: int | None
    """The device the ticket is bound to (None: not yet bound)."""
    purchase_proof: str


@dataclass(frozen=True)
class TicketItem:
    """One ticket of the ticket sync answer: its credential, or why it has none now."""

    info: TicketInfo
    l1: bytes | None
    refusal: str | None


@dataclass(frozen=True)
class TicketsAnswer:
    """`POST /v1/wallet/tickets`'s answer, checked."""

    tickets: tuple[TicketItem, ...]
    server_time: int
    policy: Policy | None


@dataclass(frozen=True)
class HeldTicket:
    """A ticket as the wallet holds it. `next_ctr` is the next counter to use, `ceiling` the
    highest one the credential may sign (`uses - 1`); `copied` when the credential was stored
    in another place (a restored or copied state file) and so signs nothing until a sync."""

    info: TicketInfo
    refusal: str | None
    l1: bytes | None
    credential: Credential | None
    next_ctr: int
    ceiling: int
    copied: bool

    @property
    def sub(self) -> str:
        return self.info.sub

    @property
    def left(self) -> int:
        """Codes the credential may still make (0 without one)."""
        if self.credential is None or self.copied:
            return 0
        return max(0, self.ceiling + 1 - self.next_ctr)

    @property
    def exhausted(self) -> bool:
        """The server should replace this credential at the next sync."""
        return self.credential is not None and (self.copied or self.next_ctr > self.ceiling)


def usable_ticket(ticket: HeldTicket, now: int, policy: Policy) -> Credential:
    """The ticket's credential if a code may be made from it at server time `now`; else why
    not (the message says what to do)."""
    if ticket.credential is None:
        raise WalletError(Failure.NO_CREDENTIAL, _why_none(ticket, policy))
    if ticket.copied:
        raise WalletError(
            Failure.RESTORED,
            f"ticket {ticket.sub}: this wallet's state was restored or copied, so the ticket's"
            " counters cannot be trusted: run `duopass wallet sync` while online",
        )
    if now >= ticket.credential.claims.exp:
        raise WalletError(
            Failure.EXPIRED, f"ticket {ticket.sub}: its credential has expired (the event ended)"
        )
    if ticket.next_ctr > ticket.ceiling:
        raise WalletError(
            Failure.USED_UP,
            f"ticket {ticket.sub}: its codes are used up ({ticket.credential.claims.uses}):"
            " run `duopass wallet sync` while online for a new credential",
        )
    return ticket.credential


def available_from(ticket: HeldTicket, policy: Policy) -> int:
    """When the server mints a credential for a ticket that is too early: the event's end
    less the issuer's ticket lifetime (check 6)."""
    return ticket.info.ends - policy.max_lifetime_ticket_s


def _why_none(ticket: HeldTicket, policy: Policy) -> str:
    start = f"ticket {ticket.sub} has no credential on this wallet"
    if ticket.refusal == TOO_EARLY:
        when = _local(available_from(ticket, policy))
        return f"{start} yet: too early, the server issues it from {when}; sync then"
    if ticket.refusal == OTHER_DEVICE:
        return f"{start}: it is bound to another device (device {ticket.info.device_id})"
    if ticket.refusal == CANCELLED:
        return f"{start}: it was cancelled ({ticket.info.state})"
    if ticket.refusal == ENDED:
        return f"{start}: the event has ended"
    return f"{start} ({ticket.refusal or 'not synced'}): run `duopass wallet sync` while online"


def _local(epoch: int) -> str:
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M %Z")


class Tickets:
    """The tickets table of a state file; each method is one transaction under its lock."""

    def __init__(self, state: State) -> None:
        self._state = state

    def all(self) -> list[HeldTicket]:
        """Every ticket held, by event start then sub."""
        with self._state.transaction() as db:
            rows = db.execute(_SELECT).fetchall()
        held = [self._row(row) for row in rows]
        return sorted(held, key=lambda t: (t.info.doors, t.sub))

    def find(self, sub: str) -> HeldTicket:
        """The ticket whose sub is `sub`, or starts with it when only one does."""
        held = self.all()
        exact = [t for t in held if t.sub == sub]
        matches = exact or [t for t in held if sub and t.sub.startswith(sub)]
        if not matches:
            raise WalletError(
                Failure.REFUSED,
                f"no ticket {sub!r} in this wallet (`duopass wallet tickets` lists them;"
                " `duopass wallet sync` fetches new ones)",
            )
        if len(matches) > 1:
            raise WalletError(
                Failure.REFUSED, f"{sub!r} names {len(matches)} tickets: give more of the sub"
            )
        return matches[0]

    def exhausted(self) -> list[str]:
        """Subs whose credential the next sync should replace."""
        return [t.sub for t in self.all() if t.exhausted]

    def store(self, answer: TicketsAnswer) -> list[HeldTicket]:
        """The sync answer, in one transaction: tickets the server no longer lists go; a new
        credential (another `cti`) starts at counter 0 and is bound to where the file lives;
        the credential already held keeps its counters. An answer older than what is held
        (another instance stored a newer credential meanwhile) changes no credential."""
        with self._state.transaction() as db:
            known = {row[0]: self._row(row) for row in db.execute(_SELECT).fetchall()}
            for item in answer.tickets:
                self._store_item(db, item, known.get(item.info.sub))
            listed = {item.info.sub for item in answer.tickets}
            for sub in set(known) - listed:
                db.execute("DELETE FROM tickets WHERE sub = ?", (sub,))
        return self.all()

    def _store_item(
        self, db: sqlite3.Connection, item: TicketItem, held: HeldTicket | None
    ) -> None:
        info = json.dumps(asdict(item.info))
        if held is None:
            db.execute("INSERT INTO tickets (sub, info) VALUES (?, ?)", (item.info.sub, info))
        db.execute(
            "UPDATE tickets SET info = ?, refusal = ? WHERE sub = ?",
            (info, item.refusal, item.info.sub),
        )
        if item.l1 is None:
            db.execute(
                "UPDATE tickets SET l1 = NULL, binding = NULL, next_ctr = 0, ceiling = -1"
                " WHERE sub = ?",
                (item.info.sub,),
            )
            return
        self._put_credential(db, item.info.sub, item.l1, held)

    def _put_credential(
        self, db: sqlite3.Connection, sub: str, l1: bytes, held: HeldTicket | None
    ) -> None:
        credential = decode_l1(l1)
        old = None if held is None else held.credential
        if old is not None and old.claims.cti == credential.claims.cti:
            return  # the same credential: its counters stay
        if old is not None and credential.claims.iat < old.claims.iat:
            return  # a stale answer: the newer credential stays
        db.execute(
            "UPDATE tickets SET l1 = ?, binding = ?, next_ctr = 0, ceiling = ? WHERE sub = ?",
            (l1, self._state.binding, (credential.claims.uses or 0) - 1, sub),
        )

    def replace_credential(self, sub: str, l1: bytes) -> HeldTicket:
        """Store a ticket's new credential (a reissue's answer): another `cti` starts at
        counter 0. The ticket must be held (sync first) and the credential name its sub."""
        credential = decode_l1(l1)
        if credential.claims.sub != sub:
            raise WalletError(Failure.BAD_ANSWER, f"the credential is not ticket {sub}'s")
        with self._state.transaction() as db:
            row = db.execute(_SELECT + " WHERE sub = ?", (sub,)).fetchone()
            if row is None:
                raise WalletError(Failure.REFUSED, f"no ticket {sub!r} in this wallet: sync")
            db.execute("UPDATE tickets SET refusal = NULL WHERE sub = ?", (sub,))
            self._put_credential(db, sub, l1, self._row(row))
        return self.find(sub)

    def reserve(self, sub: str, now: int, policy: Policy) -> tuple[HeldTicket, int]:
        """Use the ticket's next counter, durably, before any code with it exists (§2)."""
        with self._state.transaction() as db:
            row = db.execute(_SELECT + " WHERE sub = ?", (sub,)).fetchone()
            if row is None:
                raise WalletError(Failure.REFUSED, f"no ticket {sub!r} in this wallet")
            ticket = self._row(row)
            usable_ticket(ticket, now, policy)
            db.execute("UPDATE tickets SET next_ctr = next_ctr + 1 WHERE sub = ?", (sub,))
            return ticket, ticket.next_ctr

    def request_id(self, purpose: str, body: dict[str, Any]) -> str:
        """The id to send for `body`: the one stored for the same purpose and body (a retry
        of a request whose answer never came), else a new one, stored before it is sent."""
        text = json.dumps(body, sort_keys=True)
        with self._state.transaction() as db:
            row = db.execute(
                "SELECT request_id, body FROM requests WHERE purpose = ?", (purpose,)
            ).fetchone()
            if row is not None and row[1] == text:
                return str(row[0])
            request_id = secrets.token_hex(REQUEST_ID_BYTES)
            db.execute(
                "INSERT OR REPLACE INTO requests (purpose, request_id, body) VALUES (?, ?, ?)",
                (purpose, request_id, text),
            )
            return request_id

    def remember(self, purpose: str, request_id: str, body: dict[str, Any]) -> None:
        """Keep an id the server gave (a reissue request's) until `request_done`, so a retry
        goes on with it instead of asking anew."""
        with self._state.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO requests (purpose, request_id, body) VALUES (?, ?, ?)",
                (purpose, request_id, json.dumps(body, sort_keys=True)),
            )

    def remembered(self, purpose: str, body: dict[str, Any]) -> str | None:
        """The id kept for `purpose` and this same `body`, if any."""
        with self._state.transaction() as db:
            row = db.execute(
                "SELECT request_id, body FROM requests WHERE purpose = ?", (purpose,)
            ).fetchone()
        if row is None or row[1] != json.dumps(body, sort_keys=True):
            return None
        return str(row[0])

    def request_done(self, purpose: str, request_id: str) -> None:
        """The request was answered: the next one of this purpose is a new request."""
        with self._state.transaction() as db:
            db.execute(
                "DELETE FROM requests WHERE purpose = ? AND request_id = ?", (purpose, request_id)
            )

    def _row(self, row: tuple[Any, ...]) -> HeldTicket:
        sub, info, refusal, l1, binding, next_ctr, ceiling = row
        try:
            fields = json.loads(info)
            ticket_info = TicketInfo(**fields)
            credential = None if l1 is None else decode_l1(bytes(l1))
        except (TypeError, ValueError, MalformedError) as exc:
            raise WalletError(
                Failure.STATE, f"{self._state.path}: damaged ticket {sub!r} ({exc})"
            ) from exc
        copied = credential is not None and binding != self._state.binding
        return HeldTicket(ticket_info, refusal, l1, credential, int(next_ctr), int(ceiling), copied)


def ticket_status(ticket: HeldTicket, now: int, policy: Policy) -> dict[str, Any]:
    """A ticket for `duopass wallet tickets --json`: what the server said, its codes left, and
    `ready` or the `reason` it is not (a refusal of the server's, or the wallet's failure)."""
    info = ticket.info
    doc: dict[str, Any] = {
        "sub": info.sub,
        "event": {"id": info.event_id, "name": info.event_name},
        "doors": info.doors,
        "ends": info.ends,
        "ticket_type": {"id": info.type_id, "name": info.type_name},
        "order": info.order,
        "state": info.state,
        "gen": info.gen,
        "entries": info.entries,
        "entries_used": info.entries_used,
        "device_id": info.device_id,
        "cti": None if ticket.credential is None else ticket.credential.claims.cti.hex(),
        "uses": None if ticket.credential is None else ticket.credential.claims.uses,
        "codes_left": ticket.left,
    }
    try:
        usable_ticket(ticket, now, policy)
        doc.update(ready=True, reason=None)
    except WalletError as exc:
        reason = ticket.refusal if exc.failure is Failure.NO_CREDENTIAL else exc.failure.value
        doc.update(ready=False, reason=reason or exc.failure.value)
    if ticket.refusal == TOO_EARLY:
        doc["available_from"] = available_from(ticket, policy)
    return doc
