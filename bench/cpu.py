"""CPU time of process trees from /proc, for the capacity model: how many milliseconds of CPU
one request costs in the application tier (the server's processes) and in the database (the
PostgreSQL server's processes), measured around a bounded load run.

CPU time, unlike a rate, does not depend on how the two shared cores were divided between the
tiers and the load generator, so it is what `docs/capacity.md` scales from.
"""

from __future__ import annotations

import os
import time
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


STATS_FLUSH_S = 11.0
"""PostgreSQL 15 backends send their counters at most every second while busy and 10 s after
going idle: waited before each reading of `pg_stat_database`, so it holds every commit."""


def committed(url: str) -> int:
    """Transactions committed so far in the PostgreSQL database at `url` (SQLAlchemy's form),
    read once its backends have flushed their counters."""
    from sqlalchemy import create_engine, text

    time.sleep(STATS_FLUSH_S)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            query = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def usage(rate: float, server_ms: float, db_ms: float) -> str:
    """The cores each tier used during a run: its CPU a request times the rate."""
    return f"{rate * server_ms / 1000:.2f} / {rate * db_ms / 1000:.2f}"
