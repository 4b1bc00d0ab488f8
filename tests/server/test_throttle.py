"""Sign-in that cannot be guessed (issue 10 §4): failed proofs are counted per account and per
network in the database, with growing delays and a Retry-After; several server processes and a
restart see the same counts; the enrolled device still signs in with its key."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest
from sqlalchemy import update

from duopass.policy import DEFAULT_POLICY
from duopass.server.services import throttle
from duopass.server.store.tables import Holder
from tests.server.conftest import database_url
from tests.server.harness import ManualClock, TerminalClient, Wallet, running_server

WRONG = {"login": "mia", "password": "not-the-password"}
RIGHT = {"login": "mia", "password": "pw-mia-secret"}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    return database_url(request, tmp_path)


def _from(address: str, base_url: str) -> httpx.Client:
    """A client whose connections come from `address` (another 127.0.0.0/8 address)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


def _throttled(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "throttled"
    return int(answer.headers["retry-after"])


def test_the_delays_grow_and_stop_growing():
    account = throttle.ACCOUNT
    delays = [throttle.delay_s(account, n) for n in range(1, 20)]
    assert delays[:4] == [0, 0, 0, 0]
    assert delays[4:9] == [2, 4, 8, 16, 32]
    assert max(delays) == account.max_s == 900
    assert delays == sorted(delays)


def _guesses_in(limit: throttle.Limit, seconds: int) -> int:
    """How many wrong guesses a patient attacker makes in `seconds` against one key."""
    now, failures, guesses = 0, 0, 0
    while now <= seconds:
        failures += 1
        guesses += 1
        now += max(1, throttle.delay_s(limit, failures))
    return guesses


def test_an_attacker_gets_few_guesses_an_hour():
    assert _guesses_in(throttle.ACCOUNT, 3600) <= 20
    assert _guesses_in(throttle.ACCOUNT, 2 * 3600) - _guesses_in(throttle.ACCOUNT, 3600) <= 5
    assert _guesses_in(throttle.NETWORK, 3600) <= 70


def test_guessing_one_password_is_refused_without_locking_the_owner_out(clocked_server, clock):
    """The tester's 300 guesses, eight at a time: five are checked, the rest refused at once
    (no password hash computed); the owner's device signs in meanwhile, and others' too."""
    server = clocked_server
    admin = server.admin()
    admin.holder("mia")
    admin.holder("noa")
    owner = Wallet(server.http, "mia")
    owner.sign_in()
    owner.enrol()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: server.http.post("/v1/session", json=WRONG), range(300)))
    statuses = [answer.status_code for answer in answers]
    odd = [answer.text for answer in answers if answer.status_code not in (401, 429)]
    assert statuses.count(401) == throttle.ACCOUNT.free, (sorted(set(statuses)), odd[:3])
    assert statuses.count(429) == 300 - throttle.ACCOUNT.free
    assert {_throttled(a) for a in answers if a.status_code == 429} == {2}
    wait = _throttled(server.http.post("/v1/session", json=RIGHT))
    assert owner.device_sign_in().status_code == 200
    with _from("127.0.1.7", server.url) as elsewhere:
        other = {"login": "noa", "password": "pw-noa-secret"}
        assert elsewhere.post("/v1/session", json=other).status_code == 200
    clock.advance(wait)
    assert server.http.post("/v1/session", json=RIGHT).status_code == 200
    # the right password forgot the failures: five more wrong ones before a delay
    assert [server.http.post("/v1/session", json=WRONG).status_code for _ in range(5)] == [401] * 5
    _throttled(server.http.post("/v1/session", json=WRONG))


def test_the_counts_are_shared_by_server_processes_and_survive_a_restart(url, tmp_path):
    clock = ManualClock()
    data = tmp_path / "data"
    with (
        running_server(url, data, clock=clock) as one,
        running_server(url, data, clock=clock) as two,
    ):
        one.admin().holder("mia")
        for n in range(throttle.ACCOUNT.free):
            answer = (one if n % 2 else two).http.post("/v1/session", json=WRONG)
            assert answer.status_code == 401
        _throttled(one.http.post("/v1/session", json=RIGHT))
        _throttled(two.http.post("/v1/session", json=RIGHT))
    with running_server(url, data, clock=clock) as again:
        _throttled(again.http.post("/v1/session", json=RIGHT))
        clock.advance(2)
        assert again.http.post("/v1/session", json=RIGHT).status_code == 200


def test_a_network_that_keeps_failing_waits_unless_it_is_exempt(tmp_path):
    """On SQLite only: the counting is the same code as above on both databases, and each of
    these hundred guesses costs a password hash. The throttle alone: a policy without the risk
    engine's guards, whose credential-stuffing guard holds such a network sooner
    (tests/server/test_risk_engine.py)."""
    url, clock = f"sqlite:///{tmp_path / 'duopass.db'}", ManualClock()
    exempt = ("127.0.3.0/24",)
    unguarded = tmp_path / "unguarded.toml"
    unguarded.write_text(DEFAULT_POLICY.read_text().split("[[guard]]")[0])
    settings = {"throttle_exempt_networks": exempt, "policy_file": unguarded}
    with running_server(url, tmp_path / "data", clock=clock, **settings) as s:
        s.admin().holder("mia")
        with _from("127.0.2.9", s.url) as noisy, _from("127.0.3.9", s.url) as campus:
            for client in (noisy, campus):  # one wrong guess each for many logins
                for n in range(throttle.NETWORK.free):
                    guess = {"login": f"user-{n}", "password": "guess"}
                    assert client.post("/v1/session", json=guess).status_code == 401
            _throttled(noisy.post("/v1/session", json=RIGHT))
            assert campus.post("/v1/session", json=RIGHT).status_code == 200
        with _from("127.0.4.9", s.url) as other:
            assert other.post("/v1/session", json=RIGHT).status_code == 200


def test_staff_sign_in_and_one_time_codes_are_throttled_too(clocked_server):
    server = clocked_server
    server.admin().holder("mia")
    secret = pyotp.random_base32()
    server.ctx.run(
        lambda u: u.session.execute(
            update(Holder).where(Holder.login == "mia").values(totp_secret=secret)
        )
    )
    staff_guess = {"login": "admin", "password": "guess"}
    for _ in range(throttle.ACCOUNT.free):
        assert server.http.post("/v1/admin/session", json=staff_guess).status_code == 401
    _throttled(server.http.post("/v1/admin/session", json=staff_guess))
    # the right password with wrong one-time codes: each is a guess of the code
    wrong_code = {
        **RIGHT,
        "otp": next(c for c in ("000000", "111111") if c != pyotp.TOTP(secret).now()),
    }
    for _ in range(throttle.ACCOUNT.free):
        assert server.http.post("/v1/session", json=wrong_code).status_code == 401
    _throttled(server.http.post("/v1/session", json=wrong_code))


def test_wrong_enrolment_codes_are_throttled(clocked_server, clock):
    server = clocked_server
    admin = server.admin()
    merchant = admin.merchant("canteen")
    code = admin.terminal(
        "till-9", mode="pay", venue="canteen", merchant_account_id=merchant, currency="CNY"
    )
    till = TerminalClient(server.http, "till-9")
    for _ in range(throttle.ENROLMENT.free):
        assert till.enrol(uuid.uuid4().hex).status_code == 403
    wait = _throttled(till.enrol(code))
    clock.advance(wait)
    assert till.enrol(code).status_code == 200
