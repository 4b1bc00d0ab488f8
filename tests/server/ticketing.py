"""Test helpers for tickets: an event on sale, a holder's wallet that buys and syncs tickets,
and an entry gate. Everything goes through the server's HTTP API."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from duopass.protocol.code import make_code
from duopass.protocol.encoding import b64u_decode
from duopass.protocol.signed_requests import sign_request
from tests.server.harness import Admin, TerminalClient, Wallet

HOUR = 3600


@dataclass(frozen=True)
class OnSale:
    event: str
    type_id: int
    doors: int
    ends: int
    venues: tuple[str, ...]


def event_on_sale(
    admin: Admin,
    event_id: str = "concert",
    *,
    venues: tuple[str, ...] = ("hall-a",),
    doors: int | None = None,
    ends: int | None = None,
    price: int = 2_000,
    entries: int = 1,
    quota: int = 500,
    networks: tuple[str, ...] = ("10.20.0.0/16",),
) -> OnSale:
    """An event at new (or existing) venues with one ticket type; doors in an hour by default."""
    now = int(time.time())
    doors = now + HOUR if doors is None else doors
    ends = doors + 4 * HOUR if ends is None else ends
    for n, venue in enumerate(venues):
        admin.post(
            "/v1/admin/venues",
            {
                "id": venue,
                "name": venue.title(),
                "lat_e6": 31_200_000 + n * 1000,
                "lon_e6": 121_400_000,
                "networks": list(networks),
            },
        )
    made = admin.post(
        "/v1/admin/events",
        {"id": event_id, "name": event_id.title(), "doors": doors, "ends": ends, "venues": venues},
    )
    assert made.status_code == 201, made.text
    kind = admin.post(
        f"/v1/admin/events/{event_id}/ticket-types",
        {"name": "Standing", "price": price, "entries": entries, "quota": quota},
    )
    assert kind.status_code == 201, kind.text
    return OnSale(event_id, int(kind.json()["id"]), doors, ends, venues)


@dataclass
class TicketWallet:
    """A holder's wallet with tickets beside its purse."""

    wallet: Wallet
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def http(self) -> httpx.Client:
        return self.wallet.http

    def buy(self, sale: OnSale, quantity: int = 1) -> httpx.Response:
        return self.http.post(
            "/v1/me/orders",
            headers=self.wallet.auth,
            json={
                "ticket_type": sale.type_id,
                "quantity": quantity,
                "request_id": uuid.uuid4().hex,
            },
        )

    def sync(self, exhausted: tuple[str, ...] = ()) -> httpx.Response:
        answer = self.http.post(
            "/v1/wallet/tickets",
            headers=self.wallet.auth,
            json={"device_id": self.wallet.device_id, "exhausted": list(exhausted)},
        )
        if answer.status_code == 200:
            for item in answer.json()["tickets"]:
                if item["credential"] != self.tickets.get(item["sub"], {}).get("credential"):
                    self.counters[item["sub"]] = 0
                self.tickets[item["sub"]] = item
        return answer

    def code(self, sub: str, now: int | None = None) -> str:
        l1 = self.tickets[sub]["credential"]
        assert l1, f"no credential for {sub}: {self.tickets[sub]['refusal']}"
        ctr = self.counters[sub]
        self.counters[sub] = ctr + 1
        return make_code(b64u_decode(l1), self.wallet.key, ctr=ctr, ts=now or int(time.time()))


def ticket_wallet(http: httpx.Client, admin: Admin, login: str, *, balance: int) -> TicketWallet:
    """A holder signed in with a device enrolled, and no purse credential yet: a purse's holds
    would keep its funds from an online order (free funds, §4.1)."""
    holder = admin.holder(login, balance=balance)
    wallet = Wallet(http, login)
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    return TicketWallet(wallet)


def entry_gate(
    http: httpx.Client, admin: Admin, name: str, *, event: str, venue: str
) -> TerminalClient:
    """A gate in entry mode for `event` at `venue`, enrolled."""
    code = admin.terminal(name, mode="entry", venue=venue, event=event)
    gate = TerminalClient(http, name)
    assert gate.enrol(code).status_code == 200
    return gate


def entrance(admin: Admin, event: str) -> int:
    """The id of the event's first check-in list ("Entrance", all ticket types)."""
    answer = admin.http.get(f"/v1/admin/events/{event}/checkin-lists", headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["items"][0]["id"])


def redeem(admin: Admin, secret: str, lists: list[int], **fields: Any) -> httpx.Response:
    """A staff phone's redeem (pretix's request fields)."""
    return admin.post("/v1/checkin/redeem", {"secret": secret, "lists": lists, **fields})


def terminal_redeem(
    gate: TerminalClient, secret: str, lists: list[int], **fields: Any
) -> httpx.Response:
    """A terminal's redeem: the request signed with its key."""
    body = json.dumps({"secret": secret, "lists": lists, **fields}).encode()
    headers = sign_request(
        gate.key,
        gate.terminal_id,
        method="POST",
        target="/v1/checkin/redeem",
        time=int(time.time()),
        body=body,
    )
    return gate.http.post(
        "/v1/checkin/redeem",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
