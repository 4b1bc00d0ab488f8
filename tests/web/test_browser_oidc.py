"""Signing in to the console through the university's OpenID Connect provider in a real
browser (Debian's Chromium through Playwright), against a provider of our own on 127.0.0.1
(tests.oidc_provider): the button on the sign-in form, the round trip through the provider,
the console signed in (its SameSite=Strict cookie sent after a sign-in that began at another
site), and a person the console does not know refused on the sign-in form; axe-core finds no
serious or critical violation, in both languages. And a holder's round trip from the wallet
page: the button, the provider, back at `/wallet/` signed in and enrolled."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from duopass.server.services import oidc
from duopass.server.store.access import Token
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.server.harness import ADMIN_PASSWORD, Running
from tests.web.conftest import OPERATOR, _started
from tests.web.test_browser import LOCALES, _accessible, _errors, _page, _shoot, _sign_in
from tests.web.test_wallet_browser import OURS, wallet_page
from tests.web.test_wallet_browser import _accessible as _wallet_accessible


@pytest.fixture
def provider() -> Iterator[Provider]:
    oidc.forget()
    with running_provider("localhost") as running:  # another site than the console's
        yield running


@pytest.fixture
def oidc_site(tmp_path, provider: Provider) -> Iterator[Running]:
    yield from _started(
        tmp_path,
        oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr(CLIENT_SECRET),
        oidc_staff_roles=("operator",),
    )


@pytest.mark.parametrize("language", ["zh", "en"])
def test_staff_sign_in_through_the_university(oidc_site, provider, chromium, shots, language):
    url = oidc_site.url
    page = _page(chromium, language)
    refusing = _errors(page)
    provider.person = {"sub": "u-20", "preferred_username": "stranger"}
    page.goto(f"{url}/console/login")
    _accessible(page)
    _shoot(page, shots, f"console-login-oidc-{language}")
    page.click("#oidc")
    page.wait_for_url(f"{url}/console/oidc/callback?*")
    assert page.locator("[role=alert]").count() == 1
    assert page.locator("#password").count() == 1  # the password form is still there
    _accessible(page)
    _shoot(page, shots, f"console-oidc-refused-{language}")
    assert all("403" in error for error in refusing)  # the refusal page's own status only
    errors = _errors(page)
    provider.person = {"sub": "u-21", "preferred_username": OPERATOR["login"]}
    page.click("#oidc")
    page.wait_for_url(f"{url}/console/")
    assert OPERATOR["login"] in page.locator("body").inner_text()
    _accessible(page)
    page.reload()  # the console cookie holds: a page of its own, not the provider's redirect
    assert page.url == f"{url}/console/"
    assert errors == []
    assert provider.refusals == []


@pytest.fixture
def wallet_site(tmp_path, provider: Provider) -> Iterator[Running]:
    """`oidc_site` at http://localhost:PORT: the wallet needs a secure context."""
    for running in _started(
        tmp_path,
        oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr(CLIENT_SECRET),
    ):
        yield dataclasses.replace(running, url=running.url.replace("127.0.0.1", "localhost"))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_holder_signs_in_to_the_wallet_through_the_university(
    wallet_site, provider, chromium, shots, language
):
    site = wallet_site
    login = f"uma-{language}"
    site.admin().holder(login, balance=5_000)
    context = chromium.new_context(locale=LOCALES[language], viewport={"width": 480, "height": 900})
    context.add_init_script(OURS)
    page = wallet_page(context, site.url)
    provider.person = {"sub": "u-30", "preferred_username": "nobody-here"}
    page.click("#oidc-signin")
    page.wait_for_selector("#message[data-text=oidc_no_account]")
    assert page.url == f"{site.url}/wallet/"  # the code and state left the address
    _wallet_accessible(page)
    _shoot(page, shots, f"wallet-oidc-refused-{language}")
    provider.person = {"sub": "u-31", "preferred_username": login}
    page.click("#oidc-signin")
    page.wait_for_selector("#message[data-text=oidc_signed_in]")
    assert page.url == f"{site.url}/wallet/"
    page.wait_for_selector("#main[data-state=enrolled], #main[data-state=ready]")
    _wallet_accessible(page)
    _shoot(page, shots, f"wallet-oidc-signed-in-{language}")
    # a code and state this tab did not ask for (a link sent to sign it in as someone else)
    with httpx.Client(timeout=30) as elsewhere:
        started = elsewhere.get(f"{site.url}/v1/session/oidc/start?return_to=wallet").json()
        sent = elsewhere.get(started["url"]).headers["Location"]
    assert sent.startswith(f"{site.url}/wallet/?code=")
    page.goto(sent)
    page.wait_for_selector("#message[data-text=oidc_state]")
    assert page.url == f"{site.url}/wallet/"
    assert page.errors == []
    assert provider.refusals == []

    def methods(unit: Any) -> list[str]:
        return list(unit.session.scalars(select(Token.method)))

    assert "oidc" in site.ctx.run(methods)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_admin_sees_and_unbinds_a_holder_s_university_account(
    oidc_site, provider, chromium, shots, language
):
    url = oidc_site.url
    hana = oidc_site.admin().holder("hana")
    provider.person = {"sub": "u-hana-30", "preferred_username": "hana"}
    started = oidc_site.http.get("/v1/session/oidc/start").json()
    with httpx.Client(timeout=30, follow_redirects=True) as browser:
        assert browser.get(started["url"]).status_code == 200  # the first sign-in binds
    page = _page(chromium, language)
    errors = _errors(page)
    _sign_in(page, url, "admin", ADMIN_PASSWORD)
    page.goto(f"{url}/console/holders/{hana['handle']}")
    assert "u-hana-30" in page.locator("#oidc-binding").inner_text()
    _accessible(page)
    _shoot(page, shots, f"console-holder-oidc-{language}")
    page.click("#oidc-unbind button")
    page.wait_for_selector("#done")
    assert page.locator("#oidc-binding").count() == 0
    _accessible(page)
    assert errors == []
