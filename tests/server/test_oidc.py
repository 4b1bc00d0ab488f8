"""Signing in through the university's OpenID Connect provider: staff at the console, holders
through the API, against a provider of our own on 127.0.0.1 (tests.oidc_provider)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from duopass.server.services import oidc, staff
from duopass.server.settings import Settings
from duopass.server.store.access import Token
from duopass.server.store.tables import Holder
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.server.conftest import _sqlite_database, database_url
from tests.server.harness import Running, running_server

OPERATOR = {"login": "olga", "password": "operator-password"}


@pytest.fixture
def provider() -> Iterator[Provider]:
    oidc.forget()
    with running_provider() as running:
        yield running


def _oidc(issuer: str, **more: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": SecretStr(CLIENT_SECRET),
        "oidc_staff_roles": ("operator",),
        **more,
    }


@pytest.fixture(params=["sqlite"])
def site(request: pytest.FixtureRequest, tmp_path, provider: Provider) -> Iterator[Running]:
    url = database_url(request, tmp_path)
    with running_server(url, tmp_path / "data", **_oidc(provider.url)) as running:
        running.ctx.run(lambda unit: staff.add(unit, role="operator", **OPERATOR))
        yield running


def _browser(site: Running) -> httpx.Client:
    return httpx.Client(base_url=site.url, follow_redirects=True, timeout=30)


def _holder(site: Running, login: str) -> dict[str, Any]:
    return site.admin().holder(login, number=f"S{login}2026")


def _code(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json().get("code", "")


def _holder_sign_in(site: Running, follow: bool = True) -> httpx.Response:
    started = site.http.get("/v1/session/oidc/start")
    assert started.status_code == 200, started.text
    with httpx.Client(timeout=30, follow_redirects=follow) as browser:
        return browser.get(started.json()["url"])


def _methods(site: Running) -> list[str]:
    return site.ctx.run(lambda unit: list(unit.session.scalars(select(Token.method))))


@pytest.mark.parametrize("site", ["sqlite", "postgres"], indirect=True)
def test_staff_sign_in_to_the_console_through_the_university(site, provider) -> None:
    provider.person = {"sub": "u-1", "preferred_username": OPERATOR["login"]}
    with _browser(site) as browser:
        login = browser.get("/console/login")
        assert 'href="/console/oidc/start"' in login.text
        answer = browser.get("/console/oidc/start")
        assert answer.url.path == "/console/oidc/callback"
        assert answer.status_code == 200
        assert 'http-equiv="refresh" content="0;url=/console/"' in answer.text
        home = browser.get("/console/")
        assert home.url.path == "/console/"
        assert OPERATOR["login"] in home.text
        assert "duopass_oidc" not in browser.cookies
        assert _methods(site) == ["oidc"]
        signed_out = browser.post("/console/logout", data={"csrf": _csrf(home.text)})
        assert signed_out.url.path == "/console/login"
    assert provider.refusals == []  # client secret, redirect URI and PKCE verifier all right
    assert _methods(site) == []


def _csrf(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_a_holder_signs_in_through_the_api(site, provider) -> None:
    _holder(site, "hana")
    provider.person = {"sub": "u-2", "preferred_username": "hana"}
    answer = _holder_sign_in(site)
    assert answer.status_code == 200, answer.text
    assert answer.url.path == "/v1/session/oidc/callback"
    token = answer.json()["token"]
    me = site.http.get("/v1/me/sessions", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert [s["method"] for s in me.json()] == ["oidc"]
    account = site.http.get("/v1/me/account", headers={"Authorization": f"Bearer {token}"})
    assert account.status_code == 200

    def whose(unit: Any) -> str:
        row = unit.session.scalars(select(Token).where(Token.method == "oidc")).one()
        return str(unit.session.get(Holder, row.principal_id).login)

    assert site.ctx.run(whose) == "hana"


def test_nobody_is_created_and_an_unknown_person_is_refused(site, provider) -> None:
    provider.person = {"sub": "u-3", "preferred_username": "nobody-here"}
    assert _code(_holder_sign_in(site)) == (403, "oidc_no_account")
    with _browser(site) as browser:
        refused = browser.get("/console/oidc/start")
    assert refused.status_code == 403
    assert refused.url.path == "/console/oidc/callback"
    assert 'role="alert"' in refused.text
    provider.person = {"sub": "u-4", "preferred_username": "admin"}  # a role not allowed
    with _browser(site) as browser:
        assert browser.get("/console/oidc/start").status_code == 403
    _holder(site, "staffer")  # a holder's login is no staff login
    provider.person = {"sub": "u-5", "preferred_username": "staffer"}
    with _browser(site) as browser:
        assert browser.get("/console/oidc/start").status_code == 403
    assert "oidc" not in _methods(site)


@pytest.mark.parametrize(
    "bad",
    [
        {"nonce": "not-the-nonce-we-sent"},
        {"aud": "someone-else"},
        {"aud": [CLIENT_ID, "someone-else"]},  # several, and no azp naming us
        {"exp": 1_000_000_000},
        {"iss": "http://127.0.0.1:9/"},
        "forged",
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(site, provider, bad) -> None:
    _holder(site, "ivan")
    provider.person = {"sub": "u-6", "preferred_username": "ivan"}
    if bad == "forged":
        provider.forged = True
    else:
        provider.overrides = bad
    assert _code(_holder_sign_in(site)) == (401, "oidc_refused")
    assert "oidc" not in _methods(site)


def test_a_state_is_used_once(site, provider) -> None:
    _holder(site, "rosa")
    provider.person = {"sub": "u-7", "preferred_username": "rosa"}
    redirected = _holder_sign_in(site, follow=False)
    callback = redirected.headers["Location"]
    first = site.http.get(callback)
    assert first.status_code == 200
    assert _code(site.http.get(callback)) == (400, "oidc_state")
    forged = callback.split("state=")[0] + "state=" + "A" * 56
    assert _code(site.http.get(forged)) == (400, "oidc_state")
    # a holder's state is no staff state, and a console callback needs this browser's cookie
    with _browser(site) as browser:
        started = site.http.get("/v1/session/oidc/start").json()
        crossed = browser.get(f"/console/oidc/callback?code=x&state={started['state']}")
        assert crossed.status_code == 400
        assert 'role="alert"' in crossed.text


def test_a_provider_that_is_down_is_a_clear_refusal(tmp_path, request) -> None:
    oidc.forget()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data", **_oidc(f"http://127.0.0.1:{port}")) as site:
        assert _code(site.http.get("/v1/session/oidc/start")) == (503, "oidc_unavailable")
        with _browser(site) as browser:
            answer = browser.get("/console/oidc/start")
            assert answer.status_code == 503
            assert 'role="alert"' in answer.text
            assert 'name="password"' in answer.text  # the password form is still there


def test_off_unless_set_up(tmp_path, request) -> None:
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data") as site:
        assert _code(site.http.get("/v1/session/oidc/start")) == (404, "oidc_off")
        with _browser(site) as browser:
            assert "/console/oidc/start" not in browser.get("/console/login").text
            assert browser.get("/console/oidc/start").status_code == 404


def test_no_secret_reaches_a_log(site, provider, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    _holder(site, "lena")
    provider.person = {"sub": "u-8", "preferred_username": "lena"}
    answer = _holder_sign_in(site)
    assert answer.status_code == 200
    provider.person = {"sub": "u-9", "preferred_username": OPERATOR["login"]}
    with _browser(site) as browser:
        assert browser.get("/console/oidc/start").status_code == 200
    ours = [r for r in caplog.records if r.name.split(".")[0] in {"duopass", "uvicorn"}]
    assert ours, "the server's logs were captured"  # not the test's own clients' (httpx's)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert CLIENT_SECRET not in logged
    assert answer.json()["token"] not in logged
    for sent in provider.token_requests:  # the codes and PKCE verifiers we sent
        form = json.loads(sent)
        assert form["code"] not in logged
        assert form["code_verifier"] not in logged
    assert "/v1/session/oidc/callback" in logged


def test_holders_by_card_number_with_the_secret_in_a_file(tmp_path, request, provider) -> None:
    secret = tmp_path / "oidc-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    oidc_settings = _oidc(provider.url, oidc_holder_claim="student_number")
    del oidc_settings["oidc_client_secret"]
    oidc_settings |= {"oidc_holder_field": "number", "oidc_client_secret_file": secret}
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data", **oidc_settings) as site:
        _holder(site, "nina")
        provider.person = {"sub": "u-10", "preferred_username": "nina"}  # no number: refused
        assert _code(_holder_sign_in(site)) == (401, "oidc_refused")
        provider.person = {"sub": "u-10", "student_number": "nina"}  # a login is no number
        assert _code(_holder_sign_in(site)) == (403, "oidc_no_account")
        provider.person = {"sub": "u-10", "student_number": "Snina2026"}
        assert _holder_sign_in(site).status_code == 200
    assert provider.refusals == []
    assert CLIENT_SECRET not in repr(site.ctx.settings)


def test_the_risk_policy_judges_it_as_a_password_sign_in(site, provider) -> None:
    _holder(site, "omar")
    # another account's wrong password from this network: the policy's `stuffing_suspected`
    # asks a holder signing in from here for a second factor, which the provider's word is not
    wrong = site.http.post("/v1/session", json={"login": "mallory", "password": "guess-1"})
    assert wrong.status_code == 401
    provider.person = {"sub": "u-11", "preferred_username": "omar"}
    assert _code(_holder_sign_in(site)) == (401, "step_up_required")
    provider.person = {"sub": "u-12", "preferred_username": OPERATOR["login"]}
    with _browser(site) as browser:  # the guard is for holders: staff still get in
        assert browser.get("/console/oidc/start").url.path == "/console/oidc/callback"
        assert OPERATOR["login"] in browser.get("/console/").text


def test_settings_refuse_a_half_set_up_provider() -> None:
    with pytest.raises(ValidationError, match="oidc_client_id"):
        Settings(oidc_issuer="https://idp.example.edu")
    with pytest.raises(ValidationError, match="openid"):
        Settings(oidc_issuer="https://idp.example.edu", oidc_client_id="x", oidc_scopes=("a",))
    with pytest.raises(ValidationError, match="http"):
        Settings(oidc_issuer="ftp://idp.example.edu", oidc_client_id="x")
    shown = Settings(
        oidc_issuer="https://idp.example.edu/",
        oidc_client_id="x",
        oidc_client_secret=SecretStr(CLIENT_SECRET),
    )
    assert shown.oidc_issuer == "https://idp.example.edu"
    assert CLIENT_SECRET not in repr(shown)
    assert shown.oidc_secret == CLIENT_SECRET


def test_the_provider_refusing_a_code_or_our_client(tmp_path, request, provider) -> None:
    wrong = _oidc(provider.url, oidc_client_secret=SecretStr("not-the-registered-secret"))
    url = _sqlite_database(request, tmp_path)
    with running_server(url, tmp_path / "data", **wrong) as site:
        _holder(site, "ugo")
        provider.person = {"sub": "u-13", "preferred_username": "ugo"}
        assert _code(_holder_sign_in(site)) == (503, "oidc_unavailable")  # our settings
        assert provider.refusals == ["client"]
        with _browser(site) as browser:
            answer = browser.get("/console/oidc/start")
        assert answer.status_code == 503
        assert "not-the-registered-secret" not in answer.text


def test_a_code_the_provider_does_not_know_is_refused(site, provider) -> None:
    _holder(site, "vera")
    provider.person = {"sub": "u-14", "preferred_username": "vera"}
    callback = _holder_sign_in(site, follow=False).headers["Location"]
    provider.codes.clear()  # the provider forgot it (expired, or used by someone else)
    assert _code(site.http.get(callback)) == (401, "oidc_refused")
    assert provider.refusals == ["code"]
