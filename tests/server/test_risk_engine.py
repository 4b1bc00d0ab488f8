"""The risk engine's rules and score over HTTP (issue 15, "Rules and score"): credential stuffing
from one network is rate-limited with Retry-After while an honest user on another network signs
in freely; a campus network on the allowlist is counted per account only; every decision is a
record naming the guard, the policy and each feature read with its value; and a reissue's
decision reads a score above 0 when its signals hold."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from duopass.ledger.leaf import parse_leaf
from duopass.policy import DEFAULT_POLICY
from duopass.protocol.encoding import b64u_encode
from duopass.server.store.risk import RiskDecision
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit
from tests.server.harness import SQLITE_ONLY, ManualClock, Running, Wallet, running_server
from tests.server.test_ticket_reissue import DAY, _ask, _bought, _confirm, _new_phone
from tests.server.ticketing import event_on_sale, ticket_wallet

WRONG = "not-the-password"


def _from(address: str, base_url: str) -> httpx.Client:
    """A client whose connections come from `address` (another 127.0.0.0/8 address)."""
    return httpx.Client(
        base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=30
    )


def _suspended(server: Running, holder_id: int) -> bool:
    def read(unit: Unit) -> bool:
        holder = unit.session.get(Holder, holder_id)
        assert holder is not None
        return bool(holder.offline_suspended)

    return server.ctx.run(read)


def _ledger_size(server: Running) -> int:
    return int(server.http.get("/v1/ledger/checkpoint").text.splitlines()[1])


def _leaf_type(server: Running, index: int) -> str:
    entry = server.http.get(f"/v1/ledger/entries/{index}").json()
    return str(parse_leaf(base64.b64decode(entry["data"])).type)


def guards_first(extra: str) -> str:
    """The packaged policy with `extra`'s guards before its own (first match wins): a test's
    guard decides whatever the packaged ones would have made of the same request."""
    signals, guards = DEFAULT_POLICY.read_text().split("[[guard]]", 1)
    return signals + extra.strip() + "\n\n[[guard]]" + guards


def _decisions(server: Running) -> list[dict[str, Any]]:
    def read(unit: Unit) -> list[dict[str, Any]]:
        rows = unit.session.scalars(select(RiskDecision).order_by(RiskDecision.id))
        return [
            {
                "point": row.point,
                "guard": row.guard,
                "action": row.action,
                "score": row.score,
                "signals": json.loads(row.signals),
                "features": {f["feature"]: f["value"] for f in json.loads(row.features)},
                "subject": json.loads(row.subject),
                "version": row.policy_version,
                "sha256": bytes(row.policy_sha256).hex(),
            }
            for row in rows
        ]

    return server.ctx.run(read)


def test_credential_stuffing_is_rate_limited_and_an_honest_user_is_not(clocked_server, clock):
    server: Running = clocked_server
    admin = server.admin()
    for login in ("ana", "ben", "cai"):
        admin.holder(login)
    stuffer, honest = _from("127.0.5.7", server.url), _from("127.0.9.7", server.url)
    logins = ["ana", "ben", "cai", *(f"guess{n}" for n in range(17))]  # 20 accounts, a try each
    with stuffer, honest:
        for login in logins:
            tried = stuffer.post("/v1/session", json={"login": login, "password": WRONG})
            assert tried.status_code == 401, tried.text
        blocked = stuffer.post("/v1/session", json={"login": "ana", "password": "pw-ana-secret"})
        assert blocked.status_code == 429, blocked.text
        assert blocked.json()["code"] == "risk_rate_limited"
        assert blocked.headers["Retry-After"] == "900"
        for login in ("ana", "ben"):  # the same accounts, from their own network: no friction
            fine = honest.post(
                "/v1/session", json={"login": login, "password": f"pw-{login}-secret"}
            )
            assert fine.status_code == 200, fine.text
        clock.advance(3601)  # the hour has passed: the network is no longer held
        again = stuffer.post("/v1/session", json={"login": "ana", "password": "pw-ana-secret"})
        assert again.status_code == 200, again.text
    decisions = _decisions(server)
    # from the second guess on, another account had failed there and nobody had signed in:
    # stepped up (each guess was wrong anyway, 401); at the 21st the network is rate-limited.
    # Allows with score 0 leave no record; the honest network's sign-ins none.
    actions = [d["action"] for d in decisions]
    assert actions == ["step_up"] * 19 + ["rate_limit"]
    assert {d["guard"] for d in decisions[:19]} == {"stuffing_suspected"}
    decision = decisions[-1]
    policy = server.http.get("/v1/policy").json()
    assert (decision["version"], decision["sha256"]) == (policy["version"], policy["sha256"])
    assert (decision["point"], decision["guard"]) == ("sign_in", "credential_stuffing")
    assert (decision["score"], decision["signals"]) == (60, ["network_stuffing", "network_failing"])
    assert decision["features"] == {
        "account.sign_in_failure.1m": 2,  # the attempt judged is counted (then withdrawn)
        "account.sign_in_failure.1h": 2,
        "account.sign_in_failure.1d": 2,
        "address.sign_in_failure.1m": 21,
        "network.sign_in_failure.1h": 21,
        "network.sign_in_failure.distinct_account.1h": 20,
        "network.sign_in.1h": 0,
        "account.age_s": 0,  # ana was made at this very time of the test clock
    }
    assert "network:127.0.5.0/24" in decision["subject"]
    assert "address:127.0.5.7" in decision["subject"]
    assert policy["guards"][0]["name"] == "credential_stuffing"


def test_an_allowlisted_campus_network_is_counted_per_account_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    exempt = ("127.0.7.0/24",)
    with running_server(url, tmp_path / "data", throttle_exempt_networks=exempt) as server:
        server.admin().holder("dia")
        with _from("127.0.7.9", server.url) as campus:
            for n in range(25):  # students mistype their passwords behind one NAT
                tried = campus.post("/v1/session", json={"login": f"s{n}", "password": WRONG})
                assert tried.status_code == 401, tried.text
            fine = campus.post("/v1/session", json={"login": "dia", "password": "pw-dia-secret"})
            assert fine.status_code == 200, fine.text
        assert _decisions(server) == []


def test_reissues_from_an_allowlisted_campus_are_no_farm(tmp_path):
    """Six holders move their tickets from the allowlisted campus NAT, six from another network,
    in one hour: only the other network's sixth reads as a farm."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    exempt = ("127.0.7.0/24",)
    with running_server(url, tmp_path / "data", throttle_exempt_networks=exempt) as server:
        admin = server.admin()
        sale = event_on_sale(admin, doors=int(time.time()) + 2 * DAY)
        for address in ("127.0.7.9", "127.0.8.9"):
            with _from(address, server.url) as http:
                for n in range(6):
                    fan = ticket_wallet(http, admin, f"fan-{address}-{n}", balance=10_000)
                    sub = fan.buy(sale).json()["tickets"][0]
                    phone = Wallet(http, fan.wallet.login)
                    phone.sign_in()
                    phone.enrol()
                    key = {"device_key": b64u_encode(phone.key.public)}
                    asked = http.post(f"/v1/me/tickets/{sub}/reissue", headers=phone.auth, json=key)
                    assert asked.status_code == 201, asked.text
        farms = [d for d in _decisions(server) if "reissue_farm" in d["signals"]]
        assert [d["subject"] for d in farms] == [farms[0]["subject"]]
        assert "network:127.0.8.0/24" in farms[0]["subject"]


def test_an_account_guessed_at_needs_its_second_factor(tmp_path):
    url, clock = f"sqlite:///{tmp_path / 'db.sqlite'}", ManualClock()
    with running_server(url, tmp_path / "data", clock=clock) as server:
        server.admin().holder("eve")
        with _from("127.0.3.3", server.url) as guesser:
            failed = 0
            while failed < 10:  # ten wrong guesses, each once the throttle lets it through
                tried = guesser.post("/v1/session", json={"login": "eve", "password": WRONG})
                if tried.status_code == 429:
                    clock.advance(int(tried.headers["Retry-After"]))
                    continue
                assert tried.status_code == 401, tried.text
                failed += 1
            refused = None
            while refused is None or refused.status_code == 429:
                if refused is not None:
                    clock.advance(int(refused.headers["Retry-After"]))
                right = {"login": "eve", "password": "pw-eve-secret"}
                refused = guesser.post("/v1/session", json=right)
        assert refused.status_code == 401 and refused.json()["code"] == "step_up_required"
        wrong = None  # a wrong password is told only that: no word of a second factor
        with _from("127.0.3.3", server.url) as guesser:
            while wrong is None or wrong.status_code == 429:
                if wrong is not None:
                    clock.advance(int(wrong.headers["Retry-After"]))
                wrong = guesser.post("/v1/session", json={"login": "eve", "password": WRONG})
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthenticated", wrong.text
        decision = _decisions(server)[-2]
        assert (decision["guard"], decision["action"]) == ("account_under_attack", "step_up")
        assert decision["features"]["account.sign_in_failure.1h"] == 11  # with this attempt
        assert (decision["score"], decision["signals"]) == (30, ["account_failing"])


@SQLITE_ONLY
def test_a_reissue_decision_reads_the_risk_score(server):
    admin = server.admin()
    fan, sub, _ = _bought(server, admin, doors=int(time.time()) + 2 * DAY)
    phones = [fan]
    for _ in range(3):  # three new phones in a day
        phone = _new_phone(server, phones[-1])
        asked = _ask(server, phone, sub)
        assert asked["outcome"] == "allow", asked
        _confirm(server, phone, asked["request_id"])
        phones.append(phone)
    phone = _new_phone(server, phones[-1])
    asked = _ask(server, phone, sub)
    queue = server.http.get("/v1/admin/reviews", headers=admin.auth).json()["items"]
    waiting = [item for item in queue if item["request_id"] == asked["request_id"]]
    assert waiting[0]["inputs"]["risk"]["score"] == 60  # many devices, and a new one
    scored = [d for d in _decisions(server) if d["point"] == "reissue"]
    assert scored[-1]["signals"] == ["reissue_many_devices", "young_device_reissue"]
    assert scored[-1]["features"]["account.reissue_request.distinct_device.1d"] == 3
    assert 0 <= scored[-1]["features"]["device.age_s"] < 3600  # the phone enrolled just now
    assert scored[-1]["action"] == "allow"  # guards do not act at reissue: the rules decide


GUARDED = """
[[guard]]
name = "huge_top_up"
points = ["top_up"]
when = "request.amount > 90000"
action = "suspend_offline"

[[guard]]
name = "big_top_up"
points = ["top_up"]
when = "request.amount > 50000"
action = "review"

[[guard]]
name = "many_phones"
points = ["device_enrolment"]
when = 'features["account.device_enrolment.1d"] >= 2'
action = "deny"
"""


def test_top_ups_and_enrolments_are_screened_and_counted(tmp_path):
    """A policy with guards at the counter's top-up and at device enrolment: each acts, with its
    decision kept though the request was refused, and the counts it read."""
    policy = tmp_path / "guarded.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + GUARDED)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", policy_file=policy) as server:
        admin = server.admin()
        holder = admin.holder("fay")
        assert admin.top_up(holder["handle"], 20_000).status_code == 200
        big = admin.top_up(holder["handle"], 60_000)
        assert (big.status_code, big.json()["code"]) == (403, "risk_review"), big.text
        assert admin.account(holder["account_id"])["balance"] == 20_000  # nothing booked
        assert not _suspended(server, holder["id"])
        assert admin.top_up(holder["handle"], 100_000).status_code == 200  # booked, and ...
        assert _suspended(server, holder["id"])  # ... offline use suspended, on the ledger
        leaves = [_leaf_type(server, n) for n in range(_ledger_size(server))]
        assert leaves.count("offline_suspend") == 1
        phones = [Wallet(server.http, "fay") for _ in range(3)]
        for phone in phones:
            phone.sign_in()
        phones[0].enrol()
        phones[1].enrol()
        with pytest.raises(AssertionError, match="risk_denied"):
            phones[2].enrol()
        review, suspend, deny = _decisions(server)
    assert (suspend["guard"], suspend["action"]) == ("huge_top_up", "suspend_offline")
    assert suspend["features"]["account.top_up.1h"] == 1  # the refused one was not counted
    assert (review["point"], review["guard"], review["action"]) == (
        "top_up",
        "big_top_up",
        "review",
    )
    assert review["features"].pop("account.age_s") >= 0  # fay's, from her row
    assert review["features"] == {"account.top_up.1h": 1, "account.top_up.1d": 1}
    assert (deny["point"], deny["guard"], deny["action"]) == (
        "device_enrolment",
        "many_phones",
        "deny",
    )
    assert deny["features"]["account.device_enrolment.1d"] == 2
    assert deny["subject"][0] == f"account:holder:{holder['id']}"


SYNC_GUARD = """
[[guard]]
name = "sync_after_guessing"
points = ["wallet_sync"]
when = 'features["account.sign_in_failure.1h"] >= 3'
action = "suspend_offline"
"""


def test_a_sync_after_guessing_gets_an_online_only_credential(tmp_path):
    policy = tmp_path / "sync.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + SYNC_GUARD)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with running_server(url, tmp_path / "data", policy_file=policy) as server:
        holder = server.admin().holder("gus", balance=5_000)
        calm = Wallet(server.http, "gus")
        calm.sign_in()
        calm.enrol()
        assert calm.sync().json()["offline"] is True  # nothing held: an offline credential
        for _ in range(3):
            server.http.post("/v1/session", json={"login": "gus", "password": WRONG})
        synced = calm.sync()
        assert synced.status_code == 200, synced.text
        assert synced.json()["offline"] is False
        assert _suspended(server, holder["id"])
        decision = _decisions(server)[-1]
    assert (decision["point"], decision["guard"]) == ("wallet_sync", "sync_after_guessing")
    device_age = decision["features"].pop("device.age_s")  # the syncing phone's
    assert 0 <= device_age <= decision["features"].pop("account.age_s")  # gus came first
    assert decision["features"] == {
        "account.sign_in_failure.1h": 3,
        "account.sign_in_failure.1d": 3,
    }
