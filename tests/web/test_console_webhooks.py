"""The console's webhook pages over HTTP, as a browser without scripts uses them: admins create
an endpoint (its secret shown once, on the answer only), read its delivery log, retry a failed
message, disable, enable and rotate; operators read and are refused every action (403); CSRF;
bad fields refused beside the field in the page's language (422, what was typed kept)."""

from __future__ import annotations

import html
import logging
import re

import pytest

from duopass.server.limits import WEBHOOK_ENDPOINTS_MAX
from tests.server.webhooks import alert, client_fixture, deliver, receiver_fixture
from tests.web.console import Browser, admin, browser, operator

__all__ = ["client_fixture", "receiver_fixture"]  # the fixtures these tests use

DAY = 86_400
_SECRET = re.compile(r'id="webhook-secret">(whsec_[A-Za-z0-9+/=]+)<')
_EVENTS = ["ticket.issued", "alert.raised"]


def _create(boss: Browser, url: str, **extra: object) -> tuple[int, str]:
    """A new endpoint through the form: (its id, the secret the answer shows)."""
    boss.get("/console/webhooks")
    made = boss.post(
        "/console/webhooks", {"url": url, "event_types": _EVENTS, "description": "box", **extra}
    )
    assert made.status_code == 200, made.text
    secret = _SECRET.search(made.text)
    endpoint = re.search(r'/console/webhooks/([0-9]+)"', made.text)
    assert secret is not None and endpoint is not None
    return int(endpoint.group(1)), secret.group(1)


def _row(page: str, message_id: int) -> str:
    found = re.search(rf'<tr id="message-{message_id}".*?</tr>', page, re.S)
    assert found is not None, page
    return html.unescape(found.group(0))


def _message_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="message-([0-9]+)"', page)]


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(site, receiver, client, caplog):
    caplog.set_level(logging.DEBUG)
    boss = admin(site, language="en")
    endpoint, secret = _create(boss, receiver.url)
    receiver.secrets.append(secret)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and secret not in logged
    listing = boss.get("/console/webhooks").text
    assert receiver.url in listing and secret not in listing
    alert(site)
    assert deliver(site, client) == 1
    assert [got.verified_by for got in receiver.got] == [(0,)]  # the secret shown signs
    page = boss.get(f"/console/webhooks/{endpoint}")
    assert page.status_code == 200 and secret not in page.text
    assert page.headers["cache-control"] == "no-store"
    (message,) = _message_ids(page.text)
    row = _row(page.text, message)
    assert 'data-state="delivered"' in row and "HTTP 204" in row and "alert raised" in row


def test_a_failed_message_is_logged_and_retried_by_an_admin(clocked_site, clock, receiver, client):
    site = clocked_site
    boss = admin(site, language="en")
    endpoint, secret = _create(boss, receiver.url)
    receiver.secrets.append(secret)
    receiver.down()
    alert(site)
    deliver(site, client)
    page = boss.get(f"/console/webhooks/{endpoint}").text
    (message,) = _message_ids(page)
    row = _row(page, message)
    assert 'data-state="pending"' in row and "ConnectError" in row and "waiting" in row
    assert "Retry now" in row
    for _ in range(DAY // 1800 + 2):  # a day and an hour, half an hour at a time
        clock.advance(1800)
        deliver(site, client)
    boss = admin(site, language="en")  # the first session has expired
    failed = boss.get(f"/console/webhooks/{endpoint}", params={"state": "failed"}).text
    assert 'data-state="failed"' in _row(failed, message)
    listed = boss.get("/console/webhooks").text
    assert re.search(r'<td class="num">0</td>\s*<td class="num">1</td>', listed)  # 1 failed
    receiver.up()
    retried = boss.post(f"/console/webhooks/{endpoint}/deliveries/{message}/retry", {})
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/console/webhooks/{endpoint}?done=retried"
    assert 'id="done"' in boss.get(retried.headers["location"]).text
    assert deliver(site, client) == 1 and len(receiver.got) == 1
    after = boss.get(f"/console/webhooks/{endpoint}").text
    assert 'data-state="delivered"' in _row(after, message)
    again = boss.post(f"/console/webhooks/{endpoint}/deliveries/{message}/retry", {})
    assert again.status_code == 409 and "delivered already" in again.text


def test_disable_enable_and_rotate(site, receiver, client):
    boss = admin(site, language="en")
    endpoint, first = _create(boss, receiver.url)
    receiver.secrets.append(first)
    boss.get(f"/console/webhooks/{endpoint}")
    off = boss.post(f"/console/webhooks/{endpoint}/disable", {})
    assert (off.status_code, off.headers["location"]) == (
        303,
        f"/console/webhooks/{endpoint}?done=disabled",
    )
    assert "state-frozen" in boss.get(f"/console/webhooks/{endpoint}").text
    alert(site)  # not queued for a disabled endpoint
    on = boss.post(f"/console/webhooks/{endpoint}/enable", {})
    assert on.status_code == 303
    rotated = boss.post(f"/console/webhooks/{endpoint}/rotate", {"overlap_s": "3600"})
    assert rotated.status_code == 200 and 'id="overlap"' in rotated.text
    found = _SECRET.search(rotated.text)
    assert found is not None and found.group(1) != first
    receiver.secrets.append(found.group(1))
    alert(site)
    deliver(site, client)
    assert [got.verified_by for got in receiver.got] == [(0, 1)]  # both sign in the overlap
    bad = boss.post(f"/console/webhooks/{endpoint}/rotate", {"overlap_s": "5"})
    assert bad.status_code == 422 and 'id="overlap_s-error"' in bad.text


@pytest.mark.parametrize(
    ("fields", "field", "english", "chinese"),
    [
        ({"url": ""}, "url", "Fill this in.", "此项必填"),
        ({"url": "ftp://x.example/h"}, "url", "An http:// or https:// address.", "http://"),
        ({"url": "https://u:p@x.example/"}, "url", "Not a usable address", "地址不可用"),
        ({"url": "https://x.example/" + "a" * 2000}, "url", "Too long", "过长"),
        ({"event_types": []}, "event_types", "Choose at least one event", "至少"),
        ({"event_types": ["ticket.eaten"]}, "event_types", "Choose at least one event", "至少"),
        ({"description": "a\tb"}, "description", "No control characters", "控制字符"),
        ({"description": "d" * 201}, "description", "Too long", "过长"),
    ],
)
def test_bad_fields_are_refused_beside_the_field(site, fields, field, english, chinese):
    typed = {"url": "https://hooks.example.com/in", "event_types": _EVENTS} | fields
    for language, words in (("en", english), ("zh-CN", chinese)):
        boss = admin(site, language=language)
        boss.get("/console/webhooks")
        refused = boss.post("/console/webhooks", typed)
        assert refused.status_code == 422, refused.text
        message = re.search(rf'id="{field}-error">(.*?)</span>', refused.text, re.S)
        assert message is not None and words in html.unescape(message.group(1)), language
        assert f'aria-describedby="{field}-error"' in refused.text
        if typed["url"] and len(typed["url"]) <= 2000:
            assert f'value="{typed["url"]}"' in refused.text  # what was typed is kept
    assert "hooks.example.com" not in admin(site).get("/console/webhooks").text


def test_operators_read_and_are_refused_every_action(site, receiver):
    boss = admin(site)
    endpoint, _ = _create(boss, receiver.url)
    alert(site)
    clerk = operator(site, language="en")
    listing = clerk.get("/console/webhooks")
    assert listing.status_code == 200 and receiver.url in listing.text
    assert 'id="new-webhook"' not in listing.text
    page = clerk.get(f"/console/webhooks/{endpoint}").text
    (message,) = _message_ids(page)
    assert 'id="rotate"' not in page and "Retry now" not in page
    for action, data in (
        ("/console/webhooks", {"url": "https://x.example/", "event_types": _EVENTS}),
        (f"/console/webhooks/{endpoint}/disable", {}),
        (f"/console/webhooks/{endpoint}/enable", {}),
        (f"/console/webhooks/{endpoint}/rotate", {"overlap_s": "0"}),
        (f"/console/webhooks/{endpoint}/deliveries/{message}/retry", {}),
    ):
        forged = clerk.post(action, data)
        assert forged.status_code == 403 and "Your role may not do this." in forged.text, action
    assert "x.example" not in boss.get("/console/webhooks").text


def test_no_session_or_token_no_page_and_no_action(site, receiver):
    nobody = browser(site)
    for page in ("/console/webhooks", "/console/webhooks/1"):
        assert nobody.get(page).headers["location"].endswith("/console/login")
    boss = admin(site)
    endpoint, _ = _create(boss, receiver.url)
    for action in ("/console/webhooks", f"/console/webhooks/{endpoint}/disable"):
        bare = boss.http.post(action, data={"url": "https://y.example/", "event_types": _EVENTS})
        assert bare.status_code == 403, action
    assert "y.example" not in boss.get("/console/webhooks").text
    assert "state-active" in boss.get(f"/console/webhooks/{endpoint}").text
    assert boss.get("/console/webhooks/999").status_code == 404
    assert boss.get(f"/console/webhooks/{endpoint}", params={"state": "lost"}).status_code == 422


def test_a_description_like_a_script_is_text(site, receiver):
    boss = admin(site)
    naughty = "<script>alert(1)</script>"
    _create(boss, receiver.url, description=naughty)
    page = boss.get("/console/webhooks").text
    assert naughty not in page and html.escape(naughty) in page


def test_too_many_endpoints_is_said_beside_the_address_and_on_enabling(site, receiver):
    boss = admin(site, language="en")
    endpoint, _ = _create(boss, receiver.url)
    assert boss.post(f"/console/webhooks/{endpoint}/disable", {}).status_code == 303
    api = site.admin()
    for n in range(WEBHOOK_ENDPOINTS_MAX):
        made = api.post(
            "/v1/admin/webhooks", {"url": f"https://h{n}.example/", "event_types": _EVENTS}
        )
        assert made.status_code == 201, made.text
    boss.get("/console/webhooks")
    typed = {"url": "https://one-more.example/", "event_types": _EVENTS}
    refused = boss.post("/console/webhooks", typed)
    assert refused.status_code == 409
    assert 'id="url-error">Too many endpoints are enabled' in refused.text
    assert 'value="https://one-more.example/"' in refused.text
    boss.get(f"/console/webhooks/{endpoint}")
    again = boss.post(f"/console/webhooks/{endpoint}/enable", {})
    assert again.status_code == 409 and "Too many endpoints are enabled" in again.text
    assert "state-frozen" in boss.get(f"/console/webhooks/{endpoint}").text
