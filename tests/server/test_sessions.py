"""Sessions a lost phone cannot keep (issue 10 §1): a loss report ends every other session and
revokes the device keys; a password change and the second factor need the current proof and end
the other sessions; a one-time code signs in once; the device signs in without the password."""

from __future__ import annotations

import time
import uuid

import pyotp

from duopass.protocol import SigningKey
from duopass.protocol.encoding import b64u_decode, b64u_encode
from duopass.protocol.signed_requests import device_enrolment_message, device_sign_in_message
from tests.server.harness import Wallet

LOGIN = {"login": "mia", "password": "pw-mia-secret"}


def _signed_in(server, login: str = "mia") -> Wallet:
    wallet = Wallet(server.http, login)
    wallet.sign_in()
    return wallet


def _enrol(http, auth, login: str, key: SigningKey):
    proof = key.sign(device_enrolment_message(login, key.public))
    return http.post(
        "/v1/me/devices",
        headers=auth,
        json={"public_key": b64u_encode(key.public), "proof": b64u_encode(proof)},
    )


def _sync(http, auth, device_id: int):
    body = {"device_id": device_id, "request_id": uuid.uuid4().hex}
    return http.post("/v1/wallet/sync", headers=auth, json=body)


def _problem(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code


def test_a_loss_report_leaves_the_lost_phone_nothing(server):
    """The outside tester's steps: the lost phone's session could enrol a key, sync a purse
    credential and set a second factor of its choosing after the owner reported the loss."""
    admin = server.admin()
    holder = admin.holder("mia", balance=20_000)
    lost = _signed_in(server)  # T_old, on the phone that is lost
    lost.enrol()
    assert lost.sync().status_code == 200
    new = _signed_in(server)  # T_new, on the new phone
    reported = server.http.post("/v1/me/loss-report", headers=new.auth)
    assert reported.status_code == 200 and reported.json()["revoked"] == 1

    thief_key = SigningKey.generate()
    _problem(_enrol(server.http, lost.auth, "mia", thief_key), 401, "unauthenticated")
    assert lost.device_id is not None
    _problem(_sync(server.http, lost.auth, lost.device_id), 401, "unauthenticated")
    _problem(server.http.post("/v1/me/totp/new", headers=lost.auth), 401, "unauthenticated")
    chosen = {"secret": pyotp.random_base32(), "otp": "123456"}
    _problem(
        server.http.post("/v1/me/totp", headers=lost.auth, json=chosen), 401, "unauthenticated"
    )
    # the lost device key can no longer sign in, sync or be enrolled again
    _problem(lost.device_sign_in(), 401, "unauthenticated")
    _problem(_sync(server.http, new.auth, lost.device_id), 403, "forbidden")
    _problem(_enrol(server.http, new.auth, "mia", lost.key), 409, "conflict")
    # the owner goes on: the new phone's session works, the password signs in with no step-up
    assert server.http.post("/v1/session", json=LOGIN).status_code == 200
    phone = SigningKey.generate()
    enrolled = _enrol(server.http, new.auth, "mia", phone)
    assert enrolled.status_code == 200
    assert _sync(server.http, new.auth, enrolled.json()["device_id"]).status_code == 200
    assert admin.account(holder["account_id"])["balance"] == 20_000


def test_a_loss_report_needs_a_recent_password_sign_in(clocked_server, clock):
    """A session left on the lost phone (hours old, or signed in by the device key) cannot
    report its owner's new phone lost, end the owner's sessions or touch the second factor."""
    server = clocked_server
    server.admin().holder("mia")
    old = _signed_in(server)
    old.enrol()
    by_device = Wallet(server.http, "mia", key=old.key)
    assert by_device.device_sign_in().status_code == 200
    clock.advance(601)
    for wallet in (old, by_device):
        for method, path in (
            ("POST", "/v1/me/loss-report"),
            ("DELETE", "/v1/me/sessions"),
            ("POST", "/v1/me/totp/new"),
        ):
            answer = server.http.request(method, path, headers=wallet.auth)
            _problem(answer, 401, "step_up_required")
            challenge = answer.headers["www-authenticate"]
            assert "insufficient_user_authentication" in challenge and "max_age=600" in challenge
    fresh = _signed_in(server)
    assert server.http.post("/v1/me/loss-report", headers=fresh.auth).status_code == 200
    _problem(server.http.get("/v1/me/sessions", headers=old.auth), 401, "unauthenticated")
    _problem(server.http.get("/v1/me/sessions", headers=by_device.auth), 401, "unauthenticated")
    assert server.http.get("/v1/me/sessions", headers=fresh.auth).status_code == 200


def test_the_card_office_reports_a_loss_and_every_session_ends(server):
    admin = server.admin()
    holder = admin.holder("mia")
    phone = _signed_in(server)
    phone.enrol()
    answer = admin.post(f"/v1/admin/holders/{holder['handle']}/loss-report", {})
    assert answer.status_code == 200
    _problem(server.http.get("/v1/me/account", headers=phone.auth), 401, "unauthenticated")
    _problem(phone.device_sign_in(), 401, "unauthenticated")


def test_sessions_are_listed_and_the_others_ended(server):
    server.admin().holder("mia")
    first, second, third = (_signed_in(server) for _ in range(3))
    listed = server.http.get("/v1/me/sessions", headers=second.auth).json()
    assert len(listed) == 3
    assert [entry["current"] for entry in listed].count(True) == 1
    assert {entry["method"] for entry in listed} == {"password"}
    answer = server.http.delete("/v1/me/sessions", headers=second.auth)
    assert answer.json() == {"ended": 2}
    for gone in (first, third):
        _problem(server.http.get("/v1/me/account", headers=gone.auth), 401, "unauthenticated")
    assert server.http.delete("/v1/session", headers=second.auth).status_code == 204
    _problem(server.http.get("/v1/me/account", headers=second.auth), 401, "unauthenticated")


def test_a_password_change_needs_the_current_one_and_ends_the_other_sessions(server):
    server.admin().holder("mia")
    here, elsewhere = _signed_in(server), _signed_in(server)
    wrong = {"current_password": "not-it", "new_password": "a-new-password"}
    _problem(server.http.post("/v1/me/password", headers=here.auth, json=wrong), 403, "bad_proof")
    assert server.http.get("/v1/me/account", headers=elsewhere.auth).status_code == 200
    right = {"current_password": LOGIN["password"], "new_password": "a-new-password"}
    answer = server.http.post("/v1/me/password", headers=here.auth, json=right)
    assert answer.status_code == 200 and answer.json() == {"ended": 1}
    _problem(server.http.get("/v1/me/account", headers=elsewhere.auth), 401, "unauthenticated")
    assert server.http.get("/v1/me/account", headers=here.auth).status_code == 200
    _problem(server.http.post("/v1/session", json=LOGIN), 401, "unauthenticated")
    new_login = {"login": "mia", "password": "a-new-password"}
    assert server.http.post("/v1/session", json=new_login).status_code == 200


def _turn_on(server, wallet: Wallet, now: float | None = None) -> pyotp.TOTP:
    fresh = server.http.post("/v1/me/totp/new", headers=wallet.auth)
    assert fresh.status_code == 200, fresh.text
    totp = pyotp.TOTP(fresh.json()["secret"])
    code = totp.at(time.time() if now is None else now)
    answer = server.http.post("/v1/me/totp", headers=wallet.auth, json={"otp": code})
    assert answer.status_code == 204, answer.text
    return totp


def test_a_one_time_code_signs_in_once(server):
    """The tester signed in three times in a row with the same six digits."""
    server.admin().holder("mia")
    totp = _turn_on(server, _signed_in(server))
    code = totp.at(time.time() + 30)  # a later step than the code that turned it on
    answers = [server.http.post("/v1/session", json={**LOGIN, "otp": code}) for _ in range(3)]
    assert answers[0].status_code == 200
    for again in answers[1:]:
        _problem(again, 401, "step_up_required")


def test_the_second_factor_is_a_secret_the_server_handed_out(server):
    server.admin().holder("mia")
    wallet = _signed_in(server)
    chosen = pyotp.random_base32()
    own = {"secret": chosen, "otp": pyotp.TOTP(chosen).now()}
    _problem(server.http.post("/v1/me/totp", headers=wallet.auth, json=own), 409, "conflict")
    server.http.post("/v1/me/totp/new", headers=wallet.auth)
    _problem(server.http.post("/v1/me/totp", headers=wallet.auth, json=own), 422, "invalid_request")
    _problem(
        server.http.post("/v1/me/totp", headers=wallet.auth, json={"otp": own["otp"]}),
        403,
        "bad_proof",
    )


def test_changing_the_second_factor_needs_the_current_code_and_ends_other_sessions(
    clocked_server, clock
):
    server = clocked_server
    server.admin().holder("mia")
    wallet = _signed_in(server)
    totp = _turn_on(server, wallet, clock.now)
    other = Wallet(server.http, "mia")
    later = totp.at(clock.now + 30)
    other.auth = {
        "Authorization": "Bearer "
        + server.http.post("/v1/session", json={**LOGIN, "otp": later}).json()["token"]
    }
    clock.advance(601)  # neither session signed in recently any more
    _problem(server.http.post("/v1/me/totp/new", headers=wallet.auth), 401, "step_up_required")
    spent = {"current_otp": later}
    answer = server.http.post("/v1/me/totp/new", headers=wallet.auth, json=spent)
    _problem(answer, 403, "bad_proof")
    current = {"current_otp": totp.at(clock.now)}
    fresh = server.http.post("/v1/me/totp/new", headers=wallet.auth, json=current)
    assert fresh.status_code == 200, fresh.text
    replacement = pyotp.TOTP(fresh.json()["secret"])
    body = {"otp": replacement.at(clock.now)}
    assert server.http.post("/v1/me/totp", headers=wallet.auth, json=body).status_code == 204
    _problem(server.http.get("/v1/me/account", headers=other.auth), 401, "unauthenticated")
    old_code = {**LOGIN, "otp": totp.at(clock.now + 30)}
    _problem(server.http.post("/v1/session", json=old_code), 401, "step_up_required")
    new_code = {**LOGIN, "otp": replacement.at(clock.now + 30)}
    assert server.http.post("/v1/session", json=new_code).status_code == 200


def test_an_enrolled_device_signs_in_with_its_key_once_per_challenge(server):
    server.admin().holder("mia")
    wallet = _signed_in(server)
    wallet.enrol()
    challenge = server.http.post("/v1/session/challenge").json()["challenge"]
    signature = wallet.key.sign(device_sign_in_message("mia", b64u_decode(challenge)))
    body = {
        "login": "mia",
        "public_key": b64u_encode(wallet.key.public),
        "challenge": challenge,
        "signature": b64u_encode(signature),
    }
    first = server.http.post("/v1/session/device", json=body)
    assert first.status_code == 200
    token = {"Authorization": f"Bearer {first.json()['token']}"}
    assert server.http.get("/v1/me/account", headers=token).status_code == 200
    listed = server.http.get("/v1/me/sessions", headers=token).json()
    assert {"device"} <= {entry["method"] for entry in listed}
    _problem(server.http.post("/v1/session/device", json=body), 401, "unauthenticated")
    stranger = SigningKey.generate()
    forged = {
        **body,
        "public_key": b64u_encode(stranger.public),
        "challenge": server.http.post("/v1/session/challenge").json()["challenge"],
    }
    _problem(server.http.post("/v1/session/device", json=forged), 401, "unauthenticated")
