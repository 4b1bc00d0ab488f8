"""The university provider's account bound to ours (`OidcBinding`): at the first sign-in through
the provider, the ID token's (`iss`, `sub`) is bound to the staff member or holder its claim
named; later sign-ins find the account by (`iss`, `sub`). The claim still has to agree: if it
names another account than the one bound, or names an account already bound to another `sub`,
the sign-in is refused (403 `oidc_bound_elsewhere`) and logged, so a renamed or reassigned
login at the university cannot take over somebody else's account here. An admin unbinds
(`DELETE /v1/admin/holders/{handle}/oidc`, `/v1/admin/staff/{login}/oidc`, the console's
holder page); the next sign-in binds again. Erasing a holder unbinds them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.access import OidcBinding
from duopass.server.unit_of_work import Unit

__all__ = [
    "ISSUER_CHARS_MAX",
    "SUBJECT_CHARS_MAX",
    "Bound",
    "bind",
    "binding",
    "by_subject",
    "mismatch",
    "unbind",
]

log = logging.getLogger("duopass.server.oidc")

SUBJECT_CHARS_MAX = 255
"""OpenID Connect Core §2: a `sub` is at most 255 ASCII characters."""
ISSUER_CHARS_MAX = 512


@dataclass(frozen=True)
class Bound:
    """A binding as shown to an admin."""

    issuer: str
    subject: str
    bound_at: int


def _kind(staff: bool) -> str:
    return "staff" if staff else "holder"


def by_subject(session: Session, *, staff: bool, issuer: str, subject: str) -> int | None:
    """The account id (staff or holder) this provider account is bound to, if any."""
    found = select(OidcBinding.principal_id).where(
        OidcBinding.kind == _kind(staff),
        OidcBinding.issuer == issuer,
        OidcBinding.subject == subject,
    )
    return session.scalars(found).one_or_none()


def binding(session: Session, *, staff: bool, principal_id: int) -> Bound | None:
    """The provider account an account is bound to, if any."""
    row = session.scalars(
        select(OidcBinding).where(
            OidcBinding.kind == _kind(staff), OidcBinding.principal_id == principal_id
        )
    ).one_or_none()
    return None if row is None else Bound(row.issuer, row.subject, row.bound_at)


def mismatch(login: str, *, staff: bool, issuer: str, subject: str, why: str) -> Problem:
    """The refusal of a sign-in whose claim and binding disagree, logged (no secret in it: the
    subject is the provider's identifier of the person, not a credential)."""
    log.warning(
        "oidc sign-in refused: %s %r, provider %s subject %r: %s",
        _kind(staff), login, issuer, subject, why,
    )  # fmt: skip
    return Problem(
        ProblemCode.OIDC_BOUND_ELSEWHERE,
        "this university account and this account are bound to others: ask the card office",
    )


def bind(
    unit: Unit, *, staff: bool, principal_id: int, login: str, issuer: str, subject: str
) -> Problem | None:
    """Bind at the first sign-in; a concurrent first sign-in that bound either side first
    wins, and this one is refused as a mismatch."""
    row = OidcBinding(
        kind=_kind(staff),
        principal_id=principal_id,
        issuer=issuer,
        subject=subject,
        bound_at=unit.now,
    )
    try:
        with unit.session.begin_nested():
            unit.session.add(row)
    except IntegrityError:
        why = "bound meanwhile by another sign-in"
        return mismatch(login, staff=staff, issuer=issuer, subject=subject, why=why)
    log.info("oidc: %s %r bound to provider %s subject %r", _kind(staff), login, issuer, subject)
    return None


def unbind(unit: Unit, *, staff: bool, principal_id: int, login: str, by: int) -> bool:
    """Remove an account's binding (an admin's act, logged); False if it had none."""
    gone = unit.session.execute(
        delete(OidcBinding).where(
            OidcBinding.kind == _kind(staff), OidcBinding.principal_id == principal_id
        )
    )
    removed = bool(getattr(gone, "rowcount", 0))
    if removed:
        log.info("oidc: %s %r unbound by staff %d", _kind(staff), login, by)
    return removed
