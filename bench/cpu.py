"""CPU time of process trees from /proc, for the capacity model: how many milliseconds of CPU
one request costs in the application tier (the server's processes) and in the database (the
PostgreSQL server's processes), measured around a bounded load run.

CPU time, unlike a rate, does not depend on how the two shared cores were divided between the
tiers and the load generator, so it is what `docs/capacity.md` scales from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), or None if gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / _TICKS


def _parents() -> dict[int, int]:
    found = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat[0]
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds so far of `root` and every live descendant (and those they reaped)."""
    parents = _parents()
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        members.update(children)
        frontier.extend(children)
    return sum(stat[1] for pid in members if (stat := _stat(pid)) is not None)


def postmaster_of(port: int) -> int | None:
    """The PostgreSQL server started with `-p port` (scripts/pg.sh), if one runs here."""
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and b"-p" in argv:
            at = argv.index(b"-p")
            if at + 1 < len(argv) and argv[at + 1] == str(port).encode():
                return int(entry.name)
    return None


@dataclass
class Tiers:
    """The process trees whose CPU a run is charged: the server, and the database if separate."""

    server: int
    database: int | None = None

    def read(self) -> tuple[float, float]:
        db = tree_cpu_seconds(self.database) if self.database is not None else 0.0
        return tree_cpu_seconds(self.server), db
