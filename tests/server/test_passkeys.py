"""Passkeys (issue 16) over HTTP, with a software authenticator of the test's own (EC P-256,
attestation `none`, really signed assertions): register, sign in without a password, wrong
origins and replayed challenges refused, a clone's counter going back refused, a deleted
passkey gone, a reissue stepped up by passkey, and an IP-address host refused.

The server binds 127.0.0.1; the requests name `localhost:PORT` as their host, as a browser
opening `http://localhost:PORT` does (WebAuthn refuses an IP address as relying party id)."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from duopass.protocol.encoding import b64u_encode
from duopass.server.limits import (
    PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX,
    PASSKEYS_PER_HOLDER_MAX,
)
from duopass.server.settings import Settings
from tests.server.authenticator import Authenticator
from tests.server.harness import Running, Wallet, running_server
from tests.server.ticketing import HOUR, event_on_sale, ticket_wallet


@pytest.fixture
def local(server: Running) -> Iterator[tuple[Running, httpx.Client, str]]:
    """The server (on both databases), a client that names `localhost:PORT` as host, and that
    origin."""
    port = httpx.URL(server.url).port
    origin = f"http://localhost:{port}"
    headers = {"Host": f"localhost:{port}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        yield server, http, origin


def _holder(server: Running, http: httpx.Client, login: str = "ada") -> Wallet:
    server.admin().holder(login)
    wallet = Wallet(http, login)
    wallet.sign_in()
    return wallet


def _register(http: httpx.Client, wallet: Wallet, device: Authenticator) -> httpx.Response:
    options = http.post("/v1/me/passkeys/options", headers=wallet.auth)
    assert options.status_code == 200, options.text
    return http.post("/v1/me/passkeys", headers=wallet.auth, json=device.create(options.json()))


def _sign_in(http: httpx.Client, device: Authenticator, **how: Any) -> httpx.Response:
    options = http.post("/v1/session/passkey/options")
    assert options.status_code == 200, options.text
    return http.post("/v1/session/passkey", json=device.get(options.json(), **how))


def _code(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["code"]


def test_a_passkey_registers_and_signs_in_without_a_password(local):
    server, http, origin = local
    ada = _holder(server, http)
    device = Authenticator(origin)
    options = http.post("/v1/me/passkeys/options", headers=ada.auth).json()
    assert options["rp"] == {"id": "localhost", "name": "demo-univ"}
    assert options["user"]["name"] == "ada" and options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    made = http.post("/v1/me/passkeys", headers=ada.auth, json=device.create(options))
    assert made.status_code == 201, made.text
    assert made.json()["transports"] == ["hybrid", "internal"]

    signed_in = _sign_in(http, device)
    assert signed_in.status_code == 200, signed_in.text
    auth = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    mine = http.get("/v1/me/sessions", headers=auth).json()
    assert [(s["method"], s["current"]) for s in mine if s["current"]] == [("passkey", True)]
    assert signed_in.json()["login"] == "ada"
    listed = http.get("/v1/me/passkeys", headers=auth).json()["passkeys"]
    assert [(p["id"], p["last_used_at"] is not None) for p in listed] == [(made.json()["id"], True)]
    # the same passkey again is refused (the authenticator would not make it twice either)
    again = http.post("/v1/me/passkeys/options", headers=ada.auth).json()
    assert again["excludeCredentials"][0]["id"] == b64u_encode(device.credential_id)
    assert _code(http.post("/v1/me/passkeys", headers=ada.auth, json=device.create(again))) == (
        409,
        "passkey_exists",
    )
    # a passkey session is no recent password sign-in: it cannot add a passkey of its own
    assert _code(http.post("/v1/me/passkeys/options", headers=auth)) == (401, "step_up_required")


def test_a_wrong_origin_or_a_replayed_challenge_is_refused(local):
    server, http, origin = local
    ada = _holder(server, http)
    device = Authenticator(origin)
    options = http.post("/v1/me/passkeys/options", headers=ada.auth).json()
    phished = device.create(options, origin="http://evil.example")
    assert _code(http.post("/v1/me/passkeys", headers=ada.auth, json=phished)) == (
        403,
        "passkey_refused",
    )
    # that answer used the challenge up: the right one is refused for it too
    used = http.post("/v1/me/passkeys", headers=ada.auth, json=device.create(options))
    assert _code(used) == (409, "passkey_challenge")
    assert _register(http, ada, device).status_code == 201
    other = Authenticator(origin)
    swapped = other.create(http.post("/v1/me/passkeys/options", headers=ada.auth).json())
    swapped["id"] = swapped["rawId"] = b64u_encode(bytes(32))  # not the id it attested
    assert _code(http.post("/v1/me/passkeys", headers=ada.auth, json=swapped)) == (
        403,
        "passkey_refused",
    )

    options = http.post("/v1/session/passkey/options").json()
    assertion = device.get(options)
    assert http.post("/v1/session/passkey", json=assertion).status_code == 200
    replayed = http.post("/v1/session/passkey", json=assertion)
    assert _code(replayed) == (409, "passkey_challenge")
    wrong_origin = _sign_in(http, device, origin=f"{origin}0")
    assert _code(wrong_origin) == (403, "passkey_refused")
    unverified = _sign_in(http, device, verified=False)
    assert _code(unverified) == (403, "passkey_refused")
    forged = device.get(http.post("/v1/session/passkey/options").json())
    forged["response"]["signature"] = Authenticator(origin).get({"challenge": "AA"})["response"][
        "signature"
    ]
    assert _code(http.post("/v1/session/passkey", json=forged)) == (403, "passkey_refused")


def test_a_clone_whose_counter_goes_back_is_refused(local):
    server, http, origin = local
    ada = _holder(server, http)
    device = Authenticator(origin)
    assert _register(http, ada, device).status_code == 201
    clone = copy.deepcopy(device)
    assert _sign_in(http, device).status_code == 200  # counter 1
    assert _sign_in(http, device).status_code == 200  # counter 2
    refused = _sign_in(http, clone)  # counter 1 again
    assert _code(refused) == (403, "passkey_cloned")
    assert "from 2 to 1" in refused.json()["detail"]
    assert _code(_sign_in(http, device, step=0)) == (403, "passkey_cloned")  # 2 again
    assert _sign_in(http, device).status_code == 200  # the real one goes on: 3


def test_a_deleted_passkey_signs_in_no_more(local):
    server, http, origin = local
    ada = _holder(server, http)
    bo = _holder(server, http, "bo")
    device = Authenticator(origin)
    made = _register(http, ada, device).json()
    assert _code(http.delete(f"/v1/me/passkeys/{made['id']}", headers=bo.auth)) == (
        404,
        "not_found",
    )
    assert http.delete(f"/v1/me/passkeys/{made['id']}", headers=ada.auth).status_code == 204
    assert http.get("/v1/me/passkeys", headers=ada.auth).json() == {"passkeys": []}
    assert _code(_sign_in(http, device)) == (401, "passkey_unknown")


def test_an_erased_holders_passkeys_are_gone(local):
    server, http, origin = local
    made = server.admin().holder("eve")
    eve = Wallet(http, "eve")
    eve.sign_in()
    device = Authenticator(origin)
    assert _register(http, eve, device).status_code == 201
    erased = server.admin().post(f"/v1/admin/holders/{made['handle']}/erase", {"keep_money": True})
    assert erased.status_code == 200, erased.text
    assert _code(_sign_in(http, device)) == (401, "passkey_unknown")


def test_one_network_cannot_hold_every_sign_in_challenge(local):
    _server, http, _origin = local
    for _ in range(PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX):
        assert http.post("/v1/session/passkey/options").status_code == 200
    assert _code(http.post("/v1/session/passkey/options")) == (429, "throttled")


def test_a_loss_report_ends_every_passkey(local):
    """A passkey may live on the lost phone: after the report none signs in, and the holder
    adds one again after a password sign-in."""
    server, http, origin = local
    made = server.admin().holder("lou")
    lou = Wallet(http, "lou")
    lou.sign_in()
    device = Authenticator(origin)
    assert _register(http, lou, device).status_code == 201
    assert _sign_in(http, device).status_code == 200
    reported = server.admin().post(f"/v1/admin/holders/{made['handle']}/loss-report", {})
    assert reported.status_code == 200, reported.text
    assert _code(_sign_in(http, device)) == (401, "passkey_unknown")
    lou.sign_in()
    assert _register(http, lou, Authenticator(origin)).status_code == 201


def test_the_relying_party_id_and_origins_come_from_the_settings(tmp_path, sqlite_schema):
    shutil.copyfile(sqlite_schema, tmp_path / "duopass.db")
    with running_server(
        f"sqlite:///{tmp_path / 'duopass.db'}",
        tmp_path / "data",
        webauthn_rp_id="wallet.example.edu",
        webauthn_origins=("https://wallet.example.edu",),
    ) as on:
        on.admin().holder("ada")
        ada = Wallet(on.http, "ada")
        ada.sign_in()
        device = Authenticator("https://wallet.example.edu")
        # by the server's IP address: the settings name the relying party and its origin
        assert _register(on.http, ada, device).status_code == 201
        assert device.rp_id == "wallet.example.edu"
        assert _sign_in(on.http, device).status_code == 200
        own = _sign_in(on.http, device, origin=on.url)  # the request's own origin is not listed
        assert _code(own) == (403, "passkey_refused")
        for origin in ("wallet.example.edu", "https://wallet.example.edu/path", "ftp://x"):
            with pytest.raises(ValueError, match="not an origin"):
                Settings(webauthn_origins=(origin,))
        with pytest.raises(ValueError, match="webauthn_rp_id"):
            Settings(webauthn_rp_id="10.0.0.1:443")


def test_passkeys_have_limits_and_need_a_host_name(local):
    server, http, origin = local
    ada = _holder(server, http)
    for _ in range(PASSKEYS_PER_HOLDER_MAX):
        assert _register(http, ada, Authenticator(origin)).status_code == 201
    limited = http.post("/v1/me/passkeys/options", headers=ada.auth)
    assert _code(limited) == (409, "passkey_limit")
    # the same server by its IP address: no passkeys, a stable reason
    by_ip = server.http.post("/v1/session/passkey/options")
    assert _code(by_ip) == (409, "passkey_host")
    huge = Authenticator(origin).get({"challenge": "AA", "rpId": "localhost"})
    huge["response"]["signature"] = "A" * 2000
    assert _code(http.post("/v1/session/passkey", json=huge)) == (422, "invalid_request")
    huge["response"]["signature"] = "not base64url!"
    assert _code(http.post("/v1/session/passkey", json=huge)) == (422, "invalid_request")


def test_a_reissue_is_stepped_up_by_passkey(local):
    server, http, origin = local
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + HOUR)
    fan = ticket_wallet(http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    device = Authenticator(origin)
    assert _register(http, fan.wallet, device).status_code == 201
    phone = Wallet(http, "fan")
    phone.sign_in()
    phone.enrol()
    asked = http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.auth,
        json={"device_key": b64u_encode(phone.key.public)},
    ).json()
    assert asked["outcome"] == "step_up" and "passkey" in asked["factors"], asked
    path = f"/v1/me/reissues/{asked['request_id']}/step-up"
    begun = http.post(path, headers=phone.auth, json={"factor": "passkey"})
    assert begun.status_code == 200, begun.text
    options = begun.json()["options"]
    assert [each["id"] for each in options["allowCredentials"]] == [
        b64u_encode(device.credential_id)
    ]
    stranger = Authenticator(origin, user_handle=bytes(16))
    wrong = http.post(
        path, headers=phone.auth, json={"factor": "passkey", "assertion": stranger.get(options)}
    )
    assert _code(wrong) == (401, "passkey_unknown")
    options = http.post(path, headers=phone.auth, json={"factor": "passkey"}).json()["options"]
    proved = http.post(
        path, headers=phone.auth, json={"factor": "passkey", "assertion": device.get(options)}
    )
    assert proved.status_code == 200, proved.text
    assert proved.json() == {
        "request_id": asked["request_id"],
        "factor": "passkey",
        "state": "ready",
    }
    done = http.post(f"/v1/me/reissues/{asked['request_id']}/confirm", headers=phone.auth)
    assert done.status_code == 200 and done.json()["gen"] == 1, done.text


def test_a_holder_without_a_passkey_has_no_passkey_step_up(local):
    server, http, _origin = local
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + HOUR)
    fan = ticket_wallet(http, admin, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    phone = Wallet(http, "fan")
    phone.sign_in()
    phone.enrol()
    asked = http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.auth,
        json={"device_key": b64u_encode(phone.key.public)},
    ).json()
    assert asked["outcome"] == "step_up", asked
    path = f"/v1/me/reissues/{asked['request_id']}/step-up"
    begun = http.post(path, headers=phone.auth, json={"factor": "passkey"})
    assert _code(begun) == (409, "factor_unavailable")
