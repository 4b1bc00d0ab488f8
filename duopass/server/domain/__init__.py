"""The server's pure rules (Cosmic Python's `domain/`): no SQL, no session, no clock.

`holds`: the money rules of PROTOCOL §4 and §6 (when a counter holds `txmax`, free funds, how a
credential is sized, what a refresh releases, the amend cap, the lost-credential split), written
once and called by scans, journals, credentials, accounts and the sweep. `outcomes`: how a
journal entry settled.

May import: the standard library and `duopass.protocol`. Never the database or HTTP.
"""

from duopass.server.domain.holds import (
    Amend,
    HoldTerms,
    Release,
    Sizing,
    amend,
    free_funds,
    hold_of,
    holds,
    lost_split,
    payable,
    refresh_release,
    size,
)
from duopass.server.domain.outcomes import Outcome

__all__ = [
    "Amend",
    "HoldTerms",
    "Outcome",
    "Release",
    "Sizing",
    "amend",
    "free_funds",
    "hold_of",
    "holds",
    "lost_split",
    "payable",
    "refresh_release",
    "size",
]
