"""The console's terminals, live, alerts, reissue-review and risk pages over HTTP, as a browser
without scripts uses them: roles enforced on the server, CSRF, escaping, the one-time code
shown once and nowhere else, and the live numbers against scans made here."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from duopass.risk import AlertKind
from duopass.server.services import alerts, holders, live_scans
from duopass.server.unit_of_work import Unit
from duopass.server.web.console.visit import IDLE_S
from tests.server.harness import Running, TerminalClient, enrolled_till, ready_wallet
from tests.server.test_ticket_reissue import DAY, _ask, _bought, _confirm, _new_phone
from tests.web.console import admin, browser, operator

NAUGHTY = "<script>alert(1)</script>"
PAGES = (
    "/console/terminals",
    "/console/live",
    "/console/alerts",
    "/console/reviews",
    "/console/risk",
)


def raise_alert(site: Running, kind: AlertKind, evidence: dict[str, Any], **kw: Any) -> int:
    """An alert raised by the service that raises them (for the holder `handle`, if given)."""
    handle = kw.pop("handle", None)

    def work(unit: Unit) -> int:
        holder = None
        if handle is not None:
            holder = holders.by_handle(unit.session, handle)
        return alerts.raise_alert(unit, kind, evidence=evidence, holder=holder, **kw).id

    return int(site.ctx.run(work))


def held_top_up(site: Running) -> tuple[dict[str, Any], int]:
    """A top-up the guarded policy holds for review: (the holder, its risk_decision alert)."""
    admin_api = site.admin()
    holder = admin_api.holder("fay")
    assert admin_api.top_up(holder["handle"], 20_000).status_code == 200
    held = admin_api.top_up(holder["handle"], 60_000, request_id="held-top-up-1")
    assert held.json()["code"] == "risk_review", held.text
    listed = admin_api.http.get(
        "/v1/admin/alerts", params={"kind": "risk_decision"}, headers=admin_api.auth
    ).json()["items"]
    (alert,) = listed
    return holder, int(alert["id"])


def test_every_page_needs_a_session_and_answers_staff(site):
    nobody = browser(site)
    for page in PAGES:
        assert nobody.get(page).headers["location"].endswith("/console/login")
    assert nobody.get("/console/live/data").status_code == 401
    clerk = operator(site, language="en")
    for page in PAGES:
        answer = clerk.get(page)
        assert answer.status_code == 200, page
        assert answer.headers["cache-control"] == "no-store"


def test_an_admin_enrols_a_terminal_and_sees_its_code_once(site, caplog):
    merchant = site.admin().merchant("canteen")
    caplog.set_level(logging.DEBUG)
    boss = admin(site, language="en")
    boss.get("/console/terminals")
    created = boss.post(
        "/console/terminals",
        {"terminal_id": "till-9", "mode": "pay", "venue": "canteen", "merchant": str(merchant)},
    )
    assert created.status_code == 200
    found = re.search(r'id="enrol-code">([A-Za-z0-9_-]+)<', created.text)
    assert found is not None
    code = found.group(1)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and code not in logged  # the server's log lines: no code in them
    fleet = boss.get("/console/terminals").text
    assert "till-9" in fleet and code not in fleet
    assert code not in str(created.headers) and code not in str(created.url)
    till = TerminalClient(site.http, "till-9")
    assert till.enrol(code).status_code == 200  # the code shown enrols the terminal
    assert "state-active" not in boss.get("/console/terminals").text  # enrolled, not yet seen
    till.bundle()
    assert "state-active" in boss.get("/console/terminals").text  # seen: online
    again = boss.post("/console/terminals", {"terminal_id": "till-9", "mode": "identity"})
    assert again.status_code == 409


def test_enrolment_refuses_bad_fields_and_operators(site):
    boss = admin(site, language="en")
    boss.get("/console/terminals")
    for fields, words in (
        ({"terminal_id": "a b", "mode": "identity"}, "A terminal id"),
        ({"terminal_id": "t1", "mode": "pay", "merchant": "x"}, "merchant"),
        ({"terminal_id": "t1", "mode": "entry"}, "A gate needs its event"),
        ({"terminal_id": "t1", "mode": "bogus"}, "Choose what the terminal does"),
    ):
        refused = boss.post("/console/terminals", fields)
        assert refused.status_code == 422 and words in refused.text, fields
    clerk = operator(site)
    page = clerk.get("/console/terminals").text
    assert 'id="enrol"' not in page
    forged = clerk.post("/console/terminals", {"terminal_id": "t2", "mode": "identity"})
    assert forged.status_code == 403
    bare = boss.http.post("/console/terminals", data={"terminal_id": "t3", "mode": "identity"})
    assert bare.status_code == 403  # no CSRF token
    assert "t2" not in boss.get("/console/terminals").text
    assert "t3" not in boss.get("/console/terminals").text


def test_a_terminal_named_like_a_script_is_text(site):
    boss = admin(site)
    boss.get("/console/terminals")
    boss.post(
        "/console/terminals",
        {"terminal_id": "gate-1", "mode": "entry", "event": NAUGHTY, "venue": NAUGHTY},
    )
    text = boss.get("/console/terminals").text
    assert NAUGHTY not in text and "&lt;script&gt;" in text


def test_the_live_numbers_are_the_scans_made(site):
    admin_api = site.admin()
    wallet = ready_wallet(site.http, admin_api, "lin", balance=10_000)
    till, _merchant = enrolled_till(site.http, admin_api, "till-live")
    assert till.scan(wallet.code(), amount=100)["ok"]
    assert till.scan(wallet.code(), amount=200)["ok"]
    refused = till.scan(wallet.code(), amount=10**6)
    assert not refused["ok"]
    entries = [
        till.entry(wallet.code(), seq=till.seq + 1, amount=50),
        till.entry(wallet.code(), seq=till.seq + 2, amount=50, verdict="EXPIRED"),
    ]
    till.seq += 2
    assert till.journal(entries, first=till.seq - 1).status_code == 200
    data = operator(site).get("/console/live/data").json()
    assert data["totals"] == {"online": 3, "offline": 2}
    assert data["refusals"] == {"online": {refused["reason"]: 1}, "offline": {"EXPIRED": 1}}
    assert data["online_share"] == 0.6
    assert sum(data["online"]) == 3 and sum(data["offline"]) == 2
    assert len(data["starts"]) == len(data["online"]) == data["window_s"] // data["bin_s"]
    assert operator(site).get("/console/live/data?window_s=1").status_code == 422


def test_an_operator_dismisses_and_is_refused_money_moves(site):
    mei = site.admin().holder("mei", name=NAUGHTY)["handle"]
    gap = raise_alert(site, AlertKind.GAP, {"note": NAUGHTY}, handle=mei)
    held = raise_alert(
        site, AlertKind.PENDING, {"amount": 300}, handle=mei, pending=300, currency="CNY"
    )
    clerk = operator(site)
    listed = clerk.get("/console/alerts").text
    assert f"/console/alerts/{gap}" in listed and NAUGHTY not in listed
    only_gaps = clerk.get("/console/alerts?kind=gap").text
    assert f"/console/alerts/{gap}" in only_gaps and f"/console/alerts/{held}" not in only_gaps
    assert clerk.get("/console/alerts?kind=nonsense").status_code == 422
    page = clerk.get(f"/console/alerts/{held}").text
    assert NAUGHTY not in page and "&lt;script&gt;" in page
    assert 'value="to_loss"' not in page and 'value="to_holder"' not in page
    assert 'value="release"' not in page and 'value="dismiss"' in page
    for action in ("to_loss", "to_holder", "release"):
        forged = clerk.post(f"/console/alerts/{held}/review", {"action": action})
        assert forged.status_code == 403
    bare = clerk.http.post(f"/console/alerts/{gap}/review", data={"action": "dismiss"})
    assert bare.status_code == 403
    done = clerk.post(f"/console/alerts/{gap}/review", {"action": "dismiss", "note": "seen"})
    assert done.status_code == 303
    assert "已处理：dismiss (seen)" in clerk.get(f"/console/alerts/{gap}").text
    assert clerk.post(f"/console/alerts/{gap}/review", {"action": "dismiss"}).status_code == 409
    api = site.admin()
    still = api.http.get("/v1/admin/alerts", headers=api.auth).json()
    assert [a["id"] for a in still["items"]] == [held]
    resolved = api.http.get(
        "/v1/admin/alerts", params={"state": "resolved", "kind": "gap"}, headers=api.auth
    ).json()
    assert [a["id"] for a in resolved["items"]] == [gap]  # the API's filter by kind
    none = api.http.get(
        "/v1/admin/alerts", params={"kind": "pending", "state": "resolved"}, headers=api.auth
    ).json()
    assert none["items"] == []
    bogus = api.http.get("/v1/admin/alerts", params={"kind": "bogus"}, headers=api.auth)
    assert bogus.status_code == 422
    boss = admin(site)
    assert 'value="to_loss"' in boss.get(f"/console/alerts/{held}").text


def test_a_risk_decision_shows_its_rule_features_and_policy_and_an_admin_releases_it(
    guarded_site,
):
    site = guarded_site
    holder, alert_id = held_top_up(site)
    clerk = operator(site, language="en")
    page = clerk.get(f"/console/alerts/{alert_id}").text
    for shown in ("big_top_up", "top_up", "account.top_up.1h", f"account:holder:{holder['id']}"):
        assert shown in page, shown
    policy = site.admin().http.get("/v1/admin/risk", headers=site.admin().auth).json()["policy"]
    assert policy["version"] in page and policy["sha256"] in page
    assert 'value="release"' not in page
    assert (
        clerk.post(f"/console/alerts/{alert_id}/review", {"action": "release"}).status_code == 403
    )
    risk = clerk.get("/console/risk").text
    assert "big_top_up" in risk and f"account:holder:{holder['id']}" in risk
    boss = admin(site, language="en")
    offered = boss.get(f"/console/alerts/{alert_id}").text
    assert 'value="release"' in offered  # and no money move: nothing is pending on it
    assert 'value="to_loss"' not in offered and 'value="to_holder"' not in offered
    released = boss.post(f"/console/alerts/{alert_id}/review", {"action": "release"})
    assert released.status_code == 303
    again = site.admin().top_up(holder["handle"], 60_000, request_id="held-top-up-2")
    assert again.status_code == 200  # the released request goes through, once
    assert site.admin().account(holder["account_id"])["balance"] == 80_000


def test_reissue_reviews_refuse_bad_reasons_and_forgeries(site):
    clerk = operator(site, language="en")
    assert "No reissue request waits for review." in clerk.get("/console/reviews").text
    assert (
        clerk.post("/console/reviews/nope", {"action": "approve", "reason": ""}).status_code == 422
    )
    assert (
        clerk.post("/console/reviews/nope", {"action": "approve", "reason": "ok"}).status_code
        == 404
    )
    bare = clerk.http.post("/console/reviews/nope", data={"action": "approve", "reason": "ok"})
    assert bare.status_code == 403


def request_at_review(site: Running) -> tuple[Any, str]:
    """A ticket's fourth reissue, which the policy sends to a person: (the phone, its request)."""
    admin_api = site.admin()
    fan, sub, _ = _bought(site, admin_api, doors=int(time.time()) + 2 * DAY)
    phones = [fan]
    for _ in range(3):
        phone = _new_phone(site, phones[-1])
        asked = _ask(site, phone, sub)
        _confirm(site, phone, asked["request_id"])
        phones.append(phone)
    phone = _new_phone(site, phones[-1])
    asked = _ask(site, phone, sub)
    assert asked["outcome"] == "review", asked
    return phone, str(asked["request_id"])


def test_an_operator_approves_a_reissue_at_review(site):
    phone, request_id = request_at_review(site)
    clerk = operator(site, language="en")
    page = clerk.get("/console/reviews").text
    assert request_id in page and "review_many_reissues" in page
    approved = clerk.post(
        f"/console/reviews/{request_id}", {"action": "approve", "reason": "id checked"}
    )
    assert approved.status_code == 303
    assert request_id not in clerk.get("/console/reviews").text
    assert _confirm(site, phone, request_id)["credential"]  # the holder may confirm now
    again = clerk.post(f"/console/reviews/{request_id}", {"action": "refuse", "reason": "late"})
    assert again.status_code == 409


def test_the_live_numbers_are_bounded(site, monkeypatch):
    admin_api = site.admin()
    wallet = ready_wallet(site.http, admin_api, "bo", balance=10_000)
    till, _merchant = enrolled_till(site.http, admin_api, "till-bound")
    for _ in range(3):
        assert till.scan(wallet.code(), amount=100)["ok"]
    monkeypatch.setattr(live_scans, "ROWS_MAX", 2)
    data = operator(site).get("/console/live/data", params={"window_s": 10**4}).status_code
    assert data == 422  # past the longest window
    data = operator(site).get("/console/live/data").json()
    assert data["truncated"] is True and data["totals"]["online"] == 2


def test_a_live_poll_does_not_keep_the_session_alive(clocked_site, clock):
    clerk = operator(clocked_site)
    clock.advance(IDLE_S - 60)
    assert clerk.get("/console/live/data").status_code == 200
    assert "set-cookie" not in clerk.http.get("/console/live/data").headers
    clock.advance(120)  # past IDLE_S since the last page, though polled since
    assert clerk.get("/console/live/data").status_code == 401
    assert clerk.get("/console/live").headers["location"].endswith("/console/login")
