"""Passkeys in the browser wallet, in a real Chromium with its virtual authenticator (the
DevTools WebAuthn domain: CTAP2, internal transport, resident keys, user verified) against a
real server at http://localhost:PORT: add a passkey after a password sign-in, sign out, sign
in with the passkey; a browser never enrolled signs in with the same passkey and enrols its
device key; a reissue's step-up proved with the passkey in the page. Screenshots in both
languages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.server.ticketing import HOUR, event_on_sale, ticket_wallet
from tests.web.test_wallet_browser import OURS, _accessible, wallet_page

LOCALES = {"zh": "zh-CN", "en": "en-US"}
_ACCOUNT = """import(ours("store.js")).then(s => s.read("account")).then(r => r.account)"""


def _context(chromium: Any, language: str) -> Any:
    context = chromium.new_context(locale=LOCALES[language], viewport={"width": 480, "height": 900})
    context.add_init_script(OURS)
    return context


def _authenticator(context: Any, page: Any) -> tuple[Any, str]:
    """A virtual platform authenticator for the page: a phone's, its screen lock passed."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, added["authenticatorId"]


def _signed_in_by(site: Any, token: str) -> str:
    mine = site.http.get("/v1/me/sessions", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200, mine.text
    return str(next(s["method"] for s in mine.json() if s["current"]))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_add_a_passkey_sign_out_and_sign_in_with_it(local_site, chromium, shots, language):
    site = local_site
    login = f"pia-{language}"
    site.admin().holder(login, balance=30_000)
    context = _context(chromium, language)
    page = wallet_page(context, site.url)
    assert page.url.startswith("http://localhost:")
    cdp, authenticator = _authenticator(context, page)
    page.fill("#login", login)
    page.fill("#password", f"pw-{login}-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")
    page.click("#passkey-add")
    page.wait_for_selector("#message[data-text=passkey_added]")
    page.wait_for_selector("#passkey-list li[data-passkey]")
    (made,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert (made["rpId"], made["isResidentCredential"]) == ("localhost", True)
    _accessible(page)
    page.screenshot(path=str(shots / f"wallet-passkey-added-{language}.png"), full_page=True)

    first = page.evaluate(_ACCOUNT)["token"]
    page.click("#signout")
    page.wait_for_selector("#message[data-text=signed_out]")
    assert page.evaluate(_ACCOUNT)["token"] is None
    ended = site.http.get("/v1/me/sessions", headers={"Authorization": f"Bearer {first}"})
    assert ended.status_code == 401  # the session ended on the server too

    page.click("#passkey-signin")
    page.wait_for_selector("#message[data-text=passkey_signed_in]")
    account = page.evaluate(_ACCOUNT)
    assert account["login"] == login and _signed_in_by(site, account["token"]) == "passkey"
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert used[0]["signCount"] > made["signCount"]
    page.wait_for_selector("#passkey-list li[data-passkey]")
    _accessible(page)
    page.screenshot(path=str(shots / f"wallet-passkey-signin-{language}.png"), full_page=True)
    assert page.errors == []

    # another browser, never enrolled, with the same passkey (synced to it): it signs in and
    # enrols its own device key
    other = _context(chromium, language)
    fresh = wallet_page(other, site.url)
    cdp2, authenticator2 = _authenticator(other, fresh)
    cdp2.send("WebAuthn.addCredential", {"authenticatorId": authenticator2, "credential": used[0]})
    fresh.click("#passkey-signin")
    fresh.wait_for_selector("#message[data-text=passkey_signed_in]")
    enrolled = fresh.evaluate(_ACCOUNT)
    assert enrolled["login"] == login and enrolled["deviceId"] != account["deviceId"]
    assert fresh.errors == []
    other.close()
    context.close()


def test_a_deleted_passkey_and_an_ip_address_are_refused_in_the_page(local_site, chromium):
    site = local_site
    site.admin().holder("quinn", balance=0)
    context = _context(chromium, "en")
    page = wallet_page(context, site.url)
    _authenticator(context, page)
    page.fill("#login", "quinn")
    page.fill("#password", "pw-quinn-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")
    page.click("#passkey-add")
    page.wait_for_selector("#passkey-list li[data-passkey] button")
    page.click("#passkey-list li[data-passkey] button")
    page.wait_for_selector("#message[data-text=passkey_deleted]")
    assert page.locator("#passkey-list li[data-passkey]").count() == 0
    page.click("#signout")  # the sign-in form shows once signed out
    page.wait_for_selector("#message[data-text=signed_out]")
    page.click("#passkey-signin")  # the authenticator still holds it; the server does not
    page.wait_for_selector("#message[data-text=passkey_unknown]")
    assert "not registered" in page.locator("#message").inner_text()
    # the same page by the server's IP address: no passkeys there, and the page says why
    by_ip = wallet_page(context, site.url.replace("localhost", "127.0.0.1"))
    by_ip.click("#passkey-signin")
    by_ip.wait_for_selector("#message[data-text=passkey_host]")
    assert page.errors == [] and by_ip.errors == []
    context.close()


_DEVICE_KEY = """async () => {
  const api = await import(ours("api.js"));
  const {device} = await (await import(ours("store.js"))).read("device");
  return api.b64u(device.public);
}"""
_STEP_UP = """async (rq) => (await import(ours("passkeys.js"))).stepUp(rq)"""


def test_a_reissue_to_this_browser_is_stepped_up_with_its_passkey(local_site, chromium):
    """The page has no reissue screens yet: its `passkeys.stepUp` is what they will call when a
    request asks for the `passkey` factor; here a request from the holder's other phone, to move
    a ticket to this browser, is proved with the passkey in the page."""
    site = local_site
    admin = site.admin()
    sale = event_on_sale(admin, doors=int(time.time()) + HOUR)  # near the doors, off site
    phone = ticket_wallet(site.http, admin, "rory", balance=10_000)
    sub = phone.buy(sale).json()["tickets"][0]
    context = _context(chromium, "en")
    page = wallet_page(context, site.url)
    _authenticator(context, page)
    page.fill("#login", "rory")
    page.fill("#password", "pw-rory-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")
    page.click("#passkey-add")
    page.wait_for_selector("#message[data-text=passkey_added]")
    asked = site.http.post(
        f"/v1/me/tickets/{sub}/reissue",
        headers=phone.wallet.auth,
        json={"device_key": page.evaluate(_DEVICE_KEY)},
    ).json()
    assert asked["outcome"] == "step_up" and "passkey" in asked["factors"], asked
    proved = page.evaluate(_STEP_UP, asked["request_id"])
    assert (proved["state"], proved["factor"]) == ("ready", "passkey")
    path = f"/v1/me/reissues/{asked['request_id']}/confirm"
    done = site.http.post(path, headers=phone.wallet.auth)
    assert done.status_code == 200 and done.json()["gen"] == 1, done.text
    assert page.errors == []
    context.close()
