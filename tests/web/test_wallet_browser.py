"""The browser wallet in a real browser against a real server on 127.0.0.1: it installs
(manifest, service worker), signs in and enrols a non-extractable device key, syncs, shows a
code as a QR image that an offline terminal verifier of ours accepts (the image decoded from a
screenshot by zxing-cpp), opens and shows codes with the network off, and two tabs never take
the same counter."""

from __future__ import annotations

import io
import time
from typing import Any

import zxingcpp
from PIL import Image

from duopass.protocol.bundle import apply_bundle, open_bundle
from duopass.protocol.code import decode_code
from duopass.protocol.encoding import b64u_encode
from duopass.protocol.memory import MemoryStore
from duopass.protocol.reasons import Reason
from duopass.protocol.verify import Mode, TerminalConfig, verify
from tests.server.harness import enrolled_till

AMOUNT = 100
_RESERVE_MANY = """async (n) => {
  const store = await import(ours("store.js"));
  window.reserved = Promise.all(Array.from({length: n}, () => store.reserve().then(r => r.ctr)));
}"""


OURS = """window.ours = (name) =>
  new URL(name, document.querySelector("script[type=module]").src).href;"""
"""The URL of one of the page's own modules (in the versioned folder its page loads them from)."""


def _context(chromium: Any, locale: str) -> Any:
    context = chromium.new_context(locale=locale)
    context.add_init_script(OURS)
    return context


def wallet_page(context: Any, url: str) -> Any:
    """The wallet page opened in `context`, loaded, its script errors kept in `page.errors`."""
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/wallet/")
    page.wait_for_selector("#main:not([data-state=loading])")
    page.errors = errors
    return page


def _sign_in_and_sync(page: Any, login: str) -> None:
    page.fill("#login", login)
    page.fill("#password", f"pw-{login}-secret")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#message[data-text=signed_in]")
    page.click("#sync")
    page.wait_for_selector("#message[data-text=synced]")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")


def _show(page: Any) -> tuple[int, str]:
    """Show a code: its counter and the text read back from a screenshot of the QR image."""
    page.click("#show")
    page.wait_for_selector("#code:not([hidden])")
    ctr = int(page.locator("#code").get_attribute("data-ctr"))
    shot = Image.open(io.BytesIO(page.locator("#qr").screenshot()))
    found = zxingcpp.read_barcodes(shot)  # (the same symbol may be reported twice)
    assert {item.format for item in found} == {zxingcpp.BarcodeFormat.QRCode}
    texts = {item.text for item in found}
    assert texts == {page.locator("#qr").get_attribute("data-code")}
    return ctr, texts.pop()


class _Till:
    """An offline terminal of ours at the canteen: the server's trust bundle, its own memory."""

    def __init__(self, site: Any) -> None:
        till, _ = enrolled_till(site.http, site.admin(), "till-wallet")
        self.trust = apply_bundle(None, open_bundle(till.bundle(), till.root_key))
        self.config = TerminalConfig(mode=Mode.PAY, currency="CNY", venue="canteen")
        self.memory = MemoryStore()

    def scan(self, code: str) -> tuple[Reason, int | None]:
        now = int(time.time())
        verdict = verify(
            code, trust=self.trust, config=self.config, memory=self.memory, now=now, amount=AMOUNT
        )
        if verdict.acceptance is not None:
            self.memory.record(verdict.acceptance)
        return verdict.reason, verdict.ctr


def test_sync_then_codes_with_the_network_off_accepted_offline(site, chromium, shots):
    site.admin().holder("wendy", balance=30_000)
    till = _Till(site)
    context = _context(chromium, "en-US")
    page = wallet_page(context, site.url)
    _sign_in_and_sync(page, "wendy")
    first, code = _show(page)
    _accessible(page)  # a code shown
    page.screenshot(path=str(shots / "wallet-code-en.png"), full_page=True)
    assert till.scan(code) == (Reason.OK, first)
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#main[data-state=ready]")  # opened from the service worker's cache
    assert page.evaluate("fetch('/healthz').then(() => 'online', () => 'offline')") == "offline"
    second, code = _show(page)
    assert second == first + 1
    assert till.scan(code) == (Reason.OK, second)
    assert till.scan(code) == (Reason.REPLAY, second)
    page.click("#sync")
    page.wait_for_selector("#message[data-text=offline]")
    assert "Cannot reach the server" in page.locator("#message").inner_text()
    assert page.errors == []
    context.close()


def test_two_tabs_never_take_the_same_counter(site, chromium):
    site.admin().holder("tess", balance=30_000)
    context = _context(chromium, "en-US")
    one = wallet_page(context, site.url)
    _sign_in_and_sync(one, "tess")
    uses = one.evaluate("import(ours('store.js')).then(s => s.read('held')).then(r => r.held.uses)")
    context.set_offline(True)  # the second tab opens from the service worker's cache
    two = wallet_page(context, site.url)
    shown = [_show(one)[0], _show(two)[0], _show(one)[0]]
    left = uses - len(shown)
    one.evaluate(_RESERVE_MANY, left // 2)  # both tabs at once, each many times
    two.evaluate(_RESERVE_MANY, left - left // 2)
    taken = one.evaluate("window.reserved") + two.evaluate("window.reserved")
    assert sorted(shown + taken) == list(range(uses))  # every counter once, none twice
    two.click("#show")
    two.wait_for_selector("#message[data-text=used_up]")
    assert f"all used ({uses})" in two.locator("#message").inner_text()
    assert two.locator("#code").is_hidden()
    context.close()


def test_the_page_speaks_chinese_and_installs(site, chromium, shots):
    site.admin().holder("wei", balance=30_000)
    context = _context(chromium, "zh-CN")
    page = wallet_page(context, site.url)
    assert page.locator("h1").inner_text() == "duopass 钱包"
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    _accessible(page)
    page.screenshot(path=str(shots / "wallet-signin-zh.png"), full_page=True)
    _sign_in_and_sync(page, "wei")
    _show(page)
    assert "¥300.00" in page.locator("body").inner_text()
    _accessible(page)
    page.screenshot(path=str(shots / "wallet-code-zh.png"), full_page=True)
    manifest = site.http.get("/wallet/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    for icon in manifest.json()["icons"]:
        assert site.http.get(icon["src"]).content.startswith(b"\x89PNG")
    assert site.http.get("/wallet", follow_redirects=False).headers["location"] == "/wallet/"
    policy = site.http.get("/wallet/").headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    worker = site.http.get("/wallet/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "duopass-wallet-" in worker.text and "/wallet/js/" in worker.text
    module = page.locator("script[type=module]").get_attribute("src")
    assert module.startswith("/wallet/js/") and module.endswith("/app.js")
    assert "immutable" in site.http.get(module.replace("app.js", "dp1.js")).headers["cache-control"]
    assert site.http.get("/wallet/js/0123456789abcdef/app.js").status_code == 404  # another version
    assert site.http.get(module.replace("app.js", "wallet.py")).status_code == 404
    page.click("a[lang=en]")
    page.wait_for_selector("html[lang=en]")  # (no wait_for_function: the CSP forbids eval)
    assert page.locator("h1").inner_text() == "duopass wallet"
    _accessible(page)
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{site.url}/wallet/"
    context.close()


def test_the_key_cannot_be_read_out_and_the_code_hides_then_expires(site, chromium):
    """Playwright's clock drives the page's timers, `Date` and `performance.now()`, paused: it
    moves only by `run_for`, so nothing depends on how fast the test runs (and axe-core, which
    waits on timers, is run by the other tests). The code hides `freshness_s` (60 s) after it
    was shown, and a day on the credential has expired."""
    site.admin().holder("kai", balance=30_000)
    context = _context(chromium, "en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    start = int(time.time())
    page.clock.install(time=start)
    page.goto(f"{site.url}/wallet/")
    page.clock.pause_at(start + 2)  # from here on, time moves only when the test says
    page.wait_for_selector("#main[data-state=new]")
    _sign_in_and_sync(page, "kai")
    held = page.evaluate(_KEY_FACTS)
    assert held == {"extractable": False, "type": "private", "export": "InvalidAccessError"}
    page.click("#show")
    page.wait_for_selector("#code:not([hidden])")
    page.clock.run_for(59_000)
    assert page.locator("#code").is_visible()
    assert "hidden in 1 s" in page.locator("#countdown").inner_text()
    page.clock.run_for(2_000)
    page.wait_for_selector("#message[data-text=hidden]")
    assert page.locator("#code").is_hidden()
    assert page.locator("#qr").get_attribute("data-code") is None
    page.clock.run_for(86_400_000)
    page.click("#show")
    page.wait_for_selector("#message[data-text=expired]")
    assert page.locator("#code").is_hidden()
    context.close()


_KEY_FACTS = """async () => {
  const store = await import(ours("store.js"));
  const {device} = await store.read("device");
  let exported = null;
  try { await crypto.subtle.exportKey("pkcs8", device.key); }
  catch (error) { exported = error.name; }
  return {extractable: device.key.extractable, type: device.key.type, export: exported};
}"""
_AXE = "/static/web/vendor/axe-core-4.14.1/axe.min.js"
_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => ["serious", "critical"].includes(v.impact))
    .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}));
}"""


def _accessible(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(url=_AXE)
    assert page.evaluate(_RUN_AXE) == []


def test_an_ended_session_is_renewed_by_the_device_key_and_a_refresh_starts_at_zero(site, chromium):
    site.admin().holder("rhea", balance=30_000)
    till = _Till(site)
    context = _context(chromium, "en-US")
    page = wallet_page(context, site.url)
    _sign_in_and_sync(page, "rhea")
    first, code = _show(page)
    assert till.scan(code) == (Reason.OK, first)
    old = page.evaluate(_HELD_CTI)
    page.evaluate(_FORGET_SESSION)  # the server will not know this token
    page.click("#sync")  # refused as unauthenticated: the device key signs a challenge
    page.wait_for_selector("#message[data-text=synced]")
    assert page.evaluate(_HELD_CTI) != old  # a refresh: a new credential
    again, code = _show(page)
    decoded = decode_code(code)  # (with its holds all shown, the new one may be online-only)
    assert (again, decoded.dynamic.ctr if decoded.dynamic else None) == (0, 0)
    assert b64u_encode(decoded.credential.claims.cti) == page.evaluate(_HELD_CTI)
    context.close()


_HELD_CTI = """import(ours("store.js")).then(s => s.read("held")).then(r => r.held.cti)"""
_FORGET_SESSION = """async () => {
  const store = await import(ours("store.js"));
  const {account} = await store.read("account");
  await store.write({account: {...account, token: "not-a-session-token"}});
}"""
