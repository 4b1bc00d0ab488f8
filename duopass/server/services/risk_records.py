"""What a risk decision leaves for the card office, in the decision's unit: a row per key it
read (`RiskDecisionKey`, what `risk_view` ranks and filters by), and for an action a person
should see (review, deny, suspend_offline) an alert in the review queue carrying the decision
with its evidence: its id, point, guard, score, signals, each feature read with its value, the
keys and the policy's pin.

One open alert per guard, point and subject (`grouped_by`: the account, else for an unknown
login or no account the network, else the first key; `grouping`, a unique partial index, so
decisions made at once raise one): a decision the same guard makes again on
the same subject while its alert is open is counted on that alert (`repeats`, `last_decision`,
`last_at`), so a client refused again and again raises one alert, not one a request. Each new
alert is a ledger event (`alerts.raise_alert`).

A person who resolves a review's alert with `release` lets the request through once: the same
guard's next review at that point for that subject, within `RELEASE_S`, is recorded as the
review it is with `released_by` naming the alert, and allowed (`risk_engine.check`); the alert's
evidence says which decision used it (`released_to`). A sign-in is judged before its password
is checked, so it only finds the release (`keep(..., claim=False)`, a `Release`) and uses it
once the sign-in succeeds (`use`); one that fails leaves the release for the next and its
review goes to the queue as any other (`hold`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select

from duopass.policy.guards import Action
from duopass.risk import AlertKind, ReviewAction
from duopass.server.services import alerts
from duopass.server.store.risk import RiskDecision
from duopass.server.store.risk_keys import RiskDecisionKey
from duopass.server.store.tables import Alert, Holder
from duopass.server.unit_of_work import Unit

__all__ = [
    "ALERTING",
    "OPEN_ALERTS_READ",
    "RELEASE_S",
    "Release",
    "decision",
    "evidence",
    "grouping",
    "hold",
    "keep",
    "settle",
    "use",
]

ALERTING: Final = frozenset({Action.REVIEW, Action.DENY, Action.SUSPEND_OFFLINE})
"""The actions whose decisions go to the review queue."""
OPEN_ALERTS_READ: Final = 50
"""Released risk alerts of one holder (or of none) read to find a release."""
RELEASE_S: Final = 86_400
"""How long a person's release of a review lets the next such request through."""


@dataclass(frozen=True, slots=True)
class Release:
    """A person's release a review found and has not used yet (`keep(..., claim=False)`)."""

    decision: int
    """The review's decision record."""
    alert: int
    """The released alert."""


def keep(unit: Unit, row: RiskDecision, *, claim: bool = True) -> Release | None:
    """The decision's key rows, and its alert if its action is one a person sees. A review a
    person released is let through: the release is used now (`claim`), or found and returned
    for the caller to `use` once the request succeeds (or `hold` if it does not)."""
    session = unit.session
    session.flush()  # the decision's id
    keys = _keys(row)
    session.add_all(
        RiskDecisionKey(decision_id=row.id, key=key, at=row.at, score=row.score) for key in keys
    )
    if Action(row.action) not in ALERTING:
        return None
    holder, grouped_by = _holder(unit, keys), _grouped_by(keys)
    if row.action == Action.REVIEW.value:
        released = _released(unit, row, holder, grouped_by, claim=claim)
        if released is not None:  # a person let it through, once
            if claim:
                row.released_by = released.id
            return Release(row.id, released.id)
    _alert(unit, row, keys)
    return None


def use(unit: Unit, release: Release) -> bool:
    """Use a release `keep` found for a request that has now succeeded: False when another
    request used it meanwhile (this one's review then goes to the queue: `hold`)."""
    row = unit.session.get(RiskDecision, release.decision)
    assert row is not None, "the decision was kept in an earlier unit"
    alert = unit.session.scalars(
        select(Alert).where(Alert.id == release.alert).with_for_update()
    ).one_or_none()
    held = {} if alert is None else json.loads(alert.evidence)
    if alert is None or "released_to" in held:
        _alert(unit, row, _keys(row))
        return False
    held["released_to"] = row.id
    alert.evidence = json.dumps(held, sort_keys=True)
    row.released_by = alert.id
    return True


def hold(unit: Unit, release: Release) -> None:
    """A request a release would have let through failed (a wrong password): the release stays
    for the next, and this review goes to the queue as any other."""
    row = unit.session.get(RiskDecision, release.decision)
    assert row is not None, "the decision was kept in an earlier unit"
    _alert(unit, row, _keys(row))


def settle(unit: Unit, release: Release | None, *, used: bool) -> bool:
    """A release a request found, once it is known whether the request succeeded (`used`):
    `use`, else `hold`. False only when a used one was taken meanwhile; True with none."""
    if release is None:
        return True
    if used:
        return use(unit, release)
    hold(unit, release)
    return True


def _keys(row: RiskDecision) -> list[str]:
    return list(dict.fromkeys(json.loads(row.subject)))


def decision(row: RiskDecision) -> dict[str, Any]:
    """What a decision record says, as the card office reads it (the alert's evidence and
    `GET /v1/admin/risk` both start from it)."""
    return {
        "at": row.at,
        "point": row.point,
        "guard": row.guard,
        "action": row.action,
        "score": row.score,
        "signals": json.loads(row.signals),
        "features": json.loads(row.features),
        "subject": json.loads(row.subject),
        "policy_version": row.policy_version,
        "policy_sha256": bytes(row.policy_sha256).hex(),
    }


def evidence(row: RiskDecision) -> dict[str, Any]:
    """A decision as its alert carries it."""
    return {
        "decision": row.id,
        **decision(row),
        "repeats": 1,
        "last_decision": row.id,
        "last_at": row.at,
    }


def _alert(unit: Unit, row: RiskDecision, keys: list[str]) -> None:
    """The decision counted on the open alert of its guard, point and subject, or raised
    (`alerts.raise_once`: one open alert a grouping, also for decisions made at once)."""
    holder = _holder(unit, keys)
    grouped_by = _grouped_by(keys)
    key = grouping(row.guard, row.point, None if holder is None else holder.id, grouped_by)

    def repeat(held: dict[str, Any]) -> None:
        held.update(repeats=int(held.get("repeats", 1)) + 1, last_decision=row.id)
        held["last_at"] = row.at

    terminal = next((k.removeprefix("terminal:") for k in keys if k.startswith("terminal:")), None)
    alerts.raise_once(
        unit,
        AlertKind.RISK_DECISION,
        grouping=key,
        repeat=repeat,
        evidence={**evidence(row), "grouped_by": grouped_by},
        holder=holder,
        terminal_id=terminal,
    )


def grouping(guard: str | None, point: str, holder_id: int | None, grouped_by: str | None) -> str:
    """The digest an alert is kept per (`Alert.grouping`): one open alert for each."""
    named = json.dumps([guard, point, holder_id, grouped_by])
    return hashlib.sha256(named.encode()).hexdigest()


def _released(
    unit: Unit, row: RiskDecision, holder: Holder | None, grouped_by: str | None, *, claim: bool
) -> Alert | None:
    """The release of an alert of the same guard, point and subject not yet used, from the
    last `RELEASE_S` (marked used if `claim`; locked: two requests at once use it once)."""
    same_holder = Alert.holder_id.is_(None) if holder is None else Alert.holder_id == holder.id
    query = select(Alert).where(
        Alert.kind == AlertKind.RISK_DECISION.value,
        Alert.state == "resolved",
        same_holder,
        Alert.resolution == ReviewAction.RELEASE.value,
        Alert.resolved_at >= unit.now - RELEASE_S,
    )
    query = query.order_by(Alert.id.desc()).limit(OPEN_ALERTS_READ).with_for_update()
    for alert in unit.session.scalars(query):
        held = json.loads(alert.evidence)
        if (held.get("guard"), held.get("point"), held.get("grouped_by")) != (
            row.guard,
            row.point,
            grouped_by,
        ):
            continue
        if "released_to" in held:
            continue
        if claim:
            held["released_to"] = row.id
            alert.evidence = json.dumps(held, sort_keys=True)
        return alert
    return None


def _grouped_by(keys: list[str]) -> str | None:
    """The key a decision's alert is kept per: its account, unless that is only a login's
    digest (an unknown login: each guess would be an alert), then its network, else its first
    key."""
    accounts = [key for key in keys if key.startswith("account:")]
    if accounts and not accounts[0].startswith("account:login:"):
        return accounts[0]
    networks = [key for key in keys if key.startswith("network:")]
    return networks[0] if networks else (keys[0] if keys else None)


def _holder(unit: Unit, keys: list[str]) -> Holder | None:
    """The holder the decision's account key names (`account:holder:ID`), if any."""
    for key in keys:
        if key.startswith("account:holder:"):
            digits = key.removeprefix("account:holder:")
            if digits.isdigit() and len(digits) < 11:
                return unit.session.get(Holder, int(digits))
    return None
