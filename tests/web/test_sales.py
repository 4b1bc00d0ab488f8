"""The console's settlement and ledger pages over HTTP: the day's report, its CSV and chart
data, closing the day by two admins (the same one refused, `same_person`; one ledger entry), the
payouts CSV, an operator who reads but prepares, approves and exports nothing, CSRF; the ledger's
checkpoint and an entry's receipt in the page."""

from __future__ import annotations

import csv
import hashlib
import io
import time

from duopass.server.services import staff
from tests.server.harness import Running, takings
from tests.server.test_settlement_close import settlement_leaves
from tests.web.console import admin, browser, operator

SECOND = {"login": "bea", "password": "second-admin-password"}


def _day_with_takings(site: Running, clock) -> str:
    """A day on which a canteen took ¥12.34; the clock then two days on (the day has ended)."""
    api = site.admin()
    takings(site.http, api, api.merchant("canteen-<b>east</b>"), 1_234, name="east")
    day = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))  # Asia/Shanghai
    clock.advance(2 * 86_400)
    site.ctx.run(lambda unit: staff.add(unit, role="admin", **SECOND))
    return day


def test_two_admins_close_a_day_in_the_console(clocked_site, clock):
    day = _day_with_takings(clocked_site, clock)
    maker = admin(clocked_site, language="en")
    checker = browser(clocked_site, language="en")
    assert checker.sign_in(**SECOND).status_code == 303
    page = maker.get(f"/console/settlement?day={day}")
    assert page.status_code == 200 and "¥12.34" in page.text
    assert "canteen-&lt;b&gt;east&lt;/b&gt;" in page.text and "<b>east" not in page.text
    assert 'id="prepare"' in page.text and 'id="approve"' not in page.text
    approved_early = maker.post(f"/console/settlement/{day}/approve", {})
    assert approved_early.status_code == 409 and "prepared first" in approved_early.text
    prepared = maker.post(f"/console/settlement/{day}/prepare", {})
    assert prepared.status_code == 303
    assert prepared.headers["location"] == f"/console/settlement?day={day}"
    page = maker.get(f"/console/settlement?day={day}")
    assert 'id="approve"' not in page.text and "different administrator" in page.text
    refused = maker.post(f"/console/settlement/{day}/approve", {})
    assert refused.status_code == 403 and "different administrator" in refused.text
    assert settlement_leaves(clocked_site) == []
    assert 'id="approve"' in checker.get(f"/console/settlement?day={day}").text
    assert checker.post(f"/console/settlement/{day}/approve", {}).status_code == 303
    assert checker.post(f"/console/settlement/{day}/approve", {}).status_code == 303  # as it is
    page = maker.get(f"/console/settlement?day={day}")
    assert "Closed: prepared by admin, approved by bea." in page.text
    (entry,) = settlement_leaves(clocked_site)
    report = maker.get(f"/console/settlement/{day}/report.csv")
    assert report.headers["content-type"].startswith("text/csv")
    sha = hashlib.sha256(report.content).hexdigest()
    assert entry["report"].hex() == sha
    payouts = maker.get(f"/console/settlement/{day}/payouts.csv")
    assert payouts.status_code == 200
    assert "attachment" in payouts.headers["content-disposition"]
    assert list(csv.reader(io.StringIO(payouts.text))) == [
        ["merchant", "amount_minor", "amount_yuan", "day", "report_sha256"],
        ["canteen-<b>east</b>", "1234", "12.34", day, sha],
    ]


def test_an_operator_reads_settlement_but_closes_and_exports_nothing(clocked_site, clock):
    day = _day_with_takings(clocked_site, clock)
    reader = operator(clocked_site)
    page = reader.get(f"/console/settlement?day={day}")
    assert page.status_code == 200 and "¥12.34" in page.text
    assert 'id="prepare"' not in page.text and "payouts.csv" not in page.text
    assert reader.get(f"/console/settlement/{day}/report.csv").status_code == 200
    for step in ("prepare", "approve"):
        refused = reader.post(f"/console/settlement/{day}/{step}", {})
        assert refused.status_code == 403 and "角色" in refused.text
    assert reader.get(f"/console/settlement/{day}/payouts.csv").status_code == 403
    assert settlement_leaves(clocked_site) == []


def test_settlement_forms_need_the_sessions_token(clocked_site, clock):
    day = _day_with_takings(clocked_site, clock)
    maker = admin(clocked_site, language="en")
    maker.get(f"/console/settlement?day={day}")
    forged = maker.http.post(f"/console/settlement/{day}/prepare", data={"csrf": "x" * 32})
    assert forged.status_code == 403 and "did not come from this console" in forged.text
    bare = maker.http.post(f"/console/settlement/{day}/prepare")
    assert bare.status_code == 403
    state = clocked_site.admin().http.get(f"/v1/admin/settlement/{day}/close")
    assert state.status_code == 401  # (no token: the API's own refusal)
    closing = clocked_site.admin()
    shown = closing.http.get(f"/v1/admin/settlement/{day}/close", headers=closing.auth).json()
    assert shown["state"] == "open"


def test_a_bad_day_is_refused_in_the_pages_language(clocked_site, clock):
    maker = admin(clocked_site, language="en")
    for bad in ("2026-02-30", "yesterday"):
        refused = maker.get("/console/settlement", params={"day": bad})
        assert refused.status_code == 422, bad
    assert "YYYY-MM-DD" in maker.get("/console/settlement", params={"day": "nope"}).text
    today = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))
    early = maker.post(f"/console/settlement/{today}/prepare", {})
    assert early.status_code == 409 and "once it has ended" in early.text


def test_the_ledger_page_shows_the_checkpoint_and_an_entrys_receipt(site):
    site.admin().holder("lena", balance=500)  # a top-up: ledger entries
    reader = operator(site, language="en")
    page = reader.get("/console/ledger")
    assert page.status_code == 200
    note = site.http.get("/v1/ledger/checkpoint").text
    first_line = note.split("\n")[0]
    assert first_line in page.text and "Current checkpoint" in page.text
    entry = site.http.get("/v1/ledger/entries/0").json()
    shown = reader.get("/console/ledger", params={"index": 0})
    assert shown.status_code == 200 and entry["data"] in shown.text
    assert site.http.get("/v1/ledger/key").text.strip() in shown.text
    assert "ledger.js" in shown.text and 'id="verdict"' in shown.text
    assert reader.get("/console/ledger", params={"index": 10**6}).status_code == 404
    assert reader.get("/console/ledger", params={"index": -1}).status_code == 422
    assert browser(site).get("/console/ledger").status_code == 303  # staff only
