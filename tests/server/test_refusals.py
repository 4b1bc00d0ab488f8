"""Every input from outside has a limit and a stable refusal: problem documents, never a 500."""

from __future__ import annotations

import json
import time

import pyotp
import pytest

from duopass.protocol import SigningKey
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.signed_requests import sign_request
from tests.server.harness import TerminalClient, Wallet

SMALL_ORDER_KEY = bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000080")


def _problem(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code


def test_terminal_enrolment_is_one_time_and_needs_proof(server):
    admin = server.admin()
    merchant = admin.merchant("m")
    code = admin.terminal("till-x", mode="pay", merchant_account_id=merchant, currency="CNY")
    impostor = TerminalClient(server.http, "till-x")
    forged = impostor.key.sign(b"something else")
    answer = server.http.post(
        "/v1/terminal/enrol",
        json={
            "terminal_id": "till-x",
            "enrol_code": code,
            "public_key": b64u_encode(impostor.key.public),
            "proof": b64u_encode(forged),
        },
    )
    _problem(answer, 403, "bad_proof")
    till = TerminalClient(server.http, "till-x")
    assert till.enrol(code).status_code == 200
    _problem(TerminalClient(server.http, "till-x").enrol(code), 403, "bad_enrolment_code")
    _problem(
        server.http.post(
            "/v1/admin/terminals",
            json={"terminal_id": "till-x", "mode": "identity"},
            headers=admin.auth,
        ),
        409,
        "conflict",
    )


def test_terminal_requests_must_be_signed_by_the_enrolled_key(server):
    admin = server.admin()
    till = TerminalClient(server.http, "gate-1")
    assert till.enrol(admin.terminal("gate-1", mode="identity", venue="library")).status_code == 200
    body = json.dumps(
        {
            "code": "DP1:x",
            "mode": "identity",
            "terminal_id": "gate-1",
            "seq": 1,
            "scanned_at": int(time.time()),
        }
    ).encode()
    stranger = SigningKey.generate()
    for key, when in ((stranger, int(time.time())), (till.key, int(time.time()) - 3_600)):
        headers = sign_request(
            key, "gate-1", method="POST", target="/v1/terminal/scans", time=when, body=body
        )
        answer = server.http.post(
            "/v1/terminal/scans",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        _problem(answer, 401, "unauthenticated")
    _problem(server.http.post("/v1/terminal/scans", json={}), 422, "invalid_request")
    assert till.scan("DP1:x", mode="identity")["reason"] == "MALFORMED"


def test_device_keys_must_be_usable_and_proven(server):
    admin = server.admin()
    admin.holder("kim")
    wallet = Wallet(server.http, "kim")
    wallet.sign_in()
    answer = server.http.post(
        "/v1/me/devices",
        headers=wallet.auth,
        json={"public_key": b64u_encode(SMALL_ORDER_KEY), "proof": b64u_encode(bytes(64))},
    )
    _problem(answer, 422, "bad_device_key")
    answer = server.http.post(
        "/v1/me/devices",
        headers=wallet.auth,
        json={
            "public_key": b64u_encode(wallet.key.public),
            "proof": b64u_encode(wallet.key.sign(b"x")),
        },
    )
    _problem(answer, 403, "bad_proof")


def test_roles_are_checked(server):
    admin = server.admin()
    admin.holder("lee")
    wallet = Wallet(server.http, "lee")
    wallet.sign_in()
    _problem(
        server.http.post("/v1/admin/merchants", json={"name": "x"}, headers=wallet.auth),
        403,
        "forbidden",
    )
    _problem(server.http.get("/v1/me/account", headers=admin.auth), 403, "forbidden")
    _problem(server.http.get("/v1/me/account"), 401, "unauthenticated")
    _problem(
        server.http.post("/v1/session", json={"login": "lee", "password": "wrong"}),
        401,
        "unauthenticated",
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/admin/session", b"{not json"),
        ("POST", "/v1/session", json.dumps({"login": "x" * 65, "password": "p"}).encode()),
        ("POST", "/v1/terminal/enrol", json.dumps({"terminal_id": "", "enrol_code": 5}).encode()),
        ("POST", "/v1/session", json.dumps([1, 2, 3]).encode()),
        ("GET", "/v1/ledger/entries/-1", b""),
        ("GET", "/v1/ledger/entries/99999999999999999999999", b""),
        ("GET", "/v1/terminal/bundle?since=abc", b""),
        ("DELETE", "/healthz", b""),
        ("GET", "/nowhere", b""),
    ],
)
def test_malformed_requests_get_problems(server, method, path, body):
    answer = server.http.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"]


def test_bodies_over_the_limit_are_refused_unread(server):
    answer = server.http.post(
        "/v1/session",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    _problem(answer, 413, "body_too_large")


def test_one_time_codes_become_a_second_factor(server):
    admin = server.admin()
    admin.holder("otto")
    wallet = Wallet(server.http, "otto")
    wallet.sign_in()
    fresh = server.http.post("/v1/me/totp/new", headers=wallet.auth).json()
    assert fresh["uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(fresh["secret"])
    code = totp.now()
    window = {totp.at(time.time() + shift) for shift in (-30, 0, 30)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window)
    answer = server.http.post(
        "/v1/me/totp", headers=wallet.auth, json={"secret": fresh["secret"], "otp": wrong}
    )
    _problem(answer, 403, "bad_proof")
    assert (
        server.http.post(
            "/v1/me/totp", headers=wallet.auth, json={"secret": fresh["secret"], "otp": code}
        ).status_code
        == 204
    )
    login = {"login": "otto", "password": "pw-otto-secret"}
    answer = server.http.post("/v1/session", json=login)
    _problem(answer, 401, "step_up_required")
    assert "insufficient_user_authentication" in answer.headers["www-authenticate"]
    # the code that turned the factor on is spent; the next time step's code signs in
    _problem(server.http.post("/v1/session", json={**login, "otp": code}), 401, "step_up_required")
    later = totp.at(time.time() + 30)
    assert server.http.post("/v1/session", json={**login, "otp": later}).status_code == 200
