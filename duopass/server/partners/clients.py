"""Partners' OAuth 2.0 clients as admins manage them: created with a name and scopes from a
fixed set (the secret shown once), listed, revoked, and their secret rotated with an overlap
during which the old secret still authenticates.

A secret is 32 random bytes, so no guess list holds it and a slow password hash (argon2, 0.3 s
each) would protect nothing while making every token request cost that much CPU, an easy way
to take the server down. It is stored as HMAC-SHA-256 under the server's `digest.key`
(`Keyring.digest`, with a label of its own), so the database alone does not even let anyone
test a candidate, and compared in constant time. It is never logged.

Refusals: an unknown client 404 `not_found`; more than `PARTNER_CLIENTS_MAX` active 409
`conflict`; rotating or revoking a revoked client 409 `conflict`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.server.keyring import Keyring
from duopass.server.limits import PARTNER_CLIENTS_MAX
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.partners import PartnerClient
from duopass.server.unit_of_work import Unit

__all__ = [
    "CLIENT_PREFIX",
    "SECRET_PREFIX",
    "Authenticated",
    "Scope",
    "authenticate",
    "by_client_id",
    "create",
    "describe",
    "listing",
    "one",
    "revoke",
    "rotate",
    "scopes_of",
    "secret_digest",
]

CLIENT_PREFIX = "dpc_"
SECRET_PREFIX = "dpsec_"  # noqa: S105 (the prefix of every secret, not one)


class Scope(StrEnum):
    """What a client may be granted; added, never renamed."""

    TICKETS_ISSUE = "tickets:issue"
    TICKETS_READ = "tickets:read"
    CHECKIN_REDEEM = "checkin:redeem"
    ACCOUNTS_READ = "accounts:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    TICKETS_REISSUE = "tickets:reissue"


def secret_digest(keyring: Keyring, secret: str) -> bytes:
    """The keyed digest a secret is stored and compared as (module docstring)."""
    return keyring.digest("duopass-partner-secret-v1\n" + secret)


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def scopes_of(row: PartnerClient) -> frozenset[str]:
    return frozenset(row.scopes.split())


def create(
    unit: Unit, *, name: str, scopes: Iterable[Scope], calls_per_minute: int, by: int
) -> tuple[PartnerClient, str]:
    """A new active client and its secret (`dpsec_...`), which is not shown again."""
    session = unit.session
    active = session.scalar(
        select(func.count()).select_from(PartnerClient).where(PartnerClient.state == "active")
    )
    if (active or 0) >= PARTNER_CLIENTS_MAX:
        raise Problem(ProblemCode.CONFLICT, f"at most {PARTNER_CLIENTS_MAX} active clients")
    secret = _new_secret()
    row = PartnerClient(
        client_id=CLIENT_PREFIX + secrets.token_urlsafe(16),
        name=name,
        scopes=" ".join(sorted({scope.value for scope in scopes})),
        secret_digest=secret_digest(unit.keyring, secret),
        calls_per_minute=calls_per_minute,
        state="active",
        created_at=unit.now,
        created_by=by,
    )
    session.add(row)
    session.flush()
    return row, secret


def one(session: Session, row_id: int, *, lock: bool = False) -> PartnerClient:
    query = select(PartnerClient).where(PartnerClient.id == row_id)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, "no such partner client")
    return row


def by_client_id(session: Session, client_id: str) -> PartnerClient | None:
    return session.scalars(
        select(PartnerClient).where(PartnerClient.client_id == client_id)
    ).one_or_none()


def listing(session: Session) -> list[PartnerClient]:
    """Every client, oldest first (at most `PARTNER_CLIENTS_MAX` active)."""
    return list(session.scalars(select(PartnerClient).order_by(PartnerClient.id)))


def _active(session: Session, row_id: int) -> PartnerClient:
    row = one(session, row_id, lock=True)
    if row.state != "active":
        raise Problem(ProblemCode.CONFLICT, "the client is revoked")
    return row


def revoke(unit: Unit, row_id: int) -> PartnerClient:
    """Revoke a client for good: no token is issued to it again, and every call with a token
    it already holds is refused from now on (`partners.guard` reads its state on each)."""
    row = _active(unit.session, row_id)
    row.state, row.revoked_at = "revoked", unit.now
    row.previous_digest, row.previous_until = None, None
    return row


def rotate(unit: Unit, row_id: int, *, overlap_s: int) -> tuple[PartnerClient, str]:
    """A new secret; the one it replaces still authenticates for `overlap_s` (0: not at all),
    so the partner can deploy the new one without a gap. One older than it stops now."""
    row = _active(unit.session, row_id)
    secret = _new_secret()
    if overlap_s > 0:
        row.previous_digest, row.previous_until = row.secret_digest, unit.now + overlap_s
    else:
        row.previous_digest, row.previous_until = None, None
    row.secret_digest = secret_digest(unit.keyring, secret)
    return row, secret


@dataclass(frozen=True)
class Authenticated:
    """A client whose secret matched: its row's id, public id and granted scopes."""

    id: int
    client_id: str
    scopes: frozenset[str]
    calls_per_minute: int


def authenticate(unit: Unit, client_id: str, secret: str) -> Authenticated | None:
    """The active client `client_id` if `secret` is its secret (or its previous one, during the
    overlap); None otherwise, whichever part was wrong (the caller answers `invalid_client`)."""
    row = by_client_id(unit.session, client_id)
    given = secret_digest(unit.keyring, secret)
    if row is None or row.state != "active":
        return None
    matches = hmac.compare_digest(given, row.secret_digest)
    previous, until = row.previous_digest, row.previous_until
    if previous is not None and until is not None and unit.now < until:
        matches = hmac.compare_digest(given, previous) or matches
    if not matches:
        return None
    return Authenticated(row.id, row.client_id, scopes_of(row), row.calls_per_minute)


def describe(row: PartnerClient, now: int) -> dict[str, Any]:
    overlap = row.previous_until if row.previous_until and now < row.previous_until else None
    return {
        "id": row.id,
        "client_id": row.client_id,
        "name": row.name,
        "scopes": row.scopes.split(),
        "calls_per_minute": row.calls_per_minute,
        "state": row.state,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
        "previous_secret_until": overlap,
    }
