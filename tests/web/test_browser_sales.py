"""The console's events, settlement and ledger pages in a real browser (Debian's Chromium
through Playwright) against a real server on 127.0.0.1: two admins prepare and approve a day
(its chart drawn by uPlot), a check-in count that updates by itself (htmx polling), an entry's
receipt verified in the page with WebCrypto and a tampered one refused; axe-core on each page;
screenshots of each page in both languages (`$DUOPASS_SCREENSHOTS`)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from duopass.server.services import staff
from tests.server.harness import ADMIN_PASSWORD, takings
from tests.server.ticketing import entrance, event_on_sale, redeem, ticket_wallet
from tests.web.conftest import OPERATOR
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in

SECOND = {"login": "bea", "password": "second-admin-password"}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_two_admins_prepare_and_approve_a_day(clocked_site, clock, chromium, shots, language):
    api = clocked_site.admin()
    takings(clocked_site.http, api, api.merchant("canteen-east"), 1_234, name="east")
    takings(clocked_site.http, api, api.merchant("canteen-west"), 560, name="west")
    day = time.strftime("%Y-%m-%d", time.gmtime(clock.now + 8 * 3600))  # Asia/Shanghai
    clock.advance(2 * 86_400)
    clocked_site.ctx.run(lambda unit: staff.add(unit, role="admin", **SECOND))
    maker = _page(chromium, language)
    errors = _errors(maker)
    _sign_in(maker, clocked_site.url, "admin", ADMIN_PASSWORD)
    maker.click("nav a[href='/console/settlement']")
    maker.fill("#day", day)
    maker.click("main form button[type=submit]")
    maker.wait_for_url(f"**/console/settlement?day={day}")
    maker.locator("#settlement-chart canvas").wait_for()  # uPlot drew the chart
    assert "¥12.34" in maker.locator("main").inner_text()
    _accessible(maker)
    maker.click("#prepare")
    maker.wait_for_load_state()
    assert maker.locator("#approve").count() == 0  # not for the one who prepared it
    prepared = {"zh": "由 admin 于", "en": "Prepared by admin at"}[language]
    assert prepared in maker.locator("#close-state").inner_text()
    _accessible(maker)
    checker = _page(chromium, language)
    errors += _errors(checker)
    _sign_in(checker, clocked_site.url, SECOND["login"], SECOND["password"])
    checker.goto(f"{clocked_site.url}/console/settlement?day={day}")
    checker.click("#approve")
    closed = {
        "zh": "已关账：由 admin 准备，bea 批准。",
        "en": "Closed: prepared by admin, approved by bea.",
    }
    checker.locator("#close-state").filter(has_text=closed[language]).wait_for()
    checker.locator("#settlement-chart canvas").wait_for()
    with checker.expect_download() as download:
        checker.click("#payouts")
    payouts = download.value.path().read_text()
    assert payouts.splitlines()[1].startswith(f"canteen-east,1234,12.34,{day},")
    _accessible(checker)
    _shoot(checker, shots, f"console-settlement-{language}")
    assert errors == []
    maker.context.close()
    checker.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_check_in_count_updates_by_itself(site, chromium, shots, language):
    api = site.admin()
    sale = event_on_sale(api, doors=int(time.time()) - 60)
    fan = ticket_wallet(site.http, api, "fan", balance=10_000)
    (ticket,) = fan.buy(sale, quantity=1).json()["tickets"]
    fan.sync()
    door = entrance(api, sale.event)
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, OPERATOR["login"], OPERATOR["password"])
    page.click("nav a[href='/console/events']")
    page.wait_for_url("**/console/events")
    _accessible(page)
    _shoot(page, shots, f"console-events-{language}")
    page.click(f"main a[href='/console/events/{sale.event}']")
    page.wait_for_url(f"**/console/events/{sale.event}")
    assert page.locator(f"#count-{door} .entered").inner_text() == "0"
    assert redeem(api, fan.code(ticket), [door]).status_code == 201
    page.locator(f"#count-{door} .entered").filter(has_text="1").wait_for(timeout=30_000)
    assert page.locator(f"#count-{door} .inside").inner_text() == "1"
    _accessible(page)
    _shoot(page, shots, f"console-event-{language}")
    assert errors == []
    page.context.close()


def _verify(page: Any) -> str:
    page.locator("#verdict").evaluate("node => { node.textContent = ''; node.className = ''; }")
    page.click("#verify button[type=submit]")
    page.locator("#verdict.verified, #verdict.not-verified").wait_for()
    return str(page.locator("#verdict").get_attribute("class"))


def _flip(text: str, at: int) -> str:
    """`text` with one base64 character at `at` changed (one byte of what it encodes)."""
    swapped = "B" if text[at] != "B" else "C"
    return text[:at] + swapped + text[at + 1 :]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_entrys_receipt_is_verified_in_the_page(site, chromium, shots, language):
    site.admin().holder("lena", balance=500)
    site.admin().holder("lars", balance=700)
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, OPERATOR["login"], OPERATOR["password"])
    page.click("nav a[href='/console/ledger']")
    page.fill("#index", "1")
    page.click("main form[method=get] button[type=submit]")
    page.wait_for_url("**/console/ledger?index=1")
    assert _verify(page) == "done verified", page.locator("#verdict").inner_text()
    ok = {"zh": "验证通过", "en": "Verified"}[language]
    assert page.locator("#verdict").inner_text().startswith(ok)
    _accessible(page)
    _shoot(page, shots, f"console-ledger-{language}")
    leaf = page.input_value("#leaf")
    page.fill("#leaf", _flip(leaf, 10))
    assert _verify(page) == "error not-verified"
    bad = {"zh": "未通过验证", "en": "Not verified"}[language]
    assert page.locator("#verdict").inner_text().startswith(bad)
    page.fill("#leaf", leaf)
    assert _verify(page) == "done verified"
    receipt = page.input_value("#receipt")
    signature_at = receipt.rindex(" ") + 12  # inside the checkpoint's signature
    page.fill("#receipt", _flip(receipt, signature_at))
    assert _verify(page) == "error not-verified"
    root_at = receipt.index("\n\n") + 2
    root_at = receipt.index("\n", receipt.index("\n", root_at) + 1) + 5  # the root line
    page.fill("#receipt", _flip(receipt, root_at))
    assert _verify(page) == "error not-verified"
    assert "signature" in page.locator("#verdict").inner_text()
    assert errors == []
    page.context.close()
