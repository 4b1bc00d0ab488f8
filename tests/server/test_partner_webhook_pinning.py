"""A partner's webhook goes only to an address checked to be public: its host is resolved once
and the connection made to that address (a name answering a public address and then 127.0.0.1,
DNS rebinding, reaches nothing on the campus network); IPv6 addresses that carry an IPv4 one
are judged by it; no delivery follows a redirect.

The name's answers come from a patched `socket.getaddrinfo`, and the test has no internet: a
connection to anything but 127.0.0.1 is refused (a patched `socket.connect`)."""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from duopass.server.partners.delivery import Sent, _Job, send
from duopass.server.partners.endpoints import is_public
from tests.server.harness import Running
from tests.server.partners import make_client, token
from tests.server.test_partner_webhooks import _own_event
from tests.server.ticketing import ticket_wallet
from tests.server.webhook_receiver import Receiver
from tests.server.webhooks import client_fixture, deliver, receiver_fixture

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

PUBLIC = "93.184.216.34"
NAME = "hooks.partner.example"


@pytest.fixture(name="listener")
def listener_fixture() -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1 that nobody accepts from: a connection made to it waits
    in its backlog, where the test finds it."""
    with socket.socket() as made:
        made.bind(("127.0.0.1", 0))
        made.listen(8)
        made.setblocking(False)
        yield made


def _reached(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _rebinding(
    monkeypatch: pytest.MonkeyPatch, answers: list[list[str]]
) -> tuple[list[str], list[Any]]:
    """`NAME` answers each lookup with the next of `answers` (the last one again after them,
    TTL 0). Only 127.0.0.1 can be reached. The lookups made and the addresses dialled are
    returned as they happen."""
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect
    lookups: list[str] = []
    dialled: list[Any] = []

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        found = answers[min(len(lookups), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in found]

    def connect(self: socket.socket, address: Any) -> None:
        dialled.append(address)
        if isinstance(address, tuple) and address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"no internet in tests ({address[0]})")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return lookups, dialled


def _send(url: str, *, public_only: bool = True, follow: bool = False) -> Sent:
    job = _Job(1, "msg_x", "{}", url, (b"k" * 32,), public_only)
    with httpx.Client(timeout=5, trust_env=False, follow_redirects=follow) as client:
        return send(client, job, stamp=time.time)


def test_a_name_rebound_to_loopback_after_its_check_reaches_nothing(monkeypatch, listener):
    port = listener.getsockname()[1]
    lookups, dialled = _rebinding(monkeypatch, [[PUBLIC], ["127.0.0.1"]])
    sent = _send(f"https://{NAME}:{port}/hooks")
    assert not _reached(listener)
    assert (lookups, dialled) == ([NAME], [(PUBLIC, port)])  # resolved once, dialled that
    assert sent == Sent(None, "ConnectError")  # the public address (no internet here)


@pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)
def test_the_delivery_log_of_a_rebound_name_keeps_a_stable_reason(
    clocked_server: Running, client, monkeypatch, listener
):
    server, admin = clocked_server, clocked_server.admin()
    assert admin.post("/v1/admin/venues", {"id": "arena", "name": "Arena"}).status_code == 201
    partner = make_client(admin, ["tickets:issue", "webhooks:manage"])
    mine = {"Authorization": f"Bearer {token(server.http, partner).json()['access_token']}"}
    url = f"https://{NAME}:{listener.getsockname()[1]}/hooks"  # a name: taken, resolved later
    made = server.http.post(
        "/v1/partner/webhooks", json={"url": url, "event_types": ["ticket.issued"]}, headers=mine
    )
    assert made.status_code == 201, made.text
    gig = _own_event(server.http, mine, "gig")
    fan = ticket_wallet(server.http, admin, "fan", balance=10_000)
    assert fan.buy(gig).status_code == 201
    lookups, _ = _rebinding(monkeypatch, [[PUBLIC], ["127.0.0.1"]])
    assert deliver(server, client) == 1
    monkeypatch.undo()
    base = f"/v1/partner/webhooks/{made.json()['id']}/deliveries"
    log = server.http.get(base, headers=mine).json()["items"]
    assert [entry["error"] for entry in log[0]["log"]] == ["ConnectError"]
    assert lookups == [NAME]
    assert not _reached(listener)


def test_a_name_that_answers_loopback_at_all_is_refused_by_name(monkeypatch, listener):
    port = listener.getsockname()[1]
    for answers in [[["127.0.0.1"]], [[PUBLIC, "127.0.0.1"]], [["10.0.0.7"], [PUBLIC]]]:
        _rebinding(monkeypatch, answers)
        sent = _send(f"https://{NAME}:{port}/hooks")
        assert sent == Sent(None, f"{NAME} is not a public address"), answers
    assert not _reached(listener)


def test_the_private_rule_off_a_partners_endpoint_is_delivered_as_any(receiver):
    receiver.secrets.append("whsec_" + base64.b64encode(b"k" * 32).decode())
    sent = _send(receiver.url, public_only=False)
    assert sent == Sent(204, None)
    assert receiver.tried == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
    ],
)
def test_an_address_carrying_an_ipv4_one_is_judged_by_it(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


class _Redirecting(BaseHTTPRequestHandler):
    to = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(307)
        self.send_header("location", self.to)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def test_no_delivery_follows_a_redirect(receiver: Receiver):
    handler = type("Handler", (_Redirecting,), {"to": receiver.url})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        sent = _send(url, public_only=False, follow=True)  # even by a client that would
    finally:
        server.shutdown()
        server.server_close()
    assert sent == Sent(307, None)
    assert receiver.tried == 0
