"""The console over HTTP as a browser without scripts uses it: sign-in and its cookie, expiry,
CSRF, roles enforced on the server, escaping, both languages, the static files' headers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from duopass.server.app import create_app
from duopass.server.settings import Settings, TestOnlySettingRefused
from duopass.server.web.console.visit import IDLE_S, Visit
from tests.server.harness import ADMIN_PASSWORD, running_server
from tests.web.console import admin, browser, operator

NAUGHTY = "<script>alert(1)</script>"


def _cookie(answer, name: str) -> str:
    (header,) = [h for h in answer.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return str(header)


def test_sign_in_sets_a_strict_http_only_cookie_for_the_console_alone(site):
    visitor = browser(site)
    assert visitor.get("/console/").headers["location"].endswith("/console/login")
    signed = visitor.sign_in("admin", ADMIN_PASSWORD)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/"
    cookie = _cookie(signed, "duopass_console").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http here; over https it is Secure (below)
    assert ADMIN_PASSWORD not in signed.text + str(signed.headers)
    home = visitor.get("/console/")
    assert home.status_code == 200 and "卡务中心" in home.text
    assert home.headers["cache-control"] == "no-store"
    policy = home.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_a_cookie_is_secure_over_https():
    scope = {
        "type": "http",
        "scheme": "https",
        "method": "GET",
        "path": "/console/",
        "headers": [],
        "server": ("duopass.example", 443),
        "query_string": b"",
    }
    seen = Visit(ctx=None, request=Request(scope), language="en", anchor="")  # type: ignore[arg-type]
    seen.new_anchor()
    answer = seen.finish(Response())
    assert "secure" in answer.headers["set-cookie"].lower()


def test_a_wrong_password_is_refused_in_the_pages_language(site):
    for language, words in (("zh-CN", "登录名或密码错误"), ("en-GB,en", "Wrong login or password")):
        visitor = browser(site, language=language)
        refused = visitor.sign_in("admin", "not the password")
        assert refused.status_code == 401 and words in refused.text
        assert "duopass_console" not in refused.headers.get("set-cookie", "")


def test_signing_out_ends_the_session(site):
    visitor = admin(site)
    kept = dict(visitor.http.cookies)
    visitor.get("/console/")
    out = visitor.post("/console/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert visitor.get("/console/").status_code == 303
    visitor.http.cookies.update(kept)  # the old cookie, replayed: its session has ended
    assert visitor.get("/console/").status_code == 303


def test_a_session_ends_when_idle_and_at_its_absolute_end(clocked_site, clock):
    visitor = admin(clocked_site)
    clock.advance(IDLE_S + 1)
    assert visitor.get("/console/").headers["location"].endswith("/console/login")
    visitor = admin(clocked_site)
    for _ in range(8 * 60 // 20 - 1):  # busy all day, a request every 20 minutes
        clock.advance(20 * 60)
        assert visitor.get("/console/").status_code == 200
    clock.advance(20 * 60 + 1)  # 8 hours after signing in
    assert visitor.get("/console/").status_code == 303


def test_every_unsafe_request_needs_the_sessions_token(site):
    holder = site.admin().holder("ada")
    path = f"/console/holders/{holder['handle']}/freeze"
    visitor = admin(site)
    visitor.get(f"/console/holders/{holder['handle']}")
    bare = visitor.http.post(path, data={"reason": "lost card"})
    assert bare.status_code == 403 and "此表单已过期" in bare.text
    other = admin(site)
    other.get("/console/")
    forged = visitor.http.post(path, data={"reason": "x", "csrf": other.csrf})
    assert forged.status_code == 403  # another session's token
    assert browser(site).http.post("/console/login", data={"login": "admin"}).status_code == 403
    shown = site.admin().http.get(
        f"/v1/admin/holders/{holder['handle']}", headers=site.admin().auth
    )
    assert shown.json()["frozen"] is False
    header = visitor.http.post(
        path, data={"reason": "lost"}, headers={"X-CSRF-Token": visitor.csrf}
    )
    assert header.status_code == 303  # as htmx sends it (hx-headers)


def test_freezing_and_unfreezing_with_htmx_and_without(site):
    holder = site.admin().holder("ben")
    visitor = operator(site)
    page = f"/console/holders/{holder['handle']}"
    visitor.get(page)
    frozen = visitor.post(f"{page}/freeze", {"reason": "card lost"}, headers={"HX-Request": "true"})
    assert (
        frozen.status_code == 200 and 'id="holder-state"' in frozen.text and "已冻结" in frozen.text
    )
    assert "<html" not in frozen.text  # a fragment, swapped into the page
    thawed = visitor.post(f"{page}/unfreeze", {"reason": "found it"})
    assert thawed.status_code == 303 and thawed.headers["location"] == f"{page}?done=unfrozen"
    assert "正常" in visitor.get(page).text
    refused = visitor.post(f"{page}/freeze", {"reason": ""})
    assert refused.status_code == 422 and 'id="reason-error"' in refused.text
    swapped = visitor.post(f"{page}/freeze", {"reason": "a\tb"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 422 and "<html" not in swapped.text
    assert 'aria-invalid="true"' in swapped.text and 'value="a\tb"' in swapped.text


def test_an_operator_sees_no_money_action_and_cannot_post_one(site):
    holder = site.admin().holder("cai")
    page = f"/console/holders/{holder['handle']}"
    clerk = operator(site)
    shown = clerk.get(page)
    assert "topups" not in shown.text and "充值" not in shown.text
    refused = clerk.post(f"{page}/topups", {"amount": "12.50", "request_id": "a" * 16})
    assert refused.status_code == 403 and "您的角色无权" in refused.text
    boss = admin(site)
    assert 'action="' + page + '/topups"' in boss.get(page).text
    found = re.search(r'name="request_id" value="([^"]+)"', boss.get(page).text)
    assert found is not None
    request_id = found.group(1)
    assert (
        boss.post(f"{page}/topups", {"amount": "12.5", "request_id": request_id}).status_code == 303
    )
    again = boss.post(f"{page}/topups", {"amount": "12.5", "request_id": request_id})
    assert again.status_code == 303  # the same form twice books once
    assert "¥12.50" in boss.get(page).text
    assert (
        boss.post(f"{page}/topups", {"amount": "0.001", "request_id": "b" * 16}).status_code == 422
    )


def test_a_holders_name_is_shown_as_text(site):
    holder = site.admin().holder("mallory", name=NAUGHTY)
    visitor = admin(site)
    for page in ("/console/holders?q=mallory", f"/console/holders/{holder['handle']}"):
        text = visitor.get(page).text
        assert NAUGHTY not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_search_refuses_control_characters_and_long_queries(site):
    visitor = admin(site, language="en")
    assert visitor.get("/console/holders", params={"q": "a\x01"}).status_code == 422
    assert visitor.get("/console/holders", params={"q": "x" * 101}).status_code == 422
    assert visitor.get("/console/holders/not%20a%20handle").status_code in (404, 422)


def test_the_language_follows_accept_language_then_the_switch(site):
    visitor = admin(site, language="en-US,en;q=0.9,zh;q=0.5")
    english = visitor.get("/console/")
    assert 'lang="en"' in english.text and "Card office" in english.text
    switched = visitor.post("/console/lang", {"lang": "zh_Hans", "next": "/console/holders"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/holders"
    assert "duopass_lang=zh_Hans" in switched.headers["set-cookie"]
    chinese = visitor.get("/console/holders")
    assert 'lang="zh-Hans"' in chinese.text and "持卡人" in chinese.text
    away = visitor.post("/console/lang", {"lang": "en", "next": "https://evil.example/"})
    assert away.headers["location"] == "/console/"  # never off this console


def test_static_files_are_ours_cached_long_and_axe_only_for_tests(site, tmp_path: Path):
    page = admin(site).get("/console/").text
    sources = list(re.findall(r'(?:src|href)="([^"#]+)"', page))
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    script = browser(site).get("/static/web/vendor/htmx.org-2.0.11/htmx.min.js")
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    assert browser(site).get("/static/web/vendor/axe-core-4.14.1/axe.min.js").status_code == 200
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'x.db'}", data_dir=tmp_path, test_axe=True)
    with pytest.raises(TestOnlySettingRefused):
        create_app(settings, clock=time.time)
    with running_server(f"sqlite:///{tmp_path / 'y.db'}", tmp_path / "data") as plain:
        axe = plain.http.get("/static/web/vendor/axe-core-4.14.1/axe.min.js")
        assert axe.status_code == 404
        assert "axe" not in admin(plain).get("/console/").text
