"""The console's terminals, live, alerts, reissue-review and risk pages in a real browser
(Debian's Chromium through Playwright): enrol a terminal and read its code, an operator
dismisses an alert and is refused a money move, the live charts draw and update by themselves;
axe-core finds no serious or critical violation on any of them, in both languages.
Screenshots go to `$DUOPASS_SCREENSHOTS` when set (docs/screenshots/ was made so)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from duopass.risk import AlertKind
from tests.server.harness import ADMIN_PASSWORD, TerminalClient, enrolled_till, ready_wallet
from tests.server.test_ticket_reissue import _confirm
from tests.web.conftest import OPERATOR
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in
from tests.web.test_console_fleet import held_top_up, raise_alert, request_at_review


def _shown(page: Any, selector: str, text: str) -> None:
    """Wait until the element's text is `text` (a locator wait: the CSP forbids eval)."""
    page.locator(selector).filter(has_text=re.compile(f"^{re.escape(text)}$")).wait_for()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_enrols_a_terminal_and_reads_its_code(site, chromium, shots, language):
    merchant = site.admin().merchant("canteen")
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.click("nav a[href='/console/terminals']")
    page.wait_for_url("**/console/terminals")
    _accessible(page)
    page.fill("#terminal_id", f"till-{language}")
    page.select_option("#mode", "pay")
    page.fill("#venue", "canteen")
    page.fill("#merchant", str(merchant))
    page.click("#enrol button[type=submit]")
    code = page.locator("#enrol-code").inner_text().strip()
    assert code and code not in page.url
    _accessible(page)
    _shoot(page, shots, f"console-terminal-created-{language}")
    assert TerminalClient(site.http, f"till-{language}").enrol(code).status_code == 200
    page.goto(f"{site.url}/console/terminals")
    assert f"till-{language}" in page.locator("#fleet").inner_text()
    assert code not in page.content()
    _accessible(page)
    _shoot(page, shots, f"console-terminals-{language}")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_operator_dismisses_an_alert_and_moves_no_money(site, chromium, shots, language):
    handle = site.admin().holder("mei", name="<script>alert(1)</script>")["handle"]
    held = raise_alert(
        site, AlertKind.PENDING, {"amount": 300}, handle=handle, pending=300, currency="CNY"
    )
    gap = raise_alert(site, AlertKind.GAP, {"first": 7, "acked": 4}, handle=handle)
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, OPERATOR["login"], OPERATOR["password"])
    page.click("nav a[href='/console/alerts']")
    page.wait_for_url("**/console/alerts")
    _accessible(page)
    _shoot(page, shots, f"console-alerts-{language}")
    page.click(f"a[href='/console/alerts/{gap}']")
    page.wait_for_url(f"**/console/alerts/{gap}")
    assert page.locator("#review input[value=to_loss]").count() == 0
    _accessible(page)
    _shoot(page, shots, f"console-alert-{language}")
    page.check("#review input[value=dismiss]")
    page.fill("#note", "seen at the counter")
    page.click("#review button[type=submit]")
    page.locator("#alert-state").filter(has_text="dismiss").wait_for()
    statuses = page.evaluate(
        """async ([held]) => {
          const csrf = document.querySelector("input[name=csrf]").value;
          const post = (action) => fetch(`/console/alerts/${held}/review`,
              {method: "POST", body: new URLSearchParams({csrf, action})}).then(r => r.status);
          return [await post("to_loss"), await post("to_holder"), await post("release")];
        }""",
        [held],
    )
    assert statuses == [403, 403, 403]
    still = site.admin().http.get("/v1/admin/alerts", headers=site.admin().auth).json()
    assert [a["id"] for a in still["items"]] == [held]
    assert [e for e in errors if "403" not in e] == []
    page.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_live_charts_draw_and_update(site, chromium, shots, language):
    admin_api = site.admin()
    wallet = ready_wallet(site.http, admin_api, "lin", balance=10_000)
    till, _ = enrolled_till(site.http, admin_api, "till-live")
    assert till.scan(wallet.code(), amount=100)["ok"]
    assert not till.scan(wallet.code(), amount=10**6)["ok"]
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.click("nav a[href='/console/live']")
    page.wait_for_url("**/console/live")
    _shown(page, "#total-online", "2")
    assert page.locator("#chart-rate canvas").count() == 1
    assert page.locator("#chart-share canvas").count() == 1
    assert page.locator("#chart-refusals canvas").count() == 1
    assert page.locator("#refusals tr").count() == 1
    assert till.scan(wallet.code(), amount=100)["ok"]
    _shown(page, "#total-online", "3")  # the next poll, with no reload
    assert page.locator("#share").inner_text() == "100.0%"
    _accessible(page)
    _shoot(page, shots, f"console-live-{language}")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_risk_alert_and_the_risk_page(guarded_site, chromium, shots, language):
    site = guarded_site
    _holder, alert_id = held_top_up(site)
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/console/alerts/{alert_id}")
    assert "account.top_up.1h" in page.locator("#features").inner_text()
    assert page.locator("#review input[value=release]").count() == 1
    _accessible(page)
    _shoot(page, shots, f"console-alert-risk-{language}")
    page.click("nav a[href='/console/risk']")
    page.wait_for_url("**/console/risk")
    assert "big_top_up" in page.locator("#decisions").inner_text()
    _accessible(page)
    _shoot(page, shots, f"console-risk-{language}")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_reissue_at_review_is_approved(site, chromium, shots, language):
    phone, request_id = request_at_review(site)
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, OPERATOR["login"], OPERATOR["password"])
    page.click("nav a[href='/console/reviews']")
    page.wait_for_url("**/console/reviews")
    assert request_id in page.locator("main").inner_text()
    _accessible(page)
    _shoot(page, shots, f"console-reviews-{language}")
    page.fill("#reason-1", "identity checked at the counter")
    page.click("section.review button[value=approve]")
    page.wait_for_url("**/console/reviews")
    assert request_id not in page.locator("main").inner_text()
    assert _confirm(site, phone, request_id)["credential"]
    assert errors == []
    page.context.close()
