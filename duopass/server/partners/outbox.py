"""The transactional outbox: a lifecycle event becomes one message row per subscribed endpoint,
written in the event's own unit of work, so a change rolled back sends nothing and a change
committed is never lost (the delivery worker, `partners.delivery`, sends what is committed).

Why a row per (event, endpoint) written with the event, not one row fanned out at delivery:
order, retries and the delivery log are per endpoint, so the row is that delivery's state; an
endpoint created later never receives older events; and an event nobody subscribes to writes
nothing (a gate's check-ins with no webhooks cost one read of the endpoints, kept for the rest
of the transaction). The price: one insert per subscribed endpoint in the event's transaction.

Rows are written under the ledger's append lock (`tlog.size(lock=True)`, which every event here
takes anyway), so their ids follow commit order across processes: the order an endpoint gets
its messages in. The body is JSON `{type, timestamp, data}`, fixed when written (every retry
sends the same bytes), with no personal data: tickets by their public `sub`, alerts by id.

A partner client's own endpoint (`webhook_endpoints.partner_id`) takes an event only when it is
about one of that partner's events (`events.partner_id` of the data's `event`: the ticket
events; never an alert or a settled day), and nothing once the client is revoked; the card
office's endpoints take every event they subscribe to, partners' events' included.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from duopass.server.limits import WEBHOOK_RETRY_FOR_S
from duopass.server.services import tlog
from duopass.server.store import sql
from duopass.server.store.db import after_commit
from duopass.server.unit_of_work import Unit

__all__ = ["WebhookEvent", "emit", "listen", "payload", "ring", "stop_listening"]

_SUBSCRIBERS = "webhook_subscribers"
"""`session.info` key: the enabled endpoints and their event types, read once a transaction."""
WEBHOOK_ID_BYTES = 16
# on the driver (`store.sql`): an event on a hot path (a gate's scan) pays some 50 us for the
# read, where the ORM's costs five times that (241 us, measured on SQLite)
_SUBSCRIBED = sql.statement(
    "SELECT e.id, e.event_types, e.partner_id FROM webhook_endpoints e "
    "LEFT JOIN partner_clients c ON c.id = e.partner_id "
    "WHERE e.state = 'enabled' AND (e.partner_id IS NULL OR c.state = 'active')"
)
_OWNER = sql.statement("SELECT partner_id FROM events WHERE id = :id")
_OWNERS = "webhook_event_owners"
"""`session.info` key: the partner owning each event id read in this transaction."""
_INSERT = sql.statement(
    "INSERT INTO webhook_messages (endpoint_id, webhook_id, event_type, payload, created_at, "
    "state, attempts, next_at, give_up_at) VALUES (:endpoint_id, :webhook_id, :event_type, "
    ":payload, :created_at, 'pending', 0, :created_at, :give_up_at)"
)


class WebhookEvent(StrEnum):
    """The event types an endpoint subscribes to; added, never renamed or reused."""

    TICKET_ISSUED = "ticket.issued"
    TICKET_REISSUED = "ticket.reissued"
    TICKET_REVOKED = "ticket.revoked"
    TICKET_CHECKED_IN = "ticket.checked_in"
    ALERT_RAISED = "alert.raised"
    DAY_SETTLED = "settlement.day_settled"


_bells: set[threading.Event] = set()
_bells_lock = threading.Lock()


def listen(bell: threading.Event) -> None:
    """`bell` is set whenever a unit of this process commits messages (a delivery worker's)."""
    with _bells_lock:
        _bells.add(bell)


def stop_listening(bell: threading.Event) -> None:
    with _bells_lock:
        _bells.discard(bell)


def ring() -> None:
    with _bells_lock:
        for bell in _bells:
            bell.set()


def payload(event: WebhookEvent, at: int, data: Mapping[str, Any]) -> str:
    """The message body: compact JSON, keys sorted."""
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"type": event.value, "timestamp": stamp, "data": dict(data)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def emit(unit: Unit, event: WebhookEvent, data: Mapping[str, Any]) -> int:
    """Queue `event` for every enabled endpoint subscribed to it, in the unit's transaction;
    returns how many messages that made."""
    session = unit.session
    wanted = event.value
    subscribed = [(id_, owner) for id_, types, owner in _subscribers(session) if wanted in types]
    if any(owner is not None for _, owner in subscribed):
        partner = _partner_of(session, data.get("event"))
        subscribed = [(id_, owner) for id_, owner in subscribed if owner in (None, partner)]
    endpoints = [id_ for id_, _ in subscribed]
    if not endpoints:
        return 0
    tlog.size(session, lock=True)  # ids in commit order (held by the event's append already)
    random = base64.b32encode(os.urandom(WEBHOOK_ID_BYTES)).decode().rstrip("=").lower()
    row = {
        "webhook_id": "msg_" + random,
        "event_type": event.value,
        "payload": payload(event, unit.now, data),
        "created_at": unit.now,
        "give_up_at": unit.now + WEBHOOK_RETRY_FOR_S,
    }
    sql.raw(session).many(_INSERT, [row | {"endpoint_id": id_} for id_ in endpoints])
    after_commit(session, ring)
    return len(endpoints)


def _subscribers(session: Session) -> list[tuple[int, frozenset[str], int | None]]:
    found: list[tuple[int, frozenset[str], int | None]] | None = session.info.get(_SUBSCRIBERS)
    if found is None:
        rows = sql.raw(session).all(_SUBSCRIBED, {})
        found = [(id_, frozenset(json.loads(types)), owner) for id_, types, owner in rows]
        session.info[_SUBSCRIBERS] = found
    return found


def _partner_of(session: Session, event_id: object) -> int | None:
    """The partner client owning the event `event_id` (None: the card office's, or no event:
    an alert, a settled day), read once per event a transaction."""
    if not isinstance(event_id, str):
        return None
    owners: dict[str, int | None] = session.info.setdefault(_OWNERS, {})
    if event_id not in owners:
        row = sql.raw(session).one(_OWNER, {"id": event_id})
        owners[event_id] = None if row is None else row[0]
    return owners[event_id]
