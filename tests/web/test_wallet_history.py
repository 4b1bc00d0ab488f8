"""The browser wallet's funds, history and disputes in a real browser against a real server on
127.0.0.1: a till's payment shows on the day it was paid in the device's own time zone (a page
in Pacific/Kiritimati, UTC+14, while the server books in Asia/Shanghai), the codes shown and not
yet seen by the server are listed, a dispute from the page reaches the card office, a too long
reason is refused in the page's language, and offline the page shows its last synced copy."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.server.harness import enrolled_till
from tests.web.test_wallet_browser import (
    OURS,
    _accessible,
    _show,
    _sign_in_and_sync,
    wallet_page,
)

ZONE = "Pacific/Kiritimati"
AMOUNT = 1_250


def _page(chromium: Any, url: str, locale: str) -> tuple[Any, Any]:
    context = chromium.new_context(locale=locale, timezone_id=ZONE)
    context.add_init_script(OURS)
    return context, wallet_page(context, url)


_DAYS = """async (times) => {
  const history = await import(ours("history.js"));
  return times.map(history.localDay);
}"""


def _sync(page: Any) -> None:
    page.click("#sync")
    page.wait_for_selector("#message[data-text=synced]")


def test_a_till_payment_dated_locally_then_disputed_from_the_page(site, chromium):
    admin = site.admin()
    admin.holder("hana", balance=30_000)
    till, _ = enrolled_till(site.http, admin, "till-hist")
    context, page = _page(chromium, site.url, "en-US")
    _sign_in_and_sync(page, "hana")
    assert page.locator("#balance").inner_text() == "¥300.00"
    ctr, code = _show(page)
    paid = till.scan(code, amount=AMOUNT)
    assert paid["ok"], paid
    _show(page)  # shown, never scanned: pending
    _sync(page)
    row = page.locator("#movements li[data-kind=payment]")
    entry = int(row.get_attribute("data-entry"))
    auth = _auth(site, "hana")
    history = site.http.get("/v1/wallet/history", headers=auth).json()["items"]
    occurred = next(item["occurred_at"] for item in history if item["id"] == entry)
    local = datetime.fromtimestamp(occurred, ZoneInfo(ZONE)).date().isoformat()
    assert row.get_attribute("data-day") == local
    late = int(datetime(2026, 12, 2, 23, 30, tzinfo=ZoneInfo(ZONE)).timestamp())
    days = page.evaluate(_DAYS, [late, late + 2 * 3600])  # paid 23:30, uploaded 01:30
    assert days == ["2026-12-02", "2026-12-03"]  # the device's zone, not the server's (UTC+8)
    assert "-¥12.50" in row.inner_text() and "till-hist" in row.inner_text()
    account = site.http.get("/v1/me/account", headers=auth).json()
    assert account["balance"] == 30_000 - AMOUNT and account["free_funds"] < account["balance"]
    assert page.locator("#balance").inner_text() == "¥287.50"  # (free: less the offline holds)
    free = account["free_funds"]
    assert page.locator("#free").inner_text() == f"¥{free // 100}.{free % 100:02d}"
    assert f"counters {ctr + 1})" in page.locator("#unseen").inner_text()
    _accessible(page)
    page.fill(f"#reason-{entry}", "x" * 501)
    page.click(f"li[data-entry='{entry}'] form button")
    page.wait_for_selector("#message[data-text=reason_bounds]")
    assert page.locator("#message").inner_text() == "A reason is 1 to 500 characters."
    page.fill(f"#reason-{entry}", "I was not at the canteen")
    page.click(f"li[data-entry='{entry}'] form button")
    page.wait_for_selector(f"li[data-entry='{entry}'][data-dispute=open]")
    assert "disputed: open" in page.locator(f"li[data-entry='{entry}']").inner_text()
    listed = admin.http.get("/v1/admin/disputes", headers=admin.auth).json()["items"]
    assert [(d["entry"], d["holder_login"]) for d in listed] == [(entry, "hana")]
    _accessible(page)
    assert page.errors == []
    context.close()


def test_offline_the_last_synced_copy_and_refusals_in_chinese(site, chromium):
    admin = site.admin()
    admin.holder("ming", balance=5_000)
    till, _ = enrolled_till(site.http, admin, "till-zh")
    context, page = _page(chromium, site.url, "zh-CN")
    _sign_in_and_sync(page, "ming")
    _, code = _show(page)
    assert till.scan(code, amount=AMOUNT)["ok"]
    _sync(page)
    entry = int(page.locator("#movements li[data-kind=payment]").get_attribute("data-entry"))
    auth = _auth(site, "ming")
    opened = site.http.post(
        "/v1/wallet/disputes", json={"entry": entry, "reason": "cli"}, headers=auth
    )
    assert opened.status_code == 201, opened.text
    page.fill(f"#reason-{entry}", "两次扣款")  # the page's copy predates the other dispute
    page.click(f"li[data-entry='{entry}'] form button")
    page.wait_for_selector("#message[data-text=already_disputed]")
    assert page.locator("#message").inner_text() == "这笔付款已经提出争议。"
    _accessible(page)  # (axe-core is served by the server: online)
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#main[data-state=ready]")
    page.wait_for_selector(f"#movements li[data-entry='{entry}']")
    assert page.locator("#history-note").inner_text().startswith("截至上次同步")
    assert page.locator("#balance").inner_text() == "¥37.50"
    assert page.errors == []
    context.close()


def test_history_pages_past_fifty_and_the_holders_disputes_with_their_state(site, chromium):
    admin = site.admin()
    holder = admin.holder("paula", balance=10_000)
    for _ in range(54):  # 55 top-ups: more than the server's page of 50
        assert admin.top_up(holder["handle"], 100).status_code == 200
    till, _ = enrolled_till(site.http, admin, "till-pages")
    context, page = _page(chromium, site.url, "en-US")
    _sign_in_and_sync(page, "paula")
    _, code = _show(page)
    assert till.scan(code, amount=AMOUNT)["ok"]
    _sync(page)
    rows = page.locator("#movements li.movement")
    assert rows.count() == 50 and page.locator("#more").is_visible()
    entry = int(page.locator("#movements li[data-kind=payment]").get_attribute("data-entry"))
    page.click("#more")
    page.wait_for_selector("#more", state="hidden")
    ids = [int(rows.nth(n).get_attribute("data-entry")) for n in range(rows.count())]
    assert len(ids) == 56 and ids == sorted(set(ids), reverse=True)  # newest first, none twice
    assert page.locator("#dispute-list li").count() == 0
    assert page.locator("#disputes-note").inner_text() == "No disputes yet."
    page.fill(f"#reason-{entry}", "charged twice")
    page.click(f"li[data-entry='{entry}'] form button")
    page.wait_for_selector(f"#dispute-list li[data-payment='{entry}'][data-state=open]")
    listed = admin.http.get("/v1/admin/disputes", headers=admin.auth).json()["items"]
    [dispute] = [item["id"] for item in listed if item["entry"] == entry]
    decided = admin.post(
        f"/v1/admin/disputes/{dispute}/decide", {"outcome": "reject", "note": "paid once"}
    )
    assert decided.status_code == 200, decided.text
    _sync(page)  # the page learns the decision at its next sync
    row = page.locator(f"#dispute-list li[data-dispute-id='{dispute}']")
    assert row.get_attribute("data-state") == "rejected"
    text = row.inner_text()
    assert f"Dispute {dispute}: entry {entry}, ¥12.50 at" in text
    assert "rejected" in text and "(card office: paid once)" in text
    assert "Your reason: charged twice" in text
    assert rows.count() == 50 and page.locator("#more").is_visible()  # a sync: the first page
    _accessible(page)
    context.set_offline(True)
    page.click("#more")
    page.wait_for_selector("#message[data-text=offline]")
    assert rows.count() == 50
    assert page.errors == []
    context.close()


def _auth(site: Any, login: str) -> dict[str, str]:
    answer = site.http.post("/v1/session", json={"login": login, "password": f"pw-{login}-secret"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}
