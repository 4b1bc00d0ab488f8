"""Helpers for the webhook tests: an endpoint created over the API for a receiver, and the
delivery worker's rounds driven by the test (the servers tests start send nothing by
themselves: `webhook_delivery` is off in `harness.running_server`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from duopass.risk import AlertKind
from duopass.server.partners.delivery import deliver_once
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.services import alerts
from tests.server.harness import Admin, Running
from tests.server.webhook_receiver import Receiver

ALL = [kind.value for kind in WebhookEvent]
OWNER = "test-worker"


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    found = Receiver()
    found.up()
    try:
        yield found
    finally:
        if found._server is not None:
            found.down()


@pytest.fixture(name="client")
def client_fixture() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as made:
        yield made


def hook(admin: Admin, receiver: Receiver, types: list[str] | None = None) -> dict[str, Any]:
    """A new endpoint sending `types` (every type) to `receiver`, which learns its secret."""
    made = admin.post("/v1/admin/webhooks", {"url": receiver.url, "event_types": types or ALL})
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    receiver.secrets.append(answer["secret"])
    return answer


def deliver(server: Running, client: httpx.Client, *, owner: str = OWNER) -> int:
    """Delivery rounds until one makes no attempt; the attempts made."""
    made = 0
    while True:
        attempts = deliver_once(server.ctx, client, owner=owner, stamp=time.time)
        if not attempts:
            return made
        made += attempts


def alert(server: Running, n: int = 1) -> None:
    """`n` alerts raised by the server's own service (an `alert.raised` each)."""
    for seq in range(n):
        raised = partial(
            alerts.raise_alert, kind=AlertKind.GAP, evidence={"n": seq}, terminal_id="g", seq=seq
        )
        server.ctx.run(raised)


def log(server: Running, admin: Admin, endpoint: int, **params: Any) -> list[dict[str, Any]]:
    answer = server.http.get(
        f"/v1/admin/webhooks/{endpoint}/deliveries", headers=admin.auth, params=params
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items
