"""A reissue a partner asked for, completed in the browser wallet (issue 17), in a real
Chromium against a real server on 127.0.0.1: a partner (its own OAuth token, through the API)
asks that a ticket of its event move to the holder's newest device, this browser; the page's
"waiting requests" lists it (ticket, event, the partner's name, what it needs), the holder
proves the step-up with their authenticator's code and confirms, and the ticket is on this
browser's device at generation 1 (asked of the API). A second request is declined in the
page. Screenshots in both languages."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.server.partners import make_client
from tests.server.test_partner_orders import _bearer, _fan, _order, _partner_event
from tests.web.test_wallet_browser import OURS, _accessible, wallet_page

LOCALES = {"zh": "zh-CN", "en": "en-US"}
_ACCOUNT = """import(ours("store.js")).then(s => s.read("account")).then(r => r.account)"""
_HELD = """(sub) => import(ours("tickets.js")).then(t => t.held())
  .then(all => all.filter(t => t.sub === sub).length)"""


def _totp_on(site: Any, auth: dict[str, str]) -> str:
    secret = site.http.post("/v1/me/totp/new", headers=auth).json()["secret"]
    on = site.http.post(
        "/v1/me/totp", headers=auth, json={"secret": secret, "otp": pyotp.TOTP(secret).now()}
    )
    assert on.status_code in (200, 204), on.text
    return str(secret)


def _signed_in_page(chromium: Any, site: Any, language: str, login: str) -> Any:
    context = chromium.new_context(
        locale=LOCALES[language], viewport={"width": 520, "height": 1000}
    )
    context.add_init_script(OURS)
    page = wallet_page(context, site.url)
    page.fill("#login", login)
    page.fill("#password", f"pw-{login}-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")
    return page


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_partners_request_is_stepped_up_and_confirmed_in_the_page(
    site, chromium, shots, language
):
    http, admin = site.http, site.admin()
    partner = _bearer(http, make_client(admin, ["tickets:issue", "tickets:reissue"]))
    type_id = _partner_event(http, admin, partner)
    fan = _fan(http, admin)  # the old phone, through the API
    first, second = _order(http, partner, "order-0001", type_id, 2).json()["tickets"]
    assert fan.sync().status_code == 200  # both tickets on the old phone
    old = http.get(f"/v1/me/tickets/{second}", headers=fan.wallet.auth).json()["device_id"]
    page = _signed_in_page(chromium, site, language, "fan")  # the newest device
    page.wait_for_selector("#request-list li:not([data-request])")  # none yet
    secret = _totp_on(site, fan.wallet.auth)
    asked = [
        http.post(f"/v1/partner/tickets/{sub}/reissue", json={}, headers=partner).json()
        for sub in (first, second)
    ]
    rq_first, rq_second = (answer["request_id"] for answer in asked)
    assert [answer["rule"] for answer in asked] == ["step_up_partner"] * 2

    page.click("#requests-show")
    item = page.locator(f"li[data-request={rq_first}]")
    item.wait_for()
    said = item.locator(".request-what").inner_text()
    assert first in said and "City Tickets" in said and "Gig" in said
    assert page.locator(f"li[data-request={rq_second}]").count() == 1
    _accessible(page)
    page.screenshot(path=str(shots / f"wallet-partner-request-{language}.png"), full_page=True)

    page.locator(f"li[data-request={rq_second}] button").last.click()  # decline
    page.wait_for_selector("#message[data-text=request_declined]")
    assert page.locator(f"li[data-request={rq_second}]").count() == 0

    page.fill(f"#code-{rq_first}-totp", pyotp.TOTP(secret).at(int(time.time()) + 30))
    item.locator(".request-code button").first.click()
    page.wait_for_selector("#message[data-text=request_proved]")
    page.locator(f"li[data-request={rq_first}] button").first.click()  # confirm
    page.wait_for_selector("#message[data-text=request_moved]")
    assert page.evaluate(_HELD, first) == 1

    device_id = page.evaluate(_ACCOUNT)["deviceId"]
    moved = http.get(f"/v1/me/tickets/{first}", headers=fan.wallet.auth).json()
    stayed = http.get(f"/v1/me/tickets/{second}", headers=fan.wallet.auth).json()
    assert (moved["device_id"], moved["gen"]) == (device_id, 1)
    assert (stayed["device_id"], stayed["gen"]) == (old, 0) and old != device_id
    shown = http.get(f"/v1/partner/reissues/{rq_second}", headers=partner).json()
    assert shown["state"] == "denied"
    _accessible(page)
    assert page.errors == []
