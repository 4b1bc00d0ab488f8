"""The risk engine in the server: at a point (a sign-in, a reissue, ...) read the features of
the request's keys in the unit's feature store, judge them by the active policy's signals and
guards (`duopass.risk.points`), keep a decision record in the same unit, and turn an action
into the request's refusal (deny 403 `risk_denied`, review 403 `risk_review`, rate_limit 429
`risk_rate_limited` with `Retry-After`).

A decision is recorded when it is not a plain allow (an action, or a score above 0): honest
traffic writes nothing. Records older than `risk_decision_retention_s` go at maintenance. They
hold keys (ids, addresses, keyed digests of unknown logins), never a password or a code.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete

from duopass.policy.guards import Action
from duopass.risk import Key, KeyKind, Observation, Pair, Signal, ip_of
from duopass.risk.points import Judged, Point, Subject, judge, queries
from duopass.server.logbook import Event, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import policy_store, risk_features
from duopass.server.settings import Settings
from duopass.server.store.risk import RiskDecision
from duopass.server.unit_of_work import Unit

__all__ = ["allowlisted", "check", "expire", "record", "refusal", "reissue_score"]


def allowlisted(settings: Settings, client: str | None) -> bool:
    """Whether the client's address is in a network kept from being throttled as one (a campus
    NAT: `throttle_exempt_networks`); the risk document's `request.allowlisted`."""
    address = ip_of(client)
    if address is None:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.throttle_exempt_networks
    )


def check(
    unit: Unit, point: Point, subject: Subject, request: Mapping[str, Any] | None = None
) -> Judged | None:
    """The active policy's decision at `point` for `subject`, recorded unless a plain allow;
    None when this process decides with no policy (a context outside a served app)."""
    if unit.pinned_policy is None:
        return None
    policy = policy_store.current(unit)
    features = risk_features.store_for(unit).read(queries(point, subject), now=unit.now)
    judged = judge(policy, point, features, request)
    assessment = judged.assessment
    if assessment.action is not Action.ALLOW or assessment.score > 0:
        record(unit, subject, judged)
    return judged


def record(unit: Unit, subject: Subject, judged: Judged) -> RiskDecision:
    """The decision record, added to the unit (it commits with the request)."""
    assessment = judged.assessment
    row = RiskDecision(
        at=unit.now,
        point=assessment.point,
        subject=json.dumps(subject.keys()),
        policy_version=judged.version,
        policy_sha256=judged.sha256,
        guard=assessment.guard,
        score=assessment.score,
        signals=json.dumps(list(assessment.signals)),
        features=json.dumps(judged.explained()),
        action=assessment.action.value,
    )
    unit.session.add(row)
    if assessment.action is not Action.ALLOW or assessment.errors:
        emit(
            Event.RISK_DECISION,
            f"risk: {assessment.action} at {assessment.point} by {assessment.guard}"
            f" (score {assessment.score})",
            point=assessment.point,
            guard=assessment.guard,
            action=assessment.action.value,
            score=assessment.score,
            signals=list(assessment.signals),
            errors=list(assessment.errors),
        )
    return row


def refusal(judged: Judged | None) -> Problem | None:
    """The refusal an action means for the request, or None (allow, step_up, suspend_offline:
    the caller handles the last two)."""
    if judged is None:
        return None
    assessment = judged.assessment
    guard = assessment.guard
    if assessment.action is Action.DENY:
        return Problem(ProblemCode.RISK_DENIED, f"refused by the risk policy ({guard})")
    if assessment.action is Action.REVIEW:
        return Problem(
            ProblemCode.RISK_REVIEW,
            f"held by the risk policy ({guard}) until the card office has looked",
        )
    if assessment.action is Action.RATE_LIMIT:
        return Problem(
            ProblemCode.RISK_RATE_LIMITED,
            f"too many requests like this one ({guard}): try again later",
            headers={"Retry-After": str(assessment.retry_after_s)},
        )
    return None


def reissue_score(unit: Unit, holder_id: int, device_id: int, address: str | None) -> int:
    """The risk score of a reissue (transfer, loss) request, read before it is counted; the
    request is then counted (per holder, device, address and network, the holder seen with the
    device and the network with the holder). The reissue rules read the score as `risk.score`;
    guards do not act at this point (the policy refuses one that lists it)."""
    account = Key(KeyKind.ACCOUNT, f"holder:{holder_id}")
    device = Key(KeyKind.DEVICE, str(device_id))
    subject = Subject(account, device, address)
    judged = check(unit, Point.REISSUE, subject)
    keys, pairs = [account, device], [Pair(account, device)]
    network = subject.network
    if address is not None and network is not None:
        keys += [Key(KeyKind.ADDRESS, address), network]
        pairs.append(Pair(network, account))
    observation = Observation(unit.now, Signal.REISSUE_REQUEST, tuple(keys), tuple(pairs))
    risk_features.observe(unit, observation)
    return 0 if judged is None else judged.assessment.score


def expire(unit: Unit) -> int:
    """Delete the decision records older than the retention; how many went."""
    cutoff = unit.now - unit.settings.risk_decision_retention_s
    result = unit.session.execute(delete(RiskDecision).where(RiskDecision.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
