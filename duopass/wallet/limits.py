"""Every limit of the wallet, named once, unit last: what it accepts from the server, its files
and its user, and the constants of PROTOCOL.md it applies."""

from __future__ import annotations

from typing import Final

REFRESH_RESERVE: Final = 2
"""Added to the highest counter displayed to make a refresh's mark (§4.2's default)."""

RESPONSE_BYTES_MAX: Final = 256 * 1024
"""Largest answer read from the server; a sync answer is about 1 KiB."""
SERVER_URL_CHARS_MAX: Final = 2048
TOKEN_CHARS_MAX: Final = 512
LOGIN_CHARS_MAX: Final = 64
PASSWORD_CHARS_MAX: Final = 256
"""As the server's request models allow."""
L1_BYTES_MAX: Final = 1024
"""Longest credential kept: a code of 1,200 base45 characters carries at most about 870 bytes."""
ROW_ID_MAX: Final = 2**31 - 1
"""Largest device id the server hands out."""
TIME_MAX: Final = 2**40
"""Latest time, in Unix seconds, believed from the server."""
CHALLENGE_BYTES_MAX: Final = 64
"""Longest device sign-in challenge accepted from the server (it sends 40 bytes)."""
REQUEST_ID_BYTES: Final = 16
"""Random bytes of a sync request id (sent as 32 hex characters)."""
RECENT_LINES_MAX: Final = 50
"""Most movements kept from the account answer (the server sends its latest 50)."""
MOVEMENT_KIND_CHARS_MAX: Final = 24
"""Longest movement kind believed (`payment`, `topup`...: the server's column is 16)."""

HTTP_TIMEOUT_DEFAULT_S: Final = 10.0
LOCK_TIMEOUT_S: Final = 30.0
"""How long one instance waits for another's counter transaction."""
WATCH_INTERVAL_DEFAULT_S: Final = 5
"""How often `code --watch` re-signs the displayed counter with a new `ts`."""

TICKETS_MAX: Final = 200
"""Most tickets believed from one ticket sync answer (and sent as `exhausted`: the server's
limit)."""
EVENTS_MAX: Final = 200
"""Most events believed from the catalogue answer."""
TICKET_TYPES_MAX: Final = 50
"""Most ticket types believed per event."""
PUBLIC_ID_CHARS_MAX: Final = 64
"""Longest ticket sub, event id, order code believed (the server's ID_CHARS_MAX)."""
NAME_CHARS_MAX: Final = 100
"""Longest event or ticket type name believed (the server's NAME_CHARS_MAX)."""
RULE_CHARS_MAX: Final = 64
"""Longest policy rule name (and refusal word) believed (the server's column is 64)."""
FACTOR_CHARS_MAX: Final = 12
"""Longest step-up factor name believed (`email_otp`, `totp`, `passkey`)."""
STEP_UP_TRIES_MAX: Final = 3
"""Codes `duopass wallet reissue` asks for at its prompt before it gives up (the server takes
5 wrong ones a code)."""
ENTRIES_MAX: Final = 1000
TICKETS_PER_ORDER_MAX: Final = 20
"""As the server's request models allow."""
