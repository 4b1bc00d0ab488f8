"""Card-office staff accounts: added, their password set, disabled. `duopass staff` runs these on
the server's database; a disabled member cannot sign in (`auth`) and their sessions end."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from duopass.server.limits import LOGIN_CHARS_MAX, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import auth, sessions
from duopass.server.store.access import Staff
from duopass.server.unit_of_work import Unit

__all__ = [
    "ROLES",
    "add",
    "by_login",
    "check_password",
    "disable",
    "enable",
    "listing",
    "set_password",
]

ROLES = ("admin", "operator")


def check_password(password: str) -> None:
    """Refuse (INVALID_REQUEST) a password outside the limits every sign-in reads."""
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise Problem(
            ProblemCode.INVALID_REQUEST,
            f"a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters",
        )


def by_login(session: Session, login: str) -> Staff:
    row = session.scalars(select(Staff).where(Staff.login == login)).one_or_none()
    if row is None:
        raise Problem(ProblemCode.NOT_FOUND, f"no staff member {login!r}")
    return row


def add(unit: Unit, *, login: str, role: str, password: str) -> Staff:
    """A new staff member with this role (admin or operator)."""
    if not 1 <= len(login) <= LOGIN_CHARS_MAX or not login.isprintable() or " " in login:
        raise Problem(
            ProblemCode.INVALID_REQUEST,
            f"a login has 1 to {LOGIN_CHARS_MAX} printable characters and no spaces",
        )
    if role not in ROLES:
        raise Problem(ProblemCode.INVALID_REQUEST, "the role is admin or operator")
    check_password(password)
    session = unit.session
    if session.scalars(select(Staff.id).where(Staff.login == login)).first() is not None:
        raise Problem(ProblemCode.CONFLICT, f"staff login {login!r} is taken")
    row = Staff(login=login, role=role, password_hash=auth.hash_password(unit.settings, password))
    session.add(row)
    session.flush()
    return row


def set_password(unit: Unit, *, login: str, password: str) -> int:
    """Set a staff member's password; every session of theirs ends. Returns how many ended."""
    check_password(password)
    row = by_login(unit.session, login)
    row.password_hash = auth.hash_password(unit.settings, password)
    return sessions.end_sessions(unit.session, staff=True, principal_id=row.id, keep=None)


def disable(unit: Unit, *, login: str) -> int:
    """No more sign-ins for this staff member, and every session of theirs ends now (again if
    disabled before). Returns how many ended."""
    row = by_login(unit.session, login)
    if row.disabled_at is None:
        row.disabled_at = unit.now
    return sessions.end_sessions(unit.session, staff=True, principal_id=row.id, keep=None)


def enable(unit: Unit, *, login: str) -> bool:
    """A disabled staff member may sign in again (with the password they had, or one
    `set_password` gives). Returns whether they were disabled."""
    row = by_login(unit.session, login)
    was_disabled = row.disabled_at is not None
    row.disabled_at = None
    return was_disabled


def listing(session: Session) -> list[tuple[str, str, int | None]]:
    """Every staff member: login, role, and when they were disabled (None: active)."""
    rows = session.execute(select(Staff.login, Staff.role, Staff.disabled_at).order_by(Staff.login))
    return [(login, role, disabled_at) for login, role, disabled_at in rows]
