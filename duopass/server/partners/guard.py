"""Who a partner call comes from: its bearer access token read (signature, `typ`, `exp`, `iss`,
`aud`: `partners.tokens`), its client still active (read on every call, so a revoked client's
live token is refused at once), the scope the route needs, and the client's rate limit; the
call is then logged (`partner_call`: client id, route, scope), never the token.

Refusals: no token, or one that does not verify, or of a revoked or unknown client: 401
`unauthenticated` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1); a
token without the route's scope: 403 `insufficient_scope` (with `error="insufficient_scope"`
and the scope needed); past the client's `calls_per_minute`: 429 `partner_rate_limited` with
`Retry-After` (the guard's `retry_after_s`).

The rate limit is the risk engine's (`count_call`): each call is counted as the signal
`partner_call` of the client's key (`client:ID`) in the engine's shared counters (the database's,
or Redis with `risk_store = "redis"`), so every server process shares one count. The call is
counted first and the count read in the same step (`risk_features.counted`), the client's row
locked before (PostgreSQL: its calls are judged one at a time, whichever process serves them),
so the limit is exact across threads and processes. It is judged at the point `partner_call` on
`client.partner_call.1m`, the calls before it in the last 60 seconds (to the second), against
`request.calls_per_minute`, the client's own limit. The packaged policy's guard
`partner_rate_limit` refuses from the limit on (rate_limit, `retry_after_s` 60), its decision
recorded as any risk decision (the console's risk page lists it), one a minute per client at
most; a policy without a guard at `partner_call` does not lift the limit: the server refuses
past it all the same (`FLOOR_RULE`). A refused call is taken back (-1 in the same bucket): it
does not count. With the risk engine off (`DUOPASS_RISK_ENGINE=0`, to measure its cost) nothing
is counted and nothing limited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from duopass.policy.guards import Action
from duopass.risk import Features, Key, KeyKind, Observation, Signal
from duopass.risk.points import Judged, Point, Subject, judge, queries
from duopass.server.context import AppContext
from duopass.server.limits import PARTNER_RATE_WINDOW_S
from duopass.server.logbook import Event, note
from duopass.server.partners import clients, tokens
from duopass.server.partners.clients import Scope
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import policy_store, risk_engine, risk_features
from duopass.server.store.risk_keys import RiskDecisionKey
from duopass.server.unit_of_work import Unit

__all__ = ["FLOOR_RULE", "Partner", "admit", "count_call", "issuer_of"]

INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
FLOOR_RULE = "calls_per_minute"
"""What a refusal names when the active policy had no guard that refused the call, yet the
client was at its limit: the client's own limit is the card office's, not the policy's."""
CALLS = "client.partner_call.1m"


@dataclass(frozen=True)
class Partner:
    """A partner client calling with a valid token."""

    id: int
    client_id: str
    scopes: frozenset[str]


def issuer_of(ctx: AppContext, base_url: str) -> str:
    """The issuer URL: the setting, else the request's own base URL."""
    return ctx.settings.oauth_issuer or base_url.rstrip("/")


def _unauthenticated(detail: str) -> Problem:
    return Problem(ProblemCode.UNAUTHENTICATED, detail, headers=dict(INVALID_TOKEN))


def admit(ctx: AppContext, token: str, *, issuer: str, scope: Scope, route: str) -> Partner:
    """The partner whose `token` this is, if it may call `route` (needing `scope`) now; the
    call counted against its rate limit and logged once the unit commits."""
    claims = tokens.read(ctx.keyring.oauth, token, issuer=issuer, now=ctx.now)
    if claims is None:
        raise _unauthenticated("an invalid or expired access token")

    def work(unit: Unit) -> Partner | Problem:
        row = clients.by_client_id(unit.session, claims.client_id)
        if row is None or row.state != "active":
            raise _unauthenticated("the token's client is revoked")
        granted = claims.scopes & clients.scopes_of(row)
        if scope.value not in granted:
            raise Problem(
                ProblemCode.INSUFFICIENT_SCOPE,
                f"this route needs the scope {scope.value}",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope.value}"'
                },
            )
        refused = count_call(unit, row.id, row.calls_per_minute)
        if refused is not None:
            return refused  # its decision record commits; the call is taken back
        note(
            unit.session,
            Event.PARTNER_CALL,
            f"partner call: {row.client_id} {route}",
            client_id=row.client_id,
            route=route,
            scope=scope.value,
        )
        return Partner(row.id, row.client_id, frozenset(granted))

    return ctx.run_refusable(work)


def count_call(unit: Unit, client: int, per_minute: int) -> Problem | None:
    """Count one call of `client` and judge it at the risk engine's point `partner_call` on the
    calls before it in the last minute; or, with `per_minute` of them already, the refusal (429
    `partner_rate_limited` with `Retry-After`; a policy's deny or review as the engine refuses
    them), the call's count taken back. The client's calls are judged one at a time (its row
    locked until the unit ends: on PostgreSQL the second waits for the first to commit), each
    on a count that holds its own, made and read in one step: never more than `per_minute`
    admitted in a minute, across threads and processes. The decision is recorded in the unit
    (at most one a minute per client: `_keep`), so the caller returns the refusal for the unit
    to commit (`AppContext.run_refusable`)."""
    if not unit.settings.risk_engine:
        return None
    clients.one(unit.session, client, lock=True)
    key = Key(KeyKind.CLIENT, str(client))
    subject = Subject(client=key)
    call = Observation(unit.now, Signal.PARTNER_CALL, (key,), ())
    counted = risk_features.counted(unit, (call,), queries(Point.PARTNER_CALL, subject))
    features = Features(  # the calls before this one: the policy's `>=` stays the limit's
        [
            (q, max(0, (counted[CALLS] or 0) - 1) if q.feature == CALLS else counted[q.feature])
            for q in counted.queries
        ]
    )
    refused = _judged(unit, subject, features, per_minute)
    if refused is None and (features[CALLS] or 0) >= per_minute:
        refused = _limited(per_minute, PARTNER_RATE_WINDOW_S, FLOOR_RULE)
    if refused is not None:
        risk_features.counted(unit, (risk_features.withdrawn(call),), ())
    return refused


def _judged(unit: Unit, subject: Subject, features: Features, per_minute: int) -> Problem | None:
    """The active policy's refusal of the call, its decision kept (`_keep`); None when it
    allows it, or when no policy is pinned (a context outside a served app: the count alone)."""
    if unit.pinned_policy is None:
        return None
    policy = policy_store.current(unit)
    judged = judge(policy, Point.PARTNER_CALL, features, {"calls_per_minute": per_minute})
    assessment = judged.assessment
    if assessment.action is not Action.ALLOW or assessment.score > 0:
        _keep(unit, subject, judged)
    if assessment.action is Action.RATE_LIMIT:
        return _limited(per_minute, assessment.retry_after_s, assessment.guard)
    return risk_engine.refusal(judged)


def _keep(unit: Unit, subject: Subject, judged: Judged) -> None:
    """The decision's record, unless one was kept for the client in the last minute: a client
    hammering past its limit costs one record (and one `risk_decision` log line) a minute, not
    one a call; every call is refused all the same."""
    since = unit.now - PARTNER_RATE_WINDOW_S
    latest = unit.session.scalar(
        select(RiskDecisionKey.at)
        .where(RiskDecisionKey.key == str(subject.client))
        .order_by(RiskDecisionKey.decision_id.desc())
        .limit(1)
    )
    if latest is None or latest <= since:
        risk_engine.record(unit, subject, judged)


def _limited(per_minute: int, wait: int, rule: str | None) -> Problem:
    return Problem(
        ProblemCode.PARTNER_RATE_LIMITED,
        f"more than {per_minute} calls a minute ({rule}): try again in {wait} s",
        headers={"Retry-After": str(max(1, wait))},
    )
