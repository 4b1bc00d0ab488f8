"""Where a benchmark server's time goes, when `DUOPASS_BENCH_PROFILE` names a folder: cProfile
of the event loop's thread and of the group-commit writer, and the SQL statements sent (driver
calls, raw and through SQLAlchemy) per scan and per committed batch, written there as the server
stops (`main.prof`, `writer.prof`, `counts.txt`). Without the variable nothing is changed.

    DUOPASS_BENCH_PROFILE=/tmp/prof python -m bench.online --postgres
    python -c "import pstats; pstats.Stats('/tmp/prof/writer.prof').print_stats(40)"
"""

from __future__ import annotations

import cProfile
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from duopass.server import group_commit
from duopass.server.context import AppContext
from duopass.server.store import sql

ENV = "DUOPASS_BENCH_PROFILE"


@contextmanager
def profiled(ctx: AppContext) -> Iterator[None]:
    """Profile the server run inside, if `$DUOPASS_BENCH_PROFILE` is set."""
    folder = os.environ.get(ENV)
    if not folder:
        yield
        return
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    _count_statements(ctx, counts)
    writer = cProfile.Profile()
    _profile_writer(writer, counts)
    # uvicorn raises the SIGTERM it caught again once stopped: let it end `run` instead
    signal.signal(signal.SIGTERM, lambda *_: None)
    main = cProfile.Profile()
    main.enable()
    try:
        yield
    finally:
        main.disable()
        ctx.group.stop()  # the writer's profile is complete once it has ended
        main.dump_stats(out / "main.prof")
        writer.dump_stats(out / "writer.prof")
        (out / "counts.txt").write_text(_report(counts))


def _count_statements(ctx: AppContext, counts: Counter[str]) -> None:
    execute, round_trip = sql.Raw._execute, sql.Raw._round

    def counted(self: sql.Raw, stmt: Any, params: Any, *, many: bool = False) -> None:
        if not self._pending:
            counts["raw"] += 1
            counts[f"stmt {self._text(stmt)[:60]}"] += 1
        execute(self, stmt, params, many=many)

    def pipelined(self: sql.Raw, then: list[Any], cursor: Any = None) -> list[Any]:
        counts["raw"] += 1
        sent = [text for text, _, _ in self._pending] + [text for text, _, _ in then]
        counts["pipelined"] += len(sent)
        counts[f"stmt pipeline of {len(sent)}: {' | '.join(t[:12] for t in sent)[:90]}"] += 1
        return round_trip(self, then, cursor)

    sql.Raw._execute = counted  # type: ignore[method-assign]
    sql.Raw._round = pipelined  # type: ignore[method-assign]

    @event.listens_for(ctx.db.engine, "before_cursor_execute")
    def _orm(*args: Any) -> None:
        counts["sqlalchemy"] += 1
        counts[f"orm {str(args[2])[:60]}"] += 1

    @event.listens_for(ctx.db.engine, "commit")
    def _commit(*args: Any) -> None:
        counts["commits"] += 1


def _profile_writer(profile: cProfile.Profile, counts: Counter[str]) -> None:
    write, commit = group_commit.GroupCommit._write, group_commit.GroupCommit._commit

    def profiled_write(self: group_commit.GroupCommit) -> None:
        profile.enable()
        try:
            write(self)
        finally:
            profile.disable()

    def counted_commit(self: group_commit.GroupCommit, batch: list[Any]) -> None:
        commit(self, batch)
        counts["batches"] += 1
        counts["units"] += len(batch)

    group_commit.GroupCommit._write = profiled_write  # type: ignore[method-assign]
    group_commit.GroupCommit._commit = counted_commit  # type: ignore[method-assign]


def _report(counts: Counter[str]) -> str:
    units, batches = counts["units"] or 1, counts["batches"] or 1
    sent = counts["raw"] + counts["sqlalchemy"]
    lines = [
        f"group-commit units {counts['units']} in {counts['batches']} batches "
        f"({counts['units'] / batches:.1f} a batch), {counts['commits']} commits in all",
        f"round trips: {counts['raw']} raw ({counts['pipelined']} statements in pipelines) + "
        f"{counts['sqlalchemy']} through SQLAlchemy = {sent / units:.1f} a unit, "
        f"{sent / batches:.1f} a batch (setup requests included; BEGIN, COMMIT not counted)",
    ]
    by_text: Callable[[tuple[str, int]], int] = lambda item: -item[1]  # noqa: E731
    for text, n in sorted(
        ((k, v) for k, v in counts.items() if k[:4] in ("stmt", "orm ")), key=by_text
    ):
        lines.append(f"  {n:7d}  {text}")
    return "\n".join(lines) + "\n"
