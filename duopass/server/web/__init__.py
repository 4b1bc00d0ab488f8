"""The web: the card-office console (`/console`, `console`) and, later, the browser wallet
(`/wallet`), served by this server on its own port; and the home page (`GET /`, `home`): what
this server is and links to its API reference (`/docs`, `/redoc`, whose scripts the server
serves itself: `app.create_app`), the console, health and the ledger.

Here: server-rendered pages from Jinja2 templates (`templating`, `templates/`), escaped by
default; message catalogues in Simplified Chinese and English (`i18n`, `locale/`, read at start
from their `.po` files); the static files (`static`): our styles and the scripts vendored from
npm (`static/vendor/`, checked against `manifest.json`; `scripts/vendor.sh` fetches them), all
served from the package: nothing loads from another host.

May import: the server's services, settings and API dependencies, `duopass.protocol`,
`duopass.ledger`, `duopass.risk` and the server's `domain`. Pages call services as routes do;
they hold no rules of their own.
"""

__all__: list[str] = []
