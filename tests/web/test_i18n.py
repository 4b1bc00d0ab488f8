"""Every message the templates show has its Simplified Chinese translation; the language is
chosen as the pages say; money and times are shown as the card office reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from duopass.server.web import i18n

WEB = Path(i18n.__file__).parent
_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _template_messages() -> set[str]:
    found = extract_from_dir(
        WEB / "templates",
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": _OPTIONS},
    )
    return {str(message) for _file, _line, message, _comments, _context in found}


def _po(language: str) -> dict[str, str]:
    """Every catalogue of the language (one a section), merged."""
    found: dict[str, str] = {}
    for path in i18n.po_files(language):
        with path.open("rb") as po:
            found |= {str(m.id): str(m.string) for m in read_po(po) if m.id and not m.fuzzy}
    return found


def test_every_template_message_has_a_chinese_translation():
    messages = _template_messages()
    assert len(messages) > 50  # the extractor found the templates' strings
    chinese = _po("zh_Hans")
    assert sorted(m for m in messages if not chinese.get(m)) == []
    english = _po("en")
    assert messages <= english.keys()  # the source language: listed, shown as written


def test_the_catalogue_translates_with_its_placeholders():
    zh = i18n.catalogue("zh_Hans")
    assert zh.gettext("Holders") == "持卡人"
    text = zh.gettext("Give a reason (at most %(n)s characters).")
    assert text % {"n": 500} == "请填写原因（最多 500 个字符）。"
    assert i18n.catalogue("en").gettext("Holders") == "Holders"


@pytest.mark.parametrize(
    ("cookie", "header", "language"),
    [
        (None, None, "zh_Hans"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        (None, "en;q=0.5, zh-Hans;q=0.9", "zh_Hans"),
        (None, "fr-FR, en;q=0.3", "en"),
        (None, "zh-TW", "zh_Hans"),  # not ours: the default
        (None, "de, fr", "zh_Hans"),
        (None, "en;q=0, zh;q=0.1", "zh_Hans"),
        (None, "en;q=bogus", "zh_Hans"),
        ("en", "zh-CN", "en"),
        ("xx", "en", "en"),
    ],
)
def test_the_language_is_the_switchs_then_accept_languages(cookie, header, language):
    assert i18n.choose(cookie, header) == language


def test_money_is_yuan_from_minor_units():
    assert i18n.money(1250) == "¥12.50"
    assert i18n.money(5) == "¥0.05"
    assert i18n.money(-300) == "-¥3.00"
    assert i18n.money(123_456_789) == "¥1,234,567.89"
    assert i18n.money(100, "EUR") == "EUR 1.00"


def test_times_are_the_issuers_wall_clock():
    assert i18n.moment(0, "Asia/Shanghai") == "1970-01-01 08:00 CST"
    assert i18n.moment(0, "UTC") == "1970-01-01 00:00 UTC"
    assert i18n.moment(None, "UTC") == "—"
