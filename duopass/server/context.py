"""What every request works with: the database, the keys, the settings and the clock; and
`run`, which executes one unit of work, retrying it when a concurrent unit won a race."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from duopass.server.config import Settings
from duopass.server.errors import Code, Problem
from duopass.server.keyring import Keyring
from duopass.server.store.db import Database

T = TypeVar("T")
UNIT_ATTEMPTS = 3


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

    def now(self) -> int:
        return int(self.clock())

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction. A unique-key or serialisation conflict means another
        unit committed the same thing first: run again, and the retry sees what it did."""
        for attempt in range(UNIT_ATTEMPTS):
            try:
                with self.db.unit() as session:
                    return work(session)
            except IntegrityError as exc:
                if attempt == UNIT_ATTEMPTS - 1:  # not a race: the request clashes with what exists
                    raise Problem(Code.CONFLICT, "conflicts with existing data") from exc
            except OperationalError:
                if attempt == UNIT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
