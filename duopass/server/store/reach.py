"""Whether a database error means the database cannot be reached or cannot take writes now
(its primary gone, a failover under way), as opposed to something the request or a concurrent
unit did. Such a unit's outcome is unknown when the error came at COMMIT, so it is never run
again here: the request is answered 503 `store_unavailable` at once and the client sends the
same request again (idempotent: a terminal's seq, a top-up's request id), which finds what a
commit that did happen left, on whichever server is the primary by then (docs/deploy.md,
"Failover")."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

__all__ = ["UNAVAILABLE_STATES", "is_unavailable", "lost_server"]

UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "25006"})
"""PostgreSQL's SQLSTATEs for a server going away or not writable: admin shutdown, crash
shutdown, cannot connect now (starting up, in recovery) and read-only transaction (a standby, or
a primary demoted under us); with every connection exception (class 08)."""
_CAUSES_MAX = 8
"""How far along an exception's causes to look (a unit's error wrapped by the group commit)."""
_NO_STATE = object()


def lost_server(error: BaseException) -> bool:
    """The driver's own error (PostgreSQL's psycopg) says the server is gone or read-only: its
    SQLSTATE is a connection exception, a shutdown or a read-only transaction, or it has none
    at all because no server answered (refused, reset, timed out). SQLite's errors carry no
    SQLSTATE and are never this."""
    state = getattr(error, "sqlstate", _NO_STATE)
    if state is _NO_STATE:
        return False
    if state is None:  # psycopg's client-side failures: lost or never made connections
        return type(error).__name__ in {"OperationalError", "InterfaceError"}
    return isinstance(state, str) and (state.startswith("08") or state in UNAVAILABLE_STATES)


def is_unavailable(exc: BaseException) -> bool:
    """`exc`, or one of its causes, is a database error meaning the database is unreachable or
    not writable now (`lost_server`, or a connection SQLAlchemy found disconnected)."""
    seen: BaseException | None = exc
    for _ in range(_CAUSES_MAX):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError):
            if seen.connection_invalidated:
                return True
            return seen.orig is not None and lost_server(seen.orig)
        seen = seen.__cause__ or seen.__context__
    return False
