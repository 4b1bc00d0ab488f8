"""The delivery log of an endpoint, as admins read it (and a partner its own endpoint's:
`partner`, as in `endpoints`): its messages newest first, each with
where it stands (pending, delivered, failed), its attempts (when, the answer's status or the
error), and a manual retry of a message that failed.

A retried message is pending again for another day from the retry; as the oldest pending one
it heads the endpoint's queue, so messages queued after it wait until it is delivered or
fails again (a receiver may then see it after newer ones: it orders by `timestamp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from duopass.server.limits import WEBHOOK_LOG_KEPT_S, WEBHOOK_RETRY_FOR_S
from duopass.server.partners import endpoints, outbox
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import paging
from duopass.server.store.db import after_commit
from duopass.server.store.webhooks import WebhookAttempt, WebhookMessage
from duopass.server.unit_of_work import Unit

__all__ = ["ATTEMPTS_SHOWN_MAX", "PURGE_BATCH", "describe", "listing", "purge", "retry"]

ATTEMPTS_SHOWN_MAX = 40
"""Attempts a message shows, newest first (a day of retries is some 33)."""
PURGE_BATCH = 1000
"""Messages one purge forgets at most (maintenance runs it every minute)."""


def listing(
    session: Session,
    endpoint_id: int,
    *,
    state: str | None,
    limit: int,
    cursor: str | None,
    partner: int | None = None,
) -> dict[str, Any]:
    """The endpoint's messages newest first, a page at a time, with their attempts."""
    endpoints.one(session, endpoint_id, partner=partner)
    name = f"webhook-deliveries-{endpoint_id}-{state or 'all'}"
    key = paging.read_cursor(cursor, name, (int,))
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(WebhookMessage.state == state)
    if key is not None:
        query = query.where(WebhookMessage.id < key[0])
    rows = session.scalars(query.order_by(WebhookMessage.id.desc()).limit(limit + 1)).all()
    answer = paging.page(name, rows, limit, lambda row: (row.id,))
    tried = _attempts(session, [row.id for row in answer["items"]])
    answer["items"] = [describe(row, tried.get(row.id, [])) for row in answer["items"]]
    return answer


def _attempts(session: Session, ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    found: dict[int, list[WebhookAttempt]] = {}
    if not ids:
        return found
    rows = session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.message_id.in_(ids))
        .order_by(WebhookAttempt.id.desc())
    )
    for row in rows:
        shown = found.setdefault(row.message_id, [])
        if len(shown) < ATTEMPTS_SHOWN_MAX:
            shown.append(row)
    return found


def retry(
    unit: Unit, endpoint_id: int, message_id: int, *, partner: int | None = None
) -> dict[str, Any]:
    """Send a failed message again (a pending one: at once)."""
    session = unit.session
    endpoints.one(session, endpoint_id, partner=partner)
    row = session.get(WebhookMessage, message_id, with_for_update=True)
    if row is None or row.endpoint_id != endpoint_id:
        raise Problem(ProblemCode.NOT_FOUND, "no such message for this endpoint")
    if row.state == "delivered":
        raise Problem(ProblemCode.CONFLICT, "delivered already")
    row.state, row.next_at = "pending", unit.now
    row.give_up_at = max(row.give_up_at, unit.now + WEBHOOK_RETRY_FOR_S)
    after_commit(session, outbox.ring)
    return describe(row, _attempts(session, [row.id]).get(row.id, []))


def purge(unit: Unit) -> int:
    """Forget messages delivered or failed more than `WEBHOOK_LOG_KEPT_S` ago (by their event's
    time), with their attempts; pending ones stay whatever their age. Returns how many."""
    session = unit.session
    old = list(
        session.scalars(
            select(WebhookMessage.id)
            .where(
                WebhookMessage.state.in_(("delivered", "failed")),
                WebhookMessage.created_at < unit.now - WEBHOOK_LOG_KEPT_S,
            )
            .order_by(WebhookMessage.id)
            .limit(PURGE_BATCH)
        )
    )
    if old:
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.message_id.in_(old)))
        session.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(old)))
    return len(old)


def describe(row: WebhookMessage, attempts: Sequence[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "type": row.event_type,
        "state": row.state,
        "created_at": row.created_at,
        "attempts": row.attempts,
        "next_attempt_at": row.next_at if row.state == "pending" else None,
        "give_up_at": row.give_up_at if row.state == "pending" else None,
        "delivered_at": row.delivered_at,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "log": [
            {
                "at": attempt.attempted_at,
                "ok": attempt.ok,
                "status": attempt.status_code,
                "error": attempt.error,
            }
            for attempt in attempts
        ],
    }
