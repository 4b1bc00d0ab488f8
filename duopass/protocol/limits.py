"""Every limit of the DP1 protocol, named once, unit last. Checked before parsing."""

from __future__ import annotations

from typing import Final

CODE_PREFIX: Final = "DP1:"
CODE_CHARS_MAX: Final = 1200
"""Longest code text, prefix included, after one trailing line ending is removed (§2)."""

CBOR_DEPTH_MAX: Final = 1024
"""Deepest nesting of CBOR containers. §2 sets no limit of its own: 1,200 characters of base45
carry at most about 870 bytes, so this bounds the decoder without refusing any code that fits."""

INT_ABS_LIMIT: Final = 2**53
"""Every integer in a code has an absolute value below this (§2)."""

ED25519_KEY_BYTES: Final = 32
ED25519_SIG_BYTES: Final = 64
ED25519_SEED_BYTES: Final = 32
KID_BYTES: Final = 8

ISS_CHARS_MAX: Final = 64
SUB_CHARS_MAX: Final = 64
CTI_BYTES_MIN: Final = 8
CTI_BYTES_MAX: Final = 16
USES_MAX: Final = 1000
SCOPE_VENUES_MAX: Final = 16
VENUE_CHARS_MAX: Final = 64
EVENT_CHARS_MAX: Final = 64
CURRENCY_CHARS: Final = 3
COUNTER_LIMIT: Final = 2**32
"""An L2 counter is below this."""

CRIT_KEYS_UNDERSTOOD: Final = frozenset(range(9))
"""dp keys a DP1 verifier understands (§2)."""

# Policy defaults (§3).
FRESHNESS_DEFAULT_S: Final = 60
CLOCK_SKEW_DEFAULT_S: Final = 300
MAX_LIFETIME_DEFAULT_S: Final = {"purse": 86_400, "identity": 86_400, "ticket": 2_592_000}
MAX_AGE_DEFAULT_S: Final = 86_400
LATE_WINDOW_DEFAULT_S: Final = 72 * 3600
"""§5.4: how late a charging journal entry may arrive and still settle; issuer policy, in the
trust bundle with the §3 fields (revision 1.1)."""

REQUEST_TIME_DIGITS_MAX: Final = 12
"""Longest `Duopass-Time` a signed terminal request may carry (protocol.requests)."""

TRUST_FILE_BYTES_MAX: Final = 16 * 1024 * 1024
"""Largest trust store file accepted: room for about 100,000 revocations."""

KEY_FILE_BYTES_MAX: Final = 4096
IMAGE_FILE_BYTES_MAX: Final = 32 * 1024 * 1024
SCAN_LINE_CHARS_MAX: Final = 4096
"""Longest line a keyboard-wedge reader takes before it gives up on the line."""

L1_CACHE_ENTRIES_MAX: Final = 10_000
"""Verified credentials a terminal keeps parsed, keyed by their exact bytes."""

BUNDLE_ENTRIES_MAX: Final = 1_500_000
"""Most keys, revocations and freezes one bundle may list, all lists together: a whole bundle of
the 1,000,000 revocations a terminal is built to hold (issue 14), and half as much again so that
an issuer near that size is not one busy week from terminals refusing its bundles. A delta
carries only what changed since the version held, so it stays far below."""
BUNDLE_BYTES_MAX: Final = 32 * 1024 * 1024
"""Largest signed trust bundle a terminal accepts: 1,500,000 revocations of 16-byte `cti`s take
25.5 MB of CBOR (17 bytes each; the server's 12-byte ones 19.5 MB), and the rest leaves room for
keys and some 100,000 freezes of 64-character subs. Either limit refuses the bundle whole."""

INSTALLATION_HEADER: Final = "Duopass-Installation"
"""The header a wallet names its installation in (sign-in, device sign-in, device enrolment):
a random id the app made once, the same for every account it signs in to. Optional; the server
counts the accounts one installation tries (a risk signal: the client chooses it)."""
INSTALLATION_PATTERN: Final = r"^[A-Za-z0-9_-]{16,64}$"
"""What an installation id is: 16 to 64 URL-safe base64 characters (others: 422
`invalid_request`)."""
