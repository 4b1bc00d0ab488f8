"""Who a partner call comes from: its bearer access token read (signature, `typ`, `exp`, `iss`,
`aud`: `partners.tokens`), its client still active (read on every call, so a revoked client's
live token is refused at once), the scope the route needs, and the client's rate limit; the
call is then logged (`partner_call`: client id, route, scope), never the token.

Refusals: no token, or one that does not verify, or of a revoked or unknown client: 401
`unauthenticated` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1); a
token without the route's scope: 403 `insufficient_scope` (with `error="insufficient_scope"`
and the scope needed); past the client's `calls_per_minute`: 429 `partner_rate_limited` with
`Retry-After` (the seconds left in its window).

The rate limit counts per client in the database (`partner_rates`: one row per client, a fixed
window of `PARTNER_RATE_WINDOW_S`), so every server process shares one count. A refused call is
not counted: the unit that refused rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from duopass.server.context import AppContext
from duopass.server.limits import PARTNER_RATE_WINDOW_S
from duopass.server.logbook import Event, note
from duopass.server.partners import clients, tokens
from duopass.server.partners.clients import Scope
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.partners import PartnerRate
from duopass.server.unit_of_work import Unit

__all__ = ["Partner", "admit", "count_call", "issuer_of"]

INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


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

    def work(unit: Unit) -> Partner:
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
        count_call(unit, row.id, row.calls_per_minute)
        note(
            unit.session,
            Event.PARTNER_CALL,
            f"partner call: {row.client_id} {route}",
            client_id=row.client_id,
            route=route,
            scope=scope.value,
        )
        return Partner(row.id, row.client_id, frozenset(granted))

    return ctx.run(work)


def count_call(unit: Unit, client: int, per_minute: int) -> None:
    """Count one call of `client` in its window; refuse it past `per_minute` in the window."""
    session, now = unit.session, unit.now
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    fresh = {"client": client, "window_start": now, "calls": 0}
    session.execute(dialect.insert(PartnerRate).values(fresh).on_conflict_do_nothing())
    row = session.scalars(
        select(PartnerRate).where(PartnerRate.client == client).with_for_update()
    ).one()
    if now - row.window_start >= PARTNER_RATE_WINDOW_S:
        row.window_start, row.calls = now, 0
    if row.calls >= per_minute:
        wait = max(1, row.window_start + PARTNER_RATE_WINDOW_S - now)
        raise Problem(
            ProblemCode.PARTNER_RATE_LIMITED,
            f"more than {per_minute} calls a minute: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    row.calls += 1
