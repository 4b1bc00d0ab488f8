"""The browser wallet's sign-in and sign-out in a real browser against a real server on
127.0.0.1: signed in, the sign-in form is hidden and the wallet shown; signed out, the other way
round, the session ended on the server and the device enrolled still (the next sign-in enrols
nothing new). Every request names the browser's installation (`Duopass-Installation`, as the
CLI wallet does): one id made once, kept in IndexedDB across sign-outs and shared by tabs, that
the server counts against the accounts it tries."""

from __future__ import annotations

import re
from typing import Any

from duopass.protocol.limits import INSTALLATION_HEADER, INSTALLATION_PATTERN
from duopass.risk import Distinct, KeyKind, Signal, Window
from duopass.server.services import risk_features
from tests.web.test_wallet_browser import OURS, _accessible, wallet_page

WALLET = ("#actions", "#tickets", "#history", "#disputes")
_INSTALLATION = """import(ours("store.js")).then(s => s.read("installation"))
  .then(r => r.installation)"""
_TOKEN = """import(ours("store.js")).then(s => s.read("account")).then(r => r.account.token)"""


def _signed_in(page: Any) -> bool:
    """The wallet shown and the sign-in form hidden (True), or the other way round (False)."""
    form = page.locator("#signin").is_visible()
    shown = {page.locator(view).is_visible() for view in WALLET}
    assert shown == {not form}, (form, shown)
    return not form


def _sign_in(page: Any, login: str) -> None:
    page.fill("#login", login)
    page.fill("#password", f"pw-{login}-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")


def _accounts_tried(site: Any, installation: str) -> int | None:
    """Distinct accounts the server saw this installation try in the last hour."""

    def read(unit: Any) -> int | None:
        key = risk_features.installation_key(unit, installation)
        assert key is not None
        query = Distinct(key, Signal.ACCOUNT_ATTEMPT, KeyKind.ACCOUNT, Window.HOUR)
        return dict(risk_features.store_for(unit).read([query], now=unit.now))[query.feature]

    found: int | None = site.ctx.run(read)
    return found


def test_signed_in_the_wallet_shows_and_signed_out_the_form(site, chromium):
    site.admin().holder("sid", balance=10_000)
    context = chromium.new_context(locale="en-US")
    context.add_init_script(OURS)
    page = wallet_page(context, site.url)
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get(INSTALLATION_HEADER.lower()))))
    assert page.locator("#main").get_attribute("data-state") == "new"
    assert not _signed_in(page)
    _sign_in(page, "sid")
    assert _signed_in(page)
    device = page.locator("#who").inner_text()
    page.click("#sync")
    page.wait_for_selector("#message[data-text=synced]")
    token = page.evaluate(_TOKEN)
    page.click("#signout")
    page.wait_for_selector("#main[data-state=signed_out]")
    assert not _signed_in(page)
    assert page.locator("#message").inner_text() == "Signed out: sign in again with your password."
    ended = site.http.get("/v1/me/account", headers={"Authorization": f"Bearer {token}"})
    assert ended.status_code == 401  # the session ended on the server too
    page.reload()
    page.wait_for_selector("#main[data-state=signed_out]")
    assert not _signed_in(page)  # and stays so: the device key signs in by itself no more
    _accessible(page)
    _sign_in(page, "sid")
    assert _signed_in(page) and page.locator("#who").inner_text() == device  # not enrolled again
    page.wait_for_selector("#main[data-state=ready]")
    _accessible(page)

    api = [(url, header) for url, header in sent if "/v1/" in url]
    paths = {re.sub(r"^https?://[^/]+|\?.*$", "", url) for url, _ in api}
    assert {"/v1/session", "/v1/me/devices", "/v1/wallet/sync", "/v1/wallet/tickets"} <= paths
    [installation] = {header for _, header in api}  # every request, one id
    assert installation is not None and re.fullmatch(INSTALLATION_PATTERN, installation)
    assert page.evaluate(_INSTALLATION) == installation  # kept in IndexedDB
    other = wallet_page(context, site.url)  # another tab: the same installation
    assert other.evaluate(_INSTALLATION) == installation
    assert _accounts_tried(site, installation) == 1  # the server counted it, with the account
    assert page.errors == [] and other.errors == []
    context.close()
