"""The web (a room the browser issue builds): the card-office console (`/console`) and the
browser wallet (`/wallet`), served by this server on its own port. Today it holds the home page
(`GET /`, `home`): what this server is and links to its API reference (`/docs`, `/redoc`, whose
scripts the server serves itself: `app.create_app`), health and the ledger.

What will live here: server-rendered pages (Jinja2 templates, htmx), their routes, the static
assets vendored from npm (scripts, styles, fonts: nothing loads from another host), message
catalogues in Simplified Chinese and English, and the wallet's installable web app (a service
worker, the device key in the browser, codes shown with the network off).

May import: the server's services, settings and API dependencies, `duopass.protocol`,
`duopass.ledger`, `duopass.risk` and the server's `domain`. Pages call services as routes do;
they hold no rules of their own.
"""

__all__: list[str] = []
