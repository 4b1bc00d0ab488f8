"""The holder page in a real browser (Debian's Chromium through Playwright): staff report a
holder's phone lost and, with the holder's new phone enrolled, replace their ticket at the
counter; a bad amount is refused beside its field, in Chinese, the typed value kept; axe-core
finds no serious or critical violation. Screenshots of the holder page in both languages go to
`$DUOPASS_SCREENSHOTS` when set (docs/screenshots/ was made so)."""

from __future__ import annotations

import time

import pytest

from tests.server.harness import ADMIN_PASSWORD, Wallet, enrolled_till
from tests.server.ticketing import event_on_sale, ticket_wallet
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in

DAY = 86_400


@pytest.mark.parametrize("language", ["zh", "en"])
def test_report_a_loss_then_replace_at_the_counter(site, chromium, shots, language):
    api = site.admin()
    sale = event_on_sale(api, "spring-concert", doors=int(time.time()) + 2 * DAY)
    fan = ticket_wallet(site.http, api, "lin", balance=20_000)
    assert fan.buy(sale).status_code in (200, 201)
    assert fan.sync().status_code == 200
    assert fan.wallet.sync().status_code == 200
    till, _ = enrolled_till(site.http, api, "canteen-1")
    for amount in (850, 1_200):
        assert till.scan(fan.wallet.code(), amount=amount)["ok"]
    handle = fan.wallet.handle
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/console/holders/{handle}")
    _accessible(page)
    page.click("#loss-report button[type=submit]")
    page.wait_for_url(f"**/console/holders/{handle}?done=loss_reported")
    reported = {"zh": "已挂失", "en": "Loss reported"}[language]
    assert reported in page.locator("#done").inner_text()
    assert page.locator("#device option").count() == 1  # no device left but the prompt
    assert fan.sync().status_code == 401  # the lost phone is signed out
    phone = Wallet(site.http, "lin")
    phone.handle, phone.account_id = handle, fan.wallet.account_id
    phone.sign_in()
    phone.enrol()  # the holder's new phone, at the counter
    page.reload()
    page.select_option("#device", str(phone.device_id))
    page.click("#replacement button[type=submit]")
    page.wait_for_url(f"**/console/holders/{handle}?done=replaced")
    replaced = {"zh": "已在柜台补发", "en": "Replaced at the counter"}[language]
    assert replaced in page.locator("#done").inner_text()
    row = page.locator("#tickets tbody tr").first.inner_text()
    assert "Spring-Concert" in row and str(phone.device_id) in row
    assert page.locator("#scans tbody tr").count() == 2
    _accessible(page)
    _shoot(page, shots, f"console-holder-{language}")
    assert errors == []
    page.context.close()


def test_a_bad_amount_is_shown_beside_its_field_in_chinese(site, chromium, shots):
    made = site.admin().holder("wang", name="王小明", balance=500)
    page = _page(chromium, "zh")
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/console/holders/{made['handle']}")
    page.fill("#amount", "12.345")
    page.click("#top-up button[type=submit]")
    message = page.locator("#amount-error")
    message.wait_for()
    assert message.inner_text().strip() == "最多两位小数（到分）：例如 12.50。"
    assert page.locator("#amount").input_value() == "12.345"
    assert page.locator("#amount").get_attribute("aria-invalid") == "true"
    assert "¥5.00" in page.locator("#account-title + dl").inner_text()  # nothing booked
    _accessible(page)
    _shoot(page, shots, "console-holder-refused-zh")
    here = page.url
    page.fill("#reason", "   ")
    page.click("#holder-state button[type=submit]")  # htmx: the 422 fragment swapped in
    page.locator("#reason-error").wait_for()
    assert page.locator("#reason-error").inner_text().strip() == "此项必填。"
    assert page.url == here
    page.click("#erase-link")
    page.wait_for_url(f"**/console/holders/{made['handle']}/erase")
    page.fill("#confirm", "wrong")
    page.click("#erase button[type=submit]")
    page.locator("#confirm-error").wait_for()
    assert "这不是持卡人的登录名" in page.locator("#confirm-error").inner_text()
    _accessible(page)
    _shoot(page, shots, "console-erase-zh")
    assert [e for e in errors if "status of 422" not in e] == []  # the refused forms' status
    page.context.close()


def test_the_same_refusals_in_english(site, chromium, shots):
    made = site.admin().holder("amy", name="Amy Lee", balance=500)
    page = _page(chromium, "en")
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/console/holders/{made['handle']}")
    page.fill("#amount", "0")
    page.click("#top-up button[type=submit]")
    page.locator("#amount-error").wait_for()
    assert page.locator("#amount").get_attribute("aria-invalid") == "true"
    refused = page.locator("#amount-error").inner_text().strip()
    assert refused == "The amount must be at least ¥0.01."
    _accessible(page)
    _shoot(page, shots, "console-holder-refused-en")
    page.goto(f"{site.url}/console/holders/{made['handle']}/erase")
    page.fill("#confirm", "someone-else")
    page.click("#erase button[type=submit]")
    page.locator("#confirm-error").wait_for()
    assert "login" in page.locator("#confirm-error").inner_text()
    _accessible(page)
    _shoot(page, shots, "console-erase-en")
    page.goto(f"{site.url}/console/holders/{made['handle']}/nobody")
    _accessible(page)
    _shoot(page, shots, "console-refused-en")
    assert [e for e in errors if "status of 4" not in e] == []  # the refused pages' statuses
    page.context.close()
