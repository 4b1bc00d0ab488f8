"""Webhook endpoints as admins manage them: a rotated secret signs beside the new one for its
overlap only (both signatures in one `webhook-signature`); a message failing for a day is
failed, the ones behind it go, and an admin retries it; bad inputs are refused with stable
codes; the secret is shown once, sealed in the database and never logged."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from sqlalchemy import text

from duopass.server import maintenance
from duopass.server.partners.endpoints import SECRET_PREFIX
from duopass.server.services import staff
from tests.server.harness import SQLITE_ONLY, Admin
from tests.server.raw import logged
from tests.server.webhook_receiver import Receiver
from tests.server.webhooks import alert, client_fixture, deliver, hook, log, receiver_fixture

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

HOUR, DAY = 3600, 86_400
CLOCKED_SQLITE = pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)


@CLOCKED_SQLITE
def test_a_rotated_secret_signs_beside_the_new_one_for_its_overlap(
    clocked_server, clock, receiver, client
):
    server, admin = clocked_server, clocked_server.admin()
    endpoint = hook(admin, receiver)["id"]
    alert(server)
    deliver(server, client)
    rotated = admin.post(f"/v1/admin/webhooks/{endpoint}/rotate", {"overlap_s": HOUR})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_until"] == int(clock.now) + HOUR
    receiver.secrets.append(rotated.json()["secret"])
    alert(server)
    deliver(server, client)
    clock.advance(HOUR)
    alert(server)
    deliver(server, client)
    again = admin.post(f"/v1/admin/webhooks/{endpoint}/rotate", {"overlap_s": 0})
    assert again.json()["previous_secret_until"] is None
    receiver.secrets.append(again.json()["secret"])
    alert(server)
    deliver(server, client)
    assert [(got.verified_by, got.signatures) for got in receiver.got] == [
        ((0,), 1),
        ((0, 1), 2),  # either secret verifies on its own during the overlap
        ((1,), 1),
        ((2,), 1),
    ]
    assert len(set(receiver.secrets)) == 3 and receiver.refused == 0


@CLOCKED_SQLITE
def test_a_message_failing_for_a_day_fails_and_an_admin_retries_it(
    clocked_server, clock, receiver, client
):
    server, admin = clocked_server, clocked_server.admin()
    endpoint = hook(admin, receiver)["id"]
    receiver.status = 500
    alert(server, 2)
    for _ in range(25 * 6):  # a day and an hour, ten minutes at a time
        deliver(server, client)
        clock.advance(600)
    admin = server.admin()  # the first session has expired
    newest, oldest = log(server, admin, endpoint)
    assert (oldest["state"], newest["state"]) == ("failed", "failed")
    assert oldest["attempts"] > 20 and newest["attempts"] == 1  # it waited, then had its try
    assert {(e["status"], e["error"]) for e in oldest["log"]} == {(500, "answered 500")}
    at = [entry["at"] for entry in reversed(oldest["log"])]
    waits = [b - a for a, b in itertools.pairwise(at)]
    assert waits[0] < HOUR <= max(waits) <= HOUR + 600  # it grows to an hour (in 600 s steps)
    assert at[-1] - at[0] >= DAY - 600
    assert log(server, admin, endpoint, state="failed") == [newest, oldest]
    receiver.status = 204
    assert deliver(server, client) == 0  # failed stays failed
    base = f"/v1/admin/webhooks/{endpoint}/deliveries"
    retried = admin.post(f"{base}/{oldest['id']}/retry", {})
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    assert deliver(server, client) == 1
    assert [got.webhook_id for got in receiver.got] == [oldest["webhook_id"]]
    assert admin.post(f"{base}/{oldest['id']}/retry", {}).json()["code"] == "conflict"
    assert admin.post(f"{base}/999999/retry", {}).json()["code"] == "not_found"
    assert log(server, admin, endpoint, state="delivered")[0]["id"] == oldest["id"]


def _refused(
    admin: Admin, body: dict[str, Any], code: str, path: str = "/v1/admin/webhooks"
) -> None:
    answer = admin.post(path, body)
    assert answer.status_code in (409, 422), answer.text
    assert answer.json()["code"] == code, (body, answer.text)


@SQLITE_ONLY
def test_bad_inputs_are_refused_with_stable_codes(server):
    admin = server.admin()
    types = ["ticket.issued"]
    for url, code in [
        ("ftp://example.com/hook", "url_not_http"),
        ("example.com/hook", "url_not_http"),
        ("javascript:alert(1)", "url_not_http"),
        ("file:///etc/passwd", "url_not_http"),
        ("http://", "url_malformed"),
        ("https://user:pw@example.com/hook", "url_malformed"),
        ("https://example.com/hook#here", "url_malformed"),
        ("https://example.com:99999/hook", "url_malformed"),
        ("https://[::1/hook", "url_malformed"),
        ("https://bücher.example/hook", "url_malformed"),
        ("https://example.com/a hook", "url_malformed"),
        ("https://example.com/\x00", "url_malformed"),
        ("https://example.com/" + "a" * 2000, "url_too_long"),
        ("", "invalid_request"),
    ]:
        _refused(admin, {"url": url, "event_types": types}, code)
    good = "https://example.com/hook"
    for event_types in ([], ["ticket.sold"], ["ticket.issued"] * 7):
        _refused(admin, {"url": good, "event_types": event_types}, "invalid_request")
    _refused(admin, {"url": good, "event_types": types, "description": "a\nb"}, "invalid_request")
    _refused(admin, {"overlap_s": 8 * DAY}, "invalid_request", "/v1/admin/webhooks/1/rotate")
    assert admin.post("/v1/admin/webhooks/1/disable", {}).json()["code"] == "not_found"
    assert admin.http.get("/v1/admin/webhooks/0", headers=admin.auth).status_code == 422
    assert admin.http.get("/v1/admin/webhooks").json()["code"] == "unauthenticated"
    server.ctx.run(lambda u: staff.add(u, role="operator", login="op", password="operator-pw"))
    token = server.http.post("/v1/admin/session", json={"login": "op", "password": "operator-pw"})
    operator = Admin(server.http, {"Authorization": f"Bearer {token.json()['token']}"})
    assert (
        operator.post("/v1/admin/webhooks", {"url": good, "event_types": types}).json()["code"]
        == "forbidden"
    )
    made = [
        admin.post("/v1/admin/webhooks", {"url": good, "event_types": types}) for _ in range(50)
    ]
    assert {answer.status_code for answer in made} == {201}
    _refused(admin, {"url": good, "event_types": types}, "too_many_webhooks")
    first = made[0].json()["id"]
    assert admin.post(f"/v1/admin/webhooks/{first}/disable", {}).json()["state"] == "disabled"
    assert admin.post("/v1/admin/webhooks", {"url": good, "event_types": types}).status_code == 201
    assert admin.post(f"/v1/admin/webhooks/{first}/enable", {}).json()["code"] == (
        "too_many_webhooks"
    )


@SQLITE_ONLY
def test_the_secret_is_shown_once_sealed_and_never_logged(server):
    admin = server.admin()
    receiver = Receiver()
    with logged() as records:
        made = hook(admin, receiver)
        rotated = admin.post(f"/v1/admin/webhooks/{made['id']}/rotate", {}).json()
    secrets = [made["secret"], rotated["secret"]]
    assert all(secret.startswith(SECRET_PREFIX) for secret in secrets)
    listed = server.http.get("/v1/admin/webhooks", headers=admin.auth)
    one = server.http.get(f"/v1/admin/webhooks/{made['id']}", headers=admin.auth)
    for answer in (listed, one):
        assert answer.status_code == 200 and SECRET_PREFIX not in answer.text
    assert listed.json()["items"][0]["event_types"] == sorted(made["event_types"])

    def stored(unit) -> bytes:
        rows = unit.session.execute(
            text("SELECT secret_sealed, previous_sealed FROM webhook_endpoints")
        ).one()
        return b"".join(rows)

    raw = server.ctx.run(stored)
    for secret in secrets:
        assert base64.b64decode(secret.removeprefix(SECRET_PREFIX)) not in raw
    assert not any(SECRET_PREFIX in record.getMessage() for record in records)


@SQLITE_ONLY
def test_the_routes_are_described_with_examples(server):
    paths = server.http.get("/openapi.json").json()["paths"]
    create = paths["/v1/admin/webhooks"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["example"]["secret"]
    schema = server.http.get("/openapi.json").json()["components"]["schemas"]["EndpointIn"]
    assert schema["examples"][0]["event_types"] == ["ticket.issued", "ticket.checked_in"]
    assert schema["properties"]["url"]["maxLength"] == 2000
    assert set(schema["properties"]["event_types"]["items"]["$ref"].split("/")[-1:]) == {
        "WebhookEvent"
    }
    for path in (
        "/v1/admin/webhooks/{endpoint_id}/rotate",
        "/v1/admin/webhooks/{endpoint_id}/deliveries",
        "/v1/admin/webhooks/{endpoint_id}/deliveries/{message_id}/retry",
    ):
        operation = next(iter(paths[path].values()))
        assert operation["responses"]["200"]["content"]["application/json"]["example"], path
        assert "401" in operation["responses"] and "403" in operation["responses"], path


@CLOCKED_SQLITE
def test_maintenance_forgets_the_log_after_thirty_days_but_not_what_waits(
    clocked_server, clock, receiver, client
):
    server, admin = clocked_server, clocked_server.admin()
    sent = hook(admin, receiver)["id"]
    waiting = hook(admin, receiver)["id"]
    alert(server)
    assert admin.post(f"/v1/admin/webhooks/{waiting}/disable", {}).status_code == 200
    assert deliver(server, client) == 1
    clock.advance(29 * DAY)
    maintenance.run_once(server.ctx)
    admin = server.admin()
    assert len(log(server, admin, sent)) == 1
    clock.advance(2 * DAY)
    maintenance.run_once(server.ctx)
    admin = server.admin()
    assert log(server, admin, sent) == []
    assert [item["state"] for item in log(server, admin, waiting)] == ["pending"]
