"""`duopass keys rotate-root` when its unit fails after the root files are written (they are
committed just before the unit): the database read again says whether the rotation's ledger leaf
is there, as the answer to COMMIT may have been lost in a failover (503 `store_unavailable`).
There, the rotation is complete; not there, the error says the leaf is missing; the database not
answering, the error says nobody can tell yet. The new root speaks in every case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from duopass.cli.server_store import open_server
from duopass.ledger.events import EventType
from duopass.ledger.leaf import parse_leaf
from duopass.server import roots
from duopass.server.context import AppContext
from duopass.server.problems import store_unavailable
from duopass.server.services import tlog
from duopass.server.services.root_keys import rotate_root
from duopass.server.unit_of_work import Unit
from tests.server.harness import Running, running_server


def _failover(ctx: AppContext, *, commits: bool, answers_after: bool) -> None:
    """`ctx`'s database fails over at the rotation's COMMIT (the unit that appends a leaf):
    the unit commits or not, its answer is lost, and the database answers again or not."""
    real_run = ctx.run
    state = {"appended": False, "lost": False}

    def unit_lost(work: Callable[[Unit], Any], unit: Unit) -> Any:
        before = tlog.size(unit.session)
        out = work(unit)
        state["appended"] = tlog.size(unit.session) > before
        if state["appended"] and not commits:  # lost before COMMIT: rolled back
            raise store_unavailable()
        return out

    def run(work: Callable[[Unit], Any], **options: Any) -> Any:
        if state["lost"] and not answers_after:
            raise store_unavailable()
        try:
            out = real_run(lambda unit: unit_lost(work, unit), **options)
        finally:
            state["lost"] = state["lost"] or state["appended"]
        if state["appended"]:  # committed, the answer lost
            raise store_unavailable()
        return out

    ctx.run = run  # type: ignore[method-assign]


def _root_leaves(srv: Running) -> list[dict[str, Any]]:
    def read(unit: Unit) -> list[dict[str, Any]]:
        found = [parse_leaf(bytes(data)) for data in tlog.read_entries(unit.session, 0, 1000)]
        return [leaf.body for leaf in found if leaf.type == EventType.KEY_ROTATION]

    return [body for body in srv.ctx.run(read) if body.get("role") == "root"]


@pytest.mark.parametrize(
    ("commits", "answers_after", "error"),
    [
        (True, True, None),
        (True, False, "whether its ledger leaf was written is unknown"),
        (False, True, "but its ledger leaf was not written"),
    ],
)
def test_the_database_read_again_says_what_became_of_the_leaf(
    tmp_path, commits, answers_after, error
):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'd.db'}"
    with running_server(db, data) as srv:
        srv.admin()
        ctx = open_server(data, db)
        try:
            _failover(ctx, commits=commits, answers_after=answers_after)
            if error is None:
                rotation = rotate_root(ctx, data, by="admin", overlap_s=86_400)
                kid: bytes = rotation.link.kid
            else:
                with pytest.raises(roots.RootError, match=error) as refused:
                    rotate_root(ctx, data, by="admin", overlap_s=86_400)
                kid = bytes.fromhex(str(refused.value).split("rotated to ")[1][:16])
        finally:
            ctx.db.dispose()
        assert roots.current(data, srv.ctx.keyring.root).seq == 1  # the new root speaks
        leaves = _root_leaves(srv)
        assert [body["kid"] for body in leaves] == ([kid] if commits else [])
