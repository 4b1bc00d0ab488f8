"""The risk engine's points (issue 15, "Rules and score"): a parallel burst of wrong passwords
meets the guard as a sequence of them does (each attempt is counted as it starts, so the others
see it), on both databases; the device key's sign-in is judged like a password's, and a step-up
asked of an account under attack is met by its enrolled device."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.server.conftest import database_url
from tests.server.harness import ManualClock, Running, Wallet, running_server
from tests.server.test_risk_engine import WRONG, _decisions, _from, guards_first

BURST = """
[[guard]]
name = "address_burst"
points = ["sign_in"]
when = 'features["address.sign_in_failure.1m"] >= 6 && !request.device'
action = "deny"

[[guard]]
name = "device_after_guessing"
points = ["sign_in"]
when = 'request.device && features["account.sign_in_failure.1h"] >= 3'
action = "deny"
"""
TRIES = 12


@pytest.fixture(params=["sqlite", "postgres"])
def burst_server(request: pytest.FixtureRequest, tmp_path) -> Iterator[Running]:
    policy = tmp_path / "burst.toml"
    policy.write_text(guards_first(BURST))
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", policy_file=policy) as running:
        yield running


def test_a_parallel_burst_of_guesses_meets_the_guard(burst_server):
    """Twelve wrong passwords at once from one address, each at another login: five are told
    the password is wrong, and from the sixth attempt counted on the guard refuses, however
    the attempts interleave (counted after the password check, all twelve would have read 0)."""
    server: Running = burst_server

    def guess(n: int) -> tuple[int, str]:
        with _from("127.0.6.6", server.url) as guesser:
            tried = guesser.post("/v1/session", json={"login": f"who{n}", "password": WRONG})
            return tried.status_code, tried.json()["code"]

    with ThreadPoolExecutor(TRIES) as pool:
        answers = sorted(pool.map(guess, range(TRIES)))
    assert answers == [(401, "unauthenticated")] * 5 + [(403, "risk_denied")] * 7
    # a refused attempt is withdrawn: each read 5 and itself (the packaged stuffing_suspected
    # stepped some of the five up: they were wrong anyway)
    decisions = [d for d in _decisions(server) if d["action"] == "deny"]
    assert [d["features"]["address.sign_in_failure.1m"] for d in decisions] == [6] * 7
    assert {d["guard"] for d in decisions} == {"address_burst"}
    with _from("127.0.6.6", server.url) as guesser:  # refused attempts were no guesses
        again = guesser.post("/v1/session", json={"login": "who0", "password": WRONG})
    assert again.json()["code"] == "risk_denied"
    assert _decisions(server)[-1]["features"]["address.sign_in_failure.1m"] == 6


def test_device_sign_in_is_judged_and_counted(burst_server):
    server: Running = burst_server
    server.admin().holder("ida")
    phone = Wallet(server.http, "ida")
    phone.sign_in()
    phone.enrol()
    assert phone.device_sign_in().status_code == 200  # counted as a sign-in: no record
    thief = Wallet(server.http, "ida")  # a key never enrolled: counted as a failure
    assert thief.device_sign_in().status_code == 401
    for _ in range(2):
        server.http.post("/v1/session", json={"login": "ida", "password": WRONG})
    refused = phone.device_sign_in()
    assert (refused.status_code, refused.json()["code"]) == (403, "risk_denied"), refused.text
    decision = _decisions(server)[-1]
    assert decision["guard"] == "device_after_guessing"
    assert decision["features"]["account.sign_in_failure.1h"] == 4  # 1 + 2 + this one
    assert f"device:{phone.device_id}" in decision["subject"]


def test_a_step_up_is_met_by_the_enrolled_device(tmp_path):
    """Ten wrong passwords put the account under attack (step_up): its password no longer signs
    in alone, its enrolled device still does."""
    url, clock = f"sqlite:///{tmp_path / 'db.sqlite'}", ManualClock()
    with running_server(url, tmp_path / "data", clock=clock) as server:
        server.admin().holder("jon")
        phone = Wallet(server.http, "jon")
        phone.sign_in()
        phone.enrol()
        failed = 0
        while failed < 10:  # each once the throttle lets it through
            tried = server.http.post("/v1/session", json={"login": "jon", "password": WRONG})
            if tried.status_code == 429:
                clock.advance(int(tried.headers["Retry-After"]))
                continue
            failed += 1
        assert phone.device_sign_in().status_code == 200
        step_up = _decisions(server)[-1]
    assert (step_up["guard"], step_up["action"]) == ("account_under_attack", "step_up")
    assert f"device:{phone.device_id}" in step_up["subject"]
