"""Group commit: units queued together share one transaction, a savepoint each. A failing unit
leaves only itself out; ledger appends of one batch keep the tree whole. Bounded: each batch is
held at a gate until every unit is queued, and waits at most a few seconds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from duopass.ledger import hash_leaf, root_of
from duopass.ledger.leaf import encode_leaf
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import tlog
from duopass.server.store import sql

INSERT = sql.statement("INSERT INTO meta (name, value) VALUES (:name, :value)")
READ = sql.statement("SELECT value FROM meta WHERE name = :name")
BUMP = sql.statement("UPDATE meta SET value = value + 1 WHERE name LIKE :like")
LEAF = sql.statement('SELECT data FROM ledger_leaves WHERE "index" = :index')


def _insert(name: str, value: int = 1) -> Callable[[Any], str]:
    def work(unit: Any) -> str:
        sql.raw(unit.session).run(INSERT, {"name": name, "value": value})
        return name

    return work


def _failing(name: str) -> Callable[[Any], str]:
    def work(unit: Any) -> str:
        _insert(name)(unit)
        raise Problem(ProblemCode.FORBIDDEN, "refused after writing")

    return work


def _one_batch(ctx: Any, works: list[Callable[[Any], Any]]) -> list[Any]:
    """Run `works` in one batch: a gate unit holds the writer until all are queued."""
    gate = threading.Event()

    async def main() -> list[Any]:
        held = asyncio.ensure_future(ctx.group.run(lambda _s: gate.wait(10)))
        await asyncio.sleep(0.05)  # the writer is inside the gate unit
        queued = [asyncio.ensure_future(ctx.group.run(work)) for work in works]
        await asyncio.sleep(0)  # every unit is on the queue
        gate.set()
        await held
        return list(await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 30))

    return asyncio.run(main())


def _value(ctx: Any, name: str) -> int | None:
    row = ctx.run(lambda u: sql.raw(u.session).one(READ, {"name": name}))
    return None if row is None else int(row[0])


def test_a_failing_unit_rolls_back_alone(server):
    ctx = server.ctx
    outcomes = _one_batch(ctx, [_insert("gc-a"), _failing("gc-b"), _insert("gc-c")])
    assert outcomes[0] == "gc-a" and outcomes[2] == "gc-c"
    assert isinstance(outcomes[1], Problem) and outcomes[1].code is ProblemCode.FORBIDDEN
    assert (_value(ctx, "gc-a"), _value(ctx, "gc-b"), _value(ctx, "gc-c")) == (1, None, 1)


def test_a_unique_clash_in_a_batch_is_a_conflict_for_that_unit_only(server):
    ctx = server.ctx
    outcomes = _one_batch(ctx, [_insert("gc-x", 1), _insert("gc-x", 2), _insert("gc-y")])
    assert outcomes[0] == "gc-x" and outcomes[2] == "gc-y"
    assert isinstance(outcomes[1], Problem) and outcomes[1].code is ProblemCode.CONFLICT
    assert (_value(ctx, "gc-x"), _value(ctx, "gc-y")) == (1, 1)


def test_ledger_appends_in_a_batch_keep_the_tree_whole(server):
    ctx = server.ctx
    before = ctx.run(lambda u: tlog.size(u.session))

    def append(n: int, *, fail: bool = False) -> Callable[[Any], int]:
        def work(unit: Any) -> int:
            index = tlog.append_many(unit.session, [encode_leaf("test", n, "demo-univ", {"n": n})])
            if fail:
                raise Problem(ProblemCode.FORBIDDEN, "refused after appending")
            return index

        return work

    works = [append(n, fail=n % 3 == 1) for n in range(9)]
    outcomes = _one_batch(ctx, works)
    kept = [n for n in range(9) if n % 3 != 1]
    assert [outcomes[n] for n in kept] == list(range(before, before + len(kept)))
    assert all(isinstance(outcomes[n], Problem) for n in range(9) if n % 3 == 1)

    def check(unit: Any) -> None:
        session = unit.session
        size = tlog.size(session)
        assert size == before + len(kept)
        leaves = [sql.raw(session).one(LEAF, {"index": i})[0] for i in range(size)]
        assert [bytes(leaf) for leaf in leaves[before:]] == [
            encode_leaf("test", n, "demo-univ", {"n": n}) for n in kept
        ]
        assert tlog.root(session, size) == root_of([hash_leaf(bytes(x)) for x in leaves])

    ctx.run(check)


def test_a_failing_unit_rolls_back_alone_past_a_large_savepoint_journal(server):
    """Every unit changes rows on tens of pages the batch found there, so each savepoint
    keeps them as they were (SQLite: past 64 KiB a batch, which the writer keeps in memory);
    the unit that fails after its change goes back to its own savepoint, no further."""
    ctx = server.ctx
    names = [f"gc-page-{n:05d}" for n in range(4_000)]
    ctx.run(lambda u: sql.raw(u.session).many(INSERT, [{"name": n, "value": 0} for n in names]))

    def bump(unit: Any) -> int:
        sql.raw(unit.session).run(BUMP, {"like": "gc-page-%"})
        return 1

    def bump_and_fail(unit: Any) -> int:
        bump(unit)
        raise Problem(ProblemCode.FORBIDDEN, "refused after changing every row")

    works: list[Callable[[Any], Any]] = [bump_and_fail if n == 5 else bump for n in range(8)]
    outcomes = _one_batch(ctx, works)
    assert [o for n, o in enumerate(outcomes) if n != 5] == [1] * 7
    assert isinstance(outcomes[5], Problem) and outcomes[5].code is ProblemCode.FORBIDDEN
    assert {_value(ctx, name) for name in (names[0], names[1_999], names[-1])} == {7}


@pytest.mark.parametrize("units", [1, 40])
def test_every_unit_is_answered_after_its_commit(server, units):
    ctx = server.ctx
    names = [f"gc-many-{units}-{n}" for n in range(units)]
    outcomes = _one_batch(ctx, [_insert(name) for name in names])
    assert outcomes == names
    assert all(_value(ctx, name) == 1 for name in names)


def test_a_request_waits_for_its_commit_at_most_a_bound_and_the_unit_still_lands(
    server, monkeypatch
):
    """A writer slower than UNIT_WAIT_S answers 503 busy; the unit commits all the same, so a
    retry of the same request finds it (scans are idempotent by (terminal, seq))."""
    from duopass.server import group_commit

    monkeypatch.setattr(group_commit, "UNIT_WAIT_S", 0.2)
    gate = threading.Event()

    def slow(unit: Any) -> str:
        gate.wait(10)
        return _insert("slow")(unit)

    async def main() -> None:
        with pytest.raises(Problem) as refused:
            await server.ctx.group.run(slow)
        assert refused.value.code is ProblemCode.BUSY
        gate.set()
        assert await server.ctx.group.run(lambda _s: "after") == "after"  # the writer goes on

    asyncio.run(main())
    assert _value(server.ctx, "slow") == 1


def test_a_writer_that_raises_answers_its_batch_and_keeps_writing(server, monkeypatch):
    group = server.ctx.group
    real = group._commit
    calls: list[int] = []

    def broken_once(batch: list[Any]) -> None:
        if not calls:
            calls.append(1)
            raise RuntimeError("the writer broke")
        real(batch)

    monkeypatch.setattr(group, "_commit", broken_once)

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await group.run(_insert("lost"))
        assert await group.run(_insert("kept")) == "kept"

    asyncio.run(main())
    assert _value(server.ctx, "lost") is None and _value(server.ctx, "kept") == 1
