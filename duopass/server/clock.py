"""The one clock the whole server reads (`AppContext.now`), and the clock tests can move.

Every time the server records, compares or answers (scans, ledger leaves, bundle `issued_at`,
holds released by the sweep, sessions, throttles, the `Date` header terminals set their clock
by) comes from the application's clock. In production that is the system's wall clock. A server
started for tests (`duopass serve --testing` with `DUOPASS_TEST_CLOCK=true`, or `create_app(...,
testing=True)`) runs on a `MovableClock` instead, which tests move forward over HTTP
(`POST /v1/test/clock`) or in process, so hours and days pass without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "MovableClock", "MovableClockRefused"]

Clock = Callable[[], float]
"""Unix seconds, as `time.time` gives them."""


class MovableClockRefused(RuntimeError):
    """The test clock was asked for by a server not started for tests."""


class MovableClock:
    """Another clock (the wall clock by default) plus an offset that only grows: the server's
    time never runs backwards, so nothing it has recorded comes to lie in its future."""

    def __init__(self, base: Clock = time.time) -> None:
        self._base = base
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._base() + self._offset

    @property
    def offset_s(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (>= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("the server's clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self()

    def move_to(self, when: float) -> float:
        """Move forward to `when` (not before now); returns the new time."""
        with self._lock:
            ahead = when - self()
            if ahead < 0:
                raise ValueError("the server's clock only moves forward")
            self._offset += ahead
            return self()
