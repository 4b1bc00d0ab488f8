"""The browser wallet's tickets in a real browser against a real server on 127.0.0.1: a bought
ticket syncs into IndexedDB and is listed (event, type, valid from and to); with the network
off its code, decoded from a screenshot by zxing-cpp, opens an offline gate of ours once, and
the ticket's next code is refused there as already used. Two tabs never take the same ticket
counter; used up, the page refuses with the CLI wallet's message (in Chinese here) until a
sync brings a new credential at counter 0; a code hides `freshness_s` later, an ended event's
credential is refused as expired and a ticket too early says from when."""

from __future__ import annotations

import io
import time
from typing import Any

import zxingcpp
from PIL import Image

from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.code import decode_code
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, verify
from tests.server.ticketing import HOUR, OnSale, entry_gate, event_on_sale
from tests.web.test_wallet_browser import (
    OURS,
    _accessible,
    _sign_in_and_sync,
    wallet_page,
)

DAY = 24 * HOUR
_RESERVE_MANY = """async ([sub, n]) => {
  const tickets = await import(ours("tickets.js"));
  const now = Math.floor(Date.now() / 1000);
  window.reserved = Promise.all(Array.from({length: n}, () =>
    tickets.reserve(sub, now, {}).then(r => r.ctr)));
}"""
_HELD = """(sub) => import(ours("tickets.js")).then(t => t.held())
  .then(all => all.filter(t => t.sub === sub)
    .map(t => ({uses: t.uses, next: t.next, cti: t.cti}))[0])"""


class _Gate:
    """An offline entry gate of ours for one event: the server's trust bundle, its own memory."""

    def __init__(self, site: Any, sale: OnSale) -> None:
        admin = site.admin()
        gate = entry_gate(site.http, admin, "gate-hall", event=sale.event, venue=sale.venues[0])
        self.trust = apply_bundle(None, open_bundle(gate.bundle(), gate.root_key))
        self.config = TerminalConfig(mode=Mode.ENTRY, event=sale.event, venue=sale.venues[0])
        self.memory = MemoryStore()

    def scan(self, code: str) -> tuple[Reason, int | None]:
        verdict = verify(
            code, trust=self.trust, config=self.config, memory=self.memory, now=int(time.time())
        )
        if verdict.acceptance is not None:
            self.memory.record(verdict.acceptance)
        return verdict.reason, verdict.ctr


def _bought(site: Any, login: str, sale: OnSale) -> str:
    """The holder's ticket for `sale`, bought before any purse credential holds their funds."""
    auth = _auth(site, login)
    order = {"ticket_type": sale.type_id, "quantity": 1, "request_id": f"{login}-{sale.event}"}
    answer = site.http.post("/v1/me/orders", json=order, headers=auth)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["tickets"][0])


def _auth(site: Any, login: str) -> dict[str, str]:
    answer = site.http.post("/v1/session", json={"login": login, "password": f"pw-{login}-secret"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _context(chromium: Any, locale: str) -> Any:
    context = chromium.new_context(locale=locale, viewport={"width": 520, "height": 900})
    context.add_init_script(OURS)
    return context


def _show_ticket(page: Any, sub: str) -> tuple[int, str]:
    """Show the ticket's code: its counter and the text read back from a screenshot."""
    page.click(f"li[data-sub='{sub}'] button")
    page.wait_for_selector(f"#code[data-ticket='{sub}']:not([hidden])")
    ctr = int(page.locator("#code").get_attribute("data-ctr"))
    shot = Image.open(io.BytesIO(page.locator("#qr").screenshot()))
    found = zxingcpp.read_barcodes(shot)
    assert {item.format for item in found} == {zxingcpp.BarcodeFormat.QRCode}
    texts = {item.text for item in found}
    assert texts == {page.locator("#qr").get_attribute("data-code")}
    return ctr, texts.pop()


def test_a_ticket_synced_then_shown_offline_opens_an_offline_gate_once(site, chromium, shots):
    now = int(time.time())
    sale = event_on_sale(site.admin(), "concert", doors=now - 60, ends=now + 4 * HOUR)
    site.admin().holder("tilda", balance=30_000)
    sub = _bought(site, "tilda", sale)
    gate = _Gate(site, sale)
    context = _context(chromium, "en-US")
    page = wallet_page(context, site.url)
    _sign_in_and_sync(page, "tilda")
    row = page.locator(f"li[data-sub='{sub}']")
    assert "Concert · Standing" in row.inner_text()
    assert "Valid from" in row.inner_text()
    assert "valid, entries 0 of 1: ready, 16 codes left" in row.inner_text()
    context.set_offline(True)
    page.reload()
    page.wait_for_selector(f"#main[data-state=ready] li[data-sub='{sub}']")
    first, code = _show_ticket(page, sub)
    assert first == 0 and "Ticket: Concert, Standing." in page.locator("#code-for").inner_text()
    decoded = decode_code(code)
    assert decoded.credential.claims.sub == sub and decoded.dynamic is not None
    assert gate.scan(code) == (Reason.OK, 0)
    focused = "document.activeElement.closest('#ticket-list li')?.dataset.sub"
    assert page.evaluate(focused) == sub  # the list drawn anew kept the keyboard's place
    assert "15 codes left" in row.inner_text()
    again, code = _show_ticket(page, sub)
    assert again == 1
    assert gate.scan(code) == (Reason.ALREADY_USED, 1)  # one entry: the ticket is used
    context.set_offline(False)  # (axe-core is served by the server)
    _accessible(page)  # the tickets view with a ticket's code shown
    page.screenshot(path=str(shots / "wallet-tickets-en.png"), full_page=True)
    assert page.errors == []
    context.close()


def test_two_tabs_share_ticket_counters_then_used_up_in_chinese_until_a_sync(site, chromium, shots):
    now = int(time.time())
    sale = event_on_sale(site.admin(), "opera", doors=now - 60, ends=now + 4 * HOUR)
    site.admin().holder("ting", balance=30_000)
    sub = _bought(site, "ting", sale)
    context = _context(chromium, "zh-CN")
    one = wallet_page(context, site.url)
    _sign_in_and_sync(one, "ting")
    held = one.evaluate(_HELD, sub)
    assert held["next"] == 0
    _accessible(one)
    one.screenshot(path=str(shots / "wallet-tickets-zh.png"), full_page=True)
    context.set_offline(True)
    two = wallet_page(context, site.url)
    shown = [_show_ticket(one, sub)[0], _show_ticket(two, sub)[0]]
    left = held["uses"] - len(shown)
    one.evaluate(_RESERVE_MANY, [sub, left // 2])  # both tabs at once, each many times
    two.evaluate(_RESERVE_MANY, [sub, left - left // 2])
    taken = one.evaluate("window.reserved") + two.evaluate("window.reserved")
    assert sorted(shown + taken) == list(range(held["uses"]))  # every counter once, none twice
    two.click(f"li[data-sub='{sub}'] button")
    two.wait_for_selector("#message[data-text=ticket_used_up]")
    expected = f"门票 {sub}：其码已全部用完（{held['uses']} 个）：请在联网时同步以获取新凭证。"
    assert two.locator("#message").inner_text() == expected
    assert two.locator("#code").is_hidden()
    context.set_offline(False)
    two.click("#sync")  # the used-up ticket is named `exhausted`: a new credential
    two.wait_for_selector("#message[data-text=synced]")
    renewed = two.evaluate(_HELD, sub)
    assert renewed["cti"] != held["cti"] and renewed["next"] == 0
    assert _show_ticket(two, sub)[0] == 0
    assert one.errors == [] and two.errors == []
    context.close()


def test_a_ticket_code_hides_then_expires_and_one_too_early_says_when(site, chromium):
    """Playwright's clock, paused, moves only by `run_for` (as the purse's test does)."""
    start = int(time.time())
    admin = site.admin()
    sale = event_on_sale(admin, "talk", doors=start - 60, ends=start + HOUR)
    later = event_on_sale(admin, "gala", venues=("hall-b",), doors=start + 60 * DAY)
    admin.holder("tomas", balance=30_000)
    sub = _bought(site, "tomas", sale)
    early = _bought(site, "tomas", later)
    context = _context(chromium, "en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.clock.install(time=start)
    page.goto(f"{site.url}/wallet/")
    page.clock.pause_at(start + 2)
    page.wait_for_selector("#main[data-state=new]")
    _sign_in_and_sync(page, "tomas")
    assert "too early: codes from" in page.locator(f"li[data-sub='{early}']").inner_text()
    page.click(f"li[data-sub='{early}'] button")
    page.wait_for_selector("#message[data-text=ticket_too_early]")
    message = page.locator("#message").inner_text()
    assert message.startswith(f"Ticket {early} has no credential on this device yet: too early")
    page.click(f"li[data-sub='{sub}'] button")
    page.wait_for_selector(f"#code[data-ticket='{sub}']:not([hidden])")
    page.clock.run_for(59_000)
    assert "hidden in 1 s" in page.locator("#countdown").inner_text()
    page.clock.run_for(2_000)
    page.wait_for_selector("#message[data-text=hidden]")
    assert page.locator("#code").is_hidden()
    page.clock.run_for(2 * HOUR * 1000)
    page.click(f"li[data-sub='{sub}'] button")
    page.wait_for_selector("#message[data-text=ticket_expired]")
    expected = f"Ticket {sub}: its credential has expired (the event ended)."
    assert page.locator("#message").inner_text() == expected
    assert page.locator("#code").is_hidden()
    context.close()
