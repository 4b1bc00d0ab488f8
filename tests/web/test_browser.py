"""The console in a real browser (Debian's Chromium through Playwright) against a real server
on 127.0.0.1: sign in, find a holder, open them, freeze and unfreeze (htmx), both languages, an
operator refused a money move, a form without its token refused, a `<script>` name shown as
text; and axe-core on every page finds no serious or critical violation.

Screenshots of each page in both languages go to `$DUOPASS_SCREENSHOTS` when set (the ones in
docs/screenshots/ were made so), else to the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.harness import ADMIN_PASSWORD
from tests.web.conftest import OPERATOR

NAUGHTY = "<script>alert(1)</script>"
LOCALES = {"zh": "zh-CN", "en": "en-US"}
_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.map(n => n.target.join(" "))}));
}"""


def _page(chromium: Any, language: str) -> Any:
    context = chromium.new_context(
        locale=LOCALES[language], viewport={"width": 1100, "height": 760}, timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _sign_in(page: Any, url: str, login: str, password: str) -> None:
    page.goto(f"{url}/console/")
    assert page.url.endswith("/console/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{url}/console/")


def _accessible(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    page.wait_for_function("typeof window.axe !== 'undefined'")
    found = page.evaluate(_AXE)
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert bad == [], (page.url, bad)


def _errors(page: Any, *, missing_ok: bool = True) -> list[str]:
    """Errors the page reports from now on: a script the policy blocked, or one that failed;
    a 404 too unless `missing_ok` (the browser's own favicon request is the one expected)."""
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and not (missing_ok and "404" in message.text):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _shoot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_find_open_freeze_and_unfreeze_a_holder(site, chromium, shots, language):
    made = site.admin().holder("mallory", name=NAUGHTY, balance=1_250)
    page = _page(chromium, language)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    errors = _errors(page, missing_ok=False)
    page.goto(f"{site.url}/console/login")
    _accessible(page)
    _shoot(page, shots, f"console-login-{language}")
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    words = {"zh": "卡务中心", "en": "Card office"}[language]
    assert page.locator("h1").inner_text() == words
    _accessible(page)
    _shoot(page, shots, f"console-home-{language}")
    page.click("nav a[href='/console/holders']")
    page.fill("#q", "mallory")
    page.click("form[role=search] button")
    page.wait_for_url("**/console/holders?q=mallory")
    link = page.locator("table a")
    assert link.inner_text() == NAUGHTY  # shown as text, not run
    _accessible(page)
    _shoot(page, shots, f"console-holders-{language}")
    link.click()
    page.wait_for_url(f"**/console/holders/{made['handle']}")
    assert page.locator("h1").inner_text() == NAUGHTY
    assert "¥12.50" in page.locator("#account-title + dl").inner_text()
    _accessible(page)
    here = page.url
    page.fill("#reason", "card reported lost")
    page.click("#holder-state button[type=submit]")
    frozen = {"zh": "已冻结。", "en": "Frozen."}[language]
    page.locator("#holder-state .done").filter(has_text=frozen).wait_for()
    assert page.url == here  # swapped in by htmx, no page load
    _accessible(page)
    page.fill("#reason", "card found")
    page.click("#holder-state button[type=submit]")
    thawed = {"zh": "已解冻。", "en": "Unfrozen."}[language]
    page.locator("#holder-state .done").filter(has_text=thawed).wait_for()
    admin = site.admin()
    shown = admin.http.get(f"/v1/admin/holders/{made['handle']}", headers=admin.auth).json()
    assert shown["frozen"] is False
    assert dialogs == []  # the name never ran
    assert [e for e in errors if "404" not in e] == []
    page.context.close()


def test_the_switch_changes_the_language(site, chromium):
    page = _page(chromium, "en")
    _sign_in(page, site.url, "admin", ADMIN_PASSWORD)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("nav").inner_text().count("Holders") == 1
    page.click("button[value=zh_Hans]")
    page.wait_for_function("document.documentElement.lang === 'zh-Hans'")
    assert "持卡人" in page.locator("nav").inner_text()
    page.click("button[value=en]")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.context.close()


def test_an_operator_sees_no_money_action_and_is_refused_one(site, chromium, shots):
    made = site.admin().holder("ben")
    page = _page(chromium, "zh")
    _sign_in(page, site.url, OPERATOR["login"], OPERATOR["password"])
    page.goto(f"{site.url}/console/holders/{made['handle']}")
    assert page.locator("#top-up").count() == 0
    assert page.locator("#holder-state form").count() == 1  # freezing is theirs
    statuses = page.evaluate(
        """async ([handle]) => {
          const csrf = document.querySelector("input[name=csrf]").value;
          const post = (path, fields) =>
            fetch(path, {method: "POST", body: new URLSearchParams(fields)}).then(r => r.status);
          return [
            await post(`/console/holders/${handle}/topups`,
                       {csrf, amount: "100", request_id: "operator-try-1"}),
            await post(`/console/holders/${handle}/freeze`, {reason: "no token"}),
          ];
        }""",
        [made["handle"]],
    )
    assert statuses == [403, 403]
    admin = site.admin()
    assert admin.account(made["account_id"])["balance"] == 0
    shown = admin.http.get(f"/v1/admin/holders/{made['handle']}", headers=admin.auth).json()
    assert shown["frozen"] is False
    page.goto(f"{site.url}/console/holders/{made['handle']}/nobody")
    _accessible(page)
    _shoot(page, shots, "console-refused-zh")
    page.context.close()
