"""The pages' languages: Simplified Chinese (`zh_Hans`, the default) and English (`en`), from
message catalogues kept as `.po` files in the package (`locale/<lang>/LC_MESSAGES/*.po`: one a
section, `messages.po` for what the sections share, merged) and read at start with Babel, so no
compile step stands between an edit and the page. A page speaks the language of the
`duopass_lang` cookie (the switch), else the first of `Accept-Language` it speaks, else Chinese.
Money is shown in yuan from integer minor units, times in the issuer's time zone."""

from __future__ import annotations

import functools
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "LANG_COOKIE",
    "catalogue",
    "choose",
    "html_lang",
    "moment",
    "money",
]

LOCALE_DIR: Final = Path(__file__).parent / "locale"
LANGUAGES: Final = ("zh_Hans", "en")
DEFAULT: Final = "zh_Hans"
LANG_COOKIE: Final = "duopass_lang"
ACCEPT_LANGUAGE_CHARS_MAX: Final = 512
"""Longer `Accept-Language` headers are read no further (browsers send some 50 characters)."""
_HTML_LANG: Final = {"zh_Hans": "zh-Hans", "en": "en"}
_SYMBOLS: Final = {"CNY": "¥"}


def po_files(language: str) -> list[Path]:
    """The language's catalogues: `messages.po` first, then one a section, by name."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda path: (path.stem != "messages", path.name))


@functools.cache
def catalogue(language: str) -> Translations:
    """The language's messages, read from its `.po` files once per process (a message two
    files translate is refused: sections do not translate one string two ways)."""
    locale = language.replace("_Hans", "")
    messages = None
    for path in po_files(language):
        with path.open("rb") as po:
            read = read_po(po, locale=locale)
        if messages is None:
            messages = read
            continue
        for message in read:
            if message.id and message.id in messages:
                raise ValueError(f"{path.name}: {message.id!r} is translated in another file")
            if message.id:
                messages[message.id] = message
    if messages is None:
        raise FileNotFoundError(f"no catalogue for {language} in {LOCALE_DIR}")
    compiled = io.BytesIO()
    write_mo(compiled, messages)  # fuzzy entries are left out, as msgfmt leaves them
    compiled.seek(0)
    return Translations(fp=compiled)


def _language_of(tag: str) -> str | None:
    """Ours for a BCP 47 tag: any `zh` but the traditional scripts and regions, or any `en`."""
    tag = tag.strip().lower().replace("_", "-")
    if tag == "en" or tag.startswith("en-"):
        return "en"
    traditional = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")
    if (tag == "zh" or tag.startswith("zh-")) and not tag.startswith(traditional):
        return "zh_Hans"
    return None


def _preferred(accept_language: str) -> str | None:
    """The first of our languages in `Accept-Language`, by its q-values (RFC 9110 §12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for n, item in enumerate(accept_language[:ACCEPT_LANGUAGE_CHARS_MAX].split(",")):
        tag, _, params = item.partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        language = _language_of(tag)
        if language is not None and weight > 0:
            ranked.append((-weight, n, language))
    return min(ranked)[2] if ranked else None


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's cookie, else Accept-Language's, else Chinese."""
    if cookie in LANGUAGES:
        return str(cookie)
    return _preferred(accept_language or "") or DEFAULT


def html_lang(language: str) -> str:
    return _HTML_LANG[language]


def money(minor: int, currency: str = "CNY") -> str:
    """`1250` → `¥12.50`, `-300` → `-¥3.00`: integer arithmetic, never a float."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    symbol = _SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{units:,}.{cents:02d}"


def moment(at: int | None, zone: str) -> str:
    """A Unix time as the issuer's wall clock shows it (`2026-12-06 09:30 CST`)."""
    if at is None:
        return "—"
    when = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(zone))
    return when.strftime("%Y-%m-%d %H:%M %Z")
