"""The console's disputes page over HTTP, as a browser without scripts uses it, with disputes a
holder really opened (as tests/server/test_disputes.py does): the list names the holder and the
payment; an admin upholds (the holder credited, the merchant debited), an operator rejects and
a forged uphold is 403; a repeat is 409 in the page's language; CSRF; escaping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duopass.server.web.i18n import moment
from tests.server.harness import Running, Wallet, enrolled_till
from tests.server.test_disputes import _dispute, _history
from tests.web.console import admin, browser, operator

NAUGHTY = "<script>alert(1)</script>"


@dataclass
class Disputed:
    id: int
    wallet: Wallet
    merchant: int
    shown: dict[str, Any]


def disputed(site: Running, login: str, *, name: str = "", till: str = "till-1") -> Disputed:
    """A holder with ¥50.00 pays ¥9.00 at a canteen till and disputes it."""
    api = site.admin()
    holder = api.holder(login, balance=5_000, name=name or f"Holder {login}")
    wallet = Wallet(site.http, login)
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    assert wallet.sync().status_code == 200
    terminal, merchant = enrolled_till(site.http, api, till)
    assert terminal.scan(wallet.code(), amount=900)["ok"]
    payment = _history(wallet)["items"][0]
    opened = _dispute(wallet, payment["id"], reason="I was not at the canteen")
    assert opened.status_code == 201, opened.text
    return Disputed(int(opened.json()["id"]), wallet, merchant, opened.json())


def _balances(site: Running, found: Disputed) -> tuple[int, int]:
    api = site.admin()
    return (
        api.account(found.wallet.account_id)["balance"],
        api.account(found.merchant)["balance"],
    )


def test_the_list_names_the_holder_and_the_payment(site):
    found = disputed(site, "dora")
    assert browser(site).get("/console/disputes").headers["location"].endswith("/console/login")
    listed = admin(site, language="en").get("/console/disputes")
    assert listed.status_code == 200
    row = listed.text.split(f'id="dispute-{found.id}"')[1].split("</tr>")[0]
    for shown in ("Holder dora", "till-1", "canteen", "canteen-till-1", "¥9.00"):
        assert shown in row
    assert "I was not at the canteen" in row and "open" in row
    zone = site.ctx.settings.timezone  # when it was paid and disputed, in the issuer's zone
    assert moment(found.shown["paid_at"], zone) in row
    assert moment(found.shown["opened_at"], zone) in row
    assert 'value="uphold"' in row and 'value="reject"' in row
    assert (
        "No dispute here."
        in admin(site, language="en").get("/console/disputes", params={"state": "upheld"}).text
    )
    assert admin(site).get("/console/disputes", params={"state": "lost"}).status_code == 422


def test_an_admin_upholds_and_a_repeat_is_a_conflict(site):
    found = disputed(site, "emil")
    assert _balances(site, found) == (5_000 - 900, 900)
    office = admin(site, language="en")
    office.get("/console/disputes")
    path = f"/console/disputes/{found.id}/decide"
    done = office.post(path, {"outcome": "uphold", "note": "till misread"})
    assert done.status_code == 303, done.text  # post/redirect/get
    assert done.headers["location"] == f"/console/disputes?decided={found.id}"
    reported = office.get(done.headers["location"]).text
    assert f"Dispute {found.id} upheld: ¥9.00 charged back to canteen-till-1." in reported
    assert _balances(site, found) == (5_000, 0)
    again = office.post(path, {"outcome": "reject", "note": ""})
    assert again.status_code == 409
    assert "This dispute was decided already." in again.text
    chinese = admin(site)
    chinese.get("/console/disputes")
    refused = chinese.post(path, {"outcome": "uphold", "note": ""})
    assert refused.status_code == 409 and "这笔争议已经处理过了。" in refused.text
    assert _balances(site, found) == (5_000, 0)
    upheld = office.get("/console/disputes", params={"state": "upheld"}).text
    assert f'id="dispute-{found.id}"' in upheld and "till misread" in upheld


def test_an_operator_rejects_and_a_forged_uphold_is_refused(site):
    found = disputed(site, "gus")
    desk = operator(site, language="en")
    page = desk.get("/console/disputes").text
    assert 'value="reject"' in page and 'value="uphold"' not in page
    path = f"/console/disputes/{found.id}/decide"
    forged = desk.post(path, {"outcome": "uphold", "note": ""})
    assert forged.status_code == 403 and "Your role may not do this." in forged.text
    assert _balances(site, found) == (5_000 - 900, 900)
    assert desk.post(path, {"outcome": "refund", "note": ""}).status_code == 422
    done = desk.post(path, {"outcome": "reject", "note": "receipt signed"})
    assert done.status_code == 303
    assert f"Dispute {found.id} rejected: nothing moved." in desk.get(done.headers["location"]).text
    assert _balances(site, found) == (5_000 - 900, 900)
    office = admin(site, language="en")
    office.get("/console/disputes")
    assert office.post(path, {"outcome": "uphold", "note": ""}).status_code == 409
    assert _balances(site, found) == (5_000 - 900, 900)


def test_a_post_without_the_form_token_is_refused(site):
    found = disputed(site, "hana")
    office = admin(site)
    office.get("/console/disputes")
    path = f"/console/disputes/{found.id}/decide"
    answer = office.http.post(path, data={"outcome": "uphold", "note": ""})
    assert answer.status_code == 403
    forged = office.http.post(path, data={"csrf": "x" * 40, "outcome": "reject", "note": ""})
    assert forged.status_code == 403
    assert _balances(site, found) == (5_000 - 900, 900)
    assert f'id="dispute-{found.id}"' in office.get("/console/disputes").text


def test_a_holder_named_a_script_is_shown_escaped(site):
    disputed(site, "mallory", name=NAUGHTY)
    page = admin(site).get("/console/disputes").text
    assert NAUGHTY not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
