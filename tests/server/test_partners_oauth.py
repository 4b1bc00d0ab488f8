"""OAuth 2.0 for partners (issue 17): clients made by admins (the secret shown once and stored
as a keyed digest), tokens by client credentials with HTTP Basic or the form, RFC 6749 §5.2
errors, RFC 9068 access tokens that verify against the JWK Set with joserfc on its own, expiry
on the server's clock, revocation biting a live token, rotation with an overlap."""

from __future__ import annotations

import logging
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from duopass.server.keyring import Keyring, KeyringError
from tests.server.harness import SQLITE_ONLY
from tests.server.partners import basic, make_client, token
from tests.server.ticketing import entrance, event_on_sale

CLOCKED_SQLITE = pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)
ALL = ["tickets:issue", "tickets:read", "checkin:redeem", "accounts:read", "webhooks:manage"]


def _redeem(http, access: str, lists: list[int] | None = None):
    return http.post(
        "/v1/checkin/redeem",
        json={"secret": "not-a-code", "lists": lists or [1]},
        headers={"Authorization": f"Bearer {access}"},
    )


@SQLITE_ONLY
def test_a_client_is_made_its_secret_shown_once_and_kept_as_a_keyed_digest(server):
    admin = server.admin()
    client = make_client(admin, ["tickets:read", "checkin:redeem"])
    secret = client["client_secret"]
    assert secret.startswith("dpsec_") and client["client_id"].startswith("dpc_")
    assert client["scopes"] == ["checkin:redeem", "tickets:read"] and client["state"] == "active"
    listed = server.http.get("/v1/admin/partners", headers=admin.auth).json()["items"]
    one = server.http.get(f"/v1/admin/partners/{client['id']}", headers=admin.auth).json()
    assert "client_secret" not in listed[0] and "client_secret" not in one
    assert listed[0]["client_id"] == one["client_id"] == client["client_id"]
    with server.ctx.db.unit() as session:
        stored = session.execute(text("SELECT * FROM partner_clients")).mappings().one()
    assert secret.encode() not in b"".join(str(v).encode() for v in stored.values())
    assert len(stored["secret_digest"]) == 32
    refused = admin.post("/v1/admin/partners", {"name": "x", "scopes": ["tickets:delete"]})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
    nobody = server.http.post("/v1/admin/partners", json={"name": "x", "scopes": ["tickets:read"]})
    assert nobody.status_code == 401


@SQLITE_ONLY
def test_a_token_by_basic_and_by_the_form_verifies_with_the_published_jwks(server):
    admin = server.admin()
    client = make_client(admin, ["tickets:read", "checkin:redeem"])
    by_basic = token(server.http, client)
    assert by_basic.status_code == 200, by_basic.text
    assert by_basic.headers["cache-control"] == "no-store"
    body = by_basic.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 300)
    assert body["scope"] == "checkin:redeem tickets:read"
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "scope": "tickets:read",
    }
    by_form = server.http.post("/v1/oauth/token", data=form)
    assert by_form.status_code == 200 and by_form.json()["scope"] == "tickets:read"
    meta = server.http.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == server.url and meta["jwks_uri"] == f"{server.url}/v1/oauth/jwks"
    assert meta["token_endpoint"] == f"{server.url}/v1/oauth/token"
    keys = KeySet.import_key_set(server.http.get(meta["jwks_uri"]).json())
    decoded = jwt.decode(body["access_token"], keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt" and decoded.header["alg"] == "ES256"
    claims = decoded.claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": server.url},
        aud={"essential": True, "value": f"{server.url}/v1"},
        exp={"essential": True},
    ).validate(claims)
    assert claims["sub"] == claims["client_id"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == 300 and claims["scope"] == body["scope"]
    second = jwt.decode(by_form.json()["access_token"], keys, algorithms=["ES256"]).claims
    assert second["jti"] != claims["jti"] and second["scope"] == "tickets:read"


@SQLITE_ONLY
def test_refusals_are_rfc_6749_errors(server):
    admin = server.admin()
    client = make_client(admin, ["tickets:read"])
    cid, secret = client["client_id"], client["client_secret"]
    grant = {"grant_type": "client_credentials"}
    cases = [
        ({**grant}, basic(cid, secret + "x"), 401, "invalid_client"),
        ({**grant}, basic("dpc_nobody", secret), 401, "invalid_client"),
        ({**grant, "client_id": cid, "client_secret": "dpsec_wrong"}, {}, 401, "invalid_client"),
        ({**grant}, {}, 401, "invalid_client"),
        ({"grant_type": "password"}, basic(cid, secret), 400, "unsupported_grant_type"),
        ({}, basic(cid, secret), 400, "invalid_request"),
        ({**grant, "scope": "checkin:redeem"}, basic(cid, secret), 400, "invalid_scope"),
        ({**grant, "scope": ""}, basic(cid, secret), 400, "invalid_scope"),
        ({**grant, "client_secret": secret}, basic(cid, secret), 400, "invalid_request"),
        ({**grant, "scope": "x" * 201}, basic(cid, secret), 400, "invalid_request"),
    ]
    for form, headers, status, error in cases:
        answer = server.http.post("/v1/oauth/token", data=form, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (status, error), (form, answer.text)
        assert answer.json()["error_description"]
        if status == 401:
            assert answer.headers["www-authenticate"].startswith("Basic ")
    twice = server.http.post(
        "/v1/oauth/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={**basic(cid, secret), "content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.json()["error"] == "invalid_request"
    as_json = server.http.post("/v1/oauth/token", json=grant, headers=basic(cid, secret))
    assert as_json.json()["error"] == "invalid_request"


def test_a_token_expires_on_the_servers_clock_and_revocation_bites_a_live_one(
    clocked_server, clock
):
    server, admin = clocked_server, clocked_server.admin()
    client = make_client(admin, ["checkin:redeem"])
    access = token(server.http, client).json()["access_token"]
    assert _redeem(server.http, access).json()["code"] == "not_found"  # admitted: no list 1
    clock.advance(299)
    assert _redeem(server.http, access).json()["code"] == "not_found"
    clock.advance(1)
    expired = _redeem(server.http, access)
    assert (expired.status_code, expired.json()["code"]) == (401, "unauthenticated")
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    live = token(server.http, client).json()["access_token"]
    assert _redeem(server.http, live).json()["code"] == "not_found"
    revoked = admin.post(f"/v1/admin/partners/{client['id']}/revoke", {})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = _redeem(server.http, live)
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthenticated")
    assert token(server.http, client).json()["error"] == "invalid_client"
    again = admin.post(f"/v1/admin/partners/{client['id']}/revoke", {})
    assert again.json()["code"] == "conflict"


@CLOCKED_SQLITE
def test_a_rotated_secret_gets_tokens_beside_the_new_one_for_its_overlap(clocked_server, clock):
    server, admin = clocked_server, clocked_server.admin()
    client = make_client(admin, ["tickets:read"])
    rotated = admin.post(f"/v1/admin/partners/{client['id']}/rotate", {"overlap_s": 3600})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_until"] == int(clock.now) + 3600
    new = rotated.json() | {"client_secret": rotated.json()["client_secret"]}
    assert new["client_secret"] != client["client_secret"]
    assert token(server.http, client).status_code == 200  # the old one, in the overlap
    assert token(server.http, new).status_code == 200
    clock.advance(3600)
    assert token(server.http, client).json()["error"] == "invalid_client"
    assert token(server.http, new).status_code == 200
    third = admin.post(f"/v1/admin/partners/{client['id']}/rotate", {"overlap_s": 0}).json()
    assert third["previous_secret_until"] is None
    assert token(server.http, new).json()["error"] == "invalid_client"
    assert token(server.http, third).status_code == 200


@SQLITE_ONLY
def test_a_token_must_carry_the_routes_scope_and_be_ours(server):
    admin = server.admin()
    reader = make_client(admin, ["tickets:read", "checkin:redeem"])
    narrowed = token(server.http, reader, scope="tickets:read").json()["access_token"]
    refused = _redeem(server.http, narrowed)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert 'scope="checkin:redeem"' in refused.headers["www-authenticate"]
    head, body, signature = token(server.http, reader).json()["access_token"].split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    assert _redeem(server.http, forged).status_code == 401
    other = KeySet.generate_key_set("EC", "P-256", count=1)
    alien = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, {"sub": "x"}, other.keys[0])
    assert _redeem(server.http, alien).status_code == 401


@SQLITE_ONLY
def test_a_partner_redeems_on_its_own_events_lists_only(server):
    admin = server.admin()
    sale = event_on_sale(admin, doors=int(time.time()) - 60)
    door = entrance(admin, sale.event)
    client = make_client(admin, ["checkin:redeem"])
    access = token(server.http, client).json()["access_token"]
    theirs = _redeem(server.http, access, [door])
    assert (theirs.status_code, theirs.json()["code"]) == (403, "forbidden")
    with server.ctx.db.unit() as session:
        session.execute(
            text("UPDATE events SET partner_id = :p WHERE id = :e"),
            {"p": client["id"], "e": sale.event},
        )
    mine = _redeem(server.http, access, [door])
    assert mine.status_code == 404 and mine.json()["reason"] == "invalid"  # not a code: judged
    for override in ({"force": True}, {"datetime": "2026-12-06T08:00:00+08:00"}):
        overriding = server.http.post(
            "/v1/checkin/redeem",
            json={"secret": "not-a-code", "lists": [door], **override},
            headers={"Authorization": f"Bearer {access}"},
        )  # staff's and offline gates' overrides are not a partner's
        assert (overriding.status_code, overriding.json()["code"]) == (403, "forbidden")
    assert (
        server.http.post(
            "/v1/checkin/redeem", json={"secret": "not-a-code", "lists": [door]}, headers=admin.auth
        ).status_code
        == 404
    )  # staff keep redeeming there


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_calls_past_a_clients_rate_are_refused_and_every_call_is_logged(clocked_server, clock):
    server, admin = clocked_server, clocked_server.admin()
    client = make_client(admin, ["checkin:redeem"], calls_per_minute=4)
    access = token(server.http, client).json()["access_token"]  # a token request counts too
    other = token(server.http, make_client(admin, ["checkin:redeem"])).json()["access_token"]
    events, handler = logging.getLogger("duopass.server.events"), _Events()
    level, events.level = events.level, logging.INFO
    events.addHandler(handler)
    try:
        for _ in range(3):
            assert _redeem(server.http, access).json()["code"] == "not_found"
        clock.advance(20)
        limited = _redeem(server.http, access)
        assert (limited.status_code, limited.json()["code"]) == (429, "partner_rate_limited")
        assert limited.headers["retry-after"] == "60"  # the guard partner_rate_limit's
        minted = token(server.http, client)
        assert (minted.status_code, minted.json()["code"]) == (429, "partner_rate_limited")
        assert _redeem(server.http, other).json()["code"] == "not_found"  # per client
        clock.advance(40)
        assert _redeem(server.http, access).json()["code"] == "not_found"  # the minute slid past
    finally:
        events.removeHandler(handler)
        events.level = level
    calls = [r for r in handler.records if getattr(r, "event", None) == "partner_call"]
    fields = [getattr(r, "fields", {}) for r in calls]
    assert len(fields) == 5  # the refused call is not logged as a call
    assert fields[0] == {
        "client_id": client["client_id"],
        "route": "/v1/checkin/redeem",
        "scope": "checkin:redeem",
    }
    assert not any(access in r.getMessage() for r in handler.records)


def test_a_data_directory_from_before_gets_its_token_key_once(tmp_path):
    first = Keyring.create(tmp_path, origin="demo-univ/ledger")
    (tmp_path / "oauth.pem").unlink()  # as a data directory made before partners
    made = Keyring.load(tmp_path)
    assert (tmp_path / "oauth.pem").stat().st_mode & 0o777 == 0o600
    again = Keyring.load(tmp_path)
    assert made.oauth.thumbprint() == again.oauth.thumbprint() != first.oauth.thumbprint()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    (tmp_path / "oauth.pem").write_bytes(b"not a key")
    with pytest.raises(KeyringError):
        Keyring.load(tmp_path)
