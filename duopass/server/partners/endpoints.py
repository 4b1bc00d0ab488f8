"""Webhook endpoints as the card office's admins manage them, and as a partner client with
`webhooks:manage` manages its own: created with a URL and the event types it takes (its signing
secret shown once), listed, disabled and enabled, and their secret rotated with an overlap
during which both the old and the new secret sign every message.

Who owns an endpoint (`partner`, every function's keyword): None is the card office's admins,
who see and manage every endpoint, a partner's too; a partner client's row id sees only its
own (another's is 404 `not_found`, as if it did not exist), may subscribe only to the ticket
events (`PARTNER_EVENTS`: its endpoints take those of its own events only, `outbox.emit`) and
has at most `PARTNER_WEBHOOKS_MAX` enabled, besides the card office's `WEBHOOK_ENDPOINTS_MAX`.

The secret is kept so that the server can sign with it (HMAC-SHA256 needs the key itself, so a
hash of it would be of no use), sealed with the server's `wrap.key` (`Keyring.seal`), which
lives in the data directory and never in the database: a copy of the database alone gives no
secret away. It is never logged; it leaves the server only in the answer that created it.

Refusals: a URL not http(s) 422 `url_not_http`, longer than `WEBHOOK_URL_CHARS_MAX` 422
`url_too_long`, otherwise unusable (no host, a user or password, a fragment, spaces, non-ASCII,
a bad port) 422 `url_malformed`; more than `WEBHOOK_ENDPOINTS_MAX` enabled 409
`too_many_webhooks` (a partner's: more than `PARTNER_WEBHOOKS_MAX`); a partner's URL not
`https://` or on a loopback, private or link-local address 422 `url_not_public` (unless
`settings.partner_webhooks_private`); an unknown endpoint, or
another's, 404 `not_found`; a partner subscribing to an event type not about tickets 422
`invalid_request`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duopass.server.keyring import Keyring
from duopass.server.limits import (
    PARTNER_WEBHOOKS_MAX,
    WEBHOOK_ENDPOINTS_MAX,
    WEBHOOK_URL_CHARS_MAX,
)
from duopass.server.partners.outbox import WebhookEvent
from duopass.server.problems import Problem, ProblemCode
from duopass.server.store.webhooks import WebhookEndpoint
from duopass.server.unit_of_work import Unit

__all__ = [
    "PARTNER_EVENTS",
    "SECRET_PREFIX",
    "NotPublic",
    "check_url",
    "create",
    "describe",
    "is_public",
    "listing",
    "not_public",
    "one",
    "public_addresses",
    "rotate",
    "secrets",
    "set_state",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not one)
SECRET_BYTES = 32
"""Standard Webhooks asks for 24 to 64 bytes."""
PARTNER_EVENTS = frozenset(
    {
        WebhookEvent.TICKET_ISSUED,
        WebhookEvent.TICKET_REISSUED,
        WebhookEvent.TICKET_REVOKED,
        WebhookEvent.TICKET_CHECKED_IN,
    }
)
"""What a partner's own endpoint may take: its events' tickets. Not `alert.raised` (the card
office's terminals, holders and money) nor `settlement.day_settled` (a day of the whole card
office's books, every merchant's and event's)."""


def check_url(url: str) -> str:
    """The URL a receiver gave, if deliveries can go to it; else a refusal naming why."""
    if len(url) > WEBHOOK_URL_CHARS_MAX:
        raise Problem(ProblemCode.URL_TOO_LONG, f"at most {WEBHOOK_URL_CHARS_MAX} characters")
    if not url.isascii() or not url.isprintable() or any(char.isspace() for char in url):
        raise Problem(
            ProblemCode.URL_MALFORMED, "printable ASCII without spaces (a domain in punycode)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Problem(ProblemCode.URL_MALFORMED, "not a URL (its host or port)") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise Problem(ProblemCode.URL_NOT_HTTP, "an http:// or https:// URL")
    if not parts.hostname:
        raise Problem(ProblemCode.URL_MALFORMED, "the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise Problem(ProblemCode.URL_MALFORMED, "no user or password in the URL")
    if "#" in url:
        raise Problem(ProblemCode.URL_MALFORMED, "no fragment (#...) in the URL")
    if port == 0:
        raise Problem(ProblemCode.URL_MALFORMED, "port 0")
    return url


class NotPublic(Exception):
    """A partner's endpoint that may not be sent to; `reason` is what the delivery log keeps."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


EMBEDDING = (
    (ipaddress.ip_network("::ffff:0:0/96"), 0),  # IPv4-mapped
    (ipaddress.ip_network("::/96"), 0),  # IPv4-compatible (::1 and :: too)
    (ipaddress.ip_network("64:ff9b::/96"), 0),  # NAT64's well-known prefix
    (ipaddress.ip_network("2002::/16"), 80),  # 6to4: the IPv4 address after the prefix
)
"""IPv6 networks whose addresses carry an IPv4 address (and the bits below it), which is what
a connection to them reaches: they are judged by it."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global address, whose embedded IPv4 address (`EMBEDDING`), if any, is global too."""
    if isinstance(address, ipaddress.IPv6Address):
        for network, shift in EMBEDDING:
            if address in network:
                inner = ipaddress.IPv4Address((int(address) >> shift) & 0xFFFFFFFF)
                return inner.is_global and (shift == 0 or address.is_global)
    return address.is_global


def public_addresses(host: str, port: int) -> list[str]:
    """The addresses of a partner's endpoint's host, resolved once here: the connection goes to
    one of these, so that a name cannot answer a public address to the check and a private one
    to the connection. Raises `NotPublic` if any of them (or the host itself) is not public."""
    host = host.rstrip(".").lower()
    named = host[:100]  # in a reason the delivery log keeps
    if host == "localhost" or host.endswith(".localhost"):
        raise NotPublic(f"{named} is not a public host")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise NotPublic(f"{named} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses or not all(is_public(address) for address in addresses):
        raise NotPublic(f"{named} is not a public address")
    return list(dict.fromkeys(str(address) for address in addresses))


def not_public(url: str, *, resolve: bool) -> str | None:
    """Why a partner's endpoint may not be sent to (None: it may): not `https://`, or a host
    that is (or, with `resolve`, whose addresses include) a loopback, private, link-local or
    otherwise not global address (`is_public`), so that no partner has the server post into
    the campus network. Delivery connects only to addresses it checked (`public_addresses`)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return "a partner's endpoint is https://"
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not resolve and host != "localhost" and not host.endswith(".localhost"):
            return None
    try:
        public_addresses(host, parts.port or 443)
    except NotPublic as refused:
        return refused.reason
    return None


def _new_secret() -> tuple[str, bytes]:
    raw = os.urandom(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(raw).decode(), raw


def create(
    unit: Unit,
    *,
    url: str,
    event_types: Iterable[WebhookEvent],
    description: str,
    by: int,
    partner: int | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its secret (`whsec_...`), which is not shown again; `by` is
    the staff member who made it, or the partner client (`partner`) that made its own."""
    check_url(url)
    if partner is not None and not unit.settings.partner_webhooks_private:
        why = not_public(url, resolve=False)
        if why is not None:
            raise Problem(ProblemCode.URL_NOT_PUBLIC, why)
    kinds = {WebhookEvent(kind) for kind in event_types}
    if partner is not None and not kinds <= PARTNER_EVENTS:
        raise Problem(
            ProblemCode.INVALID_REQUEST,
            "a partner's endpoint takes ticket events only: "
            + ", ".join(sorted(kind.value for kind in PARTNER_EVENTS)),
        )
    _room(unit.session, partner)
    shown, raw = _new_secret()
    row = WebhookEndpoint(
        url=url,
        description=description,
        event_types=json.dumps(sorted(kind.value for kind in kinds)),
        secret_sealed=unit.keyring.seal(raw),
        state="enabled",
        created_at=unit.now,
        created_by=by,
        partner_id=partner,
    )
    session = unit.session
    session.add(row)
    session.flush()
    return row, shown


def _room(session: Session, partner: int | None) -> None:
    """Refuse one more endpoint enabled for its owner past the owner's limit."""
    owned = (
        WebhookEndpoint.partner_id.is_(None)
        if partner is None
        else WebhookEndpoint.partner_id == partner
    )
    enabled = session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.state == "enabled", owned)
    )
    most = WEBHOOK_ENDPOINTS_MAX if partner is None else PARTNER_WEBHOOKS_MAX
    if (enabled or 0) >= most:
        raise Problem(
            ProblemCode.TOO_MANY_WEBHOOKS, f"at most {most} endpoints enabled: disable one first"
        )


def one(
    session: Session, endpoint_id: int, *, lock: bool = False, partner: int | None = None
) -> WebhookEndpoint:
    """The endpoint, if `partner` may see it (None: an admin, who sees every one)."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None or (partner is not None and row.partner_id != partner):
        raise Problem(ProblemCode.NOT_FOUND, "no such webhook endpoint")
    return row


def listing(session: Session, *, partner: int | None = None) -> list[WebhookEndpoint]:
    """Every endpoint (an admin's), or a partner's own, oldest first (few: the enabled ones
    are capped per owner, and a disabled one is not left lying for long)."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if partner is not None:
        query = query.where(WebhookEndpoint.partner_id == partner)
    return list(session.scalars(query))


def set_state(
    unit: Unit, endpoint_id: int, state: str, *, partner: int | None = None
) -> WebhookEndpoint:
    """Disable an endpoint (nothing more is queued for it, and what is queued waits) or enable
    it again (what waited is sent, in order; what is past its day fails at its next attempt)."""
    row = one(unit.session, endpoint_id, lock=True, partner=partner)
    if state == "enabled" and row.state != "enabled":
        _room(unit.session, row.partner_id)
    row.state = state
    return row


def rotate(
    unit: Unit, endpoint_id: int, *, overlap_s: int, partner: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the one it replaces still signs for `overlap_s` (0: not at all), so a
    receiver can move to the new one while messages verify with either. A secret older than
    the one replaced stops signing now."""
    row = one(unit.session, endpoint_id, lock=True, partner=partner)
    shown, raw = _new_secret()
    if overlap_s > 0:
        row.previous_sealed, row.previous_until = row.secret_sealed, unit.now + overlap_s
    else:
        row.previous_sealed, row.previous_until = None, None
    row.secret_sealed = unit.keyring.seal(raw)
    return row, shown


def secrets(keyring: Keyring, row: WebhookEndpoint, now: int) -> Sequence[bytes]:
    """The secrets that sign a message sent at `now`: the current one, and the previous one
    during its overlap."""
    found = [keyring.unseal(row.secret_sealed)]
    previous, until = row.previous_sealed, row.previous_until
    if previous is not None and until is not None and now < until:
        found.append(keyring.unseal(previous))
    return found


def describe(row: WebhookEndpoint, now: int) -> dict[str, Any]:
    overlap = row.previous_until if row.previous_until and now < row.previous_until else None
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "event_types": json.loads(row.event_types),
        "state": row.state,
        "created_at": row.created_at,
        "previous_secret_until": overlap,
        "partner": row.partner_id,
    }
