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

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete

from duopass.policy.guards import Action
from duopass.risk import Features, Key, KeyKind, Observation, Pair, Signal
from duopass.risk.features import Derived
from duopass.risk.points import ACCOUNT_AGE, DEVICE_AGE, Judged, Point, Subject, judge, queries
from duopass.server.logbook import Event, emit
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import policy_store, risk_features, throttle
from duopass.server.settings import Settings
from duopass.server.store.risk import RiskDecision
from duopass.server.store.risk_keys import RiskDecisionKey
from duopass.server.store.tables import Device, Holder
from duopass.server.unit_of_work import Unit

if TYPE_CHECKING:
    from duopass.server.services.risk_records import Release

__all__ = [
    "Refused",
    "ages",
    "allowlisted",
    "check",
    "check_pending",
    "expire",
    "holder_key",
    "kept",
    "observe",
    "record",
    "refusal",
    "reissue_score",
    "scanned",
    "screen",
    "suspend",
]

T = TypeVar("T")
SCAN_KEYS_CACHED = 4096
"""Tills whose scan keys are kept (`_scan_keys`); a few hundred bytes each."""


def allowlisted(settings: Settings, client: str | None) -> bool:
    """The risk document's `request.allowlisted`: the client is in a network the throttles
    exempt (a campus NAT), so it is counted per account only."""
    return throttle.exempt(settings, client)


def check(
    unit: Unit, point: Point, subject: Subject, request: Mapping[str, Any] | None = None
) -> Judged | None:
    """The active policy's decision at `point` for `subject`, recorded unless a plain allow;
    None when this process decides with no policy (a context outside a served app). A review
    a person released is allowed, the release used (`risk_records`)."""
    return check_pending(unit, point, subject, request, claim=True)[0]


def check_pending(
    unit: Unit,
    point: Point,
    subject: Subject,
    request: Mapping[str, Any] | None = None,
    *,
    claim: bool = False,
) -> tuple[Judged | None, Release | None]:
    """`check`, for a request that may yet fail after it (a sign-in judged before its password
    is checked): a review a person released is allowed and its release returned unused, for
    `risk_records.use` once the request has succeeded (`hold` if it has not)."""
    if unit.pinned_policy is None or not unit.settings.risk_engine:
        return None, None
    policy = policy_store.current(unit)
    features = risk_features.store_for(unit).read(queries(point, subject), now=unit.now)
    features |= ages(unit, subject)
    judged = judge(policy, point, features, request)
    assessment = judged.assessment
    if assessment.action is not Action.ALLOW or assessment.score > 0:
        release = _record(unit, subject, judged, claim=claim)[1]
        if release is not None:  # a review a person released (risk_records)
            allowed = replace(judged, assessment=replace(assessment, action=Action.ALLOW))
            return allowed, None if claim else release
    return judged, None


def ages(unit: Unit, subject: Subject) -> Features:
    """How old, in seconds at the unit's time, the subject's device key is (since it was
    enrolled) and its holder's account (since it was created): from their rows, not from any
    window, so a key enrolled a year ago reads a year. Only for the keys the subject has; None
    for a row that does not say (a holder created before migration 0014)."""
    read: list[tuple[Derived, int | None]] = []
    if subject.device is not None and subject.device.value.isdigit():
        device = unit.session.get(Device, int(subject.device.value))
        enrolled = None if device is None else device.enrolled_at
        read.append((Derived(subject.device, DEVICE_AGE), _age(unit, enrolled)))
    account = subject.account
    if account is not None and account.value.startswith("holder:"):
        number = account.value.removeprefix("holder:")
        holder = unit.session.get(Holder, int(number)) if number.isdigit() else None
        created = None if holder is None else holder.created_at
        read.append((Derived(account, ACCOUNT_AGE), _age(unit, created)))
    return Features(read)


def _age(unit: Unit, since: int | None) -> int | None:
    return None if since is None else max(0, unit.now - since)


def record(unit: Unit, subject: Subject, judged: Judged) -> RiskDecision:
    """The decision record, added to the unit (it commits with the request), with its keys
    and, for review, deny and suspend_offline, its alert (`risk_records`)."""
    return _record(unit, subject, judged, claim=True)[0]


def _record(
    unit: Unit, subject: Subject, judged: Judged, *, claim: bool
) -> tuple[RiskDecision, Release | None]:
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
    from duopass.server.services import risk_records  # noqa: PLC0415 (alerts -> devices -> here)

    release = risk_records.keep(unit, row, claim=claim)
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
    return row, release


class Refused(Problem):
    """A request the risk policy refused (`screen`). Raised, it rolls its unit back like any
    `Problem`; a route that keeps the decision record runs its work through `kept`."""


def kept(work: Callable[[Unit], T]) -> Callable[[Unit], T | Problem]:
    """`work` for `AppContext.run_refusable`: a `Refused` is returned, so the unit commits the
    decision record (and the counts it read) before the refusal is sent."""

    def run(unit: Unit) -> T | Problem:
        try:
            return work(unit)
        except Refused as refused:
            return refused

    return run


def screen(
    unit: Unit,
    point: Point,
    subject: Subject,
    request: Mapping[str, Any] | None = None,
    *,
    holder: Holder | None = None,
) -> Judged | None:
    """`check`, then raise `Refused` for deny, review and rate_limit, and for step_up (these
    points have no second-factor path: 401 step_up_required); allow goes on, and so does
    suspend_offline, once `suspend` has suspended the holder's offline use."""
    judged = check(unit, point, subject, request)
    refused = refusal(judged)
    if refused is not None:
        raise refused
    suspend(unit, judged, holder)
    if judged is not None and judged.assessment.action is Action.STEP_UP:
        guard = judged.assessment.guard
        raise Refused(
            ProblemCode.STEP_UP_REQUIRED,
            f"the risk policy ({guard}) asks for more proof than this request can give: "
            "ask the card office",
        )
    return judged


def suspend(unit: Unit, judged: Judged | None, holder: Holder | None) -> None:
    """For suspend_offline: the holder's live credentials revoked and offline use suspended
    (`alerts.suspend_offline`: its ledger event `offline_suspend`, in this unit), the reason
    naming the guard. Nothing for another action, or with no holder."""
    if judged is None or holder is None:
        return
    if judged.assessment.action is Action.SUSPEND_OFFLINE:
        from duopass.server.services import alerts  # noqa: PLC0415 (alerts -> devices -> here)

        alerts.suspend_offline(unit, holder, reason=f"risk guard {judged.assessment.guard}")


def refusal(judged: Judged | None) -> Refused | None:
    """The refusal an action means for the request, or None (allow, step_up, suspend_offline:
    the caller handles the last two)."""
    if judged is None:
        return None
    assessment = judged.assessment
    guard = assessment.guard
    if assessment.action is Action.DENY:
        return Refused(ProblemCode.RISK_DENIED, f"refused by the risk policy ({guard})")
    if assessment.action is Action.REVIEW:
        return Refused(
            ProblemCode.RISK_REVIEW,
            f"held by the risk policy ({guard}) until the card office has looked",
        )
    if assessment.action is Action.RATE_LIMIT:
        return Refused(
            ProblemCode.RISK_RATE_LIMITED,
            f"too many requests like this one ({guard}): try again later",
            headers={"Retry-After": str(assessment.retry_after_s)},
        )
    return None


def reissue_score(unit: Unit, holder_id: int, device_id: int, address: str | None) -> int:
    """The risk score of a reissue (transfer, loss) request, read before it is counted; the
    request is then counted (per holder, device, address and network, the holder seen with the
    device and the network with the holder; an allowlisted campus network is
    `request.allowlisted`, as at sign-in). The reissue rules read the score as `risk.score`;
    guards do not act at this point (the policy refuses one that lists it)."""
    subject = Subject(holder_key(holder_id), Key(KeyKind.DEVICE, str(device_id)), address)
    request = {"allowlisted": allowlisted(unit.settings, address)}
    judged = check(unit, Point.REISSUE, subject, request)
    observe(unit, Signal.REISSUE_REQUEST, subject)
    return 0 if judged is None else judged.assessment.score


def observe(unit: Unit, signal: Signal, subject: Subject) -> None:
    """Count `signal` for the subject's keys (account, device, address, network), with the
    pairs account -> device and network -> account."""
    keys = [key for key in (subject.account, subject.device) if key is not None]
    pairs = []
    if subject.account is not None and subject.device is not None:
        pairs.append(Pair(subject.account, subject.device))
    network = subject.network
    if subject.address is not None and network is not None:
        keys += [Key(KeyKind.ADDRESS, subject.address), network]
        if subject.account is not None:
            pairs.append(Pair(network, subject.account))
    if keys:
        risk_features.observe(unit, Observation(unit.now, signal, tuple(keys), tuple(pairs)))


def scanned(
    unit: Unit,
    *,
    terminal: str,
    venue: str | None,
    event: str | None,
    holder_id: int | None,
    ok: bool,
) -> None:
    """An online scan (`ok`) or its refusal counted per terminal, venue and event, and the
    holder (where known) seen at the venue (its distinct venues, geovelocity); the holder's own
    scans are not counted (no feature reads them). One upsert of each kind for all the scans
    of the scan's group commit (`observe_at_commit`)."""
    keys = _scan_keys(terminal, venue, event)
    pairs: tuple[Pair, ...] = ()
    if holder_id is not None and venue is not None:
        pairs = (Pair(holder_key(holder_id), keys[1]),)
    signal = Signal.ONLINE_SCAN if ok else Signal.ONLINE_REFUSAL
    risk_features.observe_at_commit(unit, Observation(unit.now, signal, keys, pairs))


@lru_cache(maxsize=SCAN_KEYS_CACHED)
def _scan_keys(terminal: str, venue: str | None, event: str | None) -> tuple[Key, ...]:
    """A till's scan keys, one tuple for all its scans: the batch's count groups observations
    by their keys' tuple (`risk.buckets.bucket_rows`), so a till's scans of one batch are
    named and merged once, not once each (the same rows)."""
    return (Key(KeyKind.TERMINAL, terminal), *(Key(kind, v) for kind, v in _places(venue, event)))


def _places(venue: str | None, event: str | None) -> list[tuple[KeyKind, str]]:
    found = [] if venue is None else [(KeyKind.VENUE, venue)]
    return found + ([] if event is None else [(KeyKind.EVENT, event)])


def holder_key(holder_id: int) -> Key:
    """A holder's account key (`account:holder:ID`), as sign-ins count it."""
    return Key(KeyKind.ACCOUNT, f"holder:{holder_id}")


def expire(unit: Unit) -> int:
    """Delete the decision records older than the retention; how many went."""
    cutoff = unit.now - unit.settings.risk_decision_retention_s
    unit.session.execute(delete(RiskDecisionKey).where(RiskDecisionKey.at < cutoff))
    result = unit.session.execute(delete(RiskDecision).where(RiskDecision.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
