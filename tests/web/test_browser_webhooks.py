"""The console's webhook pages in a real browser (Debian's Chromium through Playwright): an
admin creates an endpoint for a receiver on 127.0.0.1 and reads its secret once, the receiver
verifies what is delivered with it, the delivery log shows a failed attempt, the admin retries
it and the log shows it delivered; axe-core finds no serious or critical violation, in both
languages. Screenshots go to `$DUOPASS_SCREENSHOTS` when set (docs/screenshots/ was made so)."""

from __future__ import annotations

import pytest

from tests.server.harness import ADMIN_PASSWORD
from tests.server.webhooks import alert, client_fixture, deliver, receiver_fixture
from tests.web.test_browser import _accessible, _errors, _page, _shoot, _sign_in

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_creates_an_endpoint_and_reads_its_log(
    site, chromium, shots, language, *, receiver, client
):
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    page.click("nav a[href='/console/webhooks']")
    page.wait_for_url("**/console/webhooks")
    _accessible(page)
    page.fill("#url", "ftp://nowhere.example/")
    page.click("#new-webhook button[type=submit]")
    page.locator("#url-error").wait_for()
    assert page.locator("#url").input_value() == "ftp://nowhere.example/"
    _accessible(page)
    page.fill("#url", receiver.url)
    page.fill("#description", f"box office ({language})")
    page.click("#new-webhook button[type=submit]")
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_") and secret not in page.url
    receiver.secrets.append(secret)
    _accessible(page)
    _shoot(page, shots, f"console-webhook-secret-{language}")
    receiver.down()
    alert(site, 2)
    deliver(site, client)  # the first waits for the receiver, the second behind it
    page.click("main a[href^='/console/webhooks/']")
    page.wait_for_url("**/console/webhooks/*")
    assert secret not in page.content()
    first, second = sorted(
        int(n)
        for n in page.locator("#deliveries tbody tr").evaluate_all(
            "rows => rows.map(r => r.id.split('-')[1])"
        )
    )
    assert "ConnectError" in page.locator(f"#message-{first} .last").inner_text()
    receiver.up()
    page.click(f"#message-{first} .retry button")
    page.locator("#done").wait_for()
    assert deliver(site, client) == 2
    assert [got.verified_by for got in receiver.got] == [(0,), (0,)]
    page.reload()
    for message in (first, second):
        assert page.locator(f"#message-{message}").get_attribute("data-state") == "delivered"
    assert "204" in page.locator(f"#message-{first} .last").inner_text()
    _accessible(page)
    _shoot(page, shots, f"console-webhooks-{language}")
    page.goto(f"{site.url}/console/webhooks")
    assert receiver.url in page.locator("#webhooks").inner_text()
    _accessible(page)
    assert [e for e in errors if "422" not in e] == []  # the field refused on purpose
    page.context.close()
