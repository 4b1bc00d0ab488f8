"""How a journal entry settled (§5): kept with the entry, answered to no one."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Outcome"]


class Outcome(StrEnum):
    """Added, never renamed: stored in `journal_entries.outcome`."""

    BOOKED = "booked"
    """An offline acceptance charged against its counter's hold."""
    DUPLICATE = "duplicate"
    """An acceptance of a counter accepted before (§4.4): charged, and evidence."""
    CONFIRMED = "confirmed"
    """The terminal's entry agrees with the server's online verdict."""
    VOIDED = "voided"
    """The terminal refused what the server accepted online: the charge reversed (§5.1)."""
    RECORDED = "recorded"
    """Nothing to book: a refusal, an identity check."""
    PENDING = "pending"
    """Could not be settled: held for review (see the entry's reason)."""
    CONFLICT = "conflict"
    """Other bytes for a seq already held: nothing booked until review (never stored: the
    entry first held stays the one held)."""
