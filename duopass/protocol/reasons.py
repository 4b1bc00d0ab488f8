"""The reason codes of PROTOCOL.md §3: the API of every verdict; and the reasons a journal answer
gives for an entry it holds for review instead of settling it (§5). Added, never renamed or
reused."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason", "Unsettled"]


class Reason(StrEnum):
    """Outcome of a scan; `OK` when accepted, otherwise the first failing check of §3."""

    OK = "OK"
    FORMAT = "FORMAT"  # check 1
    MALFORMED = "MALFORMED"  # check 2
    TRUST_STALE = "TRUST_STALE"  # check 3
    UNKNOWN_KEY = "UNKNOWN_KEY"  # check 4
    BAD_SIGNATURE = "BAD_SIGNATURE"  # check 5
    KEY_WINDOW = "KEY_WINDOW"  # check 6
    NOT_YET_VALID = "NOT_YET_VALID"  # check 7
    EXPIRED = "EXPIRED"  # check 8
    REVOKED = "REVOKED"  # check 9
    FROZEN = "FROZEN"  # check 10
    WRONG_KIND = "WRONG_KIND"  # check 11
    OUT_OF_SCOPE = "OUT_OF_SCOPE"  # check 12
    DEVICE_BINDING_REQUIRED = "DEVICE_BINDING_REQUIRED"  # check 13
    BAD_DEVICE_SIGNATURE = "BAD_DEVICE_SIGNATURE"  # check 14
    STALE = "STALE"  # check 15
    USES_EXHAUSTED = "USES_EXHAUSTED"  # check 16
    REPLAY = "REPLAY"  # check 17
    OVER_TX_LIMIT = "OVER_TX_LIMIT"  # check 18
    ALREADY_USED = "ALREADY_USED"  # check 19
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"  # online only (§3, §4)
    INTERRUPTED = "INTERRUPTED"
    """Journal only: the terminal stopped between taking a seq and giving a verdict (it crashed
    or was killed), so it accepted nothing; settles like any refusal (§5.1)."""


class Unsettled(StrEnum):
    """Why a journal entry was held for review (a journal answer's `rejected`), besides a §3
    reason its re-check gave (§5.2, §5.4)."""

    LATE = "LATE"
    """A charging entry whose code is older than the late window."""
    CONFLICT = "CONFLICT"
    """Different bytes for a (terminal_id, seq) already held."""
    CURRENCY = "CURRENCY"
    """The entry's currency is not the till's."""
