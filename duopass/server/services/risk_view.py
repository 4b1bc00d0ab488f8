"""The risk engine as the card office sees it (`GET /v1/admin/risk`): the keys most at risk over
a window (from the decision records' keys: the highest score, the scores summed, how many
decisions), the recent decisions with the guard that acted, the signals, each feature read with
its value, the action, the point and the time, and the policy the database decides with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select

from duopass.server.services import risk_records
from duopass.server.services.paging import page, read_cursor
from duopass.server.store.decisions import PolicyVersion
from duopass.server.store.risk import RiskDecision
from duopass.server.store.risk_keys import RiskDecisionKey
from duopass.server.unit_of_work import Unit

__all__ = ["Filter", "decisions", "overview", "policy", "top_keys"]

KEYS = "risk-keys"
DECISIONS = "risk-decisions"


@dataclass(frozen=True)
class Filter:
    """Which decisions are listed: all of them, or those of one action, point or key."""

    action: str | None = None
    point: str | None = None
    key: str | None = None


def overview(
    unit: Unit,
    *,
    window_s: int,
    keys: tuple[int, str | None],
    listed: tuple[int, str | None],
    only: Filter,
) -> dict[str, Any]:
    """The whole answer: `keys` and `listed` are each list's (limit, cursor)."""
    return {
        "policy": policy(unit),
        "window_s": window_s,
        "top_keys": top_keys(unit, since=unit.now - window_s, limit=keys[0], cursor=keys[1]),
        "decisions": decisions(unit, only, limit=listed[0], cursor=listed[1]),
    }


def policy(unit: Unit) -> dict[str, Any] | None:
    """The active policy's version, SHA-256 and activation time (None before any)."""
    row = unit.session.scalars(
        select(PolicyVersion).order_by(PolicyVersion.activated_at.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return {
        "version": row.version,
        "sha256": bytes(row.sha256).hex(),
        "activated_at": row.activated_at,
    }


def top_keys(unit: Unit, *, since: int, limit: int, cursor: str | None) -> dict[str, Any]:
    """Keys of the decisions since `since`, by highest score, then summed score, then key."""
    top = func.max(RiskDecisionKey.score)
    total = func.sum(RiskDecisionKey.score)
    query = (
        select(
            RiskDecisionKey.key,
            top,
            total,
            func.count(),
            func.max(RiskDecisionKey.at),
        )
        .where(RiskDecisionKey.at >= since)
        .group_by(RiskDecisionKey.key)
        .order_by(top.desc(), total.desc(), RiskDecisionKey.key)
    )
    after = read_cursor(cursor, KEYS, (int, int, str))
    if after is not None:
        high, summed, key = after
        query = query.having(
            or_(
                top < high,
                and_(top == high, total < summed),
                and_(top == high, total == summed, RiskDecisionKey.key > key),
            )
        )
    rows = unit.session.execute(query.limit(limit + 1)).all()
    items = [
        {
            "key": key,
            "max_score": int(high),
            "total_score": int(summed),
            "decisions": int(count),
            "last_at": int(last),
        }
        for key, high, summed, count, last in rows
    ]
    return page(KEYS, items, limit, lambda i: (i["max_score"], i["total_score"], i["key"]))


def decisions(unit: Unit, only: Filter, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """Decisions newest first, of `only`'s action, point and key where given."""
    query, order = select(RiskDecision), RiskDecision.id
    if only.key is not None:  # by the key's index, newest first
        order = RiskDecisionKey.decision_id
        query = query.join(RiskDecisionKey, RiskDecisionKey.decision_id == RiskDecision.id)
        query = query.where(RiskDecisionKey.key == only.key)
    if only.action is not None:
        query = query.where(RiskDecision.action == only.action)
    if only.point is not None:
        query = query.where(RiskDecision.point == only.point)
    after = read_cursor(cursor, DECISIONS, (int,))
    if after is not None:
        query = query.where(order < after[0])
    rows = unit.session.scalars(query.order_by(order.desc()).limit(limit + 1)).all()
    return page(DECISIONS, [describe(row) for row in rows], limit, lambda i: (i["id"],))


def describe(row: RiskDecision) -> dict[str, Any]:
    """A decision as the card office reads it."""
    return {"id": row.id, **risk_records.decision(row), "released_by": row.released_by}
