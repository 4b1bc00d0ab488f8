"""The console's disputes page in a real browser (Debian's Chromium through Playwright): an
admin upholds a holder's dispute from the list and reads the decision; the holder is credited
and the merchant debited; axe-core finds no serious or critical violation, in both languages.
Screenshots go to `$DUOPASS_SCREENSHOTS` when set (docs/screenshots/ was made so)."""

from __future__ import annotations

import pytest

from tests.server.harness import ADMIN_PASSWORD
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in
from tests.web.test_console_disputes import _balances, disputed


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_upholds_a_dispute(site, chromium, shots, language):
    first = disputed(site, "dora", name="Dora Lin")
    second = disputed(site, "emil", name="Emil Wang", till="till-2")
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.click("nav a[href='/console/disputes']")
    page.wait_for_url("**/console/disputes")
    assert page.locator("#disputes tbody tr").count() == 2
    _accessible(page)
    page.select_option(f"#outcome-{first.id}", "uphold")
    page.fill(f"#note-{first.id}", "the till misread the amount")
    page.click(f"#dispute-{first.id} button[type=submit]")
    page.locator("#decided").wait_for()
    assert "¥9.00" in page.locator("#decided").inner_text()
    assert page.locator(f"#dispute-{first.id}").count() == 0
    assert page.locator(f"#dispute-{second.id}").count() == 1
    assert _balances(site, first) == (5_000, 0)
    assert _balances(site, second) == (5_000 - 900, 900)
    _accessible(page)
    _shoot(page, shots, f"console-disputes-{language}")
    assert errors == []
    page.context.close()
