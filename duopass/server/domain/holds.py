"""The money rules of PROTOCOL §4 and §6, once (each was written two or three times before).

Words: a counter *holds* `txmax` while it is unseen, within `uses`, not above a refresh's
release mark and not released by the sweep (§4.1). *Free funds* are balance + overdraft - holds.
A hold is *released* when its counter is paid, when a refresh gives it back on the wallet's
word, or when the sweep sees its credential past the late window; released amounts are always
positive here, and `held` goes down by them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Amend",
    "HoldTerms",
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


@dataclass(frozen=True, slots=True)
class HoldTerms:
    """What of a purse credential decides whether a counter holds."""

    offline: bool
    """False: issued with no hold (online only, or offline use suspended)."""
    uses: int
    txmax: int
    release_mark: int | None
    """Counters above it were released at a refresh (None: no refresh yet)."""
    holds_released: bool
    """The sweep released every hold that was left."""


def holds(terms: HoldTerms, ctr: int) -> bool:
    """Whether counter `ctr` holds `txmax` until it is seen (§4.1)."""
    if not terms.offline or terms.holds_released or not 0 <= ctr < terms.uses:
        return False
    return terms.release_mark is None or ctr <= terms.release_mark


def hold_of(terms: HoldTerms, ctr: int) -> int:
    """What paying counter `ctr` releases, if it is unseen: `txmax` or nothing."""
    return terms.txmax if holds(terms, ctr) else 0


def free_funds(*, balance: int, overdraft: int, held: int) -> int:
    """Balance plus overdraft minus the holds of unseen counters (§4.1)."""
    return balance + overdraft - held


def payable(amount: int, *, hold: int, free: int) -> bool:
    """§3 online: a payment is allowed iff it fits in its counter's hold plus the free funds."""
    return amount <= hold + free


class Sizing(NamedTuple):
    uses: int
    txmax: int
    offline: bool


def size(free: int, *, uses_max: int, txmax_max: int, suspended: bool) -> Sizing:
    """A new credential's `uses` and `txmax`, whose holds fit in the free funds (§4.1): fewer or
    smaller when funds are low. With nothing to hold, or offline use suspended (§4.5), it is
    for online use only: `uses` 1 and `txmax` 1, the least the format allows, and no hold."""
    if free < 1 or suspended:
        return Sizing(1, 1, False)
    txmax = min(txmax_max, free)
    return Sizing(min(uses_max, free // txmax), txmax, True)


class Release(NamedTuple):
    wallet_mark: int
    """The wallet's mark, clamped to the credential's counters: payable online up to here."""
    release_mark: int
    """Holds above it are released now; at or below it they stay until seen or swept."""
    released: int
    """The amount released now (on the wallet's word: unconfirmed until the late window)."""


def refresh_release(
    terms: HoldTerms, *, mark: int | None, seen: Collection[int], room: int
) -> Release:
    """What a refresh releases of the credential it supersedes (§4.2): the holds of unseen
    counters above the wallet's mark, but no more than `room` (the overdraft less what is
    already released unconfirmed): the counters that do not fit stay held, lowest first."""
    top = terms.uses - 1
    wallet_mark = top if mark is None else max(-1, min(mark, top))
    unseen_above = [c for c in range(wallet_mark + 1, top + 1) if c not in seen]
    releasable = [c for c in unseen_above if holds(terms, c)]
    fit = max(0, room) // terms.txmax if terms.txmax else len(releasable)
    kept = max(0, len(releasable) - fit)
    release_mark = releasable[kept - 1] if kept else wallet_mark
    released = (len(releasable) - kept) * terms.txmax
    return Release(wallet_mark, max(wallet_mark, release_mark), released)


class Amend(NamedTuple):
    charged: int
    """What the holder pays for the scan now: the terminal's amount, up to the cap."""
    excess: int
    """What the terminal claims beyond the cap: to pending, for review."""


def amend(*, approved: int, journalled: int, txmax: int) -> Amend:
    """An online payment journalled with another amount (§5.1): the terminal's amount stands,
    except what exceeds both the amount the server approved and `txmax` (§5.3: a terminal can
    misstate an amount up to `txmax`, nothing more)."""
    cap = max(approved, txmax)
    return Amend(min(journalled, cap), max(0, journalled - cap))


def lost_split(amount: int, *, hold: int, after_loss_report: bool) -> tuple[int, int]:
    """(holder's part, loss account's part) of an acceptance: a lost credential used after the
    report costs the holder at most what it held; the rest is the issuer's loss (§6)."""
    holder = min(amount, hold) if after_loss_report else amount
    return holder, amount - holder
