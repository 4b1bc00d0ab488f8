"""The console's partner pages over HTTP, as a browser without scripts uses them: admins create
a client (its id and secret shown once, on the answer only, and the secret gets a token), revoke
it (a ticked confirmation, then 303) and rotate its secret with an overlap; operators read and are
refused every action (403); CSRF; bad fields refused beside the field in the page's language
(422, what was typed kept); a name like a script is text."""

from __future__ import annotations

import html
import logging
import re

import httpx
import pytest

from duopass.server.limits import PARTNER_CLIENTS_MAX
from tests.server.partners import make_client, token
from tests.web.console import Browser, admin, browser, operator

_SECRET = re.compile(r'id="client-secret">(dpsec_[A-Za-z0-9_-]+)<')
_CLIENT = re.compile(r'id="client-id">(dpc_[A-Za-z0-9_-]+)<')
_SCOPES = ["tickets:read", "checkin:redeem"]


def _create(boss: Browser, name: str = "City Tickets", **extra: object) -> tuple[int, str, str]:
    """A new client through the form: (its row id, client id, the secret the answer shows)."""
    boss.get("/console/partners")
    made = boss.post(
        "/console/partners",
        {"name": name, "scopes": _SCOPES, "calls_per_minute": "120", **extra},
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    secret, client_id = _SECRET.search(made.text), _CLIENT.search(made.text)
    row = re.search(r'/console/partners/([0-9]+)"', made.text)
    assert secret is not None and client_id is not None and row is not None
    return int(row.group(1)), client_id.group(1), secret.group(1)


def _token_status(site, client_id: str, secret: str) -> int:
    with httpx.Client(base_url=site.url) as http:
        return token(http, {"client_id": client_id, "client_secret": secret}).status_code


def test_an_admin_creates_a_client_and_sees_its_secret_once(site, caplog):
    caplog.set_level(logging.DEBUG)
    boss = admin(site, language="en")
    row, client_id, secret = _create(boss)
    assert _token_status(site, client_id, secret) == 200  # the secret shown gets tokens
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and secret not in logged
    listing = boss.get("/console/partners").text
    found = re.search(rf'<tr id="partner-{row}".*?</tr>', listing, re.S)
    assert found is not None and secret not in listing
    shown = html.unescape(found.group(0))
    for words in ("City Tickets", "read tickets", "redeem check-ins", "active", ">120<"):
        assert words in shown, words
    page = boss.get(f"/console/partners/{row}")
    assert page.status_code == 200 and client_id in page.text and secret not in page.text


def test_revoke_needs_the_box_ticked_then_redirects(site):
    boss = admin(site, language="en")
    row, client_id, secret = _create(boss)
    boss.get(f"/console/partners/{row}")
    unticked = boss.post(f"/console/partners/{row}/revoke", {})
    assert unticked.status_code == 422 and 'id="confirm-error">Tick the box' in unticked.text
    assert _token_status(site, client_id, secret) == 200
    done = boss.post(f"/console/partners/{row}/revoke", {"confirm": "yes"})
    assert (done.status_code, done.headers["location"]) == (303, "/console/partners?done=revoked")
    listing = boss.get(done.headers["location"]).text
    assert 'id="done"' in listing and f'<tr id="partner-{row}" data-state="revoked"' in listing
    assert _token_status(site, client_id, secret) == 401
    page = boss.get(f"/console/partners/{row}").text
    assert 'id="revoke"' not in page and 'id="rotate"' not in page
    again = boss.post(f"/console/partners/{row}/revoke", {"confirm": "yes"})
    assert again.status_code == 409 and "revoked already" in again.text


def test_rotate_shows_the_new_secret_once_with_the_overlap(site):
    boss = admin(site, language="en")
    row, client_id, first = _create(boss)
    boss.get(f"/console/partners/{row}")
    bad = boss.post(f"/console/partners/{row}/rotate", {"overlap_s": "5"})
    assert bad.status_code == 422 and 'id="overlap_s-error"' in bad.text
    rotated = boss.post(f"/console/partners/{row}/rotate", {"overlap_s": "3600"})
    assert rotated.status_code == 200 and 'id="overlap"' in rotated.text
    found = _SECRET.search(rotated.text)
    assert found is not None and found.group(1) != first
    assert _token_status(site, client_id, found.group(1)) == 200
    assert _token_status(site, client_id, first) == 200  # in the overlap
    listing = boss.get("/console/partners").text
    assert found.group(1) not in listing and first not in listing
    boss.get(f"/console/partners/{row}")
    now = boss.post(f"/console/partners/{row}/rotate", {"overlap_s": "0"})
    assert now.status_code == 200 and 'id="overlap"' not in now.text
    assert _token_status(site, client_id, first) == 401


@pytest.mark.parametrize(
    ("fields", "field", "english", "chinese"),
    [
        ({"name": "  "}, "name", "Fill this in.", "此项必填"),
        ({"name": "n" * 101}, "name", "Too long", "过长"),
        ({"name": "a\tb"}, "name", "No control characters", "控制字符"),
        ({"scopes": []}, "scopes", "Choose at least one scope", "至少"),
        ({"scopes": ["tickets:eat"]}, "scopes", "Choose at least one scope", "至少"),
        ({"calls_per_minute": "0"}, "calls_per_minute", "A whole number", "整数"),
        ({"calls_per_minute": "60001"}, "calls_per_minute", "A whole number", "整数"),
        ({"calls_per_minute": "ten"}, "calls_per_minute", "A whole number", "整数"),
    ],
)
def test_bad_fields_are_refused_beside_the_field(site, fields, field, english, chinese):
    typed = {"name": "Kept Name", "scopes": _SCOPES, "calls_per_minute": "60"} | fields
    for language, words in (("en", english), ("zh-CN", chinese)):
        boss = admin(site, language=language)
        boss.get("/console/partners")
        refused = boss.post("/console/partners", typed)
        assert refused.status_code == 422, refused.text
        message = re.search(rf'id="{field}-error">(.*?)</span>', refused.text, re.S)
        assert message is not None and words in html.unescape(message.group(1)), language
        assert f'aria-describedby="{field}-error"' in refused.text
        if field != "name":
            assert 'value="Kept Name"' in refused.text  # what was typed is kept
        if field != "scopes":
            assert 'value="checkin:redeem" checked' in refused.text
    assert "Kept Name" not in admin(site).get("/console/partners").text


def test_operators_read_and_are_refused_every_action(site):
    boss = admin(site)
    row, _, _ = _create(boss)
    clerk = operator(site, language="en")
    listing = clerk.get("/console/partners")
    assert listing.status_code == 200 and "City Tickets" in listing.text
    assert 'id="new-partner"' not in listing.text
    page = clerk.get(f"/console/partners/{row}").text
    assert 'id="rotate"' not in page and 'id="revoke"' not in page
    for action, data in (
        ("/console/partners", {"name": "Forged", "scopes": _SCOPES, "calls_per_minute": "1"}),
        (f"/console/partners/{row}/revoke", {"confirm": "yes"}),
        (f"/console/partners/{row}/rotate", {"overlap_s": "0"}),
    ):
        forged = clerk.post(action, data)
        assert forged.status_code == 403 and "Your role may not do this." in forged.text, action
    after = boss.get("/console/partners").text
    assert "Forged" not in after and f'<tr id="partner-{row}" data-state="active"' in after


def test_no_session_or_token_no_page_and_no_action(site):
    nobody = browser(site)
    for page in ("/console/partners", "/console/partners/1"):
        assert nobody.get(page).headers["location"].endswith("/console/login")
    boss = admin(site)
    row, _, _ = _create(boss)
    for action, data in (
        ("/console/partners", {"name": "No Token", "scopes": _SCOPES, "calls_per_minute": "1"}),
        (f"/console/partners/{row}/revoke", {"confirm": "yes"}),
        (f"/console/partners/{row}/rotate", {"overlap_s": "0"}),
    ):
        bare = boss.http.post(action, data=data)
        assert bare.status_code == 403, action
    listing = boss.get("/console/partners").text
    assert "No Token" not in listing and f'<tr id="partner-{row}" data-state="active"' in listing
    assert boss.get("/console/partners/999").status_code == 404


def test_a_name_like_a_script_is_text(site):
    boss = admin(site)
    naughty = "<script>alert(1)</script>"
    row, _, _ = _create(boss, name=naughty)
    for path in ("/console/partners", f"/console/partners/{row}"):
        page = boss.get(path).text
        assert naughty not in page and html.escape(naughty) in page, path


def test_too_many_active_clients_is_said_beside_the_name(site):
    api = site.admin()
    for n in range(PARTNER_CLIENTS_MAX):
        make_client(api, _SCOPES, name=f"P{n}")
    boss = admin(site, language="en")
    boss.get("/console/partners")
    typed = {"name": "One More", "scopes": _SCOPES, "calls_per_minute": "60"}
    refused = boss.post("/console/partners", typed)
    assert refused.status_code == 409
    assert 'id="name-error">Too many clients are active' in refused.text
    assert 'value="One More"' in refused.text
