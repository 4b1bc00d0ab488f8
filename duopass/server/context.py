"""What every request works with: the database, the keys, the settings and the clock; `run`,
which executes one unit of work, retrying it when a concurrent unit won a race; and `group`,
which commits concurrent scans together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.orm import Session

from duopass.server.config import Settings
from duopass.server.errors import Problem
from duopass.server.keyring import Keyring
from duopass.server.store.db import Database
from duopass.server.units import UNIT_ATTEMPTS, GroupCommit, retrying

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


@dataclass
class Context:
    settings: Settings
    db: Database
    keyring: Keyring
    clock: Callable[[], float] = field(default=time.time)
    metrics: Metrics = field(default_factory=Metrics)
    group: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.group = GroupCommit(self.db)

    def now(self) -> int:
        return int(self.clock())

    def run(self, work: Callable[[Session], T], *, attempts: int = UNIT_ATTEMPTS) -> T:
        """Run `work` in one transaction of its own (`units.retrying`)."""

        def attempt() -> T:
            with self.db.unit() as session:
                return work(session)

        return retrying(attempt, attempts=attempts)

    def run_refusable(self, work: Callable[[Session], T | Problem]) -> T:
        """`run`, for work that counts what a refusal costs (failed sign-ins): it returns its
        `Problem` instead of raising it, so the unit commits the count, and then it is raised."""
        result = self.run(work)
        if isinstance(result, Problem):
            raise result
        return result
