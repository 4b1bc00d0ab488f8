"""What the card office finds through a real server, on SQLite and PostgreSQL: holders with their
personal data (checked on the way in), a search, one holder whole, their scans, journal entries
and alerts, the terminal fleet; every list a page at a time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alembic import command
from alembic.config import Config

from duopass.protocol import make_code
from duopass.protocol.encoding import b64u_decode
from duopass.server.store.db import MIGRATIONS
from tests.server.harness import Admin, enrolled_till, ready_wallet

HOLDERS = "/v1/admin/holders"


def _get(admin: Admin, path: str, **query: Any) -> dict[str, Any]:
    answer = admin.http.get(path, params=query, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _all_pages(admin: Admin, path: str, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _get(admin, path, **query, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-address"),
        ("email", "two@@example.edu"),
        ("email", "a" * 250 + "@x.edu"),
        ("number", "has space"),
        ("number", "9" * 33),
        ("name", "Tab\there"),
        ("name", "N" * 101),
        ("name", ""),
        ("name", "   "),
        ("phone", "call me"),
        ("login", "with space"),
    ],
)
def test_personal_data_has_limits_and_a_stable_refusal(sqlite_server, field, value):
    admin = sqlite_server.admin()
    body = {
        "login": "ann",
        "name": "Ann Lee",
        "number": "2026000001",
        "email": "ann@example.edu",
        "password": "pw-ann-secret",
        field: value,
    }
    refused = admin.post(HOLDERS, body)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
    assert field in refused.json()["detail"]


def test_a_number_belongs_to_one_holder(server):
    admin = server.admin()
    admin.holder("ann", number="2026000001")
    again = admin.post(
        HOLDERS,
        {
            "login": "ann2",
            "name": "Ann Other",
            "number": "2026000001",
            "email": "a2@example.edu",
            "password": "pw-ann2-secret",
        },
    )
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_search_by_login_number_name_or_email_a_page_at_a_time(server):
    admin = server.admin()
    made = {
        "wang": admin.holder("wfang", name="Wang Fang", number="2026000101", balance=1_500),
        "li": admin.holder("lina", name="Li Na", number="2026000102", email="na.li@uni.edu"),
        "zhao": admin.holder("zlei", name="Zhao Lei", number="S-77", phone="+86 138 0000 0001"),
    }
    for n in range(4):
        admin.holder(f"other{n}", name=f"Other {n}", number=f"X{n}")
    by = {
        "fang": ["wfang"],  # login and name, any case
        "WANG": ["wfang"],
        "2026000102": ["lina"],  # number
        "s-77": ["zlei"],
        "na.li@": ["lina"],  # e-mail
        "2026": ["wfang", "lina"],
        "100%": [],  # wildcards are literal
        "_": [],
    }
    for q, logins in by.items():
        found = _all_pages(admin, HOLDERS, q=q)
        assert [item["login"] for item in found] == logins, q
    (wang,) = _get(admin, HOLDERS, q="wfang")["items"]
    assert wang == {
        "id": wang["id"],
        "handle": made["wang"]["handle"],
        "login": "wfang",
        "name": "Wang Fang",
        "number": "2026000101",
        "state": "active",
        "balance": 1_500,
        "currency": "CNY",
    }
    first = _get(admin, HOLDERS, limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    everyone = _all_pages(admin, HOLDERS, limit=2)
    assert len(everyone) == 7 == len({item["id"] for item in everyone})
    assert [item["id"] for item in everyone] == sorted(item["id"] for item in everyone)


def test_lists_refuse_bad_cursors_and_limits_and_serve_staff_only(server):
    admin = server.admin()
    holder = admin.holder("ann")
    for n in range(3):
        admin.holder(f"more{n}")
    holders_cursor = _get(admin, HOLDERS, limit=1)["next_cursor"]
    alerts_path = f"{HOLDERS}/{holder['handle']}/alerts"
    for path, query in [
        (HOLDERS, {"cursor": "not-base64!"}),
        (HOLDERS, {"cursor": "W10"}),  # []
        (HOLDERS, {"cursor": "WyJob2xkZXJzIiwgIjEiXQ"}),  # ["holders", "1"]: a string id
        (alerts_path, {"cursor": holders_cursor}),  # another list's
        ("/v1/admin/terminals", {"cursor": holders_cursor}),
    ]:
        answer = admin.http.get(path, params=query, headers=admin.auth)
        assert answer.status_code == 422 and answer.json()["code"] == "bad_cursor", (path, query)
    for limit in ("0", "201", "1e3", "-1"):
        answer = admin.http.get(HOLDERS, params={"limit": limit}, headers=admin.auth)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request"
    too_long = admin.http.get(HOLDERS, params={"cursor": "A" * 201}, headers=admin.auth)
    assert too_long.status_code == 422
    wallet = ready_wallet(server.http, admin, "nosy", balance=0)
    for path in (HOLDERS, f"{HOLDERS}/{holder['handle']}", "/v1/admin/terminals"):
        assert server.http.get(path, headers=wallet.auth).status_code == 403
        assert server.http.get(path).status_code == 401
    missing = admin.http.get(f"{HOLDERS}/h-000000000000/scans", headers=admin.auth)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_one_holder_whole_with_their_scans_journal_and_alerts(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "quinn", balance=100_000)
    bystander = ready_wallet(server.http, admin, "bystander", balance=10_000)
    till, merchant = enrolled_till(server.http, admin)
    other, _ = enrolled_till(server.http, admin, "till-2", merchant=merchant)
    third, _ = enrolled_till(server.http, admin, "till-3", merchant=merchant)
    for seq in (1, 2, 3):
        assert till.scan(wallet.code(), amount=100 * seq, seq=seq)["ok"]
    assert till.scan(bystander.code(), amount=50, seq=4)["ok"]
    now = int(time.time())
    credential = b64u_decode(wallet.credential["credential"])
    first = make_code(credential, wallet.key, ctr=3, ts=now - 200)
    clone = make_code(credential, wallet.key, ctr=3, ts=now)
    assert other.journal([other.entry(first, seq=1, scanned_at=now - 200)]).status_code == 200
    assert third.journal([third.entry(clone, seq=1, scanned_at=now)]).status_code == 200

    shown = _get(admin, f"{HOLDERS}/{wallet.handle}")
    assert shown["login"] == "quinn" and shown["person"]["name"] == "Holder quinn"
    assert shown["person"]["email"] == "quinn@example.edu" and shown["erased"] is None
    assert shown["account"]["balance"] == admin.account(wallet.account_id)["balance"]
    assert [d["id"] for d in shown["devices"]] == [wallet.device_id]
    assert shown["credentials"][0]["cti"] == wallet.credential["cti"]

    scans = _all_pages(admin, f"{HOLDERS}/{wallet.handle}/scans", limit=2)
    assert [(s["terminal_id"], s["seq"]) for s in scans] == [
        ("till-1", 3),
        ("till-1", 2),
        ("till-1", 1),
    ]
    assert scans[0]["verdict"]["ok"] is True and scans[0]["amount"] == 300
    journal = _all_pages(admin, f"{HOLDERS}/{wallet.handle}/journal", limit=1)
    assert {(j["terminal_id"], j["seq"]) for j in journal} == {("till-2", 1)}
    assert journal[0]["outcome"] == "booked" and journal[0]["ctr"] == 3

    alerts = _all_pages(admin, f"{HOLDERS}/{wallet.handle}/alerts")
    assert alerts and {a["kind"] for a in alerts} == {"clone"}
    named = _all_pages(admin, "/v1/admin/alerts", limit=1)
    assert named  # the review queue names the holder to staff, a page at a time
    for alert in named:
        assert (alert["holder_login"], alert["holder_name"]) == ("quinn", "Holder quinn")
        assert alert["holder_handle"] == wallet.handle
    assert _all_pages(admin, f"{HOLDERS}/{bystander.handle}/alerts") == []
    assert len(_all_pages(admin, f"{HOLDERS}/{bystander.handle}/scans")) == 1


def test_the_fleet_shows_contact_bundle_and_backlog(server):
    admin = server.admin()
    wallet = ready_wallet(server.http, admin, "rita", balance=10_000)
    till, _ = enrolled_till(server.http, admin)
    admin.terminal("gate-new", mode="identity", venue="gym")  # created, never enrolled
    fleet = {t["id"]: t for t in _all_pages(admin, "/v1/admin/terminals", limit=1)}
    assert set(fleet) == {"gate-new", "till-1"}
    assert fleet["gate-new"]["last_seen_at"] is None and fleet["gate-new"]["online"] is False
    assert fleet["till-1"]["bundle_seq"] is None and fleet["till-1"]["journal_backlog"] == 0

    till.bundle()
    code = wallet.code()
    assert till.scan(code, amount=300, seq=3)["ok"]  # seqs 1 and 2 were offline, unsent
    seen = {t["id"]: t for t in _all_pages(admin, "/v1/admin/terminals")}["till-1"]
    assert seen["online"] is True and seen["state"] == "enrolled"
    assert seen["bundle_seq"] == seen["bundle_seq_latest"] and seen["bundle_age_s"] >= 0
    assert seen["last_scan_at"] is not None and seen["last_seen_at"] >= seen["bundle_sent_at"]
    assert (seen["acked_seq"], seen["journal_backlog"]) == (0, 3)

    entries = [till.entry(wallet.code(), seq=1), till.entry(wallet.code(), seq=2)]
    entries.append(till.entry(code, seq=3, amount=300, online=True))
    assert till.journal(entries).json()["acked_seq"] == 3
    after = {t["id"]: t for t in _all_pages(admin, "/v1/admin/terminals")}["till-1"]
    assert (after["acked_seq"], after["journal_backlog"]) == (3, 0)
    assert after["last_upload_at"] is not None


def test_holders_from_before_personal_data_are_found_by_login(server):
    """0006 on a database with holders: they have no personal data (their numbers were never
    stored), are listed and found by login, and new holders get theirs."""
    admin = server.admin()
    old = admin.holder("oldtimer", balance=700)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for target in ("0005", "head"):
        with server.ctx.db.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if target == "0005" else command.upgrade)(config, target)
        server.ctx.db.engine.dispose()
    (found,) = _get(admin, HOLDERS, q="oldtime")["items"]
    assert (found["handle"], found["name"], found["number"]) == (old["handle"], None, None)
    assert found["balance"] == 700 and found["state"] == "active"
    assert _get(admin, f"{HOLDERS}/{old['handle']}")["person"] is None
    admin.holder("newcomer", name="New Comer")
    assert [h["name"] for h in _get(admin, HOLDERS, q="comer")["items"]] == ["New Comer"]
