"""What partners owe, in the console and the CSV, on a real server: a partner sells and cancels,
and the settlement page's "Partners" section, the partners list and the partners CSV (console and
API) show the day's sold, cancelled and net and what each owes in all, the books' own integers,
in both languages; a partner named like a script is text. Operators read it (as they read the
settlement), nobody signed out does; the merchants' report CSV, which a closing hashes, is as
before."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re

import httpx
import pytest

from duopass.server.services import partner_settlement, settlement
from duopass.server.services.partner_settlement import PARTNER_COLUMNS, Named
from duopass.server.services.settlement import PartnerLine
from tests.web.console import admin, browser, operator
from tests.web.partner_sales import NAUGHTY, owed_from_books, partner_day

_WORDS = {
    "en": ("Partners", "Owed in total", "Owes now", "Sales of the day"),
    "zh-CN,zh;q=0.9": ("合作方", "累计应付", "目前应付", "当天销售"),
}


def _row(page: str, row_id: str) -> list[str]:
    found = re.search(rf'<tr id="{row_id}".*?</tr>', page, re.S)
    assert found is not None, row_id
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in found.group(0).split("</td>")]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("language", ["en", "zh-CN,zh;q=0.9"])
def test_the_settlement_page_shows_what_each_partner_sold_and_owes(site, language):
    sold = partner_day(site)
    assert owed_from_books(site, sold.client_id) == 1_500  # 3 sold at ¥15.00, 2 cancelled
    assert owed_from_books(site, sold.other_id) == 1_500
    boss = admin(site, language=language)
    page = boss.get(f"/console/settlement?day={sold.day}").text
    section, owed_words, owes_now, link_words = _WORDS[language]
    assert f">{section}</h2>" in page and owed_words in page
    assert "<script>alert(" not in page and "&lt;script&gt;alert(" in page
    cells = _row(page, f"partner-{sold.row_id}-CNY")
    assert cells[:6] == [NAUGHTY, sold.client_id, "¥45.00", "¥30.00", "¥15.00", "¥15.00"]
    cells = _row(page, f"partner-{sold.other_row}-CNY")
    assert cells[:6] == ["City Tickets", sold.other_id, "¥15.00", "¥0.00", "¥15.00", "¥15.00"]
    listing = boss.get("/console/partners").text
    assert owes_now in listing and link_words in listing and "<script>alert(" not in listing
    row = _row(listing, f"partner-{sold.row_id}")
    assert "¥15.00" in row[-3]
    assert f'href="/console/settlement?day={sold.day}#partners"' in listing


def test_the_partners_csv_carries_the_books_integers_and_the_report_csv_is_unchanged(site):
    sold = partner_day(site)
    api = site.admin()
    answer = site.http.get(f"/v1/admin/settlement/{sold.day}/partners.csv", headers=api.auth)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0] == ",".join(PARTNER_COLUMNS)
    rows = {row["partner"]: row for row in _rows(answer.text)}
    mine, theirs = rows[sold.client_id], rows[sold.other_id]
    assert (mine["partner_name"], mine["currency"]) == (NAUGHTY, "CNY")
    figures = [int(mine[key]) for key in ("sold", "cancelled", "net", "owed_total")]
    assert figures == [4_500, 3_000, 1_500, owed_from_books(site, sold.client_id)]
    assert int(theirs["owed_total"]) == owed_from_books(site, sold.other_id) == 1_500
    assert {row["day"] for row in rows.values()} == {sold.day}
    boss = admin(site, language="en")
    assert boss.get(f"/console/settlement/{sold.day}/partners.csv").text == answer.text
    report = boss.get(f"/console/settlement/{sold.day}/report.csv").text
    assert report.splitlines()[0] == ",".join(settlement.COLUMNS)  # no partner row in it
    assert all(row["merchant"] for row in _rows(report))
    lines = site.ctx.run(lambda unit: settlement.report(unit.session, sold.day))
    zone = site.ctx.settings.timezone
    assert settlement.digest(sold.day, lines, zone=zone) == hashlib.sha256(report.encode()).digest()


def test_operators_read_it_and_nobody_signed_out_does(site):
    sold = partner_day(site)
    staff = operator(site, language="en")
    page = staff.get(f"/console/settlement?day={sold.day}")
    assert page.status_code == 200 and f'id="partner-{sold.row_id}-CNY"' in page.text
    assert 'id="prepare"' not in page.text  # read-only
    got = staff.get(f"/console/settlement/{sold.day}/partners.csv")
    assert got.status_code == 200 and sold.client_id in got.text
    assert "¥15.00" in _row(staff.get("/console/partners").text, f"partner-{sold.row_id}")[-3]
    stranger = browser(site, language="en")
    out = stranger.get(f"/console/settlement/{sold.day}/partners.csv", follow_redirects=False)
    assert out.status_code in (303, 401) and sold.client_id not in out.text
    with httpx.Client(base_url=site.url) as http:
        refused = http.get(f"/v1/admin/settlement/{sold.day}/partners.csv")
        assert refused.status_code == 401 and sold.client_id not in refused.text


def test_a_partner_name_like_a_formula_is_not_one_in_the_csv():
    line = PartnerLine("dpc_x", "CNY", sold=1_500, cancelled=0, owed_total=1_500)
    named = [Named(line, 7, '=HYPERLINK("http://evil")'), Named(line, 8, "Plain, Co")]
    rows = _rows(partner_settlement.to_csv("2026-12-06", named, zone="Asia/Shanghai"))
    assert [row["partner_name"] for row in rows] == ['\'=HYPERLINK("http://evil")', "Plain, Co"]
    assert [row["net"] for row in rows] == ["1500", "1500"]
