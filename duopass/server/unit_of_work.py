"""A unit of work: one transaction, and what a service needs inside it, as one object; and the
retry rule every unit follows.

Services take `(unit, *, ...)`: the session of the unit's transaction, the settings, the keys
and the one time the unit reads (`AppContext.now`, taken once so that everything a unit records
carries the same time). The ledger append commits in the same transaction as the change
(Cosmic Python's `service_layer/unit_of_work.py`); `AppContext.run` runs one unit on its own,
`GroupCommit` many under one commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from duopass.server.keyring import Keyring
from duopass.server.problems import Problem, ProblemCode, store_unavailable
from duopass.server.settings import Settings
from duopass.server.store.reach import is_unavailable

if TYPE_CHECKING:
    from duopass.server.services.policy_store import PinnedPolicy

__all__ = ["LOCK_PAUSE_S", "UNIT_ATTEMPTS", "Unit", "retrying"]

T = TypeVar("T")
UNIT_ATTEMPTS = 3
LOCK_PAUSE_S = 0.02


@dataclass(frozen=True, slots=True)
class Unit:
    """What a service works with in one unit of work."""

    session: Session
    settings: Settings
    keyring: Keyring
    now: int
    """The server's time for this unit (Unix seconds), read once."""
    pinned_policy: PinnedPolicy | None = None
    """The policy this process decides with (`services.policy_store`); None in a process
    that decides nothing (the card-office commands)."""


def retrying(attempt: Callable[[], T], *, attempts: int = UNIT_ATTEMPTS) -> T:
    """Run one unit, again when a concurrent unit won a race. A unique-key conflict means another
    unit committed the same thing first, and the retry sees what it did. A lock conflict (a lock
    not available, a deadlock, SQLite busy) means another unit holds what this one needs: the
    retry waits a little first (20 ms, doubling), and when none succeeds the answer is 503
    `busy`: the client sends the same request again later. A database that cannot be reached
    or written (`store.reach`) is 503 `store_unavailable` at once, never retried here: the unit's
    commit may have happened, and only the client's same request again can tell."""
    for n in range(attempts):
        try:
            return attempt()
        except DBAPIError as exc:
            if is_unavailable(exc):
                raise store_unavailable() from exc
            if isinstance(exc, IntegrityError):
                if n == attempts - 1:  # not a race: the request clashes with what exists
                    raise Problem(ProblemCode.CONFLICT, "conflicts with existing data") from exc
                continue
            if not isinstance(exc, OperationalError):
                raise
            if n == attempts - 1:
                raise Problem(ProblemCode.BUSY, "busy with other requests: send it again") from exc
            time.sleep(LOCK_PAUSE_S * 2**n)
    raise AssertionError("unreachable")
