"""`GET /`: what this server is and where to go from here, one small page rendered here with no
script, style sheet or font from anywhere; it links to the card-office console (`console`)."""

from __future__ import annotations

from html import escape
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from duopass.server.api.deps import Ctx

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LINKS: Final = (
    ("/console/", "the card office's console: staff sign in here"),
    ("/wallet/", "the browser wallet: a holder's codes, with the network off too"),
    ("/docs", "API reference (Swagger UI): try the routes from the browser"),
    ("/redoc", "API reference (ReDoc): read it"),
    ("/openapi.json", "the OpenAPI document itself"),
    ("/healthz", "health: up, and able to reach its database"),
    ("/v1/ledger/checkpoint", "the ledger's latest signed checkpoint"),
    ("/v1/ledger/key", "the ledger's verifier key: what duopass audit --key takes"),
)

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>duopass: {issuer}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #1b1b1b; }}
code, pre {{ background: #f2f2f2; border-radius: 3px; padding: 0 .25em; }}
pre {{ padding: .6em; overflow-x: auto; }}
dt {{ font-weight: 600; }}
</style>
</head>
<body>
<h1>duopass issuer server</h1>
<dl>
<dt>issuer</dt><dd><code>{issuer}</code></dd>
<dt>ledger origin</dt><dd><code>{origin}</code></dd>
<dt>version</dt><dd><code>{version}</code></dd>
</dl>
<h2>Where to go</h2>
<ul>
{links}
</ul>
<h2>Check the ledger</h2>
<pre>duopass audit --url {base} --key "$(curl -s {base}/v1/ledger/key)"</pre>
<p>The card office's console is at <a href="/console/"><code>/console/</code></a>; its API
routes are under <code>/v1/admin</code> (see the API reference).</p>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse)
def home(ctx: Ctx, request: Request) -> HTMLResponse:
    """This server's name, its ledger's origin, and links to what it serves."""
    links = "\n".join(
        f'<li><a href="{href}"><code>{href}</code></a>: {escape(what)}</li>' for href, what in LINKS
    )
    page = _PAGE.format(
        issuer=escape(ctx.settings.issuer),
        origin=escape(ctx.keyring.ledger.name),
        version=escape(request.app.version),
        links=links,
        base=escape(str(request.base_url).rstrip("/")),
    )
    return HTMLResponse(page)
