"""A person's release of a held review (issue 15, review mends): it lets through the next such
request that succeeds, not one refused for a wrong password; and one open alert per guard,
point and subject however many decisions raise it at once."""

from __future__ import annotations

from typing import Any

from tests.server.harness import Admin, Running, running_server
from tests.server.test_risk_engine import guards_first

HELD_SIGN_IN = """
[[guard]]
name = "held_sign_in"
points = ["sign_in"]
when = "!request.staff"
action = "review"
"""


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
