"""What partners owe, in a real browser (Debian's Chromium through Playwright): after a partner
sold and cancelled, the admin reads the partners list (what each owes now), follows a client's
link to the day's sales on the settlement page and reads its "Partners" section; a partner
named like a script shows as text; axe-core finds no serious or critical violation, in both
languages. Screenshots `console-settlement-partners-{zh,en}` go to `$DUOPASS_SCREENSHOTS`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.harness import ADMIN_PASSWORD
from tests.web.partner_sales import NAUGHTY, partner_day
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_reads_what_each_partner_owes(site, chromium, shots, language):
    sold = partner_day(site)
    page = _page(chromium, language)
    errors = _errors(page)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # a name run as a script would open one
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/console/partners")
    owed = page.locator(f"#partner-{sold.row_id} td.owed").inner_text().strip()
    assert owed == "¥15.00"
    _accessible(page)
    page.click(f"#partner-{sold.row_id} a[href*='/console/settlement?day={sold.day}']")
    page.wait_for_url(f"**/console/settlement?day={sold.day}#partners")
    row = page.locator(f"#partner-{sold.row_id}-CNY td")
    assert row.all_inner_texts()[:6] == [
        NAUGHTY,
        sold.client_id,
        "¥45.00",
        "¥30.00",
        "¥15.00",
        "¥15.00",
    ]
    _accessible(page)
    page.locator("#partners").scroll_into_view_if_needed()
    _shoot(page, shots, f"console-settlement-partners-{language}")
    assert dialogs == [] and errors == []
    page.context.close()
