"""Closing a settlement day by maker and checker over the API: one admin prepares, another
approves (the same one is refused, `same_person`), the ledger gets one settlement entry, the
closed day exports its payouts; the old close route is refused (`prepare_and_approve`); an
operator reads the state but prepares, approves and exports nothing."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import time
from typing import Any

import cbor2
import pytest

from duopass.server.services import staff
from tests.server.harness import Admin, Running, takings

SECOND = {"login": "bea", "password": "second-admin-password"}
OPERATOR = {"login": "oona", "password": "operator-password"}
SQLITE_ONLY = pytest.mark.parametrize("clocked_server", ["sqlite"], indirect=True)


def _signed(server: Running, login: str, password: str) -> Admin:
    answer = server.http.post("/v1/admin/session", json={"login": login, "password": password})
    assert answer.status_code == 200, answer.text
    return Admin(server.http, {"Authorization": f"Bearer {answer.json()['token']}"})


def _refused(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code


def settlement_leaves(server: Running) -> list[dict[str, Any]]:
    """The bodies of the ledger's settlement entries, oldest first."""
    leaves = server.http.get("/v1/ledger/entries", params={"start": 0}).json()["entries"]
    decoded = [cbor2.loads(base64.b64decode(text)) for text in leaves]
    return [leaf[4] for leaf in decoded if leaf[1] == "settlement"]


def close_by_two(server: Running, day: str) -> dict[str, Any]:
    """Close `day` as the card office does: the demo admin prepares, a second admin approves."""
    maker = server.admin()
    prepared = maker.post(f"/v1/admin/settlement/{day}/prepare", {})
    assert prepared.status_code == 200, prepared.text
    checker_login = {"login": "checker", "password": "checker-admin-password"}
    server.ctx.run(lambda unit: staff.add(unit, role="admin", **checker_login))
    approved = _signed(server, **checker_login).post(f"/v1/admin/settlement/{day}/approve", {})
    assert approved.status_code == 200, approved.text
    closed: dict[str, Any] = approved.json()
    return closed


def _day_with_takings(server: Running, clock) -> tuple[str, str]:
    """A day on which a canteen took ¥12.34, then two days later (the day has ended)."""
    maker = server.admin()
    merchant = maker.merchant("canteen-east")
    takings(server.http, maker, merchant, 1_234, name="east")
    day = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))  # Asia/Shanghai
    clock.advance(2 * 86_400)
    server.ctx.run(lambda unit: staff.add(unit, role="admin", **SECOND))
    server.ctx.run(lambda unit: staff.add(unit, role="operator", **OPERATOR))
    return day, "canteen-east"


@pytest.mark.parametrize("clocked_server", ["sqlite", "postgres"], indirect=True)
def test_two_admins_close_a_day_and_the_same_one_is_refused(clocked_server, clock):
    day, merchant = _day_with_takings(clocked_server, clock)
    maker = clocked_server.admin()
    checker = _signed(clocked_server, **SECOND)
    base = f"/v1/admin/settlement/{day}"
    _refused(checker.post(f"{base}/approve", {}), 409, "not_prepared")
    prepared = maker.post(f"{base}/prepare", {})
    assert prepared.status_code == 200, prepared.text
    assert prepared.json()["state"] == "prepared"
    report = clocked_server.http.get(f"{base}?format=csv", headers=maker.auth).text
    sha = hashlib.sha256(report.encode()).hexdigest()
    assert prepared.json()["report_sha256"] == sha
    _refused(maker.post(f"{base}/approve", {}), 403, "same_person")
    _refused(maker.http.get(f"{base}/payouts", headers=maker.auth), 409, "not_closed")
    assert settlement_leaves(clocked_server) == []
    approved = checker.post(f"{base}/approve", {})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "closed"
    assert checker.post(f"{base}/approve", {}).json() == approved.json()  # again: as it is
    assert maker.post(f"{base}/prepare", {}).json()["state"] == "closed"
    (entry,) = settlement_leaves(clocked_server)
    assert entry["day"] == day and entry["report"] == bytes.fromhex(sha)
    assert entry["merchants"] == [[merchant, 1_234]]
    payouts = maker.http.get(f"{base}/payouts", headers=maker.auth)
    assert payouts.status_code == 200 and payouts.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(payouts.text)))
    assert rows == [
        ["merchant", "amount_minor", "amount_yuan", "day", "report_sha256"],
        [merchant, "1234", "12.34", day, sha],
    ]


@SQLITE_ONLY
def test_the_old_close_route_is_refused_and_an_operator_only_reads(clocked_server, clock):
    day, _ = _day_with_takings(clocked_server, clock)
    admin = clocked_server.admin()
    operator = _signed(clocked_server, **OPERATOR)
    base = f"/v1/admin/settlement/{day}"
    refused = admin.post(f"{base}/close", {})
    _refused(refused, 409, "prepare_and_approve")
    assert "/prepare" in refused.json()["detail"] and "/approve" in refused.json()["detail"]
    for path in ("prepare", "approve", "close"):
        _refused(operator.post(f"{base}/{path}", {}), 403, "forbidden")
    _refused(operator.http.get(f"{base}/payouts", headers=operator.auth), 403, "forbidden")
    state = operator.http.get(f"{base}/close", headers=operator.auth)
    assert state.status_code == 200 and state.json() == {"day": day, "state": "open"}
    today = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))
    _refused(admin.post(f"/v1/admin/settlement/{today}/prepare", {}), 409, "conflict")
    _refused(admin.post("/v1/admin/settlement/2026-02-30/prepare", {}), 422, "invalid_request")
    assert settlement_leaves(clocked_server) == []
