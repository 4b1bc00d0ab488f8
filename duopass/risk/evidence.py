"""The evidence rules (§4.4, §4.5, §5.2): from one offline acceptance and what the server saw
before it, the alert kinds it raises; from a batch's place in its terminal's journal, its gaps.

Pure: the caller (the journal's booking) gathers the facts, these rules judge them.
"""

from __future__ import annotations

from dataclasses import dataclass

from duopass.risk.kinds import AlertKind

__all__ = ["Acceptance", "Earlier", "batch_evidence", "duplicate_kind", "evidence"]


@dataclass(frozen=True)
class Earlier:
    """The acceptance of the same counter the server settled first (§4.4: arrival order)."""

    ts: int
    terminal_id: str
    seq: int


@dataclass(frozen=True)
class Acceptance:
    """What the server knows of one offline acceptance when it books it."""

    ctr: int | None
    """The counter (None for a static code)."""
    ts: int
    past_uses: bool
    """The §5.3 re-check found the counter at or past `uses`."""
    mark: int | None
    """The wallet's mark when a refresh superseded the credential, if one did."""
    revoked_in_bundle: bool
    """The bundle the terminal held had already revoked the credential or frozen the subject."""
    earlier: Earlier | None
    """The first acceptance of this counter, when this one is a duplicate."""
    free_funds_after: int
    """The holder's free funds once this acceptance is charged."""
    freshness_s: int
    """The issuer's `freshness_s`: duplicates closer than this look like a relay."""


def duplicate_kind(ts: int, earlier_ts: int, freshness_s: int) -> AlertKind:
    """A counter accepted twice: a relay (or an honest double scan) when the two `ts` are
    within `freshness_s`, a clone of the device key otherwise (§4.4)."""
    close = abs(ts - earlier_ts) <= freshness_s
    return AlertKind.RELAY_SUSPECTED if close else AlertKind.CLONE


def evidence(acceptance: Acceptance) -> list[AlertKind]:
    """The alerts one offline acceptance raises, in the order they are raised (§4.5)."""
    found: list[AlertKind] = []
    if acceptance.past_uses:
        found.append(AlertKind.USES_EXCEEDED)
    ctr, mark = acceptance.ctr, acceptance.mark
    if ctr is not None and mark is not None and ctr > mark:
        found.append(AlertKind.ABOVE_MARK)
    if acceptance.revoked_in_bundle:
        found.append(AlertKind.REVOKED_ACCEPTED)
    if acceptance.earlier is not None:
        found.append(duplicate_kind(acceptance.ts, acceptance.earlier.ts, acceptance.freshness_s))
        if acceptance.free_funds_after < 0:
            found.append(AlertKind.NEGATIVE_FUNDS)
    return found


def batch_evidence(*, acked_seq: int, first: int, chained: bool) -> list[dict[str, object]]:
    """A batch that starts past what the server holds, or whose `prev` is not the hash of the
    batch before (§5.2): each a GAP alert's evidence."""
    found: list[dict[str, object]] = []
    if first > acked_seq + 1:
        found.append({"expected_seq": acked_seq + 1, "batch_first": first})
    if not chained:
        found.append({"chain": "prev does not match the batch before", "batch_first": first})
    return found
