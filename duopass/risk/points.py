"""The risk engine's points: where the server asks, which features it reads there (built from
the request's keys), and the decision on them (`judge`: the document, the score from weighted
signals, the first guard that holds, all in the policy's `[[signal]]` and `[[guard]]` tables).

Pure: a caller reads the features from its `FeatureStore` (`queries`), then judges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from duopass.policy import Policy
from duopass.policy.guards import FEATURE_NAMES, Assessment, assess, risk_document
from duopass.risk.features import (
    Count,
    Distinct,
    Features,
    Key,
    KeyKind,
    Query,
    Signal,
    network_of,
)
from duopass.risk.windows import Window

__all__ = [
    "ACCOUNT_AGE",
    "DEVICE_AGE",
    "GEOVELOCITY",
    "Judged",
    "Point",
    "Subject",
    "judge",
    "judge_all",
    "queries",
]


class Point(StrEnum):
    """Where the server asks the policy; the same names as `policy.guards.POINTS`."""

    SIGN_IN = "sign_in"
    DEVICE_ENROLMENT = "device_enrolment"
    WALLET_SYNC = "wallet_sync"
    REISSUE = "reissue"
    TOP_UP = "top_up"
    REFUND = "refund"
    JOURNAL = "journal"
    PARTNER_CALL = "partner_call"


@dataclass(frozen=True)
class Subject:
    """Who and where a request is: the keys its features are read for (None: not known)."""

    account: Key | None = None
    device: Key | None = None
    address: str | None = None
    terminal: Key | None = None
    venue: Key | None = None
    event: Key | None = None
    installation: Key | None = None
    """The wallet installation the request says it comes from (`KeyKind.INSTALLATION`)."""
    client: Key | None = None
    """The partner client calling (`KeyKind.CLIENT`)."""

    @property
    def network(self) -> Key | None:
        network = network_of(self.address)
        return None if network is None else Key(KeyKind.NETWORK, network)

    def keys(self) -> list[str]:
        """Its keys as stores name them, for a decision record."""
        found = [self.account, self.device, self.network, self.terminal, self.venue, self.event]
        found += [self.installation, self.client]
        address = None if self.address is None else f"address:{self.address}"
        return [str(key) for key in found if key is not None] + ([address] if address else [])


_M, _H, _D = Window.MINUTE, Window.HOUR, Window.DAY
_FAIL, _REISSUE = Signal.SIGN_IN_FAILURE, Signal.REISSUE_REQUEST
DEVICE_AGE, ACCOUNT_AGE = "device.age_s", "account.age_s"
"""The ages (`Derived`, from the database's rows: `risk_engine.ages`), read at every point but
the journal's."""


def queries(point: Point, subject: Subject) -> list[Query]:
    """The features read at `point` for `subject` (those of a key it lacks are left out)."""
    account, network = subject.account, subject.network
    address = None if subject.address is None else Key(KeyKind.ADDRESS, subject.address)
    found: list[Query] = []
    if subject.installation is not None and point in (Point.SIGN_IN, Point.DEVICE_ENROLMENT):
        tried = (subject.installation, Signal.ACCOUNT_ATTEMPT, KeyKind.ACCOUNT)
        found += [Distinct(*tried, _H), Distinct(*tried, _D)]
    if point is Point.SIGN_IN:
        if account is not None:
            found += [Count(account, _FAIL, window) for window in (_M, _H, _D)]
        if address is not None:
            found.append(Count(address, _FAIL, _M))
        if network is not None:
            failing = Distinct(network, _FAIL, KeyKind.ACCOUNT, _H)
            found += [Count(network, _FAIL, _H), failing, Count(network, Signal.SIGN_IN, _H)]
    elif point is Point.REISSUE:
        if account is not None:
            devices = Distinct(account, _REISSUE, KeyKind.DEVICE, _D)
            found += [Count(account, _REISSUE, _D), devices]
        if network is not None:
            farm = Distinct(network, _REISSUE, KeyKind.ACCOUNT, _H)
            found += [Count(network, _REISSUE, _H), farm]
    elif point is Point.DEVICE_ENROLMENT:
        if account is not None:
            found.append(Count(account, Signal.DEVICE_ENROLMENT, _D))
        if network is not None:
            found.append(Count(network, Signal.DEVICE_ENROLMENT, _H))
    elif point is Point.WALLET_SYNC and account is not None:
        found += [Count(account, _FAIL, _H), Count(account, _FAIL, _D)]
    elif point is Point.JOURNAL:
        found += _journal(subject)
    elif point is Point.PARTNER_CALL and subject.client is not None:
        found.append(Count(subject.client, Signal.PARTNER_CALL, _M))
    elif point in (Point.TOP_UP, Point.REFUND) and account is not None:
        if point is Point.TOP_UP:
            found += [Count(account, Signal.TOP_UP, _H), Count(account, Signal.TOP_UP, _D)]
        else:
            found.append(Count(account, Signal.REFUND, _D))
    return found


_SCAN, _REFUSAL, _OFFLINE = Signal.ONLINE_SCAN, Signal.ONLINE_REFUSAL, Signal.OFFLINE_ACCEPTANCE
GEOVELOCITY = "account.geovelocity_kmh"
"""The derived feature (`Derived`): the km/h between a holder's latest sighting at this venue
and its latest at another (`duopass.risk.geo`); the caller computes it."""


def _journal(subject: Subject) -> list[Query]:
    """At journal reconciliation a holder (with the batch's terminal) is judged on where its
    credential was accepted; the batch's terminal alone (no account) on what it reports."""
    account, terminal = subject.account, subject.terminal
    if account is not None:
        return [
            Distinct(account, _OFFLINE, KeyKind.TERMINAL, _H),
            Distinct(account, _OFFLINE, KeyKind.VENUE, _H),
            Distinct(account, _SCAN, KeyKind.VENUE, _H),
        ]
    found: list[Query] = []
    if terminal is not None:
        found += [Count(terminal, _OFFLINE, _H), Count(terminal, Signal.AMOUNT_MISMATCH, _H)]
        found.append(Count(terminal, Signal.AMOUNT_MISMATCH, _D))
    for key in (terminal, subject.venue, subject.event):
        if key is not None:
            found += [Count(key, signal, w) for signal in (_SCAN, _REFUSAL) for w in (_M, _H)]
    return found


@dataclass(frozen=True)
class Judged:
    """A decision and what it was made on: the policy's pin, the features read with their
    values (`Features.explained()`), the request's facts."""

    assessment: Assessment
    version: str
    sha256: bytes
    features: Features
    request: Mapping[str, Any]

    def explained(self) -> list[dict[str, str | int | None]]:
        return self.features.explained()


def judge(
    policy: Policy, point: Point, features: Features, request: Mapping[str, Any] | None = None
) -> Judged:
    """The policy's risk decision at `point` on the features read (`queries`) and the
    request's facts (`policy.guards.REQUEST_FIELDS`)."""
    values = {name: value for name, value in features.items() if name in FEATURE_NAMES}
    document = risk_document(point.value, values, request or {})
    assessment = assess(policy, document)
    return Judged(assessment, policy.version, policy.sha256, features, document["request"])


def judge_all(policy: Policy, point: Point, read: Sequence[Features]) -> list[Judged]:
    """`judge` of each set of features read (no request's facts): a decision depends on the
    policy and the document alone, so features of the same values (a batch's holders seen
    alike) are scored once, and each gets its own `Judged` with its own features."""
    assessed: dict[tuple[tuple[str, int | None], ...], tuple[Assessment, Mapping[str, Any]]] = {}
    found = []
    for features in read:
        values = {name: value for name, value in features.items() if name in FEATURE_NAMES}
        shape = tuple(sorted(values.items()))
        known = assessed.get(shape)
        if known is None:
            document = risk_document(point.value, values, {})
            known = assessed[shape] = assess(policy, document), document["request"]
        assessment, request = known
        found.append(Judged(assessment, policy.version, policy.sha256, features, dict(request)))
    return found
