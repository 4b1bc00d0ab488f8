"""The catalogue of alert kinds, which of them suspend offline use, and what a reviewer does."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SUSPENDING", "AlertKind", "ReviewAction"]


class AlertKind(StrEnum):
    """What an alert is about; added, never renamed (they are in the ledger and in reports)."""

    RELAY_SUSPECTED = "relay_suspected"
    """A counter accepted twice with `ts` within `freshness_s`: a double scan or a photo."""
    CLONE = "clone"
    """A counter accepted twice with `ts` further apart: the device key is on two phones."""
    USES_EXCEEDED = "uses_exceeded"
    """A counter at or past the credential's `uses`."""
    ABOVE_MARK = "above_mark"
    """A counter above the mark the wallet reported at refresh."""
    REVOKED_ACCEPTED = "revoked_accepted"
    """Accepted under a bundle that already revoked the credential (or froze the subject)."""
    NEGATIVE_FUNDS = "negative_funds"
    """A duplicate took the holder's free funds below zero."""
    PENDING = "pending"
    """An entry that could not be settled: its amount waits in the pending account."""
    CONFLICT = "conflict"
    """Different bytes for a (terminal, seq) the server already holds."""
    GAP = "gap"
    """A batch that starts past the terminal's acknowledged entries, or breaks the hash chain."""
    MISSING_ENTRY = "missing_entry"
    """An online verdict whose journal entry never came within the late window: now final."""
    ENTRIES_EXCEEDED = "entries_exceeded"
    """An offline gate admitted a ticket past its entries (it counts across gates and lists):
    recorded, for review; the gate opened, so nothing is refused."""
    OLD_GENERATION = "old_generation"
    """A ticket's older generation admitted offline after its reissue, by a gate whose bundle
    did not revoke it yet: for information (the gate could not know), no suspension. Had the
    bundle revoked it, it is `revoked_accepted`: evidence (§4.5)."""
    HEARTBEAT_MISSED = "heartbeat_missed"
    """A terminal not heard for two heartbeats and a grace (duopass.risk.fleet)."""
    BUNDLE_LAG = "bundle_lag"
    """A terminal not sent a trust bundle for 120 minutes (Kingstar's warning)."""
    BUNDLE_LAG_CRITICAL = "bundle_lag_critical"
    """A terminal not sent a trust bundle for 240 minutes (Kingstar's critical)."""
    CLOCK_DRIFT = "clock_drift"
    """A terminal whose signed requests show its clock off the server's by more than the bound."""
    JOURNAL_BACKLOG = "journal_backlog"
    """A terminal's journal entries heard of but not held: too many, or rising sweep after sweep."""
    RISK_DECISION = "risk_decision"
    """The risk engine held (review), refused (deny) or suspended offline use (suspend_offline):
    the decision with its guard, signals and features, for a person (services.risk_records)."""
    JOURNAL_ANOMALY = "journal_anomaly"
    """A journal entry far off its holder's or its terminal's habits (duopass.risk.anomaly): for
    review, no suspension (an honest holder's new habit looks the same at first)."""
    STORE_ROLLED_BACK = "store_rolled_back"
    """A terminal told more than the restored store holds (its acknowledged journal seq or its
    bundle version is ahead): listed when an operator accepts a rollback, for staff to handle
    (services.rollback)."""


SUSPENDING = frozenset(
    {
        AlertKind.CLONE,
        AlertKind.USES_EXCEEDED,
        AlertKind.ABOVE_MARK,
        AlertKind.REVOKED_ACCEPTED,
        AlertKind.NEGATIVE_FUNDS,
    }
)
"""Evidence that suspends offline use at once (§4.5); only a person freezes."""


class ReviewAction(StrEnum):
    """What a reviewer does with an alert."""

    DISMISS = "dismiss"
    FREEZE = "freeze"
    TO_HOLDER = "to_holder"
    """Charge the pending amount to the holder (debit holder, credit pending)."""
    TO_LOSS = "to_loss"
    """Write the pending amount off (debit loss, credit pending)."""
    RELEASE = "release"
    """Let a request the risk policy held for review through, once: its guard's next review at
    the same point for the same subject within a day is an allow (`risk_decision` alerts of
    action review only)."""
