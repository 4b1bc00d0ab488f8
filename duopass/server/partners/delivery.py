"""The delivery worker: sends the outbox's messages with httpx, signed by the Standard Webhooks
scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature`), in order per endpoint.

Every server process runs one (`Delivery`, a thread); several processes, or several servers on
one PostgreSQL, share the work by claiming endpoints, not messages: a worker leases an endpoint
(`lease_owner`, `lease_until`) in a short transaction, choosing among the endpoints whose queue
head is due with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, and on SQLite inside the
write lock every unit takes (`BEGIN IMMEDIATE`; one server process holds a SQLite store). Then,
outside any transaction, it sends the endpoint's messages one at a time, oldest first, each
attempt recorded (and the lease renewed) in a transaction of its own. A message that fails
blocks the later ones until it is delivered or failed: it is tried again after 5 s, doubling up
to an hour, until a day after its event (on the server's clock), then failed, and the next one
goes. A worker that dies loses its lease `WEBHOOK_LEASE_S` later and another sends what it had
not recorded as delivered: delivery is at least once, and receivers drop a `webhook-id` seen.

The `webhook-timestamp` is when the request leaves by the wall clock (`stamp`), which is what a
receiver checks it against (5 minutes' tolerance); the schedule follows the server's clock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import httpx
from sqlalchemy import func, or_, select
from standardwebhooks.webhooks import Webhook

from duopass import __version__
from duopass.server.clock import Clock
from duopass.server.context import AppContext
from duopass.server.limits import (
    WEBHOOK_BACKOFF_FIRST_S,
    WEBHOOK_BACKOFF_MAX_S,
    WEBHOOK_ERROR_CHARS_MAX,
    WEBHOOK_LEASE_S,
    WEBHOOK_SENDS_PER_CLAIM_MAX,
    WEBHOOK_TIMEOUT_S,
)
from duopass.server.partners import endpoints, outbox, pinned
from duopass.server.store.reach import is_unavailable
from duopass.server.store.webhooks import WebhookAttempt, WebhookEndpoint, WebhookMessage
from duopass.server.unit_of_work import Unit

__all__ = ["Delivery", "Sent", "backoff", "deliver_once"]

log = logging.getLogger("duopass.server.webhooks")
POLL_S = 2.0
"""How often a worker looks for due messages when no commit of its own process rang."""
CLAIM_MAX = 8
"""Endpoints one worker leases at once."""


@dataclass(frozen=True)
class _Job:
    message_id: int
    webhook_id: str
    payload: str
    url: str
    secrets: tuple[bytes, ...]
    public_only: bool = False
    """A partner's endpoint: sent only to a public address (`pinned`)."""


@dataclass(frozen=True)
class Sent:
    """What one attempt got: the answer's status, or why there was none."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def backoff(attempts: int) -> int:
    """The wait after the `attempts`-th failed attempt."""
    return int(min(WEBHOOK_BACKOFF_FIRST_S * 2 ** min(attempts - 1, 30), WEBHOOK_BACKOFF_MAX_S))


def deliver_once(ctx: AppContext, client: httpx.Client, *, owner: str, stamp: Clock) -> int:
    """Claim the endpoints whose next message is due and send to each what is due, in order.
    Returns the attempts made."""
    made = 0
    for endpoint_id in ctx.run(lambda unit: _claim(unit, owner)):
        try:
            made += _drain(ctx, client, endpoint_id, owner=owner, stamp=stamp)
        finally:
            ctx.run(partial(_release, endpoint_id=endpoint_id, owner=owner))
    return made


def _claim(unit: Unit, owner: str) -> list[int]:
    now = unit.now
    head = (
        select(func.min(WebhookMessage.id))
        .where(WebhookMessage.endpoint_id == WebhookEndpoint.id, WebhookMessage.state == "pending")
        .correlate(WebhookEndpoint)
        .scalar_subquery()
    )
    due = select(WebhookMessage.id).where(WebhookMessage.id == head, WebhookMessage.next_at <= now)
    rows = unit.session.scalars(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.state == "enabled",
            or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until <= now),
            due.exists(),
        )
        .order_by(WebhookEndpoint.id)
        .limit(CLAIM_MAX)
        .with_for_update(skip_locked=True, of=WebhookEndpoint)
    ).all()
    for row in rows:
        row.lease_owner, row.lease_until = owner, now + WEBHOOK_LEASE_S
    return [row.id for row in rows]


def _release(unit: Unit, *, endpoint_id: int, owner: str) -> None:
    row = unit.session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if row is not None and row.lease_owner == owner:
        row.lease_owner, row.lease_until = None, None


def _drain(
    ctx: AppContext, client: httpx.Client, endpoint_id: int, *, owner: str, stamp: Clock
) -> int:
    for made in range(WEBHOOK_SENDS_PER_CLAIM_MAX):
        job = ctx.run(partial(_next, endpoint_id=endpoint_id, owner=owner))
        if job is None:
            return made
        sent = send(client, job, stamp=stamp)
        record = partial(_record, endpoint_id=endpoint_id, job=job, sent=sent, owner=owner)
        if not ctx.run(record):
            return made + 1
    return WEBHOOK_SENDS_PER_CLAIM_MAX


def _next(unit: Unit, *, endpoint_id: int, owner: str) -> _Job | None:
    """The endpoint's oldest message still pending, if it is due and the lease is still ours."""
    endpoint = unit.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.lease_owner != owner or endpoint.state != "enabled":
        return None
    message = unit.session.scalars(
        select(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint_id, WebhookMessage.state == "pending")
        .order_by(WebhookMessage.id)
        .limit(1)
    ).first()
    if message is None or message.next_at > unit.now:
        return None
    signing = tuple(endpoints.secrets(unit.keyring, endpoint, unit.now))
    public = endpoint.partner_id is not None and not unit.settings.partner_webhooks_private
    return _Job(message.id, message.webhook_id, message.payload, endpoint.url, signing, public)


def send(client: httpx.Client, job: _Job, *, stamp: Clock) -> Sent:
    """One attempt: POST the body, signed with every secret that signs now (to a partner's
    endpoint, only to an address of its host checked to be public, `pinned`)."""
    if job.public_only:
        why = endpoints.not_public(job.url, resolve=False)
        if why is not None:
            return Sent(None, why)
    at = datetime.fromtimestamp(int(stamp()), UTC)
    body = job.payload.encode()
    signature = " ".join(Webhook(secret).sign(job.webhook_id, at, body) for secret in job.secrets)
    headers = {
        "content-type": "application/json",
        "user-agent": f"duopass-webhooks/{__version__}",
        "webhook-id": job.webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    try:
        through = pinned.client(client.timeout) if job.public_only else nullcontext(client)
        with (
            through as sender,
            sender.stream(
                "POST", job.url, content=body, headers=headers, follow_redirects=False
            ) as answer,
        ):
            return Sent(answer.status_code, None)  # the answer's body is never read
    except endpoints.NotPublic as refused:
        return Sent(None, refused.reason)
    except httpx.TimeoutException as exc:
        return Sent(None, f"timeout ({type(exc).__name__})")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        return Sent(None, type(exc).__name__)


def _record(unit: Unit, *, endpoint_id: int, job: _Job, sent: Sent, owner: str) -> bool:
    """Log the attempt and move the message on; True when the next message may go now."""
    session, now = unit.session, unit.now
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    message = session.get(WebhookMessage, job.message_id, with_for_update=True)
    if endpoint is None or endpoint.lease_owner != owner or message is None:
        log.warning("webhook endpoint %d: lease lost during a delivery", endpoint_id)
        return False
    if message.state != "pending":
        return False
    error = sent.error if sent.ok or sent.error else f"answered {sent.status}"
    error = None if sent.ok else (error or "")[:WEBHOOK_ERROR_CHARS_MAX]
    session.add(
        WebhookAttempt(
            message_id=message.id,
            attempted_at=now,
            ok=sent.ok,
            status_code=sent.status,
            error=error,
        )
    )
    message.attempts += 1
    message.last_status, message.last_error = sent.status, error
    endpoint.lease_until = now + WEBHOOK_LEASE_S
    if sent.ok:
        message.state, message.delivered_at = "delivered", now
        return True
    if now >= message.give_up_at:
        message.state = "failed"
        log.info("webhook message %d to endpoint %d failed", message.id, endpoint_id)
        return True
    message.next_at = min(now + backoff(message.attempts), message.give_up_at)
    return False


class Delivery:
    """`deliver_once` in a thread of its own until `stop`: at once when this process commits
    messages (`outbox.ring`), and every `POLL_S` for those of other processes and retries."""

    def __init__(self, ctx: AppContext, *, stamp: Clock = time.time) -> None:
        self.ctx, self.stamp = ctx, stamp
        self.owner = uuid.uuid4().hex
        self._bell = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="duopass-webhooks", daemon=True)

    def start(self) -> None:
        outbox.listen(self._bell)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._bell.set()
        outbox.stop_listening(self._bell)
        self._thread.join(timeout=2 * WEBHOOK_TIMEOUT_S)

    def _loop(self) -> None:
        timeout = httpx.Timeout(WEBHOOK_TIMEOUT_S)
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            while not self._stop.is_set():
                self._bell.clear()  # a commit ringing from now on is seen by the next round
                try:
                    deliver_once(self.ctx, client, owner=self.owner, stamp=self.stamp)
                except Exception as exc:
                    if is_unavailable(exc):  # a failover: one line, and the next round tries
                        log.warning("webhook delivery: the database is unavailable; trying again")
                    else:
                        log.exception("webhook delivery failed; trying again")
                self._bell.wait(POLL_S)
