"""The wallet's clock: server time learnt at the last sync, plus the time elapsed since (§2).

Elapsed time comes from the boot-time clock (it counts suspend, unlike CLOCK_MONOTONIC), which is
shared by every process but restarts at boot: within the boot of the last sync, `ts` is the
server's time then plus the elapsed time, whatever the wall clock says; after a reboot it is
the wall clock corrected by the offset measured at the sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Clock", "ClockSample", "SystemClock", "server_now"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_BOOT_ID_CHARS_MAX = 64


class Clock(Protocol):
    """Where the wallet reads time: the system's, or a test's."""

    def wall(self) -> float:
        """Unix seconds, as the device's clock says."""
        ...

    def elapsed(self) -> float:
        """Seconds on a clock that never jumps and counts suspend; restarts at `boot` changes."""
        ...

    def boot(self) -> str | None:
        """An id of the current boot, or None where the system has none."""
        ...


class SystemClock:
    """The operating system's clocks."""

    def wall(self) -> float:
        return time.time()

    def elapsed(self) -> float:
        if hasattr(time, "CLOCK_BOOTTIME"):
            return time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.monotonic()

    def boot(self) -> str | None:
        try:
            with _BOOT_ID.open("rb") as handle:
                text = handle.read(_BOOT_ID_CHARS_MAX).decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text or None


@dataclass(frozen=True)
class ClockSample:
    """The server's time at a sync, and this device's clocks at the same moment."""

    server: int
    wall: float
    elapsed: float
    boot: str | None


def server_now(sample: ClockSample | None, clock: Clock) -> int:
    """The server's time now, as well as this device knows it; the wall clock before any sync."""
    if sample is None:
        return int(clock.wall())
    if sample.boot is not None and sample.boot == clock.boot():
        since = clock.elapsed() - sample.elapsed
        if since >= 0:
            return int(sample.server + since)
    return int(clock.wall() + (sample.server - sample.wall))
