"""Sign-in throttles: failed proofs (passwords, one-time codes, enrolment codes) counted per
account and per source network, with growing delays, in the database so that every server
process and a restart see the same counts.

An account that keeps failing waits longer after each failure, up to `Limit.max_s`; a refused
attempt costs no password hash, so guessing cannot slow other people's sign-ins. A holder's
enrolled device signs in with its key (`passwordless`), which these counts never block:
an attacker who guesses a password can delay its owner's password sign-ins, never lock them out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from duopass.risk import ip_of, network_of
from duopass.server.context import AppContext
from duopass.server.logbook import Event, note
from duopass.server.problems import Problem, ProblemCode
from duopass.server.settings import Settings
from duopass.server.store.access import AuthThrottle
from duopass.server.store.db import discard_after, queued_after
from duopass.server.unit_of_work import Unit

__all__ = [
    "ACCOUNT",
    "ENROLMENT",
    "NETWORK",
    "Limit",
    "Scope",
    "Throttle",
    "account",
    "check",
    "delay_s",
    "exempt",
    "fail",
    "for_client",
    "guarded",
    "network_of",
    "purge",
    "succeed",
]


T = TypeVar("T")


class Scope(StrEnum):
    ACCOUNT = "account"
    NETWORK = "network"
    ENROLMENT = "enrolment"


@dataclass(frozen=True)
class Limit:
    """`free` failures cost nothing; then each failure blocks the key for `base_s`, doubling,
    at most `max_s`; a key that has not failed for `forget_s` starts again from zero."""

    scope: Scope
    free: int
    base_s: int
    max_s: int
    forget_s: int


ACCOUNT = Limit(Scope.ACCOUNT, free=5, base_s=2, max_s=900, forget_s=24 * 3600)
"""Per login (holder or staff), whatever the network: about 16 guesses in the first hour,
then 4 an hour."""
NETWORK = Limit(Scope.NETWORK, free=50, base_s=1, max_s=900, forget_s=3600)
"""Per source /24 (IPv4) or /64 (IPv6), whatever the account: about 60 guesses in the first
hour, then 4 an hour. Campus networks behind one NAT are exempted by setting."""
ENROLMENT = Limit(Scope.ENROLMENT, free=5, base_s=2, max_s=900, forget_s=24 * 3600)
"""Per terminal id: wrong one-time enrolment codes."""


def delay_s(limit: Limit, failures: int) -> int:
    """How long a key is blocked after its `failures`-th failure."""
    if failures < limit.free:
        return 0
    return min(limit.max_s, limit.base_s << min(failures - limit.free, 30))


@dataclass(frozen=True)
class Throttle:
    """One counted key: a limit and the digest that names what it counts."""

    limit: Limit
    key: bytes
    name: str = ""
    """What it counts (`holder:LOGIN`, a network, a terminal id), for the log only."""

    @classmethod
    def of(cls, limit: Limit, secret: bytes, name: str) -> Throttle:
        """`name` (a login, a network, a terminal id) enters the table only as a keyed digest."""
        digest = hmac.new(secret, f"{limit.scope}\n{name}".encode(), hashlib.sha256).digest()
        return cls(limit, digest, name)


def account(secret: bytes, login: str, *, staff: bool) -> Throttle:
    """The key of one login's failures: every proof of that account (a password, a one-time
    code, a step-up code) counts against it."""
    return Throttle.of(ACCOUNT, secret, f"{'staff' if staff else 'holder'}:{login}")


def pin(secret: bytes, handle: str) -> Throttle:
    """The key one holder's wrong payment PINs count against, at the till and in the wallet
    alike: the password limit, its own name."""
    return Throttle.of(ACCOUNT, secret, f"pin:{handle}")


def for_client(settings: Settings, secret: bytes, client: str | None) -> list[Throttle]:
    """The client's network's key, unless the network is exempt (or there is no address).
    `client` is the request's client address (`api.deps.client_address`): behind a trusted
    proxy, the forwarded one, so an exempt campus range is matched however it arrives."""
    network = network_of(client)
    if network is None or exempt(settings, client):
        return []
    return [Throttle.of(NETWORK, secret, network)]


def exempt(settings: Settings, client: str | None) -> bool:
    """Whether the client's address is in a network kept from being counted as one (a campus
    NAT: `throttle_exempt_networks`): the throttles' and the risk engine's (`allowlisted`)."""
    address = ip_of(client)
    return address is not None and any(
        address in ipaddress.ip_network(allowed, strict=False)
        for allowed in settings.throttle_exempt_networks
    )


def guarded(
    ctx: AppContext,
    keys: list[Throttle],
    work: Callable[[Unit], T],
    *,
    counted: set[ProblemCode],
) -> T:
    """Run `work` in one unit unless a key is blocked; a refusal whose code is in `counted`
    (a wrong proof) counts one failure against every key and is committed before it is raised;
    success forgets the failures of all but network keys (one success on a network says
    nothing of the other attempts from it)."""

    def attempt(unit: Unit) -> T | Problem:
        session = unit.session
        try:
            check(session, keys, unit.now)
        except Problem as refusal:
            return refusal
        queued = queued_after(session)
        try:
            with session.begin_nested():
                result = work(unit)
        except Problem as refusal:
            discard_after(session, queued)  # what `work` did is undone: so is its log
            if refusal.code in counted:
                fail(session, keys, unit.now)
            return refusal
        succeed(session, [key for key in keys if key.limit.scope is not Scope.NETWORK])
        return result

    return ctx.run_refusable(attempt)


def _claim(session: Session, throttle: Throttle, now: int) -> None:
    """Make the key's row if there is none (no failures), so `check` can lock it: a check that
    found no row locked nothing, and on PostgreSQL several attempts could pass it at once and
    then each count a failure on the row the first made (more than `free` guesses let by)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    row = {"key": throttle.key, "scope": throttle.limit.scope.value, "failures": 0}
    values = {**row, "last_at": now, "blocked_until": 0}
    session.execute(dialect.insert(AuthThrottle).values(values).on_conflict_do_nothing())


def _row(session: Session, throttle: Throttle, now: int) -> AuthThrottle | None:
    row = session.scalars(
        select(AuthThrottle).where(AuthThrottle.key == throttle.key).with_for_update()
    ).one_or_none()
    if row is not None and now - row.last_at > throttle.limit.forget_s and row.blocked_until <= now:
        row.failures = 0
    return row


def check(session: Session, throttles: list[Throttle], now: int) -> None:
    """Refuse (429 with Retry-After) while any of the keys is blocked; the refusal is logged
    once the unit commits (every caller commits it, with the counts it took)."""
    wait, blocked = 0, None
    for throttle in throttles:
        _claim(session, throttle, now)
        row = _row(session, throttle, now)
        if row is not None and row.blocked_until - now > wait:
            wait, blocked = row.blocked_until - now, throttle
    if blocked is not None:
        note(
            session,
            Event.SIGN_IN_THROTTLED,
            f"sign-in throttled: {blocked.limit.scope} {blocked.name}",
            scope=blocked.limit.scope.value,
            blocked=blocked.name,
            retry_after_s=wait,
        )
        raise Problem(
            ProblemCode.THROTTLED,
            f"too many failed attempts: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def fail(session: Session, throttles: list[Throttle], now: int) -> None:
    """Count one failure against each key and block it as its limit says."""
    for throttle in throttles:
        row = _row(session, throttle, now)
        if row is None:
            row = AuthThrottle(key=throttle.key, scope=throttle.limit.scope, failures=0)
            session.add(row)
        row.failures += 1
        row.last_at = now
        # a free failure blocks nothing: `now + 0` would block a unit that started a second
        # earlier and waited for this row (parallel attempts on PostgreSQL) for that second
        delay = delay_s(throttle.limit, row.failures)
        row.blocked_until = max(row.blocked_until or 0, now + delay if delay else 0)


def succeed(session: Session, throttles: list[Throttle]) -> None:
    """A proof succeeded: forget the failures of these keys."""
    session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_([t.key for t in throttles])))


def purge(session: Session, now: int) -> int:
    """Drop keys that no limit remembers any more (maintenance)."""
    forget = max(limit.forget_s for limit in (ACCOUNT, NETWORK, ENROLMENT))
    result = session.execute(
        delete(AuthThrottle).where(
            AuthThrottle.last_at < now - forget, AuthThrottle.blocked_until <= now
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
