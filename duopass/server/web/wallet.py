"""The browser wallet (`/wallet/`), an installable web app: its page (`templates/wallet/`), its
manifest, its service worker and its scripts (`static/wallet/`). The page signs codes itself
with a non-extractable WebCrypto key and keeps its state in IndexedDB (docs/wallet.md); the
server only serves the files and the holder API (`/v1/...`) the page calls, as the CLI wallet
does.

The service worker lives at `/wallet/sw.js`, so its scope is `/wallet/`: it keeps the page and
every asset the page loads in one cache named by their content, so the page opens with the
network off, and a new version (another name) deletes the old caches."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Final

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import duopass
from duopass.server.settings import Settings
from duopass.server.web import i18n
from duopass.server.web.static import CACHE_CONTROL
from duopass.server.web.templating import STATIC_DIR, asset, render

__all__ = ["ASSETS", "PREFIX", "mount"]

PREFIX: Final = "/wallet"
SCRIPTS: Final = (
    "api.js",
    "app.js",
    "base45.js",
    "cbor.js",
    "clock.js",
    "display.js",
    "dp1.js",
    "history.js",
    "historyview.js",
    "oidc.js",
    "passkeys.js",
    "requests.js",
    "session.js",
    "store.js",
    "tickets.js",
    "ticketview.js",
    "ui.js",
    "webauthn.js",
)
"""The page's ES modules (`static/wallet/`), served together under one version in the path
(`/wallet/js/<version>/`): they import each other by relative URLs, which carry no `?v=`, so
the version must be in the folder for each of them to be cached for a year and still change."""
ICONS: Final = ("wallet/icon-192.png", "wallet/icon-512.png")
ASSETS: Final = ("wallet/wallet.css", "vendor/qrcode-generator-2.0.4/qrcode.js", *ICONS)
"""The other static files the page uses (`/static/web/`, versioned by `?v=`)."""
LANG_QUERY: Final = "lang"
SECURITY_HEADERS: Final = {
    # the console's policy: everything from this server, no inline script, no framing; the
    # page's fetches go to this server's API only
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_NO_CACHE: Final = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@functools.cache
def scripts_version() -> str:
    """The modules' version: a digest of their names and contents."""
    digest = hashlib.sha256()
    for name in SCRIPTS:
        digest.update(name.encode() + b"\0" + (STATIC_DIR / "wallet" / name).read_bytes())
    return digest.hexdigest()[:16]


def _urls() -> dict[str, str]:
    """Each file's versioned URL, by name: the service worker caches them all."""
    scripts = {name: f"{PREFIX}/js/{scripts_version()}/{name}" for name in SCRIPTS}
    return {**scripts, **{name: asset(name) for name in ASSETS}}


@functools.cache
def cache_name() -> str:
    """The service worker's cache: named by the package version and every asset's content."""
    urls = "\n".join(_urls().values())
    digest = hashlib.sha256(f"{duopass.__version__}\n{urls}".encode()).hexdigest()[:16]
    return f"duopass-wallet-{digest}"


def _language(request: Request) -> str:
    asked = request.query_params.get(LANG_QUERY)
    cookie = asked if asked in i18n.LANGUAGES else request.cookies.get(i18n.LANG_COOKIE)
    return i18n.choose(cookie, request.headers.get("Accept-Language"))


@router.get(PREFIX)
def to_the_wallet() -> RedirectResponse:
    """The service worker's scope is `/wallet/`: the page lives there."""
    return RedirectResponse(f"{PREFIX}/", status_code=308)


def _oidc(settings: Settings) -> bool:
    """Whether holders may sign in through the university's provider (the page's button)."""
    return settings.oidc_issuer is not None and settings.oidc_holders


@router.get(f"{PREFIX}/", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """The wallet's page in the visitor's language (`?lang=en` or `zh_Hans` switches)."""
    language = _language(request)
    html = render(
        "wallet/index.html",
        language,
        {
            "lang": i18n.html_lang(language),
            "language": language,
            "urls": _urls(),
            "oidc": _oidc(request.app.state.context.settings),
        },
    )
    response = HTMLResponse(html, headers={**SECURITY_HEADERS, **_NO_CACHE})
    if request.query_params.get(LANG_QUERY) in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            language,
            max_age=365 * 86_400,
            path=PREFIX,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.get(f"{PREFIX}/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest: what makes the page installable."""
    doc = {
        "name": "duopass wallet",
        "short_name": "duopass",
        "start_url": f"{PREFIX}/",
        "scope": f"{PREFIX}/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1b5e20",
        "icons": [
            {"src": asset(name), "sizes": f"{size}x{size}", "type": "image/png"}
            for name, size in zip(ICONS, (192, 512), strict=True)
        ],
    }
    return Response(
        json.dumps(doc), media_type="application/manifest+json", headers=dict(_NO_CACHE)
    )


@router.get(f"{PREFIX}/sw.js")
def service_worker() -> Response:
    """The service worker, with this version's cache name and asset list filled in."""
    source = (STATIC_DIR / "wallet" / "sw.js").read_text()
    config = json.dumps(
        {"cache": cache_name(), "page": f"{PREFIX}/", "assets": list(_urls().values())}
    )
    body = source.replace("/*CONFIG*/ null", config, 1)
    headers = {**_NO_CACHE, "Service-Worker-Allowed": f"{PREFIX}/"}
    return Response(body, media_type="text/javascript", headers=headers)


@router.get(f"{PREFIX}/js/{{version}}/{{name}}")
def script(version: str, name: str) -> Response:
    """One of this version's modules, cached for a year (another version: 404)."""
    if version != scripts_version() or name not in SCRIPTS:
        raise HTTPException(status_code=404)
    body = (STATIC_DIR / "wallet" / name).read_bytes()
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type="text/javascript", headers=headers)


def mount(app: FastAPI) -> None:
    app.router.routes.extend(router.routes)
