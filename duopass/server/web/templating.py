"""Pages from Jinja2 templates (`templates/`), escaped by default: every value a template shows
is text unless a template marks it safe, and none does. One environment per language, its
messages installed (`{{ _("…") }}`), and the filters the pages share: `money` (¥12.50 from
minor units) and `moment` (a Unix time in the issuer's time zone, a global set per page)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from duopass.server.web import i18n

__all__ = ["STATIC_PREFIX", "asset", "render"]

TEMPLATES: Final = Path(__file__).parent / "templates"
STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/static/web"
"""Where `static/` is served (`static.mount`), by this server: nothing loads from another host."""


@functools.cache
def asset(name: str) -> str:
    """An asset's URL, versioned by its content (so it may be cached for a year)."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


@functools.cache
def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.catalogue(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = i18n.money
    env.globals["asset"] = asset
    return env


def render(name: str, language: str, values: dict[str, Any]) -> str:
    """The template `name` in `language`, with `values`."""
    return _environment(language).get_template(name).render(values)
