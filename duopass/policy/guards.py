"""The risk half of the policy: weighted signals that make a score, and guards that act on it.

A request at a point (a sign-in, a reissue, a top-up, ...) is judged on the risk document:
`point`, `features` (each feature's name -> its value over its window; every name of
`FEATURE_NAMES` is there, 0 when not read or never seen, an age -1), `request` (plain facts of
the request), `score` (0..100: the sum of the weights of the signals that hold, at most 100) and
`signals` (the names of those that held). The first guard listing the point whose `when` holds
gives the action; a request no guard matches is allowed. A guard or signal that fails at run time
counts as holding (a guard then acts as written): a decision never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import cel

from duopass.policy.model import Factor, Policy

__all__ = [
    "AGE_NAMES",
    "FEATURE_NAMES",
    "POINTS",
    "REQUEST_FIELDS",
    "Action",
    "Assessment",
    "Guard",
    "Weight",
    "assess",
    "risk_document",
    "sample_risk_documents",
]

POINTS: Final = (
    "sign_in",
    "device_enrolment",
    "wallet_sync",
    "reissue",
    "top_up",
    "refund",
    "journal",
    "partner_call",
)
"""Where the server asks the policy (docs/policy.md, the risk document)."""

FEATURE_NAMES: Final = (
    "account.sign_in_failure.1m",
    "account.sign_in_failure.1h",
    "account.sign_in_failure.1d",
    "address.sign_in_failure.1m",
    "network.sign_in_failure.1h",
    "network.sign_in_failure.distinct_account.1h",
    "account.reissue_request.1d",
    "account.reissue_request.distinct_device.1d",
    "network.reissue_request.1h",
    "network.reissue_request.distinct_account.1h",
    "account.device_enrolment.1d",
    "network.device_enrolment.1h",
    "account.top_up.1h",
    "account.top_up.1d",
    "account.refund.1d",
    "terminal.online_scan.1m",
    "terminal.online_scan.1h",
    "terminal.online_refusal.1m",
    "terminal.online_refusal.1h",
    "venue.online_scan.1m",
    "venue.online_scan.1h",
    "venue.online_refusal.1m",
    "venue.online_refusal.1h",
    "event.online_scan.1m",
    "event.online_scan.1h",
    "event.online_refusal.1m",
    "event.online_refusal.1h",
    "terminal.offline_acceptance.1h",
    "terminal.amount_mismatch.1h",
    "terminal.amount_mismatch.1d",
    "account.offline_acceptance.distinct_terminal.1h",
    "account.offline_acceptance.distinct_venue.1h",
    "account.online_scan.distinct_venue.1h",
    "account.geovelocity_kmh",
    "network.sign_in.1h",
    "installation.account_attempt.distinct_account.1h",
    "installation.account_attempt.distinct_account.1d",
    "device.age_s",
    "account.age_s",
    "client.partner_call.1m",
)
"""Every feature the risk document carries (`duopass.risk.points` reads them by point); added
to, never renamed: stored decisions name them."""

AGE_NAMES: Final = frozenset({"device.age_s", "account.age_s"})
"""The features that are ages in seconds (of the device key making the request, of the
holder's account), from the database's rows, not from windows: -1 where there is none (no
device, a staff member, an unknown login, a holder created before ages were kept), never 0,
which would read as "this very second"."""

REQUEST_FIELDS: Final[Mapping[str, type]] = {
    "amount": int,
    "staff": bool,
    "allowlisted": bool,
    "device": bool,
    "calls_per_minute": int,
}
"""`request.amount`: minor units of a top-up or refund, else 0; `request.staff`: a staff
member's request; `request.allowlisted`: from a network the settings keep from being throttled
as one (a campus NAT); `request.device`: a sign-in by an enrolled device's key (no password);
`request.calls_per_minute`: at `partner_call`, the calling partner client's own limit (set
when it was made), else 0."""

SCORE_MAX: Final = 100


class Action(StrEnum):
    ALLOW = "allow"
    STEP_UP = "step_up"
    """Allowed once a second factor is shown (the guard's `factors`)."""
    REVIEW = "review"
    """Refused until a person has looked."""
    DENY = "deny"
    RATE_LIMIT = "rate_limit"
    """Refused for the guard's `retry_after_s` (429 with `Retry-After`)."""
    SUSPEND_OFFLINE = "suspend_offline"
    """Allowed online; the credential's offline use is suspended (a ledger event)."""


@dataclass(frozen=True)
class Weight:
    """A `[[signal]]`: when `when` holds, `weight` (1..100) is added to the score."""

    name: str
    when: str
    weight: int
    line: int
    program: Any = field(compare=False, repr=False)


@dataclass(frozen=True)
class Guard:
    """A `[[guard]]`: at one of `points`, when `when` holds, `action`."""

    name: str
    points: tuple[str, ...]
    when: str
    action: Action
    factors: tuple[Factor, ...]
    retry_after_s: int
    line: int
    program: Any = field(compare=False, repr=False)


@dataclass(frozen=True)
class Assessment:
    """What the risk half of a policy concluded on one document."""

    point: str
    score: int
    signals: tuple[str, ...]
    guard: str | None
    """The guard that acted; None when none matched (allowed)."""
    action: Action
    factors: tuple[Factor, ...] = ()
    retry_after_s: int = 0
    errors: tuple[str, ...] = ()
    """Signals or guards that failed to evaluate (`name: why`), for the log."""


def risk_document(
    point: str, features: Mapping[str, int | None], request: Mapping[str, Any]
) -> dict[str, Any]:
    """The document signals read (no `score` or `signals` yet): every feature name present,
    0 for one not read or never seen (an age: -1, `AGE_NAMES`); ValueError for an unknown point,
    feature or request field."""
    if point not in POINTS:
        raise ValueError(f"no point named {point!r}")
    unknown = set(features) - set(FEATURE_NAMES)
    if unknown:
        raise ValueError(f"no features named {sorted(unknown)}")
    values = {name: int(features.get(name) or 0) for name in FEATURE_NAMES}
    for name in AGE_NAMES:
        age = features.get(name)
        values[name] = -1 if age is None else int(age)
    facts: dict[str, Any] = {"amount": 0, "staff": False, "allowlisted": False, "device": False}
    facts["calls_per_minute"] = 0
    for key, value in request.items():
        kind = REQUEST_FIELDS.get(key)
        if kind is None or type(value) is not kind:
            raise ValueError(f"request.{key}: not a field, or not a {kind}")
        facts[key] = value
    return {"point": point, "features": values, "request": facts}


def assess(policy: Policy, document: Mapping[str, Any]) -> Assessment:
    """Score a `risk_document` by the policy's signals, then the first guard of its point that
    holds acts; never raises."""
    weights: tuple[Weight, ...] = policy.weights
    guards: tuple[Guard, ...] = policy.guards
    point = document["point"]
    errors: list[str] = []
    features = document["features"]
    if policy.feature_reads is not None:  # only what is read: CEL converts every value given
        features = {name: features[name] for name in policy.feature_reads}
    context = cel.Context({"point": point, "features": features, "request": document["request"]})
    held = tuple(w.name for w in weights if _holds(w.program, context, w.name, errors))
    score: int = min(SCORE_MAX, sum(w.weight for w in weights if w.name in held))
    context.add_variable("score", score)
    context.add_variable("signals", list(held))
    for guard in guards:
        if point in guard.points and _holds(guard.program, context, guard.name, errors):
            return Assessment(
                point,
                score,
                held,
                guard.name,
                guard.action,
                guard.factors,
                guard.retry_after_s,
                tuple(errors),
            )
    return Assessment(point, score, held, None, Action.ALLOW, errors=tuple(errors))


def _holds(program: Any, context: Any, name: str, errors: list[str]) -> bool:
    try:
        result = program.execute(context)
    except Exception as exc:  # the CEL library raises several kinds
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return True
    if type(result) is not bool:
        errors.append(f"{name}: returned {result!r}, not a bool")
        return True
    return result


def sample_risk_documents() -> list[dict[str, Any]]:
    """One document per point, with some features, score and signals: what `load` runs every
    signal and guard on."""
    features = {name: n for n, name in enumerate(FEATURE_NAMES)}
    documents = []
    for point in POINTS:
        document = risk_document(point, features, {"amount": 1000})
        documents.append(document | {"score": 40, "signals": ["sample"]})
    return documents
