"""A person's release of a held review (issue 15, review mends): it lets through the next such
request that succeeds, not one refused for a wrong password; and one open alert per guard,
point and subject however many decisions raise it at once."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from duopass.risk import Key, KeyKind
from duopass.risk.points import Point, Subject
from duopass.server.services import risk_engine, risk_records
from duopass.server.store.db import MIGRATIONS
from duopass.server.store.tables import Alert
from duopass.server.unit_of_work import Unit
from tests.server.conftest import database_url
from tests.server.harness import Admin, Running, running_server
from tests.server.test_risk_engine import guards_first

HELD_SIGN_IN = """
[[guard]]
name = "held_sign_in"
points = ["sign_in"]
when = "!request.staff"
action = "review"
"""
DENIED_SIGN_IN = HELD_SIGN_IN.replace("held_sign_in", "denied").replace("review", "deny")
AT_ONCE = 6


def _risk_alerts(admin: Admin, state: str) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params={"state": state}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [item for item in answer.json()["items"] if item["kind"] == "risk_decision"]


def _sign_in(server: Running, password: str) -> tuple[int, str | None]:
    answer = server.http.post("/v1/session", json={"login": "mia", "password": password})
    return answer.status_code, answer.json().get("code")


def test_a_wrong_password_leaves_the_release_for_the_right_one(tmp_path):
    policy = tmp_path / "held.toml"
    policy.write_text(guards_first(HELD_SIGN_IN))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", policy_file=policy) as server:
        admin = server.admin()
        admin.holder("mia")
        right = "pw-mia-secret"
        assert _sign_in(server, right) == (403, "risk_review")
        (alert,) = _risk_alerts(admin, "open")
        released = admin.post(f"/v1/admin/alerts/{alert['id']}/review", {"action": "release"})
        assert released.status_code == 200, released.text
        assert _sign_in(server, "not-the-password") == (401, "unauthenticated")
        (unused,) = _risk_alerts(admin, "resolved")
        assert "released_to" not in unused["evidence"]
        (guess,) = _risk_alerts(admin, "open")  # the wrong guess is held for a person to see
        assert guess["evidence"]["action"] == "review"
        assert _sign_in(server, right) == (200, None)  # the release, used by the right one
        assert _sign_in(server, right) == (403, "risk_review")  # once
        (used,) = _risk_alerts(admin, "resolved")
        decisions = admin.http.get(
            "/v1/admin/risk", params={"action": "review"}, headers=admin.auth
        ).json()["decisions"]["items"]
        assert [d["released_by"] for d in decisions] == [None, alert["id"], None, None]
        assert used["evidence"]["released_to"] == decisions[1]["id"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_decisions_at_once_raise_one_alert(request: pytest.FixtureRequest, tmp_path, kind):
    """Decisions of one guard on one subject in units running at once: one alert, counting
    each. Each unit waits, after its decision, for the others to have made theirs (or for a
    while, when one of them waits on it: a unique index holds the second alert back)."""
    request.param = kind  # what `database_url` reads
    policy = tmp_path / "denied.toml"
    policy.write_text(guards_first(DENIED_SIGN_IN))
    url = database_url(request, tmp_path)
    together = threading.Barrier(AT_ONCE, timeout=3)
    subject = Subject(Key(KeyKind.ACCOUNT, "login:0123456789abcdef01234567"), None, "10.1.2.3")

    def decide(unit: Unit) -> str | None:
        judged = risk_engine.check(unit, Point.SIGN_IN, subject, {"staff": False})
        assert judged is not None
        with contextlib.suppress(threading.BrokenBarrierError):  # one waits on another
            together.wait()
        return judged.assessment.guard

    with running_server(url, tmp_path / "data", policy_file=policy) as server:
        with ThreadPoolExecutor(AT_ONCE) as pool:
            guards = list(pool.map(lambda _: server.ctx.run(decide), range(AT_ONCE)))
        assert guards == ["denied"] * AT_ONCE

        def alerts(unit: Unit) -> list[tuple[str, str]]:
            rows = unit.session.scalars(select(Alert).where(Alert.kind == "risk_decision"))
            return [(row.state, row.evidence) for row in rows]

        found = server.ctx.run(alerts)
    assert len(found) == 1, found
    assert f'"repeats": {AT_ONCE}' in found[0][1]


def test_alerts_from_before_their_groupings_get_them(tmp_path):
    """0016 on a database with risk alerts: each gets its grouping from its evidence (of two
    open ones alike, raised at once before, the newer), and the next decision counts on it."""
    policy = tmp_path / "denied.toml"
    policy.write_text(guards_first(DENIED_SIGN_IN))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    subject = Subject(Key(KeyKind.ACCOUNT, "login:0123456789abcdef01234567"), None, "10.1.2.3")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def decide(unit: Unit) -> None:
        risk_engine.check(unit, Point.SIGN_IN, subject, {"staff": False})

    def groupings(unit: Unit) -> list[tuple[str, str | None]]:
        rows = unit.session.scalars(select(Alert).order_by(Alert.id))
        return [(row.state, row.grouping) for row in rows]

    with running_server(url, tmp_path / "data", policy_file=policy) as server:
        server.ctx.run(decide)
        with server.ctx.db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0015")
            copied = "INSERT INTO alerts (kind, created_at, pending, evidence, state) "
            connection.execute(
                text(copied + "SELECT kind, created_at, pending, evidence, state FROM alerts")
            )  # an open alert alike, as two decisions at once raised before
            command.upgrade(config, "head")
        server.ctx.db.engine.dispose()
        expected = risk_records.grouping("denied", "sign_in", None, "network:10.1.2.0/24")
        assert server.ctx.run(groupings) == [("open", None), ("open", expected)]
        server.ctx.run(decide)
        assert server.ctx.run(groupings) == [("open", None), ("open", expected)]
