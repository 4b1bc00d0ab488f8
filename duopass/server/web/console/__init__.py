"""The card-office console at `/console`: server-rendered pages (Jinja2, htmx) in Simplified
Chinese and English over the services the API uses, behind a staff sign-in (`visit`: the session
cookie, its idle and absolute expiry, CSRF) with the roles enforced on the server (admin:
everything; operator: look up, review and dismiss alerts, freeze, report a lost phone; no
money moves).

Pages: `/console/` (home), `/console/login` and `/console/logout`, `/console/lang` (the
language switch), `/console/holders` (search), `/console/holders/{handle}` (one holder) and its
`freeze`, `unfreeze`, `topups`, `refunds`, `loss-report`, `replacement` and `erase` forms; the
fleet, live charts, alerts, reviews, disputes, risk, events, settlement, ledger, webhook and
partner pages (docs/console.md). Refusals are pages in the visitor's language."""

from __future__ import annotations

from duopass.server.web.console.app import mount

__all__ = ["mount"]
