"""The parties of a simulated campus day as a server meets them over HTTP: clients that each come
from their own 127.0.0.0/8 address, the server's test clock moved instead of sleeping, a
holder's phone (device key, purse and ticket credentials, counters) and a till or gate (signed
requests, its journal uploaded in batches)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from duopass.protocol import SigningKey, make_code
from duopass.protocol.encoding import b64u_decode, b64u_encode
from duopass.protocol.journal import GENESIS, Entry, batch_hash, encode_batch, encode_entry
from duopass.protocol.reasons import Reason
from duopass.protocol.signed_requests import (
    device_enrolment_message,
    enrolment_message,
    sign_request,
)
from duopass.protocol.verify import Mode

__all__ = ["ACTIONS", "Net", "Phone", "Till", "acted"]

ACTIONS = frozenset(
    {"step_up_required", "risk_review", "risk_denied", "risk_rate_limited", "throttled"}
)
"""Problem codes that are an action other than allow (a wrong password is no action)."""
ADMIN = "127.0.0.1"


def _reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.OK


def acted(answer: httpx.Response) -> bool:
    if answer.status_code not in (401, 403, 429):
        return False
    try:
        return answer.json().get("code") in ACTIONS
    except ValueError:
        return False


class Net:
    """HTTP clients by source address, the card office's session, and the server's clock
    (read from its answers, moved with `POST /v1/test/clock`)."""

    def __init__(self, url: str, admin_login: str, admin_password: str) -> None:
        self.url = url
        self.clients: dict[str, httpx.Client] = {}
        self._login = {"login": admin_login, "password": admin_password}
        self.auth: dict[str, str] = {}
        self._sign_in()
        self._offset = 0.0
        self._read(self.client(ADMIN).get("/v1/test/clock", headers=self.auth))

    def client(self, address: str) -> httpx.Client:
        address = address or ADMIN
        if address not in self.clients:
            transport = httpx.HTTPTransport(local_address=address)
            self.clients[address] = httpx.Client(base_url=self.url, transport=transport, timeout=60)
        return self.clients[address]

    def _sign_in(self) -> None:
        answer = self.client(ADMIN).post("/v1/admin/session", json=self._login)
        answer.raise_for_status()
        self.auth = {"Authorization": f"Bearer {answer.json()['token']}"}

    def admin(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        """A card-office request; signed in again when the session has expired (the clock
        moves hours at a time)."""
        http = self.client(ADMIN)
        for _ in range(2):
            answer = http.request(method, path, json=body, headers=self.auth, params=params or None)
            if answer.status_code != 401:
                break
            self._sign_in()
        return answer

    def now(self) -> int:
        """The server's time now, as its clock last told it."""
        return int(time.monotonic() + self._offset)

    def move_to(self, when: int) -> None:
        if when > self.now():
            self._read(self.admin("POST", "/v1/test/clock", {"to": when}))

    def _read(self, answer: httpx.Response) -> None:
        answer.raise_for_status()
        self._offset = answer.json()["now"] - time.monotonic()

    def close(self) -> None:
        for http in self.clients.values():
            http.close()


@dataclass
class Phone:
    """A holder's phone: its key, its session, the purse and ticket credentials on it."""

    login: str
    password: str
    address: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    auth: dict[str, str] = field(default_factory=dict)
    device_id: int | None = None
    purse: bytes = b""
    counter: int = 0
    tickets: dict[str, bytes] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def copy(self) -> Phone:
        """Its key, credentials and counters on another phone (a clone)."""
        return replace(self, tickets=dict(self.tickets), counters=dict(self.counters))

    def sign_in(self, net: Net, password: str | None = None) -> httpx.Response:
        body = {"login": self.login, "password": password or self.password}
        answer = net.client(self.address).post("/v1/session", json=body)
        if answer.status_code == 200 and password is None:
            self.auth = {"Authorization": f"Bearer {answer.json()['token']}"}
        return answer

    def enrol(self, net: Net) -> httpx.Response:
        proof = self.key.sign(device_enrolment_message(self.login, self.key.public))
        body = {"public_key": b64u_encode(self.key.public), "proof": b64u_encode(proof)}
        answer = net.client(self.address).post("/v1/me/devices", headers=self.auth, json=body)
        if answer.status_code == 200:
            self.device_id = int(answer.json()["device_id"])
        return answer

    def sync(self, net: Net) -> httpx.Response:
        body = {"device_id": self.device_id, "request_id": uuid.uuid4().hex, "mark": None}
        answer = net.client(self.address).post("/v1/wallet/sync", headers=self.auth, json=body)
        if answer.status_code == 200:
            self.purse, self.counter = b64u_decode(answer.json()["credential"]), 0
        return answer

    def sync_tickets(self, net: Net) -> httpx.Response:
        body: dict[str, Any] = {"device_id": self.device_id, "exhausted": []}
        http = net.client(self.address)
        answer = http.post("/v1/wallet/tickets", headers=self.auth, json=body)
        if answer.status_code == 200:
            for item in answer.json()["tickets"]:
                if item["credential"]:
                    self.tickets[item["sub"]] = b64u_decode(item["credential"])
                    self.counters[item["sub"]] = 0
        return answer

    def code(self, net: Net, sub: str | None = None) -> str:
        """The next code of the purse (or of ticket `sub`)."""
        if sub is None:
            ctr, self.counter = self.counter, self.counter + 1
            return make_code(self.purse, self.key, ctr=ctr, ts=net.now())
        ctr = self.counters[sub]
        self.counters[sub] = ctr + 1
        return make_code(self.tickets[sub], self.key, ctr=ctr, ts=net.now())


@dataclass
class Till:
    """A till or gate: signed requests, every scan journalled, the journal uploaded in batches
    (at once after an offline acceptance; online ones within `flush_s`)."""

    terminal_id: str
    address: str
    mode: str = "pay"
    venue: str = "canteen"
    key: SigningKey = field(default_factory=SigningKey.generate)
    seq: int = 0
    journaled: int = 0
    prev: bytes = GENESIS
    pending: list[bytes] = field(default_factory=list)
    oldest: int = 0

    def _signed(self, net: Net, target: str, body: bytes, method: str = "POST") -> httpx.Response:
        headers = sign_request(
            self.key, self.terminal_id, method=method, target=target, time=net.now(), body=body
        )
        headers["Content-Type"] = "application/json"
        return net.client(self.address).request(method, target, content=body, headers=headers)

    def enrol(self, net: Net, code: str) -> None:
        proof = self.key.sign(enrolment_message(self.terminal_id, code, self.key.public))
        body = {
            "terminal_id": self.terminal_id,
            "enrol_code": code,
            "public_key": b64u_encode(self.key.public),
            "proof": b64u_encode(proof),
        }
        net.client(self.address).post("/v1/terminal/enrol", json=body).raise_for_status()

    def scan(self, net: Net, code: str, amount: int | None) -> dict[str, Any]:
        """An online scan; its entry joins the journal."""
        self.seq += 1
        at = net.now()
        body = {
            "code": code,
            "mode": self.mode,
            "amount": amount,
            "terminal_id": self.terminal_id,
            "seq": self.seq,
            "scanned_at": at,
        }
        answer = self._signed(net, "/v1/terminal/scans", json.dumps(body).encode())
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        self._journal(at, code, amount, _reason(found["reason"]), online=True)
        return found

    def accept_offline(self, net: Net, code: str, amount: int) -> None:
        self.seq += 1
        self._journal(net.now(), code, amount, Reason.OK, online=False)

    def _journal(
        self, at: int, code: str, amount: int | None, verdict: Reason, *, online: bool
    ) -> None:
        pay = self.mode == "pay"
        entry = Entry(
            seq=self.seq,
            scanned_at=at,
            clock_offset=0,
            mode=Mode(self.mode),
            amount=amount if pay else None,
            currency="CNY" if pay else None,
            venue=self.venue,
            verdict=verdict,
            online=online,
            tried=online,
            bundle_seq=0,
            code=code,
        )
        if not self.pending:
            self.oldest = at
        self.pending.append(encode_entry(entry))

    def upload(self, net: Net) -> httpx.Response | None:
        """The pending entries as the next batch of the hash chain; None when none wait."""
        if not self.pending:
            return None
        first = self.journaled + 1
        data = encode_batch(
            self.key, self.terminal_id, first=first, prev=self.prev, entries=self.pending
        )
        body = json.dumps({"batch": b64u_encode(data)}).encode()
        answer = self._signed(net, "/v1/terminal/journal", body)
        answer.raise_for_status()
        self.prev, self.journaled = batch_hash(data), first + len(self.pending) - 1
        self.pending = []
        return answer
