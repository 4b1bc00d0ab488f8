"""The Redis feature store counts a unit's observations once it has committed (issue 15, review
mends): a unit retried after a lost race counts once, a unit rolled back counts nothing, and a
unit reads what it has itself counted (a sign-in's attempt counts itself before the policy
reads)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from duopass.risk import Count, Key, KeyKind, LastSeen, Observation, Signal, Window
from duopass.server.problems import Problem, ProblemCode
from duopass.server.services import risk_features
from duopass.server.unit_of_work import Unit
from tests.redis import redis_url_fixture  # noqa: F401
from tests.server.harness import Running
from tests.server.test_risk_redis import client, prefix, redis_server  # noqa: F401

ACCOUNT = Key(KeyKind.ACCOUNT, "holder:41")
COUNT = Count(ACCOUNT, Signal.SIGN_IN_FAILURE, Window.HOUR)
LATEST = LastSeen(ACCOUNT, Signal.SIGN_IN_FAILURE)


def _read(server: Running) -> dict[str, int | None]:
    return server.ctx.run(
        lambda unit: dict(risk_features.store_for(unit).read([COUNT, LATEST], now=unit.now))
    )


def test_a_retried_unit_counts_once_and_a_rolled_back_one_not_at_all(redis_server):  # noqa: F811
    server: Running = redis_server
    attempts: list[dict[str, int | None]] = []

    def lost_a_race_once(unit: Unit) -> None:
        risk_features.observe(unit, Observation(unit.now, Signal.SIGN_IN_FAILURE, (ACCOUNT,)))
        attempts.append(dict(risk_features.store_for(unit).read([COUNT, LATEST], now=unit.now)))
        if len(attempts) == 1:  # as SQLite busy or a PostgreSQL serialization failure
            raise OperationalError("UPDATE ...", {}, Exception("database is locked"))

    server.ctx.run(lost_a_race_once)
    now = server.ctx.now()
    own = {"account.sign_in_failure.1h": 1, "account.sign_in_failure.last_at": now}
    assert attempts == [own, own]  # each attempt reads its own count
    assert _read(server) == own  # counted once

    def refused(unit: Unit) -> None:
        risk_features.observe(unit, Observation(unit.now, Signal.SIGN_IN_FAILURE, (ACCOUNT,)))
        raise Problem(ProblemCode.CONFLICT, "rolled back")

    with pytest.raises(Problem):
        server.ctx.run(refused)
    assert _read(server) == own  # nothing of the unit rolled back
