"""The web (a room, empty until the browser issue builds it): the card-office console
(`/console`) and the browser wallet (`/wallet`), served by this server on its own port.

What will live here: server-rendered pages (Jinja2 templates, htmx), their routes, the static
assets vendored from npm (scripts, styles, fonts: nothing loads from another host), message
catalogues in Simplified Chinese and English, and the wallet's installable web app (a service
worker, the device key in the browser, codes shown with the network off).

May import: the server's services, settings and API dependencies, `duopass.protocol`,
`duopass.ledger`, `duopass.risk` and the server's `domain`. Pages call services as routes do;
they hold no rules of their own.
"""

__all__: list[str] = []
