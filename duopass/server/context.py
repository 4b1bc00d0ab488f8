"""What the whole application works with: the database, the keys, the settings, the clock and
the metrics; `run`, which executes one unit of work (retried when a concurrent unit won a race);
and `group`, which commits concurrent scans together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.orm import Session

from duopass.server.clock import Clock
from duopass.server.group_commit import GroupCommit
from duopass.server.keyring import Keyring
from duopass.server.problems import Problem
from duopass.server.services.terminals import Directory
from duopass.server.settings import Settings
from duopass.server.siblings import Changes, LocalChanges
from duopass.server.store.db import Database
from duopass.server.unit_of_work import UNIT_ATTEMPTS, Unit, retrying

if TYPE_CHECKING:
    from duopass.server.services.policy_store import PinnedPolicy

__all__ = ["AppContext", "Metrics"]

T = TypeVar("T")


class Metrics:
    """Prometheus metrics of one application (its own registry: several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.scans = Counter(
            "duopass_scans", "Online scan verdicts", ["reason"], registry=self.registry
        )
        self.requests = Histogram(
            "duopass_request_seconds", "Request latency", ["route"], registry=self.registry
        )
        self._scan_reasons: dict[str, Any] = {}
        """`scans`' child for each reason (the reasons are an enumeration: bounded)."""

    def scanned(self, reason: str) -> None:
        """Count an online scan's verdict; each reason's child is looked up once (`labels`
        takes a lock and builds a key on every call)."""
        child = self._scan_reasons.get(reason)
        if child is None:
            child = self._scan_reasons[reason] = self.scans.labels(reason=reason)
        child.inc()


@dataclass
class AppContext:
    """One per application, on `app.state.context`: routes reach it through `deps.Ctx`."""

    settings: Settings
    db: Database
    keyring: Keyring
    clock: Clock = field(default=time.time)
    metrics: Metrics = field(default_factory=Metrics)
    changes: Changes = field(default_factory=LocalChanges)
    """Changes to what every process caches, counted in memory the server's processes share."""
    terminals: Directory = field(init=False)
    """Terminals by id, for authenticating their signed requests without a read each."""
    pinned_policy: PinnedPolicy | None = None
    """The policy this process decides with: set by `create_app` (`policy_store.start`)."""
    group: GroupCommit = field(init=False)
    store_held: str | None = None
    """Why the server holds (its database is behind the checkpoint kept outside it,
    `services.rollback`): every route but the health answers 503 `store_rolled_back`."""

    def __post_init__(self) -> None:
        self.group = GroupCommit(self.db, self._unit)
        self.terminals = Directory(self.changes)

    def now(self) -> int:
        """The server's time: the one clock everything it records and answers reads."""
        return int(self.clock())

    def _unit(self, session: Session) -> Unit:
        return Unit(session, self.settings, self.keyring, self.now(), self.pinned_policy)

    def run(
        self,
        work: Callable[[Unit], T],
        *,
        attempts: int = UNIT_ATTEMPTS,
        journal_in_memory: bool = False,
    ) -> T:
        """Run `work` in one transaction of its own (`unit_of_work.retrying`); one that
        changes many pages under a savepoint keeps their journal in memory (`Database.unit`)."""

        def attempt() -> T:
            with self.db.unit(journal_in_memory=journal_in_memory) as session:
                return work(self._unit(session))

        return retrying(attempt, attempts=attempts)

    def run_refusable(self, work: Callable[[Unit], T | Problem]) -> T:
        """`run`, for work that counts what a refusal costs (failed sign-ins): it returns its
        `Problem` instead of raising it, so the unit commits the count, and then it is raised."""
        result = self.run(work)
        if isinstance(result, Problem):
            raise result
        return result
