"""The console's partner pages in a real browser (Debian's Chromium through Playwright): an admin
creates a client (a field refused first, beside it), reads its id and secret once, the secret
gets a token, then revokes the client (the box ticked) and the token endpoint refuses it; axe-core
finds no serious or critical violation, in both languages. Screenshots go to
`$DUOPASS_SCREENSHOTS` when set (docs/screenshots/ was made so)."""

from __future__ import annotations

import httpx
import pytest

from tests.server.harness import ADMIN_PASSWORD
from tests.server.partners import token
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_creates_a_client_and_revokes_it(site, chromium, shots, language):
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.click("nav a[href='/console/partners']")
    page.wait_for_url("**/console/partners")
    _accessible(page)
    page.check("#new-partner input[value='tickets:read']")
    page.click("#new-partner button[type=submit]")
    page.locator("#name-error").wait_for()
    assert page.locator("#new-partner input[value='tickets:read']").is_checked()
    _accessible(page)
    page.fill("#name", f"City Tickets ({language})")
    page.check("#new-partner input[value='checkin:redeem']")
    page.fill("#calls_per_minute", "90")
    page.click("#new-partner button[type=submit]")
    secret = page.locator("#client-secret").inner_text().strip()
    client_id = page.locator("#client-id").inner_text().strip()
    assert secret.startswith("dpsec_") and secret not in page.url
    credentials = {"client_id": client_id, "client_secret": secret}
    with httpx.Client(base_url=site.url) as http:
        assert token(http, credentials).status_code == 200
    _accessible(page)
    page.click("main a[href^='/console/partners/']")
    page.wait_for_url("**/console/partners/*")
    assert secret not in page.content()
    _accessible(page)
    page.check("#confirm")
    page.click("#revoke button[type=submit]")
    page.locator("#done").wait_for()
    assert page.url.endswith("/console/partners?done=revoked")
    assert "state-frozen" in page.locator("#partners tbody tr").first.inner_html()
    with httpx.Client(base_url=site.url) as http:
        assert token(http, credentials).status_code == 401
    _accessible(page)
    _shoot(page, shots, f"console-partners-{language}")
    assert [e for e in errors if "422" not in e] == []  # the field refused on purpose
    page.context.close()
