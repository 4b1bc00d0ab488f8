"""The university provider's (iss, sub) bound to the account at the first sign-in through it
(services.oidc_binding): later sign-ins match by it, a claim that disagrees with a binding is
refused (403 `oidc_bound_elsewhere`) and logged, and an admin unbinds, through the API or the
console's holder page (tests.oidc_provider on 127.0.0.1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from duopass.server.services import oidc, staff
from duopass.server.store.access import OidcBinding
from tests.oidc_provider import Provider, running_provider
from tests.server.conftest import database_url
from tests.server.harness import ADMIN_PASSWORD, Running, running_server
from tests.server.test_oidc import OPERATOR, _oidc
from tests.web.console import Browser


@pytest.fixture
def provider() -> Iterator[Provider]:
    oidc.forget()
    with running_provider() as running:
        yield running


@pytest.fixture(params=["sqlite"])
def site(request: pytest.FixtureRequest, tmp_path, provider: Provider) -> Iterator[Running]:
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", **_oidc(provider.url)) as running:
        running.ctx.run(lambda unit: staff.add(unit, role="operator", **OPERATOR))
        yield running


def _holder_sign_in(site: Running, provider: Provider, sub: str, name: str) -> httpx.Response:
    provider.person = {"sub": sub, "preferred_username": name}
    started = site.http.get("/v1/session/oidc/start")
    assert started.status_code == 200, started.text
    with httpx.Client(timeout=30, follow_redirects=True) as browser:
        return browser.get(started.json()["url"])


def _staff_sign_in(site: Running, provider: Provider, sub: str, name: str) -> httpx.Response:
    provider.person = {"sub": sub, "preferred_username": name}
    with httpx.Client(base_url=site.url, follow_redirects=True, timeout=30) as browser:
        return browser.get("/console/oidc/start")


def _said(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json().get("code", answer.json().get("login", ""))


def _bindings(site: Running) -> list[tuple[str, int, str]]:
    def read(unit: Any) -> list[tuple[str, int, str]]:
        rows = unit.session.scalars(select(OidcBinding).order_by(OidcBinding.id))
        return [(row.kind, row.principal_id, row.subject) for row in rows]

    return site.ctx.run(read)


@pytest.mark.parametrize("site", ["sqlite", "postgres"], indirect=True)
def test_a_holder_is_bound_at_the_first_sign_in_and_matched_by_sub_after(
    site, provider, caplog
) -> None:
    admin = site.admin()
    hana, ivan = admin.holder("hana"), admin.holder("ivan")
    assert _said(_holder_sign_in(site, provider, "u-hana", "hana")) == (200, "hana")
    bound = admin.http.get(f"/v1/admin/holders/{hana['handle']}/oidc", headers=admin.auth)
    assert bound.status_code == 200 and bound.json()["subject"] == "u-hana", bound.text
    assert bound.json()["issuer"] == provider.url
    assert _said(_holder_sign_in(site, provider, "u-hana", "hana")) == (200, "hana")
    renamed = "hana-renamed-at-the-university"  # names nobody here: the binding still does
    assert _said(_holder_sign_in(site, provider, "u-hana", renamed)) == (200, "hana")
    with caplog.at_level(logging.WARNING, logger="duopass.server.oidc"):
        other = _holder_sign_in(site, provider, "u-hana", "ivan")  # the claim now names ivan
        assert _said(other) == (403, "oidc_bound_elsewhere")
        assert "the claim names 'ivan', the subject is bound to another account" in caplog.text
        taken = _holder_sign_in(site, provider, "u-someone", "hana")  # hana is bound to u-hana
        assert _said(taken) == (403, "oidc_bound_elsewhere")
        assert "the account is bound to subject 'u-hana'" in caplog.text
    assert _said(_holder_sign_in(site, provider, "u-ivan", "ivan")) == (200, "ivan")
    holders = [row for row in _bindings(site) if row[0] == "holder"]
    assert [row[2] for row in holders] == ["u-hana", "u-ivan"]
    missing = admin.http.get("/v1/admin/holders/h-nobody/oidc", headers=admin.auth)
    assert missing.status_code == 404
    gone = admin.http.delete(f"/v1/admin/holders/{hana['handle']}/oidc", headers=admin.auth)
    assert gone.status_code == 204, gone.text
    again = admin.http.delete(f"/v1/admin/holders/{hana['handle']}/oidc", headers=admin.auth)
    assert again.status_code == 404
    assert _said(_holder_sign_in(site, provider, "u-someone", "hana")) == (200, "hana")
    assert ivan["handle"] != hana["handle"]


def test_staff_are_bound_and_only_an_admin_unbinds(site, provider, caplog) -> None:
    assert _staff_sign_in(site, provider, "u-olga", OPERATOR["login"]).status_code == 200
    with caplog.at_level(logging.WARNING, logger="duopass.server.oidc"):
        refused = _staff_sign_in(site, provider, "u-mallory", OPERATOR["login"])
    assert refused.status_code == 403 and 'role="alert"' in refused.text
    assert "bound to subject 'u-olga'" in caplog.text
    operator = site.http.post("/v1/admin/session", json=OPERATOR).json()["token"]
    as_operator = {"Authorization": f"Bearer {operator}"}
    path = f"/v1/admin/staff/{OPERATOR['login']}/oidc"
    assert site.http.get(path, headers=as_operator).json()["subject"] == "u-olga"
    assert site.http.delete(path, headers=as_operator).status_code == 403
    admin = site.admin()
    assert admin.http.delete(path, headers=admin.auth).status_code == 204
    assert admin.http.get(path, headers=admin.auth).status_code == 404
    assert admin.http.delete("/v1/admin/staff/nobody/oidc", headers=admin.auth).status_code == 404
    assert _staff_sign_in(site, provider, "u-mallory", OPERATOR["login"]).status_code == 200
    assert [row[2] for row in _bindings(site)] == ["u-mallory"]


def test_the_console_shows_the_binding_and_an_admin_unbinds_it(site, provider) -> None:
    hana = site.admin().holder("hana")
    page = f"/console/holders/{hana['handle']}"
    assert _said(_holder_sign_in(site, provider, "u-hana", "hana")) == (200, "hana")
    with httpx.Client(base_url=site.url, headers={"Accept-Language": "en"}) as http:
        console = Browser(http)
        assert console.sign_in(OPERATOR["login"], OPERATOR["password"]).status_code == 303
        shown = console.get(page)
        assert 'id="oidc-binding"' in shown.text and "u-hana" in shown.text
        assert 'id="oidc-unbind"' not in shown.text  # operators see it, admins unbind
        assert console.post(f"{page}/oidc/unbind", {}).status_code == 403
    with httpx.Client(base_url=site.url, headers={"Accept-Language": "zh-CN"}) as http:
        console = Browser(http)
        assert console.sign_in("admin", ADMIN_PASSWORD).status_code == 303
        assert 'id="oidc-unbind"' in console.get(page).text
        done = console.post(f"{page}/oidc/unbind", {})
        assert done.status_code == 303 and done.headers["location"].endswith("?done=unbound")
        after = console.get(done.headers["location"])
        assert "已解除学校账号绑定" in after.text and 'id="oidc-binding"' not in after.text
    assert _bindings(site) == []


def test_erasing_a_holder_unbinds_them(site, provider) -> None:
    admin = site.admin()
    hana = admin.holder("hana")
    assert _said(_holder_sign_in(site, provider, "u-hana", "hana")) == (200, "hana")
    erased = admin.post(f"/v1/admin/holders/{hana['handle']}/erase", {})
    assert erased.status_code == 200, erased.text
    assert _bindings(site) == []
