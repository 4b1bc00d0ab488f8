"""A terminal's memory of what it accepted (§3 checks 9, 17 and 19), behind a small interface.

The terminal keeps it in SQLite and the server in its database; `MemoryStore` keeps it in a dict
for the conformance command, tests and benchmarks. Only accepted scans change it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Acceptance", "MemoryStore", "TerminalMemory"]


@dataclass(frozen=True)
class Acceptance:
    """What one accepted scan adds to the memory; kept until `keep_until` (exp + clock_skew_s)."""

    iss: str
    sub: str
    cti: bytes
    gen: int
    ctr: int | None
    """The counter consumed: pay and entry scans of a device-bound code; None otherwise."""
    entry: bool
    """Whether an entry was counted (entry mode)."""
    keep_until: int


class TerminalMemory(Protocol):
    """What the verification rules read from a terminal's memory, and how they add to it."""

    def highest_generation(self, iss: str, sub: str) -> int | None:
        """The highest `gen` accepted for the subject, or None if none was."""

    def counter_accepted(self, iss: str, cti: bytes, ctr: int) -> bool:
        """Whether this counter of this credential was accepted before."""

    def entries_accepted(self, iss: str, sub: str) -> int:
        """Entries accepted for the subject, every generation together."""

    def record(self, acceptance: Acceptance) -> None:
        """Remember an accepted scan (durably, in a real terminal, before the gate opens)."""


class MemoryStore:
    """An in-process `TerminalMemory`; `forget_until(now)` drops what has passed `keep_until`."""

    def __init__(self) -> None:
        self._acceptances: list[Acceptance] = []
        self._generations: dict[tuple[str, str], int] = {}
        self._counters: set[tuple[str, bytes, int]] = set()
        self._entries: defaultdict[tuple[str, str], int] = defaultdict(int)

    def highest_generation(self, iss: str, sub: str) -> int | None:
        return self._generations.get((iss, sub))

    def counter_accepted(self, iss: str, cti: bytes, ctr: int) -> bool:
        return (iss, cti, ctr) in self._counters

    def entries_accepted(self, iss: str, sub: str) -> int:
        return self._entries.get((iss, sub), 0)

    def record(self, acceptance: Acceptance) -> None:
        self._acceptances.append(acceptance)
        self._add(acceptance)

    def forget_until(self, now: int) -> None:
        """Forget acceptances whose `keep_until` lies before `now`."""
        kept = [a for a in self._acceptances if a.keep_until >= now]
        self.__init__()  # type: ignore[misc]
        for acceptance in kept:
            self.record(acceptance)

    def _add(self, acceptance: Acceptance) -> None:
        subject = (acceptance.iss, acceptance.sub)
        self._generations[subject] = max(self._generations.get(subject, 0), acceptance.gen)
        if acceptance.ctr is not None:
            self._counters.add((acceptance.iss, acceptance.cti, acceptance.ctr))
        if acceptance.entry:
            self._entries[subject] += 1
