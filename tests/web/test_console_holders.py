"""The holder page over HTTP, as a browser without scripts uses it: tickets, scans and journal
entries a page at a time; a loss report (operators too) and a replacement at the counter
(admins), refunds and erasure (admins), every role refusal a 403 page, every form field checked
with its message beside it (422, the typed value kept), CSRF on each new form, escaping."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from duopass.server.services import tlog
from duopass.server.store.decisions import Decision
from tests.server.harness import Running, Wallet, enrolled_till
from tests.server.ticketing import TicketWallet, entry_gate, event_on_sale, ticket_wallet
from tests.web.console import Browser, admin, operator

NAUGHTY = "<script>alert(1)</script>"
DAY = 86_400


def _page(handle: str) -> str:
    return f"/console/holders/{handle}"


def _request_id(shown: str, name: str = "request_id") -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', shown)
    assert found is not None
    return found.group(1)


def _fan(site: Running, login: str = "fan", *, balance: int = 10_000) -> TicketWallet:
    """A holder with a ticket to a concert in two days, on their phone."""
    api = site.admin()
    sale = event_on_sale(api, doors=int(time.time()) + 2 * DAY)
    fan = ticket_wallet(site.http, api, login, balance=balance)
    assert fan.buy(sale).status_code in (200, 201)
    assert fan.sync().status_code == 200
    return fan


def _new_phone(site: Running, fan: TicketWallet) -> Wallet:
    phone = Wallet(site.http, fan.wallet.login)
    phone.handle, phone.account_id = fan.wallet.handle, fan.wallet.account_id
    phone.sign_in()
    phone.enrol()
    return phone


def test_the_page_shows_tickets_scans_and_journal_entries_a_page_at_a_time(site):
    fan = _fan(site, balance=1_000_000)  # a purse credential sized for ten uses
    wallet = fan.wallet
    assert wallet.sync().status_code == 200
    till, _ = enrolled_till(site.http, site.admin(), "till-1")
    codes = []
    for n in range(12):
        if wallet.counter >= wallet.credential["uses"]:
            assert wallet.sync().status_code == 200
        codes.append(wallet.code())
        scanned = till.scan(codes[-1], amount=100 + n)
        assert scanned["ok"], (n, scanned)
    recorded = till.entry(codes[0], seq=1, amount=100, online=True)  # the till's own record
    assert till.journal([recorded]).status_code == 200
    office = admin(site, language="en")
    shown = office.get(_page(wallet.handle))
    assert shown.status_code == 200
    tickets = shown.text.split('id="tickets"')[1].split("</table>")[0]
    assert "Concert" in tickets and "Standing" in tickets and "valid" in tickets
    assert "<td>no</td>" in tickets  # not checked in
    scans = shown.text.split('id="scans"')[1].split("</table>")[0]
    assert scans.count("<tr>") == 1 + 10 and "¥1.11" in scans and "¥1.00" not in scans
    journal = shown.text.split('id="journal"')[1].split("</table>")[0]
    assert journal.count("<tr>") == 1 + 1 and "¥1.00" in journal and "till-1" in journal
    older = re.search(r'id="scans-next" href="([^"]+)"', shown.text)
    assert older is not None
    second = office.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    older_scans = second.text.split('id="scans"')[1].split("</table>")[0]
    assert older_scans.count("<tr>") == 1 + 2 and "¥1.00" in older_scans
    assert office.get(_page(wallet.handle), params={"scans": "not-a-cursor"}).status_code == 422


def test_an_operator_reports_a_loss_and_an_admin_replaces_at_the_counter(site):
    fan = _fan(site)
    handle = fan.wallet.handle
    clerk = operator(site, language="en")
    shown = clerk.get(_page(handle))
    assert 'id="loss-report"' in shown.text and 'id="replacement"' not in shown.text
    reported = clerk.post(f"{_page(handle)}/loss-report", {})
    assert reported.status_code == 303
    assert reported.headers["location"] == f"{_page(handle)}?done=loss_reported"
    assert "Loss reported" in clerk.get(reported.headers["location"]).text
    assert fan.sync().status_code == 401  # the lost phone's session ended
    phone = _new_phone(site, fan)
    refused = clerk.post(f"{_page(handle)}/replacement", {"device": str(phone.device_id)})
    assert refused.status_code == 403 and "Your role may not do this." in refused.text
    office = admin(site, language="en")
    office.get(_page(handle))
    done = office.post(f"{_page(handle)}/replacement", {"device": str(phone.device_id)})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=replaced")
    tickets = office.get(_page(handle)).text.split('id="tickets"')[1].split("</table>")[0]
    assert f"<td>{phone.device_id}</td>" in tickets
    phone.sign_in()  # every session of the holder ended with the loss: the new phone's too
    synced = TicketWallet(phone).sync()
    assert synced.status_code == 200 and synced.json()["tickets"][0]["credential"]

    def vouched(unit: Any) -> list[Decision]:
        return list(unit.session.query(Decision).filter(Decision.action == "counter"))

    (decision,) = site.ctx.run(vouched)
    assert decision.rule == "vouched_in_person" and decision.staff_id is not None
    leaf = site.ctx.run(lambda unit: tlog.read_entries(unit.session, decision.ledger_index, 1))
    assert leaf  # on the ledger, with who vouched


def _counter_decisions(site: Running) -> list[tuple[str, str, int | None]]:
    def read(unit: Any) -> list[tuple[str, str, int | None]]:
        rows = unit.session.query(Decision).order_by(Decision.id)
        return [(row.action, row.rule, row.staff_id) for row in rows]

    return site.ctx.run(read)


def test_at_the_counter_a_step_up_is_vouched_for_and_a_review_is_not(site):
    api = site.admin()
    sale = event_on_sale(api, doors=int(time.time()) - 60, entries=2)
    fan = ticket_wallet(site.http, api, "fan", balance=10_000)
    sub = fan.buy(sale).json()["tickets"][0]
    assert fan.sync().status_code == 200
    gate = entry_gate(site.http, api, "gate-1", event=sale.event, venue="hall-a")
    assert gate.scan(fan.code(sub), mode="entry")["reason"] == "OK"  # partly used: a step-up
    office = admin(site, language="en")
    page = _page(fan.wallet.handle)
    for n in range(4):  # the fourth reissue of one ticket goes to review (the policy's rule)
        phone = _new_phone(site, fan)
        office.get(page)
        moved = office.post(f"{page}/replacement", {"device": str(phone.device_id)})
        assert moved.status_code == 303, moved.text
        tickets = office.get(page).text.split('id="tickets"')[1].split("</table>")[0]
        if n < 3:
            assert f"<td>{phone.device_id}</td>" in tickets and "yes, 1 of 2" in tickets
        else:
            assert f"<td>{phone.device_id}</td>" not in tickets
            assert "waiting for review" in tickets
    decided = _counter_decisions(site)
    assert [d[:2] for d in decided if d[0] == "lost"] == [("lost", "step_up_partly_used")] * 3 + [
        ("lost", "review_many_reissues")
    ]
    vouched = [d for d in decided if d[0] == "counter"]
    assert len(vouched) == 3 and all(d[1] == "vouched_in_person" and d[2] for d in vouched)
    waiting = api.http.get("/v1/admin/reviews", headers=api.auth).json()["items"]
    assert [item["ticket"] for item in waiting] == [sub]


def test_a_replacement_needs_a_live_device_of_the_holder(site):
    fan = _fan(site)
    office = admin(site)
    office.get(_page(fan.wallet.handle))
    for device in ("", "x", "999999", "1" * 30):
        refused = office.post(f"{_page(fan.wallet.handle)}/replacement", {"device": device})
        assert refused.status_code == 422 and 'id="device-error"' in refused.text
        assert "请从列表中选择一项。" in refused.text


def test_an_admin_refunds_from_a_merchant_in_yuan(site):
    api = site.admin()
    holder = api.holder("rui", balance=5_000)
    wallet = Wallet(site.http, "rui")
    wallet.handle, wallet.account_id = holder["handle"], holder["account_id"]
    wallet.sign_in()
    wallet.enrol()
    assert wallet.sync().status_code == 200
    till, merchant = enrolled_till(site.http, api, "till-1")
    assert till.scan(wallet.code(), amount=1_200)["ok"]
    page = _page(holder["handle"])
    office = admin(site, language="en")
    shown = office.get(page).text
    assert f'<option value="{merchant}"' in shown and "canteen-till-1" in shown
    request_id = _request_id(shown, "refund_request_id")
    form = {"merchant": str(merchant), "refund_request_id": request_id}
    too_much = office.post(f"{page}/refunds", form | {"refund_amount": "12.01"})
    assert (
        too_much.status_code == 409 and "The merchant has not taken in that much" in too_much.text
    )
    assert 'value="12.01"' in too_much.text
    paid = office.post(f"{page}/refunds", form | {"refund_amount": "4.5"})
    assert paid.status_code == 303 and paid.headers["location"].endswith("?done=refunded")
    again = office.post(f"{page}/refunds", form | {"refund_amount": "4.5"})
    assert again.status_code == 303  # the same form twice books once
    assert api.account(merchant)["balance"] == 1_200 - 450
    assert api.account(holder["account_id"])["balance"] == 5_000 - 1_200 + 450
    nobody = office.post(
        f"{page}/refunds", {"merchant": "", "refund_amount": "1", "refund_request_id": "c" * 16}
    )
    assert nobody.status_code == 422 and 'id="merchant-error"' in nobody.text


AMOUNTS = [
    ("", "Fill this in.", "此项必填。"),
    ("abc", "Not a number", "不是数字"),
    ("12.345", "At most two decimals", "最多两位小数"),
    ("123456789", "Too big", "金额过大"),
    ("0.00", "at least ¥0.01", "金额至少为"),
    ("-5", "Not a number", "不是数字"),
]


@pytest.mark.parametrize(("typed", "english", "chinese"), AMOUNTS)
def test_a_bad_amount_is_refused_beside_its_field_in_the_pages_language(
    site, typed, english, chinese
):
    holder = site.admin().holder("amy")
    page = _page(holder["handle"])
    for language, words in (("en", english), ("zh-CN", chinese)):
        office = admin(site, language=language)
        shown = office.get(page).text
        form = {"amount": typed, "request_id": _request_id(shown)}
        refused = office.post(f"{page}/topups", form)
        assert refused.status_code == 422, refused.text
        field = refused.text.split('id="top-up"')[1].split("</form>")[0]
        assert 'id="amount-error"' in field and words in field
        assert f'value="{typed}"' in field and 'aria-invalid="true"' in field
    assert site.admin().account(holder["account_id"])["balance"] == 0


def test_a_reason_too_long_or_with_control_characters_is_refused_beside_it(site):
    holder = site.admin().holder("ivo")
    page = _page(holder["handle"])
    office = admin(site, language="en")
    office.get(page)
    long = office.post(f"{page}/freeze", {"reason": "x" * 501})
    assert long.status_code == 422 and "Too long: at most 500 characters." in long.text
    control = office.post(f"{page}/freeze", {"reason": "lost\x07"})
    assert control.status_code == 422 and "No control characters" in control.text
    assert office.post(f"{page}/freeze", {"reason": "x" * 2001}).status_code == 422


def test_erasure_asks_for_the_login_then_erases(site):
    api = site.admin()
    holder = api.holder("zoe", balance=300)
    page = _page(holder["handle"])
    office = admin(site, language="en")
    assert f'href="{page}/erase"' in office.get(page).text
    confirm = office.get(f"{page}/erase")
    assert confirm.status_code == 200 and "It cannot be undone." in confirm.text
    wrong = office.post(f"{page}/erase", {"confirm": "someone"})
    assert wrong.status_code == 422 and "This is not the holder's login" in wrong.text
    assert 'value="someone"' in wrong.text
    money = office.post(f"{page}/erase", {"confirm": "zoe"})
    assert money.status_code == 409 and "The account still holds money or debt" in money.text
    erased = office.post(f"{page}/erase", {"confirm": "zoe", "keep_money": "on"})
    assert erased.status_code == 303 and erased.headers["location"].endswith("?done=erased")
    after = office.get(erased.headers["location"]).text
    assert "personal data is erased" in after and "Holder zoe" not in after
    assert office.get(f"{page}/erase").status_code == 409
    shown = api.http.get(f"/v1/admin/holders/{holder['handle']}", headers=api.auth).json()
    assert shown["person"] is None and shown["erased"]["by"] is not None


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("topups", {"amount": "1", "request_id": "a" * 16}),
        ("refunds", {"refund_amount": "1", "merchant": "1", "refund_request_id": "b" * 16}),
        ("replacement", {"device": "1"}),
        ("erase", {"confirm": "pat"}),
    ],
)
def test_an_operator_is_refused_every_money_move_replacement_and_erasure(site, path, form):
    holder = site.admin().holder("pat", balance=100)
    page = _page(holder["handle"])
    clerk = operator(site)
    shown = clerk.get(page).text
    for hidden in ('id="top-up"', 'id="refund"', 'id="replacement"', 'id="erase-link"'):
        assert hidden not in shown
    refused = clerk.post(f"{page}/{path}", form)
    assert refused.status_code == 403 and "您的角色无权" in refused.text
    assert "<html" in refused.text  # the console's refusal page, not a problem document
    if path == "erase":
        assert clerk.get(f"{page}/erase").status_code == 403
    assert site.admin().account(holder["account_id"])["balance"] == 100


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("loss-report", {}),
        ("replacement", {"device": "1"}),
        ("refunds", {"refund_amount": "1", "merchant": "1", "refund_request_id": "b" * 16}),
        ("erase", {"confirm": "quin"}),
    ],
)
def test_every_new_form_needs_the_sessions_token(site, path, form):
    holder = site.admin().holder("quin")
    page = _page(holder["handle"])
    office: Browser = admin(site)
    office.get(page)
    bare = office.http.post(f"{page}/{path}", data=form)
    assert bare.status_code == 403 and "此表单已过期" in bare.text
    forged = office.http.post(f"{page}/{path}", data={**form, "csrf": "x" * 32})
    assert forged.status_code == 403
    shown = site.admin().http.get(
        f"/v1/admin/holders/{holder['handle']}", headers=site.admin().auth
    )
    assert shown.json()["person"] is not None


def test_a_holders_name_is_text_on_the_search_the_page_and_the_erasure_step(site):
    holder = site.admin().holder("mallory", name=NAUGHTY)
    office = admin(site)
    for path in (
        "/console/holders?q=mallory",
        _page(holder["handle"]),
        f"{_page(holder['handle'])}/erase",
    ):
        text = office.get(path).text
        assert NAUGHTY not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    typed = office.post(
        f"{_page(holder['handle'])}/topups", {"amount": NAUGHTY, "request_id": "d" * 16}
    )
    assert typed.status_code == 422 and NAUGHTY not in typed.text
