"""Distinct accounts per wallet installation and the age of a device key and an account (issue
15, "Features"): one phone (its `Duopass-Installation`) signing in to many accounts meets the
packaged `phone_on_many_accounts` step-up, and enrolling on one more the
`phone_enrolling_many_accounts` review, while other phones and the same accounts elsewhere do
not; a malformed installation id is refused; the ages come from the rows on the server's clock,
a guard reads them, and the decision records and `GET /v1/admin/risk` name them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from duopass.protocol.limits import INSTALLATION_HEADER
from duopass.server.store.tables import Holder
from duopass.server.unit_of_work import Unit
from tests.server.harness import Admin, ManualClock, Running, Wallet, running_server
from tests.server.test_risk_engine import _decisions, guards_first

PHONE, OTHER_PHONE = "farm-phone-0123456789", "someone-elses-phone-42"
TRIED_1H = "installation.account_attempt.distinct_account.1h"
TRIED_1D = "installation.account_attempt.distinct_account.1d"


def _phone(address: str, base_url: str, installation: str | None) -> httpx.Client:
    """A phone's app: its connections from `address` (another 127.0.0.0/8 address), naming its
    installation in every request, as a wallet would."""
    headers = {} if installation is None else {INSTALLATION_HEADER: installation}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, headers=headers, timeout=30)


def _sign_in(http: httpx.Client, login: str) -> httpx.Response:
    return http.post("/v1/session", json={"login": login, "password": f"pw-{login}-secret"})


def test_one_phone_signing_in_to_many_accounts_is_stepped_up(clocked_server, clock):
    server: Running = clocked_server
    admin = server.admin()
    logins = [f"acct{n}" for n in range(7)]
    for login in logins:
        admin.holder(login)
    farm = _phone("127.0.12.7", server.url, PHONE)
    other = _phone("127.0.13.7", server.url, OTHER_PHONE)
    bare = _phone("127.0.12.7", server.url, None)
    with farm, other, bare:
        for login in logins[:3]:
            assert _sign_in(farm, login).status_code == 200
        fourth = _sign_in(farm, logins[3])
        assert (fourth.status_code, fourth.json()["code"]) == (401, "step_up_required")
        assert _sign_in(other, logins[3]).status_code == 200  # the account is not to blame
        assert _sign_in(bare, logins[3]).status_code == 200  # no id, nothing counted: a signal
        clock.advance(3601)  # the hour forgets; the day has four accounts, fewer than six
        assert _sign_in(farm, logins[4]).status_code == 200
        sixth = _sign_in(farm, logins[5])
        assert (sixth.status_code, sixth.json()["code"]) == (401, "step_up_required")
    first, second = (d for d in _decisions(server) if d["guard"] == "phone_on_many_accounts")
    assert (first["action"], first["point"]) == ("step_up", "sign_in")
    assert (first["features"][TRIED_1H], first["features"][TRIED_1D]) == (4, 4)
    assert (second["features"][TRIED_1H], second["features"][TRIED_1D]) == (2, 6)
    assert first["signals"] == second["signals"] == ["installation_many_accounts"]
    installation = [key for key in first["subject"] if key.startswith("installation:")]
    assert len(installation) == 1 and PHONE not in installation[0]  # a keyed digest
    seen = _risk_page(admin, key=installation[0])
    # newest first: the sixth account, the fifth (allowed, scored 30), the fourth
    assert [d["guard"] for d in seen] == ["phone_on_many_accounts", None, "phone_on_many_accounts"]
    assert {"feature": TRIED_1H, "key": installation[0], "value": 4} in seen[-1]["features"]


def _risk_page(admin: Admin, **query: Any) -> list[dict[str, Any]]:
    answer = admin.http.get("/v1/admin/risk", params=query, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["decisions"]["items"])


def test_one_phone_enrolling_on_a_fourth_account_is_held_for_review(tmp_path):
    url, clock = f"sqlite:///{tmp_path / 'db.sqlite'}", ManualClock()
    with running_server(url, tmp_path / "data", clock=clock) as server:
        admin = server.admin()
        for n in range(4):
            admin.holder(f"fan{n}")
        with _phone("127.0.14.7", server.url, PHONE) as farm:
            for n in range(3):
                phone = Wallet(farm, f"fan{n}")
                phone.sign_in()
                phone.enrol()  # one, two, three accounts on this phone: enrolled
                clock.advance(1300)  # a sign-in an hour at most, under the step-up
            phone = Wallet(farm, "fan3")
            phone.sign_in()
            with pytest.raises(AssertionError, match="risk_review"):
                phone.enrol()
        with _phone("127.0.15.7", server.url, OTHER_PHONE) as own:
            phone = Wallet(own, "fan3")
            phone.sign_in()
            phone.enrol()  # fan3 on a phone of its own: enrolled
        held = [d for d in _decisions(server) if d["point"] == "device_enrolment"]
    assert [(d["guard"], d["action"]) for d in held] == [
        ("phone_enrolling_many_accounts", "review")
    ]
    assert held[0]["features"][TRIED_1D] == 4


YOUNG_PHONE_SYNC = """
[[signal]]
name = "young_account_sync"
when = 'point == "wallet_sync" && features["account.age_s"] < 3600'
weight = 10

[[guard]]
name = "young_phone_sync"
points = ["wallet_sync"]
when = 'features["device.age_s"] >= 0 && features["device.age_s"] < 3600'
action = "review"
"""


def test_the_ages_of_a_device_key_and_an_account_are_read_on_the_servers_clock(tmp_path):
    """A holder made at t, its phone enrolled at t+500, syncing at t+750: device.age_s 250 and
    account.age_s 750 (from the rows, on the test clock), which a guard reads; an hour on, the
    same phone syncs. A holder whose row has no creation time reads None, -1 to the policy."""
    policy = tmp_path / "young.toml"
    policy.write_text(guards_first(YOUNG_PHONE_SYNC))
    url, clock = f"sqlite:///{tmp_path / 'db.sqlite'}", ManualClock()
    with running_server(url, tmp_path / "data", clock=clock, policy_file=policy) as server:
        holder = server.admin().holder("ola", balance=5_000)
        clock.advance(500)
        phone = Wallet(server.http, "ola")
        phone.sign_in()
        phone.enrol()
        clock.advance(250)
        young = phone.sync()
        assert (young.status_code, young.json()["code"]) == (403, "risk_review"), young.text
        clock.advance(3600)
        assert phone.sync().status_code == 200
        _forget_creation(server, holder["id"])
        clock.advance(5)
        assert phone.sync().status_code == 200
        held, unknown = [d for d in _decisions(server) if d["point"] == "wallet_sync"]
    assert held["guard"] == "young_phone_sync"
    assert (held["features"]["device.age_s"], held["features"]["account.age_s"]) == (250, 750)
    # the hour-old phone of a day-old account: no signal, no guard, no record; then the
    # account's age unknown: None in the record, -1 to the policy (below 3600: the signal held)
    assert (unknown["guard"], unknown["signals"]) == (None, ["young_account_sync"])
    assert (unknown["features"]["device.age_s"], unknown["features"]["account.age_s"]) == (
        3855,
        None,
    )


def _forget_creation(server: Running, holder_id: int) -> None:
    """The holder as one created before migration 0014 left it: no creation time."""

    def forget(unit: Unit) -> None:
        holder = unit.session.get(Holder, holder_id)
        assert holder is not None and holder.created_at is not None
        holder.created_at = None

    server.ctx.run(forget)


def test_a_malformed_installation_id_is_refused(server):
    server.admin().holder("pia")
    for bad in ("short", "x" * 65, "has space in it 123", "dots.are.not.allowed"):
        answer = server.http.post(
            "/v1/session",
            json={"login": "pia", "password": "pw-pia-secret"},
            headers={INSTALLATION_HEADER: bad},
        )
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_request"), bad
    fine = {INSTALLATION_HEADER: "A-good_one-0123456"}
    right = {"login": "pia", "password": "pw-pia-secret"}
    assert server.http.post("/v1/session", json=right, headers=fine).status_code == 200
