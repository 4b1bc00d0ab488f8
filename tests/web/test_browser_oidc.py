"""Signing in to the console through the university's OpenID Connect provider in a real
browser (Debian's Chromium through Playwright), against a provider of our own on 127.0.0.1
(tests.oidc_provider): the button on the sign-in form, the round trip through the provider,
the console signed in (its SameSite=Strict cookie sent after a sign-in that began at another
site), and a person the console does not know refused on the sign-in form; axe-core finds no
serious or critical violation, in both languages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from duopass.server.services import oidc
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.server.harness import Running
from tests.web.conftest import OPERATOR, _started
from tests.web.test_browser import _accessible, _errors, _page, _shoot


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
