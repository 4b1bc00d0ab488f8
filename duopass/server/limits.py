"""Limits of the server's inputs, named once; request models mirror them."""

from __future__ import annotations

from typing import Final

from duopass.protocol.purse import LIMIT_AMOUNT_MAX

BODY_BYTES_MAX: Final = 64 * 1024
"""Largest request body, except journal uploads."""
JOURNAL_BODY_BYTES_MAX: Final = 1536 * 1024
"""Largest journal upload: a batch of at most 1 MiB (protocol.journal), base64url in JSON."""
ID_CHARS_MAX: Final = 64
LOGIN_CHARS_MAX: Final = 64
PASSWORD_CHARS_MAX: Final = 256
PASSWORD_CHARS_MIN: Final = 8
AMOUNT_MAX: Final = LIMIT_AMOUNT_MAX
"""Largest amount in minor units in one request (`protocol.purse`, which the wallet checks too)."""
SEQ_MAX: Final = 2**53 - 1
ROW_ID_MAX: Final = 2**31 - 1
"""Largest row id a request may name (ids are 32-bit in both databases' tables)."""
TIME_MAX: Final = 2**40
REASON_CHARS_MAX: Final = 500
REQUEST_HEAD_BYTES_MAX: Final = 16 * 1024
"""Largest request head (request line and headers) still incomplete: h11's own limit, which the
httptools server is held to as well (api.deadlines); a longer one is answered 400."""
CONTENT_LENGTH_DIGITS_MAX: Final = 20
"""Longest `Content-Length` read (h11's own limit); a longer one is over every body limit."""
PARAM_DIGITS_MAX: Final = 20
"""Longest number in a path or query string; each has a range of its own besides."""
NAME_CHARS_MAX: Final = 100
"""A holder's name as the card office writes it."""
NUMBER_CHARS_MAX: Final = 32
"""A student or staff number: letters, digits, `-` and `/`."""
EMAIL_CHARS_MAX: Final = 254
"""RFC 5321's path limit, less the angle brackets."""
PHONE_CHARS_MAX: Final = 32
SEARCH_CHARS_MAX: Final = 100
PAGE_ITEMS_MAX: Final = 200
"""Most items a list answers at once (`?limit=`)."""
PAGE_ITEMS_DEFAULT: Final = 50
CURSOR_CHARS_MAX: Final = 200
"""Longest `?cursor=` a list reads: a cursor is the last item's key, base64url."""
NETWORKS_MAX: Final = 32
"""Campus network ranges one venue lists."""
TICKETS_PER_ORDER_MAX: Final = 20
TICKET_QUOTA_MAX: Final = 1_000_000
ENTRIES_MAX: Final = 1000
"""Entries a ticket type allows (`ent`)."""
STEP_UP_CODE_DIGITS: Final = 6
"""A step-up code, by e-mail or from the authenticator app: exactly six ASCII digits."""
STEP_UP_PURPOSE_CHARS_MAX: Final = 64
"""What a step-up is for (a reissue request's id): the `step_up_codes.purpose` column."""
CHECKIN_LISTS_PER_REDEEM_MAX: Final = 16
"""Check-in lists one redeem names (one per event: a multi-event scan)."""
NONCE_CHARS_MAX: Final = 190
"""A redeem's `nonce` (pretix's limit): printable ASCII."""
TICKET_TYPES_PER_LIST_MAX: Final = 100
"""Ticket types one check-in list names."""
FORWARDED_HOPS_MAX: Final = 64
"""Most `X-Forwarded-For` hops read, from the right, behind trusted proxies (api.forwarded):
a chain of trusted proxies longer than this is answered as if it came from the peer."""
FORWARDED_HOP_CHARS_MAX: Final = 64
"""Longest hop read (the longest IPv6 address, in brackets, with a port, is 54)."""
RISK_WINDOW_S_DEFAULT: Final = 86_400
"""The window `GET /v1/admin/risk` ranks keys over, unless asked for another."""
RISK_WINDOW_S_MAX: Final = 7 * 86_400
"""Longest window it ranks keys over (decision records are kept longer: list them by key)."""
RISK_KEY_CHARS_MAX: Final = 136
"""A risk key as the card office filters on it (`kind:value`: `store.risk.KEY_COLUMN_CHARS`)."""
WEBHOOK_URL_CHARS_MAX: Final = 2000
"""Longest webhook endpoint URL (what browsers and proxies reliably carry)."""
WEBHOOK_ENDPOINTS_MAX: Final = 50
"""Most webhook endpoints enabled at once: every event reads them all in its transaction."""
PARTNER_WEBHOOKS_MAX: Final = 5
"""Webhook endpoints one partner client may have enabled (its own, `webhooks:manage`), besides
the card office's `WEBHOOK_ENDPOINTS_MAX`."""
WEBHOOK_DESCRIPTION_CHARS_MAX: Final = 200
WEBHOOK_OVERLAP_S_MAX: Final = 7 * 86_400
"""Longest time an endpoint's previous secret still signs after a rotation."""
WEBHOOK_OVERLAP_S_DEFAULT: Final = 86_400
WEBHOOK_RETRY_FOR_S: Final = 86_400
"""A message is retried until a day after its event (or its manual retry), then failed."""
WEBHOOK_BACKOFF_FIRST_S: Final = 5
"""The wait after a message's first failed attempt; each further failure doubles it..."""
WEBHOOK_BACKOFF_MAX_S: Final = 3600
"""...up to an hour."""
WEBHOOK_TIMEOUT_S: Final = 10.0
"""Each step of one delivery (connect, send, the answer's head)."""
WEBHOOK_SENDS_PER_CLAIM_MAX: Final = 50
"""Messages one worker sends to one endpoint before it lets the endpoint go."""
WEBHOOK_LEASE_S: Final = 120
"""How long a worker's claim on an endpoint lasts unless renewed (by each attempt it records):
a process that died holding one lets it go this long after."""
WEBHOOK_LOG_KEPT_S: Final = 30 * 86_400
"""How long a delivered or failed message (and its attempts) stays in the delivery log."""
WEBHOOK_ERROR_CHARS_MAX: Final = 200
"""The delivery log's error text of one attempt."""
PASSKEYS_PER_HOLDER_MAX: Final = 10
"""Passkeys one holder may register."""
PASSKEY_ID_BYTES_MAX: Final = 1023
"""A WebAuthn credential id (WebAuthn §5.8.3's limit)."""
PASSKEY_CLIENT_DATA_BYTES_MAX: Final = 4096
"""`clientDataJSON` (a browser's is some 200 bytes; a cross-origin one adds `topOrigin`)."""
PASSKEY_ATTESTATION_BYTES_MAX: Final = 16 * 1024
"""`attestationObject`: room for a packed attestation's certificate chain."""
PASSKEY_AUTHENTICATOR_DATA_BYTES_MAX: Final = 1024
PASSKEY_SIGNATURE_BYTES_MAX: Final = 512
"""An assertion's signature (RS256 with a 4096-bit key is the longest accepted)."""
PASSKEY_USER_HANDLE_BYTES_MAX: Final = 64
PASSKEY_PUBLIC_KEY_BYTES_MAX: Final = 2048
"""A COSE public key as stored (`passkeys.public_key`)."""
PASSKEY_TRANSPORTS_MAX: Final = 8
PASSKEY_SIGN_IN_CHALLENGES_MAX: Final = 10_000
PASSKEY_SIGN_IN_CHALLENGES_PER_NETWORK_MAX: Final = 100
"""Sign-in challenges live at once for one source network (/24, /64; the throttles' exempt
networks, a campus's own NAT, are not capped): past it, 429 throttled, so one network cannot
hold all `PASSKEY_SIGN_IN_CHALLENGES_MAX`."""
"""Sign-in challenges live at once (anyone may ask for one): past it, 503 busy."""


def b64u_chars(size: int) -> int:
    """The length of `size` bytes in unpadded base64url: a request model's `max_length`."""
    return (size * 4 + 2) // 3


PARTNER_NAME_CHARS_MAX: Final = 100
PARTNER_CLIENTS_MAX: Final = 200
"""Active (not revoked) partner clients at once."""
PARTNER_TOKEN_LIFETIME_S: Final = 300
"""An OAuth access token's life: revocation also bites at once (the client's state is read on
every call), so this bounds only what a token stolen from a live client is worth."""
PARTNER_SECRET_OVERLAP_S_MAX: Final = 7 * 86_400
PARTNER_SECRET_OVERLAP_S_DEFAULT: Final = 86_400
PARTNER_CALLS_PER_MINUTE_DEFAULT: Final = 600
PARTNER_CALLS_PER_MINUTE_MAX: Final = 60_000
PARTNER_RATE_WINDOW_S: Final = 60
IDEMPOTENCY_KEY_CHARS_MAX: Final = 45
"""Longest Idempotency-Key a partner's order may carry (printable ASCII): a UUID is 36. Stored
as `partner:<partner id>:<key>` in `orders.request_id`, 64 characters at most
(`sales.stored_request_id`)."""
OAUTH_FIELD_CHARS_MAX: Final = 200
"""Longest client_id, client_secret, grant_type or scope a token request may carry."""
