"""The card office sees the risk engine (issue 15, "The card office sees it"): `GET
/v1/admin/risk` ranks the keys by score and lists the decisions with their guard, signals and
features, of one action, point or key, a page at a time, with the active policy; and a review,
deny or suspend_offline decision is an alert in the review queue carrying its evidence, counted
on that alert while it is open, which a person dismisses with a reason, on the ledger."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config

from duopass.ledger.leaf import parse_leaf
from duopass.policy import DEFAULT_POLICY
from duopass.server.services import staff
from duopass.server.store.db import MIGRATIONS
from tests.server.conftest import database_url
from tests.server.harness import Admin, Running, Wallet, running_server
from tests.server.test_risk_engine import GUARDED, SYNC_GUARD, guards_first

TOPPED_UP = """
[[signal]]
name = "topped_up_today"
when = '"account.top_up.1d" in features && features["account.top_up.1d"] >= 1'
weight = 25
"""


@pytest.fixture(params=["sqlite", "postgres"])
def guarded(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    """The server on both databases, with guards at top-up and device enrolment, and a signal
    that scores a holder's second top-up of a day."""
    policy = tmp_path / "guarded.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + GUARDED + TOPPED_UP)
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", policy_file=policy) as running:
        yield running


def _risk(admin: Admin, **query: Any) -> dict[str, Any]:
    answer = admin.http.get("/v1/admin/risk", params=query, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _risk_alerts(admin: Admin, state: str = "open") -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/alerts", params={"state": state}, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return [item for item in answer.json()["items"] if item["kind"] == "risk_decision"]


def _screened(server: Running) -> tuple[Admin, dict[str, Any]]:
    """A top-up allowed with a score, two held for review, one that suspends offline use, an
    enrolment refused."""
    admin = server.admin()
    holder = admin.holder("ida", balance=1_000)  # allowed, nothing scored: no record
    assert admin.top_up(holder["handle"], 2_000).status_code == 200
    for amount in (60_000, 70_000):
        held = admin.top_up(holder["handle"], amount)
        assert (held.status_code, held.json()["code"]) == (403, "risk_review"), held.text
    assert admin.top_up(holder["handle"], 100_000).status_code == 200
    phones = [Wallet(server.http, "ida") for _ in range(3)]
    for phone in phones:
        phone.sign_in()
    phones[0].enrol()
    phones[1].enrol()
    with pytest.raises(AssertionError, match="risk_denied"):
        phones[2].enrol()
    return admin, holder


def test_the_card_office_reads_keys_decisions_and_the_policy(guarded):
    admin, holder = _screened(guarded)
    account = f"account:holder:{holder['id']}"
    seen = _risk(admin)
    policy = guarded.http.get("/v1/policy").json()
    assert (seen["policy"]["version"], seen["policy"]["sha256"]) == (
        policy["version"],
        policy["sha256"],
    )
    assert seen["window_s"] == 86_400
    top = seen["top_keys"]["items"]
    assert top[0] == {
        "key": account,
        "max_score": 25,
        "total_score": 100,
        "decisions": 5,
        "last_at": top[0]["last_at"],
    }
    assert sorted(item["key"] for item in top[1:]) == ["address:127.0.0.1", "network:127.0.0.0/24"]
    assert [item["decisions"] for item in top[1:]] == [1, 1]  # the enrolment's
    listed = seen["decisions"]["items"]
    assert [(d["point"], d["guard"], d["action"], d["score"]) for d in listed] == [
        ("device_enrolment", "many_phones", "deny", 0),
        ("top_up", "huge_top_up", "suspend_offline", 25),
        ("top_up", "big_top_up", "review", 25),
        ("top_up", "big_top_up", "review", 25),
        ("top_up", None, "allow", 25),
    ]
    assert listed[1]["signals"] == ["topped_up_today"]
    deny = listed[0]
    assert deny["subject"] == [account, "network:127.0.0.0/24", "address:127.0.0.1"]
    assert {"feature": "account.device_enrolment.1d", "key": account, "value": 2} in deny[
        "features"
    ]
    assert deny["policy_sha256"] == policy["sha256"]
    reviews = _risk(admin, action="review", limit=1)["decisions"]
    assert reviews["items"][0]["id"] == listed[2]["id"] and reviews["next_cursor"]
    rest = _risk(admin, action="review", limit=1, cursor=reviews["next_cursor"])["decisions"]
    assert [d["id"] for d in rest["items"]] == [listed[3]["id"]] and rest["next_cursor"] is None
    assert len(_risk(admin, point="top_up")["decisions"]["items"]) == 4
    assert len(_risk(admin, key=account)["decisions"]["items"]) == 5
    network = _risk(admin, key="network:127.0.0.0/24")["decisions"]["items"]
    assert [d["id"] for d in network] == [deny["id"]]
    assert _risk(admin, key="account:holder:999999")["decisions"]["items"] == []
    first = _risk(admin, keys_limit=1)["top_keys"]
    assert [item["key"] for item in first["items"]] == [account]
    after = _risk(admin, keys_limit=1, keys_cursor=first["next_cursor"])["top_keys"]
    assert after["items"] == top[1:2]


def test_the_risk_view_is_for_staff_and_its_inputs_are_bounded(guarded):
    admin = guarded.admin()
    login = {"login": "op", "password": "op-password-1"}
    guarded.ctx.run(lambda unit: staff.add(unit, role="operator", **login))
    token = guarded.http.post("/v1/admin/session", json=login)
    operator = {"Authorization": f"Bearer {token.json()['token']}"}
    assert guarded.http.get("/v1/admin/risk", headers=operator).status_code == 200
    admin.holder("jon")
    holder = Wallet(guarded.http, "jon")
    holder.sign_in()
    assert guarded.http.get("/v1/admin/risk", headers=holder.auth).status_code == 403
    for query in (
        {"window_s": 8 * 86_400},
        {"limit": 201},
        {"action": "shrug"},
        {"key": "x" * 137},
        {"cursor": "bm90LWEtY3Vyc29y"},
    ):
        refused = admin.http.get("/v1/admin/risk", params=query, headers=admin.auth)
        assert refused.status_code == 422, (query, refused.text)
    paths = guarded.http.get("/openapi.json").json()["paths"]
    assert "RiskOut" in str(paths["/v1/admin/risk"]["get"]["responses"]["200"])


def test_decisions_reach_the_review_queue_with_their_evidence(guarded):
    admin, holder = _screened(guarded)
    queue = {item["evidence"]["guard"]: item for item in _risk_alerts(admin)}
    assert set(queue) == {"big_top_up", "huge_top_up", "many_phones"}
    review = queue["big_top_up"]
    assert (review["holder_id"], review["holder_handle"]) == (holder["id"], holder["handle"])
    evidence = review["evidence"]
    decisions = {d["id"]: d for d in _risk(admin, action="review")["decisions"]["items"]}
    assert evidence["decision"] == min(decisions) and evidence["last_decision"] == max(decisions)
    assert evidence["repeats"] == 2  # held twice: one alert while it is open
    assert (evidence["point"], evidence["action"]) == ("top_up", "review")
    assert evidence["features"] == decisions[evidence["decision"]]["features"]
    assert evidence["subject"] == [f"account:holder:{holder['id']}"]
    assert (evidence["score"], evidence["signals"]) == (25, ["topped_up_today"])
    assert queue["many_phones"]["evidence"]["features"][0]["value"] == 2
    dismissed = admin.post(
        f"/v1/admin/alerts/{review['id']}/review",
        {"action": "dismiss", "note": "the parents' term payment, confirmed by phone"},
    )
    assert dismissed.status_code == 200, dismissed.text
    assert (dismissed.json()["state"], dismissed.json()["resolution"]) == ("resolved", "dismiss")
    assert dismissed.json()["note"] == "the parents' term payment, confirmed by phone"
    resolved = _risk_alerts(admin, "resolved")
    assert [item["id"] for item in resolved] == [review["id"]]
    again = admin.top_up(holder["handle"], 80_000)  # held again: a new alert, the old one closed
    assert again.status_code == 403
    reopened = [a for a in _risk_alerts(admin) if a["evidence"]["guard"] == "big_top_up"]
    assert len(reopened) == 1 and reopened[0]["id"] != review["id"]
    leaves = _leaves(guarded)
    assert (
        leaves.count("alert") == 4
    )  # the scored allow raised none and leaves.count("review") == 1


def _leaves(server: Running) -> list[str]:
    size = int(server.http.get("/v1/ledger/checkpoint").text.splitlines()[1])
    found = []
    for index in range(size):
        entry = server.http.get(f"/v1/ledger/entries/{index}").json()
        found.append(str(parse_leaf(base64.b64decode(entry["data"])).type))
    return found


def test_decisions_from_before_their_keys_are_ranked_after_the_migration(guarded):
    """0013 on a database with decisions: their key rows come from their subjects."""
    admin, _holder = _screened(guarded)
    before = _risk(admin)["top_keys"]["items"]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for target in ("0012", "head"):
        with guarded.ctx.db.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if target == "0012" else command.upgrade)(config, target)
        guarded.ctx.db.engine.dispose()
    assert _risk(admin)["top_keys"]["items"] == before


def test_syncs_a_guard_suspends_still_count_as_refreshes(tmp_path):
    """A sync's suspend_offline revokes the live credential before it is replaced: the
    replacement is a refresh all the same, and the syncs after it are held to
    `refresh_max_per_day` (before, each was a first issue the limit never saw). The one sync
    that suspends gets its replacement even at the limit: else the holder would have none."""
    policy = tmp_path / "sync.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + SYNC_GUARD)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", policy_file=policy, refresh_max_per_day=2) as srv:
        srv.admin().holder("kim", balance=5_000)
        phone = Wallet(srv.http, "kim")
        phone.sign_in()
        phone.enrol()
        for mark in (None, 0, 0):  # the first credential, then the day's two refreshes
            assert phone.sync(mark=mark).status_code == 200
        assert phone.sync(mark=0).json()["code"] == "refresh_limit"
        for _ in range(3):
            srv.http.post("/v1/session", json={"login": "kim", "password": "not-the-password"})
        suspended = phone.sync(mark=0)  # at the limit, but its credential was just revoked
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["offline"] is False
        limited = phone.sync(mark=0)
        assert (limited.status_code, limited.json()["code"]) == (429, "refresh_limit")


GUESSING = """
[[guard]]
name = "guessing_address"
points = ["sign_in"]
# three failures before this attempt, which counts itself
when = 'features["address.sign_in_failure.1m"] >= 4'
action = "deny"
"""


def test_guesses_at_unknown_logins_are_one_alert_per_network(tmp_path):
    """A deny at sign-in for logins nobody has: each guess is a decision of its own account key
    (a login's digest), but the queue keeps one alert for the network, counting them."""
    policy = tmp_path / "guessing.toml"
    policy.write_text(guards_first(GUESSING))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", policy_file=policy) as srv:
        admin = srv.admin()
        answers = [
            srv.http.post("/v1/session", json={"login": f"who{n}", "password": "not-it-at-all"})
            for n in range(7)
        ]
        codes = [answer.json()["code"] for answer in answers]
        assert codes == ["unauthenticated"] * 3 + ["risk_denied"] * 4
        (alert,) = _risk_alerts(admin)
        assert alert["holder_id"] is None
        evidence = alert["evidence"]
        assert (evidence["guard"], evidence["grouped_by"]) == (
            "guessing_address",
            "network:127.0.0.0/24",
        )
        assert evidence["repeats"] == 4
        assert evidence["subject"][0].startswith("account:login:")
        denied = _risk(admin, action="deny")["decisions"]["items"]
        assert len({d["subject"][0] for d in denied}) == 4  # four logins, one alert


def test_a_person_releases_a_held_request_once(guarded):
    admin = guarded.admin()
    holder = admin.holder("lea")
    held = admin.top_up(holder["handle"], 60_000)
    assert held.json()["code"] == "risk_review"
    (alert,) = _risk_alerts(admin)
    login = {"login": "op", "password": "op-password-1"}
    guarded.ctx.run(lambda unit: staff.add(unit, role="operator", **login))
    token = guarded.http.post("/v1/admin/session", json=login).json()["token"]
    by_operator = guarded.http.post(
        f"/v1/admin/alerts/{alert['id']}/review",
        json={"action": "release", "note": "my own refund"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert by_operator.status_code == 403, by_operator.text  # an admin's to release
    released = admin.post(
        f"/v1/admin/alerts/{alert['id']}/review",
        {"action": "release", "note": "her scholarship, paid at the counter"},
    )
    assert released.status_code == 200, released.text
    assert released.json()["resolution"] == "release"
    assert admin.top_up(holder["handle"], 60_000).status_code == 200  # let through, once
    assert admin.account(holder["account_id"])["balance"] == 60_000
    again = admin.top_up(holder["handle"], 60_000)
    assert again.json()["code"] == "risk_review"  # the release is used up: a new alert
    (reopened,) = _risk_alerts(admin)
    assert reopened["id"] != alert["id"]
    decisions = _risk(admin, action="review")["decisions"]["items"]
    assert [d["released_by"] for d in decisions] == [None, alert["id"], None]
    (used,) = _risk_alerts(admin, "resolved")
    assert used["evidence"]["released_to"] == decisions[1]["id"]
    phones = [Wallet(guarded.http, "lea") for _ in range(3)]
    for phone in phones:
        phone.sign_in()
    phones[0].enrol()
    phones[1].enrol()
    with pytest.raises(AssertionError, match="risk_denied"):
        phones[2].enrol()
    deny = next(a for a in _risk_alerts(admin) if a["evidence"]["action"] == "deny")
    refused = admin.post(f"/v1/admin/alerts/{deny['id']}/review", {"action": "release"})
    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")
    assert _leaves(guarded).count("review") == 1
